//! Tables 2 and 4 through the running server (issues 19.13, 20.1): every client row
//! (platform x client kind x the version boundaries), with the setting off and on, for
//! devices registered before and after the switch, brought by every enrollment protocol —
//! the agent's registration, EST `simpleenroll` (curl) and SCEP (micromdm's `scepclient`) —
//! and then checking in. Each device's mode and listener, as the admin API and its check-in
//! answers show them, are compared with `ferrocore_core::rules::decide` for the client the
//! server recorded. A certificate-only protocol (EST, SCEP) for a client the rules put on the
//! sync-TLS listener without a certificate is refused (`certificate_not_used`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::scep;

use common::*;
use ferrocore_core::rules::{Decision, History, SettingState, Version, decide};
use ferrocore_proto::{ClientKind, Listener, Platform};
use serde_json::Value;
use std::fs;
use std::path::Path;

/// (row, platform, client kind, version): every client of Table 4 at its version boundaries.
const CLIENTS: &[(&str, &str, &str, &str)] = &[
    ("android-agent-10.0.9", "android", "agent", "10.0.9"),
    ("android-agent-10.1", "android", "agent", "10.1.0"),
    ("ios-agent-9.7.9", "ios", "agent", "9.7.9"),
    ("ios-agent-9.8", "ios", "agent", "9.8"),
    ("ios-agent-9.8.0.0", "ios", "agent", "9.8.0.0"),
    ("ios-agent-11.1.0", "ios", "agent", "11.1.0"),
    ("ios-mdm", "ios", "mdm", "17.0"),
    ("macos-agent", "macos", "agent", "1.0"),
    ("macos-mdm", "macos", "mdm", "14.0"),
    ("windows-agent", "windows", "agent", "10.0"),
    ("windows-mdm", "windows", "mdm", "10.0"),
];

const PLATFORMS: &[&str] = &["android", "ios", "macos", "windows"];

fn platform_of(v: &Value) -> Platform {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn kind_of(v: &Value) -> ClientKind {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// What `decide` says for the client a device record names.
fn decided(d: &Value, setting: SettingState, history: History) -> Decision {
    let platform = platform_of(&d["platform"]);
    let kind = kind_of(&d["client_kind"]);
    let version: Version = d["client_version"].as_str().unwrap().parse().unwrap();
    decide(platform, kind, &version, setting, history)
        .unwrap_or_else(|e| panic!("decide refused a recorded device {d}: {e:?}"))
}

fn mode_of(decision: Decision) -> &'static str {
    if decision.mutual { "mutual" } else { "legacy" }
}

fn listener_of(decision: Decision) -> &'static str {
    match decision.listener {
        Listener::Device => "device",
        Listener::SyncTls => "sync_tls",
    }
}

fn assert_record(s: &Server, id: &str, expected: Decision, what: &str) {
    let d = s.device(id);
    assert_eq!(
        (d["mode"].as_str(), d["listener"].as_str()),
        (Some(mode_of(expected)), Some(listener_of(expected))),
        "{what}: {d}"
    );
}

fn assert_answer(s: &Server, answer: &Value, expected: Decision, what: &str) {
    assert_eq!(
        (
            answer["mode"].as_str(),
            answer["checkin"]["listener"].as_str()
        ),
        (Some(mode_of(expected)), Some(listener_of(expected))),
        "{what}: {answer}"
    );
    let port = match expected.listener {
        Listener::Device => s.ports.device,
        Listener::SyncTls => s.ports.sync_tls,
    };
    assert_eq!(answer["checkin"]["port"], port, "{what}: {answer}");
}

/// The agent registers every client row into `{prefix}-{row}`; each record and each
/// registration answer is `decide(setting, history)`.
fn register_all(s: &Server, prefix: &str, setting: SettingState, history: History) {
    for (row, platform, kind, version) in CLIENTS {
        let state = s.path(&format!("{prefix}-{row}"));
        let st = s.register_ok(&state, "alice", platform, kind, version);
        let id = st["device_id"].as_str().unwrap();
        let expected = decided(&s.device(id), setting, history);
        assert_eq!(
            st["mode"],
            mode_of(expected),
            "{prefix}-{row} register: {st}"
        );
        assert_eq!(
            st["checkin"]["listener"],
            listener_of(expected),
            "{prefix}-{row} register: {st}"
        );
        assert_record(s, id, expected, &format!("{prefix}-{row} registered"));
        assert_eq!(
            state.join("cert.pem").exists(),
            expected.mutual,
            "{prefix}-{row}: a certificate exactly in mutual mode"
        );
    }
}

