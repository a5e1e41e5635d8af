//! `ferrocore`: the server (`serve`) and its admin CLI (`admin`).

fn main() -> anyhow::Result<std::process::ExitCode> {
    ferrocore_server::cli::run()
}
