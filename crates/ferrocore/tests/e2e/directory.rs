//! Directory users against real directories: a Samba AD domain controller and OpenLDAP's
//! slapd, each provisioned by the test in a scratch directory. Samba insists on its fixed
//! ports (389/636), so each test re-runs itself inside `unshare -n` (a loopback-only network
//! namespace; root or CAP_SYS_ADMIN needed): nothing collides with other tests or machines'
//! services, and leaving the namespace ends everything in it.
//!
//! - `active_directory_end_to_end`: registration with AD credentials by sAMAccountName and by
//!   UPN (the certificate carries UPN and mail, `openssl x509 -text`), a nested group picks
//!   the policy, wrong password / disabled / expired / must-change / locked / not in the
//!   enrolling group each give their code, a password change (old refused, new accepted, no
//!   restart), a user disabled in AD is blocked at the next check-in after the refresh
//!   interval, and with Samba stopped registration answers `directory_unavailable` while the
//!   enrolled device keeps checking in. The admin CLI tests the directory and lists users.
//! - `lockout_is_never_reached`: AD lockout threshold 5; 50 attempts with one wrong password
//!   through agent registration and EST Basic concurrently, then distinct wrong passwords:
//!   `badPwdCount` stays below 5 (ldbsearch on the DC's database), `too_many_attempts` with
//!   Retry-After, and the right password still registers.
//! - `openldap_users_and_rename`: slapd over StartTLS, login by uid, entryUUID as the
//!   immutable ID: a renamed account keeps its Ferrocore user and devices.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Out, Server, clean_command, openssl_ok, run, terminate};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REALM: &str = "EXAMPLE.TEST";
const BASE: &str = "DC=example,DC=test";
const ADMIN_PW: &str = "Adm1n-Passw0rd!";
const SVC_PW: &str = "Svc-Passw0rd-1";

#[test]
fn active_directory_end_to_end() {
    in_namespace("active_directory_end_to_end", ad_scenario);
}

#[test]
fn lockout_is_never_reached() {
    in_namespace("lockout_is_never_reached", lockout_scenario);
}

#[test]
fn openldap_users_and_rename() {
    in_namespace("openldap_users_and_rename", openldap_scenario);
}

/// Samba domain controllers are heavy (provisioning takes seconds of CPU): one at a time.
static ONE_DC: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn in_namespace(name: &str, scenario: fn()) {
    // One Samba DC at a time (the two AD tests take turns).
    let _one = ONE_DC.lock().unwrap_or_else(|e| e.into_inner());
    common::in_namespace(&format!("directory::{name}"), scenario);
}

// ------------------------------------------------------------------ helpers

/// Runs a command, asserting success.
fn sh(cmd: &mut Command) -> Out {
    let out = run(std::mem::replace(cmd, Command::new("true")), None);
    assert_eq!(out.code, 0, "{out:?}");
    out
}

/// A throw-away CA and a server certificate for 127.0.0.1 / localhost (the directories' TLS).
fn make_pki(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    openssl_ok(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "30",
            "-subj",
            "/CN=Directory Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl_ok(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,DNS:dc1.example.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl_ok(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
        ],
    );
    set_mode(&dir.join("server.key"), 0o600);
    dir.join("ca.crt")
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Waits (bounded) until something accepts TCP connections on 127.0.0.1:port.
fn wait_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Samba AD DC provisioned in `dir`, serving LDAP(S) and the KDC on 127.0.0.1.
struct Samba {
    dir: PathBuf,
    conf: PathBuf,
    pki: PathBuf,
    child: Option<Child>,
}