/// Every agent of `{prefix}-*` checks in until it follows the rules: the answer (and the
/// record) is `decide(setting, history)`; a device the rules moved to mutual mode since it
/// registered is first sent to get its certificate (action `migrate`, which the agent
/// follows), and its next check-in is mutual.
fn checkin_all(s: &Server, prefix: &str, setting: SettingState, history: History) {
    for (row, ..) in CLIENTS {
        let what = format!("{prefix}-{row} check-in");
        let state = s.path(&format!("{prefix}-{row}"));
        let first = s.checkin_ok(&state);
        let id = first["device_id"].as_str().unwrap().to_owned();
        let expected = decided(&s.device(&id), setting, history);
        let answer = if first["mode"] != mode_of(expected) {
            let actions = first["actions"].to_string();
            assert!(actions.contains("migrate"), "{what}: {first}");
            s.checkin_ok(&state)
        } else {
            first
        };
        assert_answer(s, &answer, expected, &what);
        assert_record(s, &id, expected, &what);
    }
}

/// A base64 DER CSR for EST with a new P-256 key (openssl).
fn est_csr(dir: &Path, name: &str) -> String {
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    openssl_ok(dir, &["base64", "-in", &format!("{name}.der")]).stdout
}

/// The serial of the certificate in a base64 certs-only PKCS#7 EST answer (openssl).
fn est_serial(dir: &Path, name: &str, body: &str) -> String {
    fs::write(dir.join(format!("{name}.p7.b64")), body).unwrap();
    let p7 = format!("{name}.p7");
    openssl_ok(
        dir,
        &[
            "base64",
            "-d",
            "-in",
            &format!("{name}.p7.b64"),
            "-out",
            &p7,
        ],
    );
    let pem = format!("{name}.pem");
    openssl_ok(
        dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            &p7,
            "-print_certs",
            "-out",
            &pem,
        ],
    );
    let out = openssl_ok(dir, &["x509", "-in", &pem, "-noout", "-serial"]);
    out.stdout
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// EST `simpleenroll` with HTTP Basic for each platform label: the device the server records
/// follows `decide`, or the enrollment is refused with `certificate_not_used` when the rules
/// give the client no certificate (nothing recorded then).
fn est_all(s: &Server, prefix: &str, setting: SettingState, history: History) {
    let dir = s.path("");
    for platform in PLATFORMS {
        let what = format!("{prefix} EST {platform}");
        let name = format!("{prefix}-est-{platform}");
        let body = dir.join(format!("{name}.b64"));
        fs::write(&body, est_csr(&dir, &name)).unwrap();
        let total = s.device_total();
        let h = s.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", body.display()),
            "-u",
            &format!("alice:{PASSWORD}"),
            &format!("{}/.well-known/est/{platform}/simpleenroll", s.device_url()),
        ]);
        // The client EST records for this platform (kind agent, the platform's first renewing
        // version), asked of the rules.
        let version = match *platform {
            "android" => "10.1.0",
            "ios" => "11.1.0",
            _ => "1.0.0",
        };
        let expected = decide(
            platform_of(&Value::from(*platform)),
            ClientKind::Agent,
            &version.parse().unwrap(),
            setting,
            history,
        )
        .unwrap();
        if !expected.mutual && expected.listener == Listener::SyncTls {
            assert_eq!(
                (h.status, h.error_code()),
                (409, "certificate_not_used"),
                "{what}: {h:?}"
            );
            assert_eq!(s.device_total(), total, "{what}: nothing recorded");
            continue;
        }
        assert_eq!(h.status, 200, "{what}: {h:?}\n{}", s.log());
        let d = scep::device_by_serial(s, &est_serial(&dir, &name, &h.body));
        assert_eq!(d["platform"], *platform, "{what}: {d}");
        assert_eq!(decided(&d, setting, history), expected, "{what}: {d}");
        assert_record(s, d["device_id"].as_str().unwrap(), expected, &what);
    }
}

