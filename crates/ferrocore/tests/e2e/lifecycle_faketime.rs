//! Black-box certificate lifecycle: the real server and agent binaries with libfaketime
//! moving their clocks (the server reads its offset from a file it re-reads on every call,
//! each agent command runs at a given offset). Covers renewal at the window start, refusal
//! of an expired non-renewing agent and its re-registration, renewal inside the 30-day grace,
//! and retirement past the grace by the sweep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{AGENT, LIBFAKETIME, Out, PASSWORD, Server, clean_command, run};
use serde_json::Value;
use std::path::Path;

/// `ferrocore-agent` at `days` after the real now.
fn agent_at(days: i64, state: &Path, args: &[&str]) -> Out {
    let mut cmd = clean_command(AGENT);
    cmd.env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", format!("+{days}d"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .arg("--state")
        .arg(state)
        .args(args);
    run(cmd, None)
}

fn register_at(s: &Server, days: i64, state: &Path, version: &str) -> Value {
    let ca = s.ca_pem();
    let out = agent_at(
        days,
        state,
        &[
            "register",
            "--url",
            &s.device_url(),
            "--ca",
            ca.to_str().unwrap(),
            "--user",
            "alice",
            "--password",
            PASSWORD,
            "--platform",
            "android",
            "--client-kind",
            "agent",
            "--client-version",
            version,
        ],
    );
    assert_eq!(out.code, 0, "register {version}: {out:?}\n{}", s.log());
    out.json
}

fn serial(state: &Path) -> String {
    let out = agent_at(0, state, &["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.json["cert_serial"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

#[test]
fn renewal_grace_and_retirement_with_faketime() {
    let dir = tempfile::tempdir().unwrap();
    // 30-day certificates, renewal window 10 days: window opens at day 20, grace ends day 60.
    let (clock, s) = common::short_lifetime_server(dir.path(), "alice");

    let renewing = dir.path().join("renewing");
    let old_agent = dir.path().join("old");
    let silent = dir.path().join("silent");
    register_at(&s, 0, &renewing, "10.1.0");
    register_at(&s, 0, &old_agent, "10.0");
    let silent_id = register_at(&s, 0, &silent, "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = serial(&renewing);

    // Day 15: before the window, nothing to do.
    clock.set_days(15);
    let out = agent_at(15, &renewing, &["checkin"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json["actions"], Value::Array(vec![]), "{}", out.stdout);
    assert_eq!(serial(&renewing), first);

    // Day 21: the window is open; the agent renews on the server's instruction.
    clock.set_days(21);
    let out = agent_at(21, &renewing, &["checkin"]);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    assert_eq!(out.json["actions"][0]["type"], "renew", "{}", out.stdout);
    let second = serial(&renewing);
    assert_ne!(second, first, "a new certificate");
    // Its next check-in uses the new certificate; the old one is then revoked (superseded).
    assert_eq!(agent_at(21, &renewing, &["checkin"]).code, 0);
    let certs = s.admin_ok(&["certificates", "list"]);
    let old = certs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == first.as_str())
        .unwrap();
    assert_eq!(old["status"], "revoked", "{old}");
    assert_eq!(old["revocation_reason"], "superseded");
    // The non-renewing agent is never told to renew.
    let out = agent_at(21, &old_agent, &["checkin"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json["certificate"]["supports_renewal"], false);

    // Day 31: the old agent's certificate expired: refused with "register again".
    clock.set_days(31);
    let out = agent_at(31, &old_agent, &["checkin"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("certificate_expired"), "{}", out.stderr);
    assert!(out.stderr.contains("register again"), "{}", out.stderr);
    // Registering again works and replaces its identity.
    register_at(&s, 31, &old_agent, "10.0");
    assert_eq!(agent_at(31, &old_agent, &["checkin"]).code, 0);

    // Day 55: the renewed certificate (issued day 21, 30 days) expired at day 51; within the
    // grace the agent renews with it and checks in again.
    clock.set_days(55);
    let out = agent_at(55, &renewing, &["checkin"]);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    assert!(out.stderr.contains("renewed"), "{}", out.stderr);
    assert_ne!(serial(&renewing), second);

    // Day 62: the silent device expired at day 30, grace over at day 60: the sweep retires it.
    clock.set_days(62);
    let report = s.admin_ok(&["reports", "renewal-at-risk"]);
    let listed = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device_id"] == silent_id.as_str())
        .cloned();
    assert_eq!(
        listed.as_ref().map(|r| r["phase"].clone()),
        Some(Value::from("awaiting_retirement")),
        "past the grace, not swept yet: still listed, marked: {report}"
    );
    let swept = s.admin_ok(&["sweep"]);
    assert!(swept["retired"].as_u64().unwrap() >= 1, "{swept}");
    let dev = s.device(&silent_id);
    assert_eq!(dev["status"], "retired", "{dev}");
    let out = agent_at(62, &silent, &["checkin"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("device_retired"), "{}", out.stderr);
}
