//! TLS 1.3 session resumption on the device listener, with `openssl s_client` as the device:
//! a resumed session saves the handshake, never a check (a certificate revoked after the
//! first handshake is refused on the resumed connection), and nodes holding the same ticket
//! secret resume each other's sessions while a node with another secret makes a full
//! handshake.

use crate::common::{self, Server};
use std::path::Path;

/// One HTTP check-in over `openssl s_client` with the device's certificate; `sess` is
/// `("-sess_out", file)` to keep the session or `("-sess_in", file)` to resume it. Returns
/// whether the session was resumed, the HTTP status and the body.
fn checkin(s: &Server, device: &Path, sess: (&str, &Path)) -> (bool, u16, String) {
    let ca = s.ca_pem();
    let (cert, key) = (device.join("cert.pem"), device.join("key.pem"));
    let args = [
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", s.ports.device),
        "-servername",
        "localhost",
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
        "-ign_eof",
        sess.0,
        sess.1.to_str().unwrap(),
    ];
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(args);
    let request = "POST /api/v1/checkin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let out = common::run(cmd, Some(request.as_bytes()));
    let resumed = if out.stdout.contains("\nReused, TLSv1.3") {
        true
    } else {
        assert!(out.stdout.contains("\nNew, TLSv1.3"), "{out:?}");
        false
    };
    // s_client prints the tickets it receives on the same stdout, possibly in the middle of
    // the answer's bytes: take the status line and Content-Length bytes after the header.
    let at = out
        .stdout
        .find("HTTP/1.1 ")
        .unwrap_or_else(|| panic!("no HTTP answer: {out:?}\n{}", s.log()));
    let answer = &out.stdout[at..];
    let status = answer[9..12].parse().unwrap();
    let head_end = answer.find("\r\n\r\n").expect("end of the answer's header") + 4;
    let length: usize = answer[..head_end]
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let body = answer[head_end..head_end + length].to_owned();
    (resumed, status, body)
}

fn enrolled_device(s: &Server) -> (std::path::PathBuf, String) {
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let phone = s.path("phone");
    let state = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let id = state["device_id"].as_str().unwrap().to_owned();
    (phone, id)
}

#[test]
fn a_resumed_session_is_checked_like_a_new_one_and_refused_after_revocation() {
    let s = Server::start();
    let (phone, id) = enrolled_device(&s);
    let sess = s.path("session.pem");

    let (resumed, status, body) = checkin(&s, &phone, ("-sess_out", &sess));
    assert!(!resumed);
    assert_eq!(status, 200, "{body}\n{}", s.log());
    let (resumed, status, body) = checkin(&s, &phone, ("-sess_in", &sess));
    assert!(
        resumed,
        "the second connection resumes the first one's session"
    );
    assert_eq!(status, 200, "{body}");

    // Revoked after the handshake that made the ticket: the resumed connection is refused.
    let certs = s.admin_ok(&["certificates", "list", "--device", &id]);
    let serial = certs["items"][0]["serial"].as_str().unwrap().to_owned();
    s.admin_ok(&["certificates", "revoke", &serial]);
    let (resumed, status, body) = checkin(&s, &phone, ("-sess_in", &sess));
    assert!(resumed, "the ticket itself is still good");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"certificate_revoked\""), "{body}");
}

