//! Ferrocore's black-box suite, one integration binary: every module starts the real
//! `ferrocore` and `ferrocore-agent` binaries on free loopback ports (`common::Server`) and
//! drives them with the agent, the admin CLI and real peers (curl, openssl, certmonger,
//! micromdm's scepclient/scepserver, PyScep, nginx, haproxy, libfaketime).
//!
//! Run one module with `cargo test -p ferrocore --test e2e scep_renew::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod cli;
mod core_api;
mod directory;
mod edge;
mod enrollment;
mod est;
mod extca;
mod frontend;
mod lifecycle_faketime;
mod migration;
mod nokey;
mod ocsp;
mod ownership;
mod portal;
mod resumption;
mod rsaca;
mod rules;
mod scep_enroll;
mod scep_renew;
mod store;
mod storefront;
mod storefront_lockout;
mod tls;