impl Samba {
    fn provision(dir: &Path, pki: &Path) -> Samba {
        let t = Instant::now();
        let log = dir.join("provision.log");
        let mut child = Command::new("samba-tool")
            .args(["domain", "provision", "-s", "/dev/null"])
            .arg(format!("--targetdir={}", dir.join("ad").display()))
            .args([
                &format!("--realm={REALM}"),
                "--domain=EXAMPLE",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--use-rfc2307",
                &format!("--adminpass={ADMIN_PW}"),
                "--host-name=dc1",
                "--host-ip=127.0.0.1",
                "--option=interfaces=127.0.0.1",
                "--option=bind interfaces only=yes",
            ])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                fs::File::create(dir.join("provision.err")).unwrap(),
            ))
            .spawn()
            .expect("samba-tool");
        // About 8 s on an idle machine; much longer when the machine is busy.
        let status = common::wait_bounded(&mut child, Duration::from_secs(300));
        assert!(
            status.is_some_and(|s| s.success()),
            "samba provision failed ({status:?}): {}",
            fs::read_to_string(dir.join("provision.err")).unwrap_or_default()
        );
        eprintln!("samba provisioned in {:?}", t.elapsed());
        let mut s = Samba {
            dir: dir.to_owned(),
            conf: dir.join("ad/etc/smb.conf"),
            pki: pki.to_owned(),
            child: None,
        };
        s.start();
        s
    }

    fn start(&mut self) {
        let key = self.pki.join("server.key");
        let crt = self.pki.join("server.crt");
        let ca = self.pki.join("ca.crt");
        let child = Command::new("samba")
            .arg("-s")
            .arg(&self.conf)
            .args(["-i", "-M", "single", "--option=server services=ldap kdc"])
            // A password change takes effect at once (Samba's default keeps the old one
            // valid for 60 minutes for NTLM-style logons, which simple binds use).
            .arg("--option=old password allowed period=0")
            .arg(format!("--option=tls keyfile={}", key.display()))
            .arg(format!("--option=tls certfile={}", crt.display()))
            .arg(format!("--option=tls cafile={}", ca.display()))
            // Interactive samba exits at EOF on stdin: the open pipe keeps it running.
            .stdin(Stdio::piped())
            .stdout(fs::File::create(self.dir.join("samba.log")).unwrap())
            .stderr(Stdio::from(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("samba.err"))
                    .unwrap(),
            ))
            .spawn()
            .expect("samba");
        self.child = Some(child);
        wait_port(636, "samba");
        // The LDAP server answers once its database is open.
        let start = Instant::now();
        while self.ldapsearch(&["-b", "", "-s", "base", "dn"]).code != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "samba LDAP not ready"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    fn tool(&self, args: &[&str]) -> Out {
        let mut c = Command::new("samba-tool");
        c.args(args).arg("-s").arg(&self.conf);
        sh(&mut c)
    }

    /// `ldapsearch` as Administrator over LDAPS.
    fn ldapsearch(&self, args: &[&str]) -> Out {
        let mut c = Command::new("ldapsearch");
        c.env("LDAPTLS_CACERT", self.pki.join("ca.crt"))
            .args([
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                "ldaps://127.0.0.1",
                "-x",
                "-D",
            ])
            .arg(format!("Administrator@{}", REALM.to_lowercase()))
            .args(["-w", ADMIN_PW])
            .args(args);
        run(c, None)
    }

    /// `badPwdCount` and `lockoutTime` of a user, read from the DC's own database (ldbsearch).
    fn bad_pwd(&self, user: &str) -> (u32, u64) {
        let mut c = Command::new("ldbsearch");
        c.arg("-H")
            .arg(self.dir.join("ad/private/sam.ldb"))
            .arg(format!("(sAMAccountName={user})"))
            .args(["badPwdCount", "lockoutTime"]);
        let out = sh(&mut c).stdout;
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        (get("badPwdCount") as u32, get("lockoutTime"))
    }

    /// Users, groups (nested), the service account and the lockout policy.
    fn populate(&self, threshold: u32) {
        self.tool(&[
            "domain",
            "passwordsettings",
            "set",
            "--complexity=off",
            "--min-pwd-length=6",
            "--min-pwd-age=0",
            "--max-pwd-age=0",
            &format!("--account-lockout-threshold={threshold}"),
            "--account-lockout-duration=30",
            "--reset-account-lockout-after=30",
        ]);
        for g in ["mdm-users", "kiosk-staff"] {
            self.tool(&["group", "add", g]);
        }
        // kiosk-staff is nested in mdm-users: its members may enroll and get the kiosk policy.
        self.tool(&["group", "addmembers", "mdm-users", "kiosk-staff"]);
        for u in ["alice", "bob", "carol", "dave", "erin", "frank", "gina"] {
            self.tool(&[
                "user",
                "create",
                u,
                &format!("{u}-Pass1"),
                &format!("--mail-address={u}@mail.example.test"),
            ]);
            if u != "frank" {
                self.tool(&["group", "addmembers", "mdm-users", u]);
            }
        }
        self.tool(&["group", "addmembers", "kiosk-staff", "alice"]);
        self.tool(&["user", "create", "svc-ferrocore", SVC_PW]);
        self.tool(&["user", "setexpiry", "svc-ferrocore", "--noexpiry"]);
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `[directory]` configuration for the AD DC; the service password in a 0600 file.
fn ad_config(dir: &Path, ca: &Path, extra: &str) -> PathBuf {
    let pw = dir.join("svc-password");
    fs::write(&pw, format!("{SVC_PW}\n")).unwrap();
    set_mode(&pw, 0o600);
    let cfg = dir.join("ferrocore.toml");
    fs::write(
        &cfg,
        format!(
            r#"[directory]
order = ["local", "corp"]
refresh_interval_secs = 2
{extra}
[[directory.sources]]
name = "corp"
kind = "ad"
# the first URL has nothing listening: failover to the second
urls = ["ldaps://127.0.0.1:1636", "ldaps://127.0.0.1"]
ca_file = "{ca}"
bind_dn = "svc-ferrocore@example.test"
bind_password_file = "{pw}"
base_dn = "{BASE}"
enroll_groups = ["mdm-users"]
group_policies = [{{ group = "kiosk-staff", policy = "kiosk" }}]
"#,
            ca = ca.display(),
            pw = pw.display(),
        ),
    )
    .unwrap();
    cfg
}

/// `ferrocore-agent register` with a password of our choosing; `Ok(state)` or `Err(code)`.
fn register(s: &Server, state: &Path, user: &str, password: &str) -> Result<Value, String> {
    let ca = s.ca_pem();
    let out = s.agent(
        state,
        &[
            "register",
            "--url",
            &s.device_url(),
            "--ca",
            ca.to_str().unwrap(),
            "--user",
            user,
            "--password",
            password,
            "--platform",
            "android",
            "--client-kind",
            "agent",
            "--client-version",
            "10.1.0",
        ],
    );
    if out.code == 0 {
        Ok(out.json)
    } else {
        Err(agent_error(&out))
    }
}

fn agent_error(out: &Out) -> String {
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .and_then(|l| l.split(':').next())
        .unwrap_or(&out.stderr)
        .to_owned()
}

fn device_of(s: &Server, state: &Path) -> Value {
    let id = common::agent_state(state)["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.device(&id)
}

// ------------------------------------------------------------------ AD scenario

fn ad_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let ca = make_pki(&w.join("pki"));
    let mut dc = Samba::provision(w, &w.join("pki"));
    dc.populate(5);
    // dave must change his password; carol's account expired; bob is disabled; erin is
    // locked out by five wrong binds made directly against the DC.
    dc.tool(&[
        "user",
        "setpassword",
        "dave",
        "--newpassword=dave-Pass1",
        "--must-change-at-next-login",
    ]);
    dc.tool(&["user", "setexpiry", "carol", "--days=0"]);
    dc.tool(&["user", "disable", "bob"]);
    for i in 0..5 {
        let mut c = Command::new("ldapsearch");
        c.env("LDAPTLS_CACERT", &ca)
            .args([
                "-H",
                "ldaps://127.0.0.1",
                "-x",
                "-D",
                "erin@example.test",
                "-w",
            ])
            .arg(format!("wrong-{i}"))
            .args(["-b", "", "-s", "base"]);
        run(c, None);
    }
    assert!(dc.bad_pwd("erin").1 > 0, "erin should be locked");

    let cfg = ad_config(w, &ca, "");
    let s = Server::start_with_env(&[("FERROCORE_CONFIG", cfg.to_str().unwrap())]);
    s.admin_ok(&["policies", "add", "kiosk", "--checkin-interval-secs", "600"]);
    s.admin_ok(&["settings", "mutual-auth", "enable"]);

    // The admin CLI tests the directory: service bind through the second URL, AD's lockout
    // policy, alice's entry with her nested groups.
    let t = s.admin_ok(&["directory", "test", "--user", "alice"]);
    let r = &t["sources"][0];
    assert_eq!(r["url"], "ldaps://127.0.0.1", "{t}");
    assert_eq!(r["lockout_threshold"], 5, "{t}");
    assert_eq!(r["user"]["upn"], "alice@example.test", "{t}");
    let groups: Vec<&str> = r["user"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"kiosk-staff") && groups.contains(&"mdm-users"),
        "{t}"
    );
    assert!(
        s.log().contains("ldaps://127.0.0.1:1636"),
        "the failing URL is logged"
    );

    // Registration by sAMAccountName, then by UPN: the same user.
    let p1 = w.join("phone1");
    register(&s, &p1, "alice", "alice-Pass1").unwrap();
    let p2 = w.join("phone2");
    register(&s, &p2, "alice@example.test", "alice-Pass1").unwrap();
    let (d1, d2) = (device_of(&s, &p1), device_of(&s, &p2));
    assert_eq!(d1["username"], "alice");
    assert_eq!(d2["username"], "alice");
    // Nested group kiosk-staff (inside mdm-users) picks the policy.
    assert_eq!(d1["policy"], "kiosk", "{d1}");
    // The certificate carries the UPN (otherName) and mail (rfc822Name).
    let text = openssl_ok(
        w,
        &[
            "x509",
            "-noout",
            "-text",
            "-in",
            p1.join("cert.pem").to_str().unwrap(),
        ],
    )
    .stdout;
    assert!(text.contains("UPN::alice@example.test"), "{text}");
    assert!(text.contains("email:alice@mail.example.test"), "{text}");
    s.checkin_ok(&p1);

    // Each AD answer has its code.
    let p = w.join("phoneX");
    for (user, pw, code) in [
        ("alice", "not-her-password", "invalid_credentials"),
        ("nobody", "whatever-1", "invalid_credentials"),
        ("bob", "bob-Pass1", "account_disabled"),
        ("carol", "carol-Pass1", "account_expired"),
        ("dave", "dave-Pass1", "password_must_change"),
        ("erin", "erin-Pass1", "account_locked"),
        ("frank", "frank-Pass1", "enrollment_not_allowed"),
    ] {
        assert_eq!(register(&s, &p, user, pw).unwrap_err(), code, "{user}");
    }
    // EST Basic goes through the same directory (and the same codes).
    let data = format!("@{}", est_body(w).display());
    let http = s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &data,
        "-u",
        "bob:bob-Pass1",
        &format!("{}/.well-known/est/simpleenroll", s.device_url()),
    ]);
    assert_eq!(
        (http.status, http.error_code()),
        (403, "account_disabled"),
        "{http:?}"
    );

    // A password change in AD: the old password is refused, the new one accepted (no restart).
    dc.tool(&["user", "setpassword", "gina", "--newpassword=gina-Pass2"]);
    assert_eq!(
        register(&s, &p, "gina", "gina-Pass1").unwrap_err(),
        "invalid_credentials"
    );
    register(&s, &w.join("gina"), "gina", "gina-Pass2").unwrap();

    // Users with their source and state.
    let users = s.admin_ok(&["directory", "users"]);
    let alice = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(
        (alice["source"].as_str(), alice["state"].as_str()),
        (Some("corp"), Some("active"))
    );
    assert!(
        alice["sid"].as_str().unwrap().starts_with("S-1-5-21-"),
        "{alice}"
    );

    // alice disabled in AD: her device is refused at a check-in within the refresh interval
    // (2 s); enabled again, it checks in again.
    dc.tool(&["user", "disable", "alice"]);
    let blocked = wait_for(|| s.checkin(&p1).stderr.contains("directory_user_blocked"));
    assert!(blocked, "check-in not blocked: {}", s.log());
    dc.tool(&["user", "enable", "alice"]);
    assert!(wait_for(|| s.checkin(&p1).code == 0), "not unblocked");

    // AD stopped: registration answers directory_unavailable; enrolled devices check in.
    dc.stop();
    assert_eq!(
        register(&s, &w.join("phone3"), "alice", "alice-Pass1").unwrap_err(),
        "directory_unavailable"
    );
    let http = s.curl_register(
        r#"{"username":"alice","password":"alice-Pass1","device_uuid":"7b0c8a9e-3f0e-4b8c-9a7e-2d6f1c3b5a11","platform":"android","client_kind":"agent","client_version":"10.1.0"}"#,
    );
    assert_eq!(
        (http.status, http.error_code()),
        (503, "directory_unavailable"),
        "{http:?}"
    );
    s.checkin_ok(&p1);
    // The refresh keeps going through the outage without blocking anyone.
    std::thread::sleep(Duration::from_millis(2500));
    s.checkin_ok(&p2);
    assert!(s.log().contains("directory URL failed"), "{}", s.log());
}