#[test]
fn nodes_with_the_same_ticket_secret_resume_each_others_sessions() {
    let mut a = Server::start();
    let (phone, _) = enrolled_device(&a);
    // Node B: a copy of A's data directory (same CA, records and ticket secret). Node C:
    // the same but with a ticket secret of its own.
    a.stop();
    let b = Server::start_with_copy_of(&a.data_dir, &[]);
    let c_dir = a.path("c-data");
    let mut cp = std::process::Command::new("cp");
    cp.arg("-a").arg(&a.data_dir).arg(&c_dir);
    assert_eq!(common::run(cp, None).code, 0);
    std::fs::remove_file(c_dir.join("tls/ticket.key")).unwrap();
    let c = Server::start_with_copy_of(&c_dir, &[]);
    a.restart();
    assert_ne!(
        std::fs::read(a.data_dir.join("tls/ticket.key")).unwrap(),
        std::fs::read(c.data_dir.join("tls/ticket.key")).unwrap()
    );
    let mode = common::mode_of(&c.data_dir.join("tls/ticket.key"));
    assert_eq!(mode & 0o777, 0o600, "the ticket secret is private");

    let sess = a.path("session.pem");
    let (resumed, status, _) = checkin(&a, &phone, ("-sess_out", &sess));
    assert_eq!((resumed, status), (false, 200));
    let (resumed, status, body) = checkin(&b, &phone, ("-sess_in", &sess));
    assert!(resumed, "node B resumes node A's session");
    assert_eq!(status, 200, "{body}\n{}", b.log());
    let (resumed, status, body) = checkin(&c, &phone, ("-sess_in", &sess));
    assert!(!resumed, "node C cannot open A's ticket: full handshake");
    assert_eq!(status, 200, "{body}\n{}", c.log());
}

#[test]
fn tickets_can_be_switched_off() {
    let s = Server::start_with_env(&[("FERROCORE_SERVER_TLS_TICKET_LIFETIME_SECS", "0")]);
    let (phone, _) = enrolled_device(&s);
    let sess = s.path("session.pem");
    let (resumed, status, _) = checkin(&s, &phone, ("-sess_out", &sess));
    assert_eq!((resumed, status), (false, 200));
    assert!(
        !sess.exists(),
        "no ticket, so openssl has no session to keep"
    );
    assert!(!s.data_dir.join("tls/ticket.key").exists());
    let mut env = s.ports.env();
    env.push((
        "FERROCORE_SERVER_TLS_TICKET_LIFETIME_SECS".into(),
        "604801".into(),
    ));
    let out = common::serve_expecting_failure(&s.path("other"), &[], &env);
    assert!(
        out.stderr
            .contains("server.tls_ticket_lifetime_secs: 604801 is longer than TLS 1.3 allows"),
        "{out:?}"
    );
}

#[test]
fn the_agent_resumes_its_session_between_check_ins() {
    let s = Server::start();
    let (phone, _) = enrolled_device(&s);
    let out = s.agent(&phone, &["run", "--checkins", "3", "--interval", "0"]);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    let resumed: Vec<bool> = out
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["answer"]["mode"], "mutual", "{v}");
            v["tls_resumed"].as_bool().unwrap()
        })
        .collect();
    assert_eq!(resumed, [false, true, true], "{}", out.stdout);
}

/// The load generator's `--resume` (the benchmark's resumed rows) really resumes: each
/// device's first check-in is a full handshake, every later one resumes its session; without
/// `--resume` none does.
#[test]
fn swarm_devices_resume_their_sessions_only_when_asked() {
    let s = Server::start();
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let swarm = s.path("swarm");
    let ca = s.ca_pem();
    let mut cmd = common::clean_command(common::AGENT);
    cmd.arg("--state").arg(&swarm).args([
        "swarm",
        "enroll",
        "--url",
        &s.device_url(),
        "--ca",
        ca.to_str().unwrap(),
        "--user",
        "alice",
        "--password",
        common::PASSWORD,
        "--devices",
        "3",
        "--platform",
        "windows",
        "--client-kind",
        "agent",
        "--client-version",
        "10.0",
    ]);
    let out = common::run(cmd, None);
    assert_eq!(out.code, 0, "{out:?}");
    let swarm_run = |extra: &[&str]| {
        let mut cmd = common::clean_command(common::AGENT);
        cmd.arg("--state")
            .arg(&swarm)
            .args([
                "swarm",
                "run",
                "--json",
                "--requests",
                "12",
                "--concurrency",
                "1",
            ])
            .args(extra);
        let out = common::run(cmd, None);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json["ok"], 12, "{}", out.stdout);
        out.json["resumed"].as_u64().unwrap()
    };
    assert_eq!(
        swarm_run(&["--resume"]),
        9,
        "three full handshakes, then resumed"
    );
    assert_eq!(swarm_run(&[]), 0);
}
