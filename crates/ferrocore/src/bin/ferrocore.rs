//! `ferrocore`: the server (`serve`) and its admin CLI (`admin`).
//!
//! The global allocator is mimalloc: glibc's malloc/free showed as ~4 % of the server's CPU
//! per SCEP enrollment in perf profiles, with lock contention between the runtime's threads
//! (docs/BENCHMARKS.md, SCEP).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    ferrocore_server::cli::run()
}
