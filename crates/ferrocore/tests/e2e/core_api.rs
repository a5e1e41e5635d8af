//! End-to-end tests of the server, the admin CLI and the agent: start-up and configuration,
//! the README walkthrough, Table 4 with the real agent, the mutual-authentication and
//! sync-TLS settings, and legacy check-ins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Ports, Server, agent_state, mode_of, serve_expecting_failure};
use serde_json::Value;
use std::fs;

#[test]
fn first_start_initialises_data_dir_and_restart_keeps_it() {
    let mut s = Server::start();
    let dir = s.data_dir.clone();
    for f in ["ca/ca.key", "tls/server.key", "admin-token"] {
        assert_eq!(mode_of(&dir.join(f)), 0o600, "{f} must be 0600");
    }
    for f in ["ca/ca.pem", "tls/server.pem", "ferrocore.db"] {
        assert!(dir.join(f).is_file(), "{f} missing after first start");
    }
    let ca_before = fs::read(dir.join("ca/ca.pem")).unwrap();
    let token_before = s.admin_token();
    assert!(
        token_before.len() >= 32,
        "token too short: {token_before:?}"
    );
    s.add_user("alice");

    s.restart();

    assert_eq!(
        fs::read(dir.join("ca/ca.pem")).unwrap(),
        ca_before,
        "restart must keep the CA"
    );
    assert_eq!(s.admin_token(), token_before, "restart must keep the token");
    let users = s.admin_ok(&["users", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .expect("users list is an array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, vec!["alice"], "{users}");
    // The CA served over HTTPS is the one on disk.
    let served = s.curl(&[&format!("{}/pki/ca.pem", s.device_url())]);
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(served.body.as_bytes(), ca_before.as_slice());
    for f in ["ca/ca.key", "tls/server.key", "admin-token"] {
        assert_eq!(mode_of(&dir.join(f)), 0o600, "{f} must stay 0600");
    }
}

#[test]
fn invalid_configuration_stops_start_up_with_one_line_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Ports::free();
    let with = |key: &str, value: String| -> Vec<(String, String)> {
        let mut env = p.env();
        for (k, v) in env.iter_mut() {
            if k == key {
                *v = value.clone();
            }
        }
        env
    };
    let missing = tmp.path().join("no-such-config.toml");
    let bad_toml = tmp.path().join("bad.toml");
    fs::write(&bad_toml, "[listeners\ndevice = 1\n").unwrap();
    type Env = Vec<(String, String)>;
    // (case, extra serve arguments, environment, key the error line must name)
    let cases: Vec<(&str, Vec<String>, Env, &str)> = vec![
        (
            "storefront on the admin port",
            vec![],
            with(
                "FERROCORE_LISTENERS_STOREFRONT",
                format!("127.0.0.1:{}", p.admin),
            ),
            "listeners.storefront",
        ),
        (
            "two listeners on one address",
            vec![],
            with(
                "FERROCORE_LISTENERS_SYNC_TLS",
                format!("127.0.0.1:{}", p.device),
            ),
            "listeners.sync_tls",
        ),
        (
            "bad address",
            vec![],
            with("FERROCORE_LISTENERS_DEVICE", "not-an-address".into()),
            "listeners.device",
        ),
        (
            "bad hostname",
            vec![],
            with("FERROCORE_SERVER_HOSTNAMES", "bad name!".into()),
            "server.hostnames",
        ),
        (
            "unreadable --config file",
            vec!["--config".into(), missing.display().to_string()],
            p.env(),
            "--config",
        ),
        (
            "--config file that is not TOML",
            vec!["--config".into(), bad_toml.display().to_string()],
            p.env(),
            "--config",
        ),
    ];
    for (i, (name, args, env, key)) in cases.iter().enumerate() {
        let data = tmp.path().join(format!("data-{i}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = serve_expecting_failure(&data, &args, env);
        assert_ne!(out.code, 0, "{name}: serve must exit non-zero: {out:?}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{name}: exactly one stderr line: {out:?}");
        assert!(
            lines[0].contains(key),
            "{name}: line must name {key}: {out:?}"
        );
        assert!(
            !data.join("ca").exists(),
            "{name}: nothing may be initialised on a configuration error"
        );
    }
}

#[test]
fn readme_walkthrough_two_android_agents_and_retire() {
    let s = Server::start();
    s.add_user("alice");
    let phone1 = s.path("phone1");
    let phone2 = s.path("phone2");

    let st1 = s.register_ok(&phone1, "alice", "android", "agent", "10.1.0");
    assert_eq!(st1["mode"], "legacy", "{st1}");
    assert_eq!(st1["checkin"]["listener"], "sync_tls", "{st1}");
    assert_eq!(st1["checkin"]["port"], s.ports.sync_tls, "{st1}");
    assert!(phone1.join("secret").is_file());
    assert!(!phone1.join("cert.pem").exists());

    let settings = s.admin_ok(&["settings", "mutual-auth", "enable"]);
    assert_eq!(settings["mutual_auth_enabled"], true, "{settings}");

    let st2 = s.register_ok(&phone2, "alice", "android", "agent", "10.1.0");
    assert_eq!(st2["mode"], "mutual", "{st2}");
    assert_eq!(st2["checkin"]["listener"], "device", "{st2}");
    assert_eq!(st2["checkin"]["port"], s.ports.device, "{st2}");
    assert!(phone2.join("cert.pem").is_file());
    assert_eq!(mode_of(&phone2.join("key.pem")), 0o600);

    let c1 = s.checkin_ok(&phone1);
    assert_eq!(c1["device_id"], st1["device_id"]);
    assert_eq!(c1["mode"], "legacy");
    let c2 = s.checkin_ok(&phone2);
    assert_eq!(c2["device_id"], st2["device_id"]);
    assert_eq!(c2["mode"], "mutual");

    let list = s.devices();
    assert_eq!(list["total"], 2, "{list}");
    let d1 = s.device(st1["device_id"].as_str().unwrap());
    let d2 = s.device(st2["device_id"].as_str().unwrap());
    assert_eq!(
        (d1["mode"].as_str(), d1["listener"].as_str()),
        (Some("legacy"), Some("sync_tls"))
    );
    assert_eq!(
        (d2["mode"].as_str(), d2["listener"].as_str()),
        (Some("mutual"), Some("device"))
    );
    assert_eq!(d1["username"], "alice");
    assert!(d1["last_checkin_at"].is_i64(), "{d1}");
    assert!(d2["last_checkin_at"].is_i64(), "{d2}");

    let retired = s.admin_ok(&["devices", "retire", st2["device_id"].as_str().unwrap()]);
    assert_eq!(retired["status"], "retired", "{retired}");

    let out = s.checkin(&phone2);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("device_retired"), "{out:?}");
    // The other device is unaffected.
    s.checkin_ok(&phone1);
    // And so is a legacy device retired the same way.
    s.admin_ok(&["devices", "retire", st1["device_id"].as_str().unwrap()]);
    let out = s.checkin(&phone1);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("device_retired"), "{out:?}");
}

/// (name, platform, client kind, version, expected (mode, listener) before enabling mutual
/// authentication, expected after).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (&'static str, &'static str),
    (&'static str, &'static str),
);

const TABLE_4: &[Row] = &[
    (
        "android-agent",
        "android",
        "agent",
        "10.1.0",
        ("legacy", "sync_tls"),
        ("mutual", "device"),
    ),
    (
        "ios-agent-9.7",
        "ios",
        "agent",
        "9.7",
        ("legacy", "sync_tls"),
        ("legacy", "sync_tls"),
    ),
    (
        "ios-agent-9.8",
        "ios",
        "agent",
        "9.8",
        ("legacy", "sync_tls"),
        ("mutual", "device"),
    ),
    (
        "ios-mdm",
        "ios",
        "mdm",
        "17.0",
        ("legacy", "device"),
        ("mutual", "device"),
    ),
    (
        "macos-agent",
        "macos",
        "agent",
        "1.0",
        ("mutual", "device"),
        ("mutual", "device"),
    ),
    (
        "macos-mdm",
        "macos",
        "mdm",
        "14.0",
        ("legacy", "device"),
        ("mutual", "device"),
    ),
    (
        "windows-agent",
        "windows",
        "agent",
        "10.0",
        ("mutual", "device"),
        ("mutual", "device"),
    ),
];

/// Registers every row of `TABLE_4` concurrently into `{prefix}-{name}`; returns state JSONs.
fn register_all(s: &Server, prefix: &str) -> Vec<Value> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = TABLE_4
            .iter()
            .map(|(name, platform, kind, version, _, _)| {
                let state = s.path(&format!("{prefix}-{name}"));
                scope.spawn(move || s.register_ok(&state, "alice", platform, kind, version))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Checks in every row's device of `{prefix}-*` concurrently; returns the answers.
fn checkin_all(s: &Server, prefix: &str) -> Vec<Value> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = TABLE_4
            .iter()
            .map(|(name, ..)| {
                let state = s.path(&format!("{prefix}-{name}"));
                scope.spawn(move || s.checkin_ok(&state))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Mode and listener of a row's device registered before the switch, once it checked in
/// after it: unchanged, except MDM devices, which Table 4 puts in mutual mode whenever the
/// setting is enabled.
fn before_after_switch(row: &Row) -> (&'static str, &'static str) {
    if row.2 == "mdm" { row.5 } else { row.4 }
}

fn port_of(s: &Server, listener: &str) -> u16 {
    match listener {
        "device" => s.ports.device,
        "sync_tls" => s.ports.sync_tls,
        other => panic!("unknown listener {other}"),
    }
}

#[test]
fn table_4_with_the_real_agent_before_and_after_enabling_mutual_auth() {
    let s = Server::start();
    s.add_user("alice");

    let before = register_all(&s, "before");
    for (row, reg) in TABLE_4.iter().zip(&before) {
        let (name, _, _, _, (mode, listener), _) = row;
        let state = agent_state(&s.path(&format!("before-{name}")));
        assert_eq!(state["mode"], *mode, "{name} before enabling: {state}");
        assert_eq!(state["checkin"]["listener"], *listener, "{name}: {state}");
        assert_eq!(
            state["checkin"]["port"],
            port_of(&s, listener),
            "{name}: {state}"
        );
        assert_eq!(reg["mode"], *mode, "{name}: register output {reg}");
    }
    for (row, c) in TABLE_4.iter().zip(checkin_all(&s, "before")) {
        let (name, _, _, _, (mode, listener), _) = row;
        assert_eq!(
            (c["mode"].as_str(), c["checkin"]["listener"].as_str()),
            (Some(*mode), Some(*listener)),
            "{name}: {c}"
        );
    }

    s.admin_ok(&["settings", "mutual-auth", "enable"]);

    let after = register_all(&s, "after");
    for (row, reg) in TABLE_4.iter().zip(&after) {
        let (name, _, _, _, _, (mode, listener)) = row;
        let state = agent_state(&s.path(&format!("after-{name}")));
        assert_eq!(state["mode"], *mode, "{name} after enabling: {state}");
        assert_eq!(state["checkin"]["listener"], *listener, "{name}: {state}");
        assert_eq!(
            state["checkin"]["port"],
            port_of(&s, listener),
            "{name}: {state}"
        );
        assert_eq!(reg["mode"], *mode, "{name}: register output {reg}");
        let has_cert = s.path(&format!("after-{name}")).join("cert.pem").exists();
        assert_eq!(has_cert, *mode == "mutual", "{name}: cert.pem presence");
    }
    for (row, c) in TABLE_4.iter().zip(checkin_all(&s, "after")) {
        let (name, _, _, _, _, (mode, listener)) = row;
        assert_eq!(
            (c["mode"].as_str(), c["checkin"]["listener"].as_str()),
            (Some(*mode), Some(*listener)),
            "{name}: {c}"
        );
    }

    // Devices registered before the switch keep their mode and listener and keep checking in,
    // except the MDM rows: Table 4 has no "already registered" split for them, so their
    // first check-in after the switch (with the secret) sends them to get a certificate
    // (action migrate, which the agent follows) and the next one is mutual.
    for (row, c) in TABLE_4.iter().zip(checkin_all(&s, "before")) {
        let (name, _, _, _, (mode, listener), _) = row;
        assert_eq!(
            (c["mode"].as_str(), c["checkin"]["listener"].as_str()),
            (Some(*mode), Some(*listener)),
            "{name} registered before enabling, checking in after: {c}"
        );
        if *name == "android-agent" || name.starts_with("ios-agent") {
            assert_eq!(c["checkin"]["listener"], "sync_tls", "{name}: {c}");
            assert_eq!(c["checkin"]["port"], s.ports.sync_tls, "{name}: {c}");
        }
        assert_eq!(
            c["actions"].to_string().contains("migrate"),
            name.ends_with("-mdm"),
            "{name}: {c}"
        );
    }
    for (row, c) in TABLE_4.iter().zip(checkin_all(&s, "before")) {
        let (name, ..) = row;
        let (mode, listener) = before_after_switch(row);
        assert_eq!(
            (c["mode"].as_str(), c["checkin"]["listener"].as_str()),
            (Some(mode), Some(listener)),
            "{name} registered before enabling, second check-in after: {c}"
        );
    }

    // The admin view agrees, and records when each device registered.
    let list = s.devices();
    assert_eq!(list["total"], 2 * TABLE_4.len(), "{list}");
    for (prefix, regs, ma) in [("before", &before, false), ("after", &after, true)] {
        for (row, reg) in TABLE_4.iter().zip(regs) {
            let (name, platform, kind, ..) = row;
            let expected = if ma { row.5 } else { before_after_switch(row) };
            let d = s.device(reg["device_id"].as_str().unwrap());
            assert_eq!(d["platform"], *platform, "{prefix}-{name}: {d}");
            assert_eq!(d["client_kind"], *kind, "{prefix}-{name}: {d}");
            assert_eq!(d["mode"], expected.0, "{prefix}-{name}: {d}");
            assert_eq!(d["listener"], expected.1, "{prefix}-{name}: {d}");
            assert_eq!(
                d["registered_with_mutual_auth_enabled"], ma,
                "{prefix}-{name}: {d}"
            );
        }
    }
}

#[test]
fn mutual_auth_can_never_be_disabled() {
    let mut s = Server::start();
    let shown = s.admin_ok(&["settings", "show"]);
    assert_eq!(
        shown["mutual_auth_enabled"], false,
        "new installation: {shown}"
    );
    // Table 3's "enabled before upgrade" state is not modelled (rules::SettingState).
    assert!(shown.get("mutual_auth_carried_over").is_none(), "{shown}");

    let enabled = s.admin_ok(&["settings", "mutual-auth", "enable"]);
    assert_eq!(enabled["mutual_auth_enabled"], true, "{enabled}");
    let at = enabled["mutual_auth_enabled_at"]
        .as_i64()
        .expect("enabled_at");

    let out = s.admin(&["settings", "mutual-auth", "disable"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("mutual_auth_irreversible"), "{out:?}");
    assert_eq!(
        s.admin_ok(&["settings", "show"])["mutual_auth_enabled"],
        true
    );

    // Enabling again is harmless and does not move the time it was enabled.
    let again = s.admin_ok(&["settings", "mutual-auth", "enable"]);
    assert_eq!(again["mutual_auth_enabled_at"], at, "{again}");

    s.restart();
    let shown = s.admin_ok(&["settings", "show"]);
    assert_eq!(shown["mutual_auth_enabled"], true, "after restart: {shown}");
    assert_eq!(shown["mutual_auth_enabled_at"], at, "{shown}");
    let out = s.admin(&["settings", "mutual-auth", "disable"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("mutual_auth_irreversible"), "{out:?}");
}

#[test]
fn sync_tls_port_disable_is_refused_while_legacy_devices_exist_unless_forced() {
    let s = Server::start();
    s.add_user("alice");
    let phone = s.path("phone");
    s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    s.checkin_ok(&phone);

    let out = s.admin(&["settings", "sync-tls", "disable"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("legacy_devices_exist"), "{out:?}");
    assert!(
        out.stderr.contains("1 device"),
        "the refusal gives the count: {out:?}"
    );
    assert_eq!(s.admin_ok(&["settings", "show"])["sync_tls_enabled"], true);
    s.checkin_ok(&phone);

    let forced = s.admin_ok(&["settings", "sync-tls", "disable", "--force"]);
    assert_eq!(forced["sync_tls_enabled"], false, "{forced}");
    let out = s.checkin(&phone);
    assert_eq!(out.code, 1, "the sync-TLS port must be closed: {out:?}");

    let enabled = s.admin_ok(&["settings", "sync-tls", "enable"]);
    assert_eq!(enabled["sync_tls_enabled"], true, "{enabled}");
    let c = s.checkin_ok(&phone);
    assert_eq!(c["checkin"]["listener"], "sync_tls", "{c}");
}

#[test]
fn sync_tls_port_can_be_disabled_without_legacy_devices() {
    let s = Server::start();
    let out = s.admin_ok(&["settings", "sync-tls", "disable"]);
    assert_eq!(out["sync_tls_enabled"], false, "{out}");
    let h = s.curl(&[&format!("{}/healthz", s.sync_url())]);
    assert_eq!(
        h.status, 0,
        "a disabled sync-TLS port answers nothing: {h:?}"
    );
    s.admin_ok(&["settings", "sync-tls", "enable"]);
    let h = s.curl(&[&format!("{}/healthz", s.sync_url())]);
    assert_eq!(h.status, 200, "{h:?}");
}

#[test]
fn legacy_checkins_wrong_secret_and_wrong_listener() {
    let s = Server::start();
    s.add_user("alice");
    let phone = s.path("phone");
    let st = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let uuid = st["device_uuid"].as_str().unwrap();
    let secret = fs::read_to_string(phone.join("secret")).unwrap();
    let secret = secret.trim();
    assert_eq!(mode_of(&phone.join("secret")), 0o600);
    let header = |v: &str| format!("x-ferrocore-device-secret: {v}");
    let sync_checkin = format!("{}/api/v1/checkin", s.sync_url());
    let device_checkin = format!("{}/api/v1/checkin", s.device_url());

    // The right secret on the sync-TLS listener works (with curl too).
    let ok = s.curl(&[
        "-X",
        "POST",
        "-H",
        &header(&format!("{uuid}:{secret}")),
        &sync_checkin,
    ]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json["device_id"], st["device_id"]);

    let wrong = s.curl(&[
        "-X",
        "POST",
        "-H",
        &header(&format!("{uuid}:not-the-secret")),
        &sync_checkin,
    ]);
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.error_code(), "invalid_credentials", "{wrong:?}");

    let none = s.curl(&["-X", "POST", &sync_checkin]);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.error_code(), "device_secret_required", "{none:?}");

    let unknown = s.curl(&[
        "-X",
        "POST",
        "-H",
        &header(&format!("00000000-0000-4000-8000-000000000000:{secret}")),
        &sync_checkin,
    ]);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.error_code(), "device_unknown", "{unknown:?}");

    let misdirected = s.curl(&[
        "-X",
        "POST",
        "-H",
        &header(&format!("{uuid}:{secret}")),
        &device_checkin,
    ]);
    assert_eq!(misdirected.status, 421, "{misdirected:?}");
    assert_eq!(
        misdirected.error_code(),
        "wrong_listener",
        "{misdirected:?}"
    );

    // None of the refused attempts was recorded as a check-in.
    let shown = s.admin_ok(&["devices", "show", st["device_id"].as_str().unwrap()]);
    let checkins = shown["recent_checkins"]
        .as_array()
        .expect("recent_checkins");
    assert_eq!(checkins.len(), 1, "{shown}");
    assert_eq!(checkins[0]["listener"], "sync_tls");
    assert_eq!(checkins[0]["mode"], "legacy");
}

#[test]
fn legacy_device_registering_again_after_enabling_becomes_mutual_and_loses_its_secret() {
    let s = Server::start();
    s.add_user("alice");
    let phone = s.path("phone");
    let st = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    assert_eq!(st["mode"], "legacy");
    let uuid = st["device_uuid"].as_str().unwrap().to_owned();
    let old_secret = fs::read_to_string(phone.join("secret")).unwrap();
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    // Still legacy until it registers again.
    assert_eq!(s.checkin_ok(&phone)["mode"], "legacy");

    let again = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    assert_eq!(again["device_id"], st["device_id"], "{again}");
    assert_eq!(again["mode"], "mutual", "{again}");
    assert_eq!(again["checkin"]["listener"], "device", "{again}");
    assert!(!phone.join("secret").exists(), "the agent drops the secret");
    let c = s.checkin_ok(&phone);
    assert_eq!(c["mode"], "mutual", "{c}");
    let d = s.device(st["device_id"].as_str().unwrap());
    assert_eq!(d["mode"], "mutual", "{d}");
    assert_eq!(d["registered_with_mutual_auth_enabled"], true, "{d}");

    // The old secret no longer opens the sync-TLS door.
    let h = s.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("x-ferrocore-device-secret: {uuid}:{}", old_secret.trim()),
        &format!("{}/api/v1/checkin", s.sync_url()),
    ]);
    // The device has no secret any more: it is a mutual-TLS device now.
    assert_eq!(
        (h.status, h.error_code()),
        (403, "mutual_auth_required"),
        "old secret must be refused: {h:?}"
    );
}

/// The README's walkthrough, run as printed by bash: its lines verbatim but for the ports
/// (free ones instead of 8443/9997/8444/7443), the build step (the test's binaries are on
/// PATH), a bounded wait for "ferrocore ready" between the first two blocks, and the
/// `<device_id of phone2>` placeholder.
#[test]
fn readme_walkthrough_runs_as_printed() {
    let p = Ports::free();
    let work = tempfile::tempdir().unwrap();
    let blocks = common::readme_block("## Walkthrough: from nothing to two devices");
    let (start, rest) = blocks
        .split_once("ferrocore serve --data-dir ./data &")
        .expect("the walkthrough starts the server");
    let (start_comment, rest) = rest.split_once('\n').unwrap();
    let start = start
        .replace("cargo build --release\n", "")
        .replace("export PATH=$PWD/target/release:$PATH\n", "");
    let id_of_phone2 =
        "$(python3 -c 'import json; print(json.load(open(\"phone2/state.json\"))[\"device_id\"])')";
    let script = format!(
        "{start}ferrocore serve --data-dir ./data > serve.log 2>&1 & {start_comment}\n\
         trap 'kill %1' EXIT\n\
         for i in $(seq 1 200); do grep -q 'ferrocore ready' serve.log 2>/dev/null && break; sleep 0.1; done\n\
         {rest}"
    )
    .replace("<device_id of phone2>", id_of_phone2)
    .replace("127.0.0.1:8443", &format!("127.0.0.1:{}", p.device))
    .replace("127.0.0.1:9997", &format!("127.0.0.1:{}", p.sync_tls))
    .replace("127.0.0.1:8444", &format!("127.0.0.1:{}", p.admin))
    .replace("127.0.0.1:7443", &format!("127.0.0.1:{}", p.storefront));
    let bin_dir = std::path::Path::new(common::FERROCORE).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = common::clean_command("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("PATH", path)
        .env("NO_COLOR", "1");
    let out = common::run(cmd, None);
    let log = fs::read_to_string(work.path().join("serve.log")).unwrap_or_default();
    let all = format!("{}\n{}", out.stdout, out.stderr);
    // What the comments promise, in order: two devices, legacy and mutual; the retired one
    // refused by the agent and by curl; its certificate revoked in the published CRL.
    let listed: Value = {
        let items = out.stdout.find("\"items\"").expect("devices list printed");
        let at = out.stdout[..items].rfind('{').expect("the list's object");
        let mut de = serde_json::Deserializer::from_str(&out.stdout[at..]).into_iter::<Value>();
        de.next().unwrap().unwrap()
    };
    let modes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes.len(), 2, "{all}\n{log}");
    assert!(
        modes.contains(&"legacy") && modes.contains(&"mutual"),
        "{listed}"
    );
    assert!(
        all.contains("device_retired"),
        "the retired phone is refused: {all}\n{log}"
    );
    assert!(all.contains("error 23"), "CRL revocation: {all}");
}
