//! Black-box: the database's sizes through `ferrocore admin store status` (issue 22), with
//! the WAL limit from the environment, and an invalid limit refused at start-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;

#[test]
fn store_status_shows_the_database_and_wal_sizes_and_the_configured_limit() {
    let s = Server::start_with_env(&[("FERROCORE_STORE_WAL_LIMIT_MB", "8")]);
    s.add_user("alice");
    let state = s.path("dev");
    s.register_ok(&state, "alice", "windows", "agent", "10.0");
    s.checkin_ok(&state);
    let v = s.admin_ok(&["store", "status"]);
    assert_eq!(v["wal_limit_bytes"], 8 << 20, "{v}");
    // The file only grows (the checkpointer may copy pages meanwhile).
    let db = std::fs::metadata(s.data_dir.join("ferrocore.db"))
        .unwrap()
        .len();
    let shown = v["database_bytes"].as_u64().unwrap();
    assert!(shown > 0 && shown <= db, "{v}, file {db}");
    // Registration and check-in were written to the log; it is far below its limit.
    let wal = v["wal_bytes"].as_u64().unwrap();
    assert!(v["max_wal_bytes"].as_u64().unwrap() >= wal, "{v}");
    assert!(wal < 8 << 20, "{v}");
    assert_eq!(v["wal_truncations"], 0, "{v}");
}

#[test]
fn an_invalid_wal_limit_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = Ports::free().env();
    env.push(("FERROCORE_STORE_WAL_LIMIT_MB".into(), "0".into()));
    let out = serve_expecting_failure(&dir.path().join("data"), &[], &env);
    assert!(out.stderr.contains("store.wal_limit_mb"), "{out:?}");
}