/// SCEP enrollment (scepclient with a one-time challenge) for each platform; returns the
/// state directories of the devices enrolled.
fn scep_all(
    s: &Server,
    prefix: &str,
    setting: SettingState,
    history: History,
) -> Vec<(String, std::path::PathBuf)> {
    let mut enrolled = Vec::new();
    for platform in PLATFORMS {
        let what = format!("{prefix} SCEP {platform}");
        let c = scep::challenge(s, "alice", platform);
        let dir = s.path(&format!("{prefix}-scep-{platform}"));
        let total = s.device_total();
        let out = scep::scepclient(s, &dir, Some(&c));
        // The client SCEP records: an MDM client, except on Android (agent 10.1).
        let (kind, version) = match *platform {
            "android" => (ClientKind::Agent, "10.1.0"),
            _ => (ClientKind::Mdm, "1.0"),
        };
        let expected = decide(
            platform_of(&Value::from(*platform)),
            kind,
            &version.parse().unwrap(),
            setting,
            history,
        )
        .unwrap();
        if !expected.mutual && expected.listener == Listener::SyncTls {
            assert_ne!(out.code, 0, "{what}: {out:?}");
            assert!(out.stdout.contains("badRequest"), "{what}: {out:?}");
            assert_eq!(s.device_total(), total, "{what}: nothing recorded");
            continue;
        }
        assert_eq!(out.code, 0, "{what}: {out:?}\n{}", s.log());
        let serial = serial_of(&dir);
        let d = scep::device_by_serial(s, &serial);
        assert_eq!(decided(&d, setting, history), expected, "{what}: {d}");
        assert_record(s, d["device_id"].as_str().unwrap(), expected, &what);
        enrolled.push((d["device_id"].as_str().unwrap().to_owned(), dir));
    }
    enrolled
}

fn serial_of(dir: &Path) -> String {
    let out = openssl_ok(dir, &["x509", "-in", "cert.pem", "-noout", "-serial"]);
    out.stdout
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// A certificate-enrolled device checks in with its certificate on the device listener; the
/// answer and its record follow `decide(setting, history)` (an MDM device enrolled while the
/// setting was off becomes mutual at its first check-in after the switch).
fn cert_checkin(s: &Server, id: &str, dir: &Path, setting: SettingState, history: History) {
    let h = s.curl(&[
        "--cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--key",
        dir.join("key.pem").to_str().unwrap(),
        "-X",
        "POST",
        &format!("{}/api/v1/checkin", s.device_url()),
    ]);
    assert_eq!(h.status, 200, "{id}: {h:?}");
    let expected = decided(&s.device(id), setting, history);
    assert_answer(s, &h.json, expected, &format!("{id} certificate check-in"));
    assert_record(s, id, expected, &format!("{id} after check-in"));
}

#[test]
fn tables_2_and_4_every_cell_through_every_enrollment_protocol_and_check_in() {
    use History::*;
    use SettingState::*;
    let s = Server::start();
    s.add_user("alice");

    // Setting off: every client registered, enrolled and checked in.
    register_all(&s, "off", NotEnabled, RegisteredBeforeEnable);
    checkin_all(&s, "off", NotEnabled, RegisteredBeforeEnable);
    est_all(&s, "off", NotEnabled, RegisteredBeforeEnable);
    let scep_off = scep_all(&s, "off", NotEnabled, RegisteredBeforeEnable);
    for (id, dir) in &scep_off {
        cert_checkin(&s, id, dir, NotEnabled, RegisteredBeforeEnable);
    }

    s.admin_ok(&["settings", "mutual-auth", "enable"]);

    // Registered before the switch, checking in after it.
    checkin_all(&s, "off", EnabledAfterInstall, RegisteredBeforeEnable);
    for (id, dir) in &scep_off {
        cert_checkin(&s, id, dir, EnabledAfterInstall, RegisteredBeforeEnable);
    }
    // Registered after it.
    register_all(&s, "on", EnabledAfterInstall, RegisteredAfterEnable);
    checkin_all(&s, "on", EnabledAfterInstall, RegisteredAfterEnable);
    est_all(&s, "on", EnabledAfterInstall, RegisteredAfterEnable);
    for (id, dir) in scep_all(&s, "on", EnabledAfterInstall, RegisteredAfterEnable) {
        cert_checkin(&s, &id, &dir, EnabledAfterInstall, RegisteredAfterEnable);
    }
}