/// A base64 EST CSR body in `w/est.b64`.
fn est_body(w: &Path) -> PathBuf {
    openssl_ok(
        w,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "est.key",
            "-subj",
            "/CN=est-device",
            "-outform",
            "DER",
            "-out",
            "est.der",
        ],
    );
    let b64 = openssl_ok(w, &["base64", "-in", "est.der"]).stdout;
    fs::write(w.join("est.b64"), b64).unwrap();
    w.join("est.b64")
}

/// Polls `f` for up to 20 s.
fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

// ------------------------------------------------------------------ lockout

fn lockout_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let ca = make_pki(&w.join("pki"));
    let dc = Samba::provision(w, &w.join("pki"));
    dc.populate(5);
    let cfg = ad_config(w, &ca, "");
    let s = Server::start_with_env(&[("FERROCORE_CONFIG", cfg.to_str().unwrap())]);
    let body = est_body(w);
    let est_url = format!("{}/.well-known/est/simpleenroll", s.device_url());

    // 50 attempts with the same wrong password (a phone retrying a saved old password):
    // 25 agent registrations and 25 EST enrollments, all at once.
    let s = std::sync::Arc::new(s);
    let mut threads = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        let w = w.to_owned();
        let est_url = est_url.clone();
        threads.push(std::thread::spawn(move || {
            if i % 2 == 0 {
                register(&s, &w.join(format!("p{i}")), "alice", "alice-OLD-pass").unwrap_err()
            } else {
                let data = format!("@{}", w.join("est.b64").display());
                let h = s.curl(&[
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/pkcs10",
                    "--data-binary",
                    &data,
                    "-u",
                    "alice:alice-OLD-pass",
                    &est_url,
                ]);
                h.error_code().to_owned()
            }
        }));
    }
    let codes: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        codes.iter().all(|c| c == "invalid_credentials"),
        "{codes:?}"
    );
    let (bad, locked) = dc.bad_pwd("alice");
    eprintln!("after 50 identical wrong passwords: badPwdCount {bad}, lockoutTime {locked}");
    assert!(
        bad < 5 && locked == 0,
        "badPwdCount {bad}, lockoutTime {locked}"
    );
    assert!(bad <= 1, "the repeated password reached AD {bad} times");
    // The right password still works (and resets AD's count).
    register(&s, &w.join("good"), "alice", "alice-Pass1").unwrap();
    assert_eq!(dc.bad_pwd("alice").0, 0);

    // Distinct wrong passwords: Ferrocore stops forwarding at threshold - margin (3).
    let mut answers = Vec::new();
    let data = format!("@{}", body.display());
    for i in 0..10 {
        let h = s.curl(&[
            "-i",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &data,
            "-u",
            &format!("alice:guess-{i}"),
            &est_url,
        ]);
        answers.push(h);
    }
    let (bad, locked) = dc.bad_pwd("alice");
    eprintln!("after 10 distinct wrong passwords: badPwdCount {bad}, lockoutTime {locked}");
    assert!(
        bad < 5 && locked == 0,
        "badPwdCount {bad}, lockoutTime {locked}"
    );
    let last = answers.last().unwrap();
    assert_eq!(last.status, 429, "{last:?}");
    assert!(last.body.contains("too_many_attempts"), "{last:?}");
    let retry = last
        .body
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().to_owned())
        })
        .expect("Retry-After header");
    let retry: u64 = retry.parse().unwrap();
    assert!(retry > 0 && retry <= 1800, "{retry}");
    // The admin sees the state; the account is still usable after AD's window, never locked.
    let st = s.admin_ok(&["directory", "attempts", "--user", "alice"]);
    assert_eq!(st["items"][0]["failures"], 3, "{st}");
    s.admin_ok(&["directory", "clear-attempts", "alice"]);
    let st = s.admin_ok(&["directory", "attempts", "--user", "alice"]);
    assert_eq!(st["items"].as_array().unwrap().len(), 0, "{st}");
    // Still refused without a bind: AD itself counts 3 of 5 (Ferrocore reads badPwdCount).
    assert_eq!(
        register(&s, &w.join("again"), "alice", "alice-Pass1").unwrap_err(),
        "too_many_attempts"
    );
    assert_eq!(dc.bad_pwd("alice"), (bad, 0));
    // Once AD forgets the failures (admin reset here), the right password registers.
    let mut c = Command::new("ldbmodify");
    c.arg("-H").arg(dc.dir.join("ad/private/sam.ldb"));
    let dn = format!("CN=alice,CN=Users,{BASE}");
    let ldif = format!("dn: {dn}\nchangetype: modify\nreplace: badPwdCount\nbadPwdCount: 0\n");
    c.stdin(Stdio::piped());
    let out = run(c, Some(ldif.as_bytes()));
    assert_eq!(out.code, 0, "{out:?}");
    register(&s, &w.join("again"), "alice", "alice-Pass1").unwrap();
}

