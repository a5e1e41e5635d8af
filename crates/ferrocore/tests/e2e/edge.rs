//! Issue 19, "every edge answers clearly" (`cargo test -p ferrocore --test e2e edge::`), black-box through the real binaries: curl, openssl
//! and raw sockets against `ferrocore serve`, the agent, the admin CLI.
//! - Authorization: `bearer` in any case; two headers refused (`ambiguous_authorization`) on
//!   the admin, device (EST) and storefront listeners.
//! - Answers produced below the handlers are JSON with stable codes: 404, 405, malformed HTTP
//!   (400), too many headers (431), bodies over the limit (413, also with
//!   `Expect: 100-continue`, whose body is then never sent).
//! - Messages in the caller's terms (no serde/webpki internals, no long echo).
//! - Logs: no ANSI codes off a terminal; refused authentications logged once each at info
//!   with the source address and code, never the secret, rate-limited with a "suppressed" line.
//! - File descriptors: soft limit raised to the hard one; out of descriptors the server backs
//!   off (one log line, not one every 50 ms) and closes idle keep-alive connections first.
//! - Start-up: an unknown `FERROCORE_*` variable stops it with one line; a refused low port
//!   says how to proceed.
//! - `swarm run` backs off against a dead server, gives up, and exits non-zero over
//!   `--max-error-rate`.
//! - EST answers decode with `base64 -d`; the README's EST lines run as printed.
//! - The renewal-at-risk report lists a device until it is retired; old agents are shown as
//!   refused from expiry and do not try to renew.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `ferrocore serve` started by the test itself: with or without `NO_COLOR`, optionally
/// under `ulimit -n` (hard and soft, or soft only), with the plain-HTTP PKI listener on.
struct RawServer {
    _tmp: tempfile::TempDir,
    data_dir: PathBuf,
    ports: Ports,
    pki: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl RawServer {
    fn start(no_color: bool, ulimit: Option<&str>) -> RawServer {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let log = tmp.path().join("server.log");
        let ports = Ports::free();
        let pki = free_port();
        let mut cmd = clean_command("sh");
        let limit = ulimit
            .map(|u| format!("ulimit {u} && "))
            .unwrap_or_default();
        cmd.arg("-c")
            .arg(format!("{limit}exec \"$0\" serve --data-dir \"$1\""))
            .arg(FERROCORE)
            .arg(&data_dir)
            .envs(ports.env())
            .env("FERROCORE_LISTENERS_PKI", format!("127.0.0.1:{pki}"))
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(fs::File::create(&log).unwrap()));
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("ferrocore ready") {
                    let _ = tx.send(());
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(30)).is_ok();
        let mut s = RawServer {
            _tmp: tmp,
            data_dir,
            ports,
            pki,
            log,
            child: Some(child),
        };
        assert!(ready, "server did not start:\n{}", s.log());
        let _ = &mut s;
        s
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn curl(&self, args: &[&str]) -> Http {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.data_dir.join("ca/ca.pem"))
            .args(["-w", "\n%{http_code}"])
            .args(args);
        let out = run(cmd, None);
        let (body, status) = out.stdout.rsplit_once('\n').unwrap_or(("", &out.stdout));
        Http {
            status: status.trim().parse().unwrap_or(0),
            body: body.to_owned(),
            json: serde_json::from_str(body).unwrap_or(Value::Null),
            curl_code: out.code,
            curl_stderr: out.stderr,
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// Polls `f` every 50 ms for up to `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `request` over TLS with `openssl s_client` and returns what the server answered.
fn tls_raw(ca: &Path, port: u16, request: &[u8]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-connect",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("-CAfile")
    .arg(ca);
    run(cmd, Some(request)).stdout
}

/// Sends `request` over plain TCP and reads until the server closes (bounded).
fn tcp_raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON error body of a raw HTTP answer.
fn raw_error(answer: &str) -> (u16, String) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

// ------------------------------------------------------------------ item 2

#[test]
fn authorization_scheme_is_case_insensitive_and_two_headers_are_refused() {
    let s = Server::start();
    let token = s.admin_token();
    let settings = format!("{}/api/v1/admin/settings", s.admin_url());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = s.curl(&["-H", &format!("Authorization: {scheme} {token}"), &settings]);
        assert_eq!(r.status, 200, "{scheme}: {r:?}");
    }
    // The right token first, a wrong one second (and the other way round): refused.
    for (a, b) in [(token.as_str(), "wrong"), ("wrong", token.as_str())] {
        let r = s.curl(&[
            "-H",
            &format!("Authorization: Bearer {a}"),
            "-H",
            &format!("Authorization: Bearer {b}"),
            &settings,
        ]);
        assert_eq!(
            (r.status, r.error_code()),
            (400, "ambiguous_authorization"),
            "{r:?}"
        );
    }
    // EST on the device listener: two headers are refused.
    let est = format!("{}/.well-known/est/simpleenroll", s.device_url());
    let csr = s.path("csr.b64");
    fs::write(&csr, "MAMCAQE=").unwrap();
    let data = format!("@{}", csr.display());
    let basic = |user: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:nope"))
    };
    let r = s.curl(&[
        "-H",
        "Content-Type: application/pkcs10",
        "-H",
        &format!("Authorization: Basic {}", basic("a")),
        "-H",
        "Authorization: Bearer est_x",
        "--data-binary",
        &data,
        &est,
    ]);
    assert_eq!(
        (r.status, r.error_code()),
        (400, "ambiguous_authorization"),
        "{r:?}"
    );
    // The storefront listener: `basic` in lower case is Basic (the credentials are judged:
    // an unknown user is refused like a wrong password), two headers are refused.
    let apps = format!(
        "https://127.0.0.1:{}/storefront/v1/apps",
        s.ports.storefront
    );
    let r = s.curl(&[
        "-H",
        &format!("Authorization: basic {}", basic("nobody")),
        "-H",
        "x-ferrocore-device-uuid: 5b2d3c4e-1f20-4a6b-9c8d-7e6f5a4b3c2d",
        &apps,
    ]);
    assert_eq!(
        (r.status, r.error_code()),
        (401, "invalid_credentials"),
        "{r:?}"
    );
    let r = s.curl(&[
        "-H",
        &format!("Authorization: Basic {}", basic("a")),
        "-H",
        &format!("Authorization: Basic {}", basic("b")),
        &apps,
    ]);
    assert_eq!(
        (r.status, r.error_code()),
        (400, "ambiguous_authorization"),
        "{r:?}"
    );
}

// ------------------------------------------------------------------ item 3

#[test]
fn every_answer_below_the_handlers_is_json_with_a_stable_code() {
    let pki = free_port();
    let pki_env = format!("127.0.0.1:{pki}");
    let s = Server::start_with_env(&[("FERROCORE_LISTENERS_PKI", &pki_env)]);
    let https = |port: u16| format!("https://127.0.0.1:{port}");
    let listeners = [
        https(s.ports.device),
        https(s.ports.sync_tls),
        https(s.ports.admin),
        https(s.ports.storefront),
        format!("http://127.0.0.1:{pki}"),
    ];
    for base in &listeners {
        // Unknown path.
        let r = s.curl(&[&format!("{base}/no/such/path")]);
        assert_eq!(
            (r.status, r.error_code()),
            (404, "not_found"),
            "{base}: {r:?}"
        );
        // Wrong method on a path that exists (`/healthz` takes GET): 405, with Allow.
        let hdr = s.path("hdr.txt");
        let r = s.curl(&[
            "-X",
            "DELETE",
            "-D",
            hdr.to_str().unwrap(),
            &format!("{base}/healthz"),
        ]);
        assert_eq!(
            (r.status, r.error_code()),
            (405, "method_not_allowed"),
            "{base}: {r:?}"
        );
        let headers = fs::read_to_string(&hdr).unwrap().to_ascii_lowercase();
        assert!(headers.contains("allow: get"), "{base}: {headers}");
        // Too many headers: 431 as JSON.
        let mut args: Vec<String> = (0..150).map(|i| format!("x-h{i}: v")).collect();
        args = args
            .into_iter()
            .flat_map(|h| ["-H".to_owned(), h])
            .collect();
        args.push(format!("{base}/healthz"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = s.curl(&refs);
        assert_eq!(
            (r.status, r.error_code()),
            (431, "headers_too_large"),
            "{base}: {r:?}"
        );
    }
    // An extractor's refusal (a path parameter that is not UTF-8) is JSON too.
    let r = s.curl(&[
        "-H",
        &format!("Authorization: Bearer {}", s.admin_token()),
        &format!("{}/api/v1/admin/devices/%FF%FE", s.admin_url()),
    ]);
    assert_eq!((r.status, r.error_code()), (400, "bad_request"), "{r:?}");
    // Malformed HTTP: over TLS (openssl) on the device listener, over TCP on the PKI one.
    let junk = b"GET /healthz HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n";
    let answer = tls_raw(&s.ca_pem(), s.ports.device, junk);
    assert_eq!(
        raw_error(&answer),
        (400, "malformed_request".into()),
        "{answer}"
    );
    let answer = tcp_raw(pki, b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        raw_error(&answer),
        (400, "malformed_request".into()),
        "{answer}"
    );

    // A 1 MB registration body: 413 body_too_large as JSON, not a reset connection.
    let big = s.path("big.json");
    fs::write(&big, vec![b'a'; 1024 * 1024]).unwrap();
    let data = format!("@{}", big.display());
    let register = format!("{}/api/v1/register", s.device_url());
    let r = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &data,
        &register,
    ]);
    assert_eq!(r.curl_code, 0, "connection failed: {r:?}");
    assert_eq!((r.status, r.error_code()), (413, "body_too_large"), "{r:?}");
    // Chunked, so no length is declared: read up to the limit, then 413, still no reset.
    let r = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &register,
    ]);
    assert_eq!(r.curl_code, 0, "connection failed: {r:?}");
    assert_eq!((r.status, r.error_code()), (413, "body_too_large"), "{r:?}");
    // With Expect: 100-continue the server answers 413 before the body is sent.
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "--cacert"])
        .arg(s.ca_pem())
        .args([
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            "Expect: 100-continue",
            "--expect100-timeout",
            "20",
            "--data-binary",
            &data,
            "-w",
            "\n%{http_code} %{size_upload}",
            &register,
        ]);
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "{out:?}");
    let (body, tail) = out.stdout.rsplit_once('\n').unwrap();
    let (status, uploaded) = tail.split_once(' ').unwrap();
    assert_eq!(status, "413", "{out:?}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], "body_too_large", "{body}");
    let uploaded: u64 = uploaded.parse().unwrap();
    assert!(
        uploaded < 64 * 1024,
        "the body was sent anyway: {uploaded} bytes"
    );
    // The server keeps serving.
    assert_eq!(
        s.curl(&[&format!("{}/healthz", s.device_url())]).status,
        200
    );
}

