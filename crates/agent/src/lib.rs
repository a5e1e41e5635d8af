//! Ferrocore's reference device agent and load generator.
//!
//! * [`state`]: the on-disk state of one device (`state.json`, `key.pem`, `cert.pem`, `ca.pem`,
//!   `server-ca.pem`, `secret`).
//! * [`device`]: registration (key + CSR generation, `POST /api/v1/register`), check-in and status.
//! * [`swarm`]: enrolling many devices and replaying check-ins as a load generator.
//! * [`scep_bench`]: SCEP enrollments per second against any SCEP server (benchmarks).
//! * [`cli`]: the `ferrocore-agent` command line; [`cli::run`] is the binary's entry point.

pub mod cli;
pub mod device;
pub mod scep_bench;
pub mod state;
pub mod swarm;
