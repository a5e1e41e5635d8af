//! The pool for bulk private-key work: the SCEP PKIOperation's RSA decryption of the request
//! and RSA signature of the reply (about 1 ms each with RSA-2048 on these machines).
//!
//! One thread per CPU, at a lower scheduling priority (nice +[`NICE`]) than the async
//! runtime's workers and the database's threads. Under load, the short steps that hold the
//! process's writer turn (a write transaction's statements, each a hand-off to SQLite's
//! thread) would otherwise wait for a CPU behind runnable RSA jobs while every other request
//! queued behind the turn, leaving CPUs idle; with the RSA jobs niced, those steps take a CPU
//! the moment they are woken (measured: docs/BENCHMARKS.md, SCEP). With nothing else to do,
//! the pool still gets every CPU. Jobs run in arrival order; more than one per CPU at a time
//! would only add context switches.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

/// The pool threads' nice value (Linux: per thread). 0 to 19 lower the priority.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    jobs: Sender<Job>,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ferrocore-crypto-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a crypto pool thread");
            }
        }
        Pool { jobs: tx }
    })
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // setpriority(2) for "the calling process" changes only the calling thread on Linux.
    if let Err(e) = rustix::process::setpriority_process(None, NICE) {
        tracing::debug!(error = %e, "crypto pool: nice unchanged");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// The pool's threads are gone (only if none could be started).
#[derive(Debug, thiserror::Error)]
#[error("the crypto pool is not running")]
pub struct PoolGone;

/// Runs `f` on the pool and waits for its result without blocking the async runtime.
pub async fn run<T, F>(f: F) -> Result<T, PoolGone>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    pool().jobs.send(job).map_err(|_| PoolGone)?;
    rx.await.map_err(|_| PoolGone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_lower_priority_threads_and_return_their_results() {
        let (name, nice) = run(|| {
            let name = std::thread::current().name().map(str::to_owned);
            #[cfg(target_os = "linux")]
            let nice = rustix::process::getpriority_process(None).unwrap();
            #[cfg(not(target_os = "linux"))]
            let nice = NICE;
            (name, nice)
        })
        .await
        .unwrap();
        assert!(name.unwrap().starts_with("ferrocore-crypto-"));
        assert!(nice >= NICE, "nice {nice}");
        let many: Vec<_> = (0..32u64).map(|i| run(move || i * i)).collect();
        let mut got = Vec::new();
        for r in many {
            got.push(r.await.unwrap());
        }
        assert_eq!(got, (0..32u64).map(|i| i * i).collect::<Vec<_>>());
    }
}
