//! Black-box: migrating a legacy Android agent to mutual authentication through the real
//! agent and admin CLI (policy flag, Pending, Success, sync-TLS refused afterwards; the
//! advanced search finds it under each status), and the renewal window's input rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Server;
use serde_json::Value;

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn legacy_android_agent_migrates_without_registering_again() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let phone = tmp.path().join("phone");
    let old = tmp.path().join("old");
    s.add_user("alice");
    let id = s.register_ok(&phone, "alice", "android", "agent", "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_id = s.register_ok(&old, "alice", "android", "agent", "10.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What migration must keep: the device row, registered once.
    let before = s.device(&id);
    assert!(before["registered_at"].as_i64().is_some(), "{before}");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let search = |status: &str| s.admin_ok(&["devices", "list", "--migration-status", status]);
    assert_eq!(ids(&search("none")).len(), 2);

    // Flag on the device's policy: the next sync-TLS check-in hands the agent what it needs;
    // the agent generates its key, obtains its certificate (Pending) and switches listener.
    s.admin_ok(&["policies", "set", "default", "--migrate-client", "true"]);
    let out = s.checkin(&phone);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    assert_eq!(out.json["actions"][0]["type"], "migrate", "{}", out.stdout);
    assert!(out.stderr.contains("migrated"), "{}", out.stderr);
    assert_eq!(ids(&search("pending")), vec![id.clone()]);
    let st = s.agent(&phone, &["status"]).json;
    assert_eq!(st["mode"], "mutual", "{st}");
    assert_eq!(st["checkin"]["listener"], "device", "{st}");
    assert!(!phone.join("secret").exists(), "the secret is gone");

    // First mutual-TLS check-in: Success.
    let c = s.checkin_ok(&phone);
    assert_eq!(c["mode"], "mutual");
    assert_eq!(ids(&search("success")), vec![id.clone()]);
    let dev = s.device(&id);
    assert_eq!(dev["listener"], "device");
    assert_eq!(dev["mode"], "mutual");
    assert_eq!(dev["registered_at"], before["registered_at"], "{dev}");
    assert_eq!(dev["device_uuid"], before["device_uuid"], "{dev}");
    assert_eq!(s.device_total(), 2, "no second device row");

    // The agent that cannot migrate shows "not supported" and keeps working on sync-TLS.
    s.checkin_ok(&old);
    assert_eq!(ids(&search("not_supported")), vec![old_id]);

    // Sync-TLS check-ins of the migrated device are refused from now on.
    let dev_uuid = dev["device_uuid"].as_str().unwrap();
    let r = s.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("x-ferrocore-device-secret: {dev_uuid}:anything"),
        &format!("{}/api/v1/checkin", s.sync_url()),
    ]);
    assert_eq!(r.error_code(), "mutual_auth_required", "{r:?}");
}

#[test]
fn renewal_window_input_rules() {
    let s = Server::start();
    for bad in ["0", "61", "-1", "text", "1.5"] {
        let out = s.admin(&["policies", "set", "default", "--renewal-window-days", bad]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(
            out.stderr.contains("invalid_setting"),
            "{bad}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("1 to 60"), "{bad}: {}", out.stderr);
    }
    let p = s.admin_ok(&["policies", "show", "default"]);
    assert_eq!(p["renewal_window_days"], Value::Null);
    assert_eq!(p["effective_renewal_window_days"], 60);
    let p = s.admin_ok(&["policies", "set", "default", "--renewal-window-days", "45"]);
    assert_eq!(p["renewal_window_days"], 45);
    // Blank means 60 again.
    let p = s.admin_ok(&["policies", "set", "default", "--renewal-window-days", ""]);
    assert_eq!(p["renewal_window_days"], Value::Null);
    assert_eq!(p["effective_renewal_window_days"], 60);
    // Named policies; a policy in use cannot be removed.
    let p = s.admin_ok(&["policies", "add", "kiosk", "--checkin-interval-secs", "600"]);
    assert_eq!(p["checkin_interval_secs"], 600);
    let dup = s.admin(&["policies", "add", "kiosk"]);
    assert!(dup.stderr.contains("conflict"), "{}", dup.stderr);
    let gone = s.admin(&["policies", "remove", "default"]);
    assert!(gone.stderr.contains("conflict"), "{}", gone.stderr);
    assert_eq!(s.admin(&["policies", "remove", "kiosk"]).code, 0);
}