// ------------------------------------------------------------------ OpenLDAP

struct Slapd {
    child: Option<Child>,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

fn openldap_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let ca = make_pki(&w.join("pki"));
    let pki = w.join("pki");
    let d = w.join("slapd.d");
    let db = w.join("db");
    fs::create_dir_all(&d).unwrap();
    fs::create_dir_all(&db).unwrap();
    let config = format!(
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcTLSCertificateFile: {crt}\nolcTLSCertificateKeyFile: {key}\nolcTLSCACertificateFile: {ca}\n\n\
dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\nolcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
include: file:///etc/ldap/schema/core.ldif\n\ninclude: file:///etc/ldap/schema/cosine.ldif\n\ninclude: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\n\
dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: dc=example,dc=org\nolcRootDN: cn=admin,dc=example,dc=org\nolcRootPW: Admin-Ldap-1\nolcDbDirectory: {db}\n\
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none\nolcAccess: {{1}}to * by dn.exact=\"cn=svc,dc=example,dc=org\" read by self read by * none\n",
        crt = pki.join("server.crt").display(),
        key = pki.join("server.key").display(),
        ca = pki.join("ca.crt").display(),
        db = db.display(),
    );
    fs::write(w.join("config.ldif"), config).unwrap();
    let data = "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
dn: cn=svc,dc=example,dc=org\nobjectClass: person\ncn: svc\nsn: svc\nuserPassword: Svc-Ldap-1\n\n\
dn: uid=lina,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: lina\ncn: Lina Lopez\nsn: Lopez\nmail: lina@example.org\nuserPassword: Lina-Pass-1\n\n\
dn: cn=mdm-users,dc=example,dc=org\nobjectClass: groupOfNames\ncn: mdm-users\nmember: uid=lina,ou=people,dc=example,dc=org\n";
    fs::write(w.join("data.ldif"), data).unwrap();
    let mut c = clean_command("slapadd");
    c.args(["-n0", "-F"])
        .arg(&d)
        .arg("-l")
        .arg(w.join("config.ldif"));
    sh(&mut c);
    let mut c = clean_command("slapadd");
    c.args(["-n1", "-F"])
        .arg(&d)
        .arg("-l")
        .arg(w.join("data.ldif"));
    sh(&mut c);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("slapd")
        .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-F"])
        .arg(&d)
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(w.join("slapd.log")).unwrap())
        .spawn()
        .expect("slapd");
    let _slapd = Slapd { child: Some(child) };
    wait_port(port, "slapd");

    let pw = w.join("svc-password");
    fs::write(&pw, "Svc-Ldap-1").unwrap();
    set_mode(&pw, 0o600);
    let cfg = w.join("ferrocore.toml");
    fs::write(
        &cfg,
        format!(
            r#"[directory]
order = ["ldap", "local"]
[[directory.sources]]
name = "ldap"
kind = "ldap"
urls = ["ldap://127.0.0.1:{port}"]
ca_file = "{ca}"
bind_dn = "cn=svc,dc=example,dc=org"
bind_password_file = "{pw}"
base_dn = "dc=example,dc=org"
login_attributes = ["uid", "mail"]
enroll_groups = ["mdm-users"]
"#,
            ca = ca.display(),
            pw = pw.display()
        ),
    )
    .unwrap();
    let s = Server::start_with_env(&[("FERROCORE_CONFIG", cfg.to_str().unwrap())]);
    let p1 = w.join("p1");
    register(&s, &p1, "lina", "Lina-Pass-1").unwrap();
    register(&s, &w.join("p2"), "lina@example.org", "Lina-Pass-1").unwrap();
    assert_eq!(
        register(&s, &w.join("p3"), "lina", "wrong-pass").unwrap_err(),
        "invalid_credentials"
    );
    let users = s.admin_ok(&["directory", "users"]);
    let lina = &users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "lina")
        .unwrap()
        .clone();
    assert_eq!(lina["source"], "ldap", "{users}");
    assert_eq!(lina["groups"][0], "mdm-users", "{users}");
    assert_eq!(
        lina["external_id"].as_str().unwrap().len(),
        36,
        "entryUUID: {lina}"
    );

    // Renamed in the directory (new uid, new DN; the group follows): same entryUUID, so the
    // same Ferrocore user and devices.
    let ldap = |tool: &str, ldif: &str| {
        let mut c = Command::new(tool);
        c.env("LDAPTLS_CACERT", &ca)
            .args(["-ZZ", "-H", &format!("ldap://127.0.0.1:{port}"), "-x", "-D"])
            .args(["cn=admin,dc=example,dc=org", "-w", "Admin-Ldap-1"]);
        let out = run(c, Some(ldif.as_bytes()));
        assert_eq!(out.code, 0, "{tool}: {out:?}");
    };
    ldap(
        "ldapmodify",
        "dn: uid=lina,ou=people,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=lina.lopez\ndeleteoldrdn: 1\n\n\
dn: cn=mdm-users,dc=example,dc=org\nchangetype: modify\nreplace: member\nmember: uid=lina.lopez,ou=people,dc=example,dc=org\n",
    );
    assert_eq!(
        register(&s, &w.join("p4"), "lina", "Lina-Pass-1").unwrap_err(),
        "invalid_credentials"
    );
    let p5 = w.join("p5");
    register(&s, &p5, "lina.lopez", "Lina-Pass-1").unwrap();
    assert_eq!(device_of(&s, &p5)["username"], "lina");
    let users = s.admin_ok(&["directory", "users"]);
    let lina = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "lina")
        .unwrap()
        .clone();
    assert_eq!(lina["login"], "lina.lopez", "{users}");
    // The first device still checks in as lina's.
    s.checkin_ok(&p1);
}
