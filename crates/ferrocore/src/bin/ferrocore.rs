//! `ferrocore`: the server (`serve`) and its admin CLI (`admin`).
//!
//! The global allocator is mimalloc: glibc malloc showed as ~9 % of server CPU per SCEP
//! enrollment in perf profiles (docs/BENCHMARKS.md, SCEP).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    ferrocore_server::cli::run()
}