// ------------------------------------------------------------------ item 4

#[test]
fn messages_are_in_the_callers_terms_without_internals_or_echo() {
    let s = Server::start();
    // A body of the wrong shape, with a long value: no serde wording, no long echo.
    let long = "x".repeat(20_000);
    let body = format!(
        r#"{{"username":"a","password":"b","platform":"{long}","client_kind":"agent","client_version":"1","device_uuid":"u"}}"#
    );
    let r = s.curl_register(&body);
    assert_eq!((r.status, r.error_code()), (400, "bad_request"), "{r:?}");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(!m.contains("Failed to deserialize"), "{m}");
    assert!(m.len() < 300 && !m.contains(&"x".repeat(41)), "echoed: {m}");
    let r = s.curl_register(r#"{"username": 5}"#);
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(
        !m.contains("Failed to deserialize") && m.contains("invalid JSON body"),
        "{m}"
    );

    // The CA certificate uploaded as the portal certificate: portal_cert_is_ca, in words.
    let ca = s.ca_pem();
    let ca_key = s.data_dir.join("ca/ca.key");
    let out = s.admin(&[
        "portal-cert",
        "upload",
        "--chain",
        ca.to_str().unwrap(),
        "--key",
        ca_key.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("portal_cert_is_ca") && out.stderr.contains("CA certificate"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("CaUsedAsEndEntity"), "{}", out.stderr);

    // The server's own TLS certificate (serverAuth only) presented as a device certificate:
    // refused in words, not as RequiredEkuNotFoundContext.
    let r = s.curl(&[
        "--cert",
        s.data_dir.join("tls/server.pem").to_str().unwrap(),
        "--key",
        s.data_dir.join("tls/server.key").to_str().unwrap(),
        "-X",
        "POST",
        &format!("{}/api/v1/checkin", s.device_url()),
    ]);
    assert_eq!(r.error_code(), "certificate_unknown", "{r:?}");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(m.contains("client authentication"), "{m}");
    assert!(!m.contains("Eku") && !m.contains("Context"), "{m}");
    // The details went to the log instead.
    assert!(s.log().contains("authentication refused"), "{}", s.log());
}

// ------------------------------------------------------------------ item 7

#[test]
fn logs_have_no_colour_off_a_terminal_and_refusals_are_logged_once_and_rate_limited() {
    // No NO_COLOR: stderr is a file, so no ANSI codes anyway.
    let s = RawServer::start(false, None);
    let admin = format!("https://127.0.0.1:{}/api/v1/admin/settings", s.ports.admin);
    let secret_token = "wrong-token-4f8a9c";
    let r = s.curl(&[
        "-H",
        &format!("Authorization: Bearer {secret_token}"),
        &admin,
    ]);
    assert_eq!(r.status, 401, "{r:?}");
    // A wrong password at registration.
    let register = format!("https://127.0.0.1:{}/api/v1/register", s.ports.device);
    let secret_password = "Wrong-Pass-77x";
    let body = format!(
        r#"{{"username":"nobody","password":"{secret_password}","platform":"android","client_kind":"agent","client_version":"10.1.0","device_uuid":"5b2d3c4e-1f20-4a6b-9c8d-7e6f5a4b3c2d"}}"#
    );
    let r = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &body,
        &register,
    ]);
    assert_eq!(r.error_code(), "invalid_credentials", "{r:?}");
    // A forwarded certificate from a source that is not a trusted front end.
    let checkin = format!("https://127.0.0.1:{}/api/v1/checkin", s.ports.device);
    let r = s.curl(&["-X", "POST", "-H", "X-SSL-Client-Cert: MIIB", &checkin]);
    assert_eq!(r.error_code(), "untrusted_forwarded_certificate", "{r:?}");

    let refused = |log: &str, code: &str| {
        log.lines()
            .filter(|l| {
                l.contains("authentication refused") && l.contains(&format!("code=\"{code}\""))
            })
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(5), || refused(
            &s.log(),
            "untrusted_forwarded_certificate"
        ) == 1),
        "{}",
        s.log()
    );
    let log = s.log();
    for code in [
        "unauthorized",
        "invalid_credentials",
        "untrusted_forwarded_certificate",
    ] {
        assert_eq!(refused(&log, code), 1, "{code} logged once:\n{log}");
    }
    for line in log.lines().filter(|l| l.contains("authentication refused")) {
        assert!(
            line.contains("peer=127.0.0.1:") && line.contains(" INFO "),
            "{line}"
        );
    }
    assert!(
        !log.contains(secret_token) && !log.contains(secret_password),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a log file");

    // A flood: 80 wrong tokens on one keep-alive connection.
    let mut args = vec!["-H".to_owned(), "Authorization: Bearer flood".to_owned()];
    for _ in 0..80 {
        args.push(admin.clone());
        args.push("-o".into());
        args.push("/dev/null".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let flood_start = Instant::now();
    let _ = s.curl(&refs);
    // Once the bucket refills, the next refusal is logged with the suppressed count (a
    // report after the flood covers every refusal before it).
    let reports = |log: &str| log.lines().filter(|l| l.contains("suppressed=")).count();
    let before = reports(&s.log());
    let mut again = 0u64;
    let suppressed = wait_for(Duration::from_secs(10), || {
        let _ = s.curl(&["-H", "Authorization: Bearer again", &admin]);
        again += 1;
        reports(&s.log()) > before
    });
    let elapsed = flood_start.elapsed().as_secs_f64();
    let log = s.log();
    assert!(suppressed, "no suppressed line:\n{log}");
    // A burst of 20, then about one line a second (the one earlier refusal counted too).
    let lines = refused(&log, "unauthorized");
    let bound = 21 + elapsed.ceil() as usize + 2;
    assert!(
        lines <= bound,
        "{lines} refusal lines in {elapsed:.1} s for an 80-request flood (bound {bound})"
    );
    let reported: u64 = log
        .lines()
        .filter_map(|l| l.split("suppressed=").nth(1))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum();
    assert!(reported >= 1, "{log}");
    // Every refusal is either a line or counted in a report: 1 + 80 + `again`.
    assert_eq!(
        lines as u64 + reported,
        81 + again,
        "{lines} logged + {reported} reported suppressed\n{log}"
    );
}

// ------------------------------------------------------------------ item 8

#[test]
fn descriptor_limit_is_raised_and_exhaustion_backs_off_closing_idle_connections_first() {
    // Soft 256, hard 1024: the server raises the soft limit to 1024 and says so.
    let s = RawServer::start(true, Some("-Sn 256 && ulimit -Hn 1024"));
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("file descriptor"))
        .unwrap_or("");
    assert!(
        line.contains("limit=1024") && line.contains("raised_from=256"),
        "{log}"
    );
    drop(s);

    // 64 descriptors in all: about 25 are the server's own, the rest connections.
    let s = RawServer::start(true, Some("-n 64"));
    // 60 idle keep-alive connections (one answered request each) on the PKI listener.
    let mut idle = Vec::new();
    for _ in 0..60 {
        let mut c = TcpStream::connect(("127.0.0.1", s.pki)).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        idle.push(c);
    }
    // A new client is served: idle connections were closed to make room.
    assert!(
        wait_for(Duration::from_secs(15), || {
            let r = s.curl(&[
                "--max-time",
                "3",
                &format!("http://127.0.0.1:{}/healthz", s.pki),
            ]);
            r.status == 200
        }),
        "no room for a new connection:\n{}",
        s.log()
    );
    let mut closed = 0;
    for c in &mut idle {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut total = Vec::new();
        loop {
            match c.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(n) => total.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
    }
    assert!(closed >= 1, "no idle connection was closed:\n{}", s.log());
    drop(idle);

    // Connections that never finish their TLS handshake cannot be shed: accept keeps failing
    // for a while, and the log says so once, not every 50 ms.
    let mut stuck = Vec::new();
    for _ in 0..70 {
        stuck.push(TcpStream::connect(("127.0.0.1", s.ports.device)).unwrap());
    }
    std::thread::sleep(Duration::from_secs(3));
    let log = s.log();
    let lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=4).contains(&lines),
        "{lines} accept-failure lines:\n{log}"
    );
    drop(stuck);
    assert!(
        wait_for(Duration::from_secs(15), || s
            .curl(&[
                "--max-time",
                "3",
                &format!("http://127.0.0.1:{}/healthz", s.pki)
            ])
            .status
            == 200),
        "the server did not recover:\n{}",
        s.log()
    );
}

// ------------------------------------------------------------------ item 9

#[test]
fn unknown_variable_and_refused_low_port_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = serve_expecting_failure(
        &tmp.path().join("data"),
        &[],
        &[("FERROCORE_LISTENER_DEVICE".into(), "127.0.0.1:8443".into())],
    );
    assert_ne!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("FERROCORE_LISTENER_DEVICE"))
        .collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].contains("unknown"), "{}", lines[0]);
    assert!(
        !tmp.path().join("data").exists(),
        "nothing created before the check"
    );

    // The README's first command as a user who is not root: port 443 is refused, and the
    // line says how to proceed.
    let dir = tempfile::tempdir().unwrap();
    let mut perms = fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    fs::set_permissions(dir.path(), perms).unwrap();
    let data = dir.path().join("data");
    let sync = format!("127.0.0.1:{}", free_port());
    let mut cmd = if rustix_is_root() {
        let mut c = clean_command("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(FERROCORE);
        c
    } else {
        clean_command(FERROCORE)
    };
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .env("FERROCORE_LISTENERS_SYNC_TLS", &sync)
        .env("NO_COLOR", "1");
    let out = run(cmd, None);
    assert_ne!(out.code, 0, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("cannot listen on 0.0.0.0:443"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains("FERROCORE_LISTENERS_DEVICE="), "{line}");
    assert!(line.contains("setcap cap_net_bind_service=+ep"), "{line}");
}

fn rustix_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

// ------------------------------------------------------------------ item 10

#[test]
fn swarm_backs_off_gives_up_on_a_dead_server_and_fails_over_the_error_rate() {
    let mut s = Server::start();
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let swarm = s.path("swarm");
    let ca = s.ca_pem();
    let mut cmd = clean_command(AGENT);
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
        PASSWORD,
        "--devices",
        "4",
        "--concurrency",
        "2",
        "--json",
    ]);
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "{out:?}");
    let swarm_run = |extra: &[&str]| {
        let mut cmd = clean_command(AGENT);
        cmd.arg("--state")
            .arg(&swarm)
            .args(["swarm", "run", "--json"])
            .args(extra);
        let t = Instant::now();
        (run(cmd, None), t.elapsed())
    };
    // Healthy: 0 % errors, exit 0.
    let (out, _) = swarm_run(&["--requests", "8", "--concurrency", "2"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json["errors"], 0, "{}", out.stdout);

    // One of four devices retired: 25 % errors, over the default 1 %: exit 1.
    let id = agent_state(&device_dir(&swarm, 1))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.admin_ok(&["devices", "retire", &id]);
    let (out, _) = swarm_run(&["--requests", "8", "--concurrency", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.json["errors"], 2, "{}", out.stdout);
    assert!(out.stderr.contains("--max-error-rate"), "{}", out.stderr);
    let (out, _) = swarm_run(&[
        "--requests",
        "8",
        "--concurrency",
        "1",
        "--max-error-rate",
        "30",
    ]);
    assert_eq!(out.code, 0, "{out:?}");

    // A dead server: backs off, gives up after --give-up-after, exits 1.
    s.stop();
    let (out, took) = swarm_run(&[
        "--requests",
        "1000000",
        "--concurrency",
        "4",
        "--give-up-after",
        "3",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.json["gave_up"].is_string(), "{}", out.stdout);
    let requests = out.json["requests"].as_u64().unwrap();
    // Without backoff, 4 workers hammer a closed port thousands of times in 3 s.
    assert!(requests < 200, "{requests} requests against a dead server");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

fn device_dir(swarm: &Path, i: u64) -> PathBuf {
    swarm.join("devices").join(format!("{i:05}"))
}

// ------------------------------------------------------------------ item 11

#[test]
fn est_answers_decode_with_base64_and_the_readme_est_lines_run_as_printed() {
    let s = Server::start();
    s.add_user("alice");
    // cacerts: base64 in LF-ended lines that both `base64 -d` and `openssl base64 -d`
    // decode into DER PKCS#7.
    let r = s.curl(&[&format!("{}/.well-known/est/cacerts", s.device_url())]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.body.contains('\r'), "{:?}", r.body);
    let p7 = s.path("cacerts.b64");
    fs::write(&p7, format!("{}\n", r.body)).unwrap();
    for decode in ["base64 -d", "openssl base64 -d"] {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "{decode} < \"$0\" | openssl pkcs7 -inform DER -print_certs"
            ))
            .arg(&p7);
        let out = run(cmd, None);
        assert_eq!(out.code, 0, "{decode}: {out:?}");
        assert!(
            out.stdout.contains("BEGIN CERTIFICATE"),
            "{decode}: {out:?}"
        );
    }

    // The README's EST block, verbatim but for the ports, after its walkthrough's `A=...`.
    let walkthrough = common::readme_block("## Walkthrough");
    let a_line = walkthrough
        .lines()
        .find(|l| l.starts_with("A=\"ferrocore admin"))
        .expect("the walkthrough defines A");
    let est = common::readme_block("## EST (RFC 7030)");
    let script = format!("set -e\n{a_line}\n{est}")
        .replace("127.0.0.1:8443", &format!("127.0.0.1:{}", s.ports.device))
        .replace("127.0.0.1:8444", &format!("127.0.0.1:{}", s.ports.admin));
    let work = s.path("readme");
    fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(&s.data_dir, work.join("data")).unwrap();
    let bin_dir = Path::new(FERROCORE).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = clean_command("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path);
    let out = run(cmd, None);
    assert_eq!(
        out.code,
        0,
        "README EST lines failed:\n{script}\n{out:?}\n{}",
        s.log()
    );
    // The CA printed by the first line, the certificates enrolled with password and token.
    assert!(out.stdout.contains("BEGIN CERTIFICATE"), "{out:?}");
    for pem in ["dev.pem", "dev2.pem"] {
        let text = fs::read_to_string(work.join(pem)).unwrap();
        assert!(text.contains("BEGIN CERTIFICATE"), "{pem}: {text}");
        openssl_ok(&work, &["x509", "-in", pem, "-noout"]);
    }
    // Re-enrollment right after enrollment: before the window, as the comment says.
    assert!(out.stdout.contains("renewal_not_due"), "{out:?}");
    assert_eq!(s.device_total(), 2);
}

// ------------------------------------------------------------------ item 12

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

fn register_android(s: &Server, state: &Path, version: &str) -> String {
    let v = s.register_ok(state, "alice", "android", "agent", version);
    v["device_id"].as_str().unwrap().to_owned()
}

fn at_risk(s: &Server, id: &str) -> Option<Value> {
    let report = s.admin_ok(&["reports", "renewal-at-risk"]);
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device_id"] == id)
        .cloned()
}

#[test]
fn renewal_report_lists_devices_until_retired_and_old_agents_do_not_renew() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, s) = common::short_lifetime_server(dir.path(), "alice");
    let old = dir.path().join("old");
    let silent = dir.path().join("silent");
    let old_id = register_android(&s, &old, "10.0");
    let silent_id = register_android(&s, &silent, "10.1.0");
    // The old agent learns from its check-in answer that it does not renew.
    let out = agent_at(0, &old, &["checkin"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json["certificate"]["supports_renewal"], false);
    let not_after = out.json["certificate"]["not_after"].as_i64().unwrap();

    // Day 31: both expired. The old one is refused from expiry on and must register again;
    // the renewing one is in its grace until day 60.
    clock.set_days(31);
    let r = at_risk(&s, &old_id).expect("old agent listed");
    assert_eq!(r["phase"], "refused", "{r}");
    assert_eq!(r["refused_from"], not_after, "{r}");
    assert_eq!(r["must_register_again"], true, "{r}");
    let r = at_risk(&s, &silent_id).expect("renewing agent listed");
    assert_eq!(r["phase"], "in_grace", "{r}");
    assert_eq!(r["must_register_again"], false, "{r}");
    assert_eq!(
        r["refused_from"].as_i64().unwrap(),
        r["retire_at"].as_i64().unwrap(),
        "{r}"
    );
    // The old agent does not try to renew: refused, told to register again.
    let out = agent_at(31, &old, &["checkin"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("does not renew"), "{}", out.stderr);
    assert!(!out.stderr.contains("trying to renew"), "{}", out.stderr);
    assert!(
        !s.log().contains("/api/v1/renew"),
        "a renewal was attempted:\n{}",
        s.log()
    );

    // Day 62: past the grace, not swept yet: still listed, marked; the sweep retires them.
    clock.set_days(62);
    let r = at_risk(&s, &silent_id).expect("listed until retired");
    assert_eq!(r["phase"], "awaiting_retirement", "{r}");
    assert_eq!(r["must_register_again"], true, "{r}");
    let swept = s.admin_ok(&["sweep"]);
    assert!(swept["retired"].as_u64().unwrap() >= 2, "{swept}");
    assert!(at_risk(&s, &silent_id).is_none());
    assert!(at_risk(&s, &old_id).is_none());
}
