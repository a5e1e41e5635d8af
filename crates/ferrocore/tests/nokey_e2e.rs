//! Black-box: no device private key reaches the server (ARCHITECTURE "Invariants").
//!
//! One server goes through every enrollment path with real clients, keeping a copy of every
//! device key as it is made: agent registration, renewal and migration (`ferrocore-agent`),
//! EST simpleenroll and simplereenroll (openssl keys, curl), SCEP PKCSReq and RenewalReq
//! (micromdm's `scepclient`), and an external CA (micromdm's `scepserver`: registration and
//! renewal through it). Then, with the server stopped, the whole data directory (every file,
//! the SQLite database also row by row through `sqlite3 .dump`) and the server log are
//! searched:
//! - for private-key structures: PEM `... PRIVATE KEY` blocks, and DER PKCS#8
//!   PrivateKeyInfo, SEC1 ECPrivateKey and PKCS#1 RSAPrivateKey found at any offset of the
//!   raw bytes, of every decoded PEM block and of every BLOB of the database. Only
//!   Ferrocore's own keys may be found, each in its file beside the certificate it belongs
//!   to (checked with openssl);
//! - for each device key byte for byte: its PEM text, a line of its base64, its DER
//!   (PKCS#8 and SEC1/PKCS#1), that DER as one base64 string, and its raw private scalar
//!   (EC `d`; RSA `d`, `p`, `q`) in binary and hex.
//!
//! A positive control runs the same search over the device keys themselves, so a detector
//! that finds nothing fails the test. `scepserver` binds every interface, so the scenario
//! runs in a loopback-only network namespace as `extca_e2e` does (`unshare -n`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/scep.rs"]
mod scep;

use common::{Server, clean_command, openssl_ok, run, terminate};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INNER: &str = "FERROCORE_NOKEY_E2E_INNER";
const EXT_CHALLENGE: &str = "ext-secret";
const EST_UUID: &str = "6c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

#[test]
fn no_device_private_key_reaches_the_server() {
    if std::env::var_os(INNER).is_some() {
        scenario();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let name = "no_device_private_key_reaches_the_server";
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the scenario failed inside `unshare -n` (root or CAP_SYS_ADMIN needed):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the inner run did not run the scenario:\n{stdout}\n{stderr}"
    );
}

/// micromdm's `scepserver` as the external CA, stopped on drop.
struct ScepServer {
    child: Option<Child>,
    port: u16,
}

impl ScepServer {
    fn start(depot: &Path, log: &Path) -> ScepServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("scepserver")
            .arg("-depot")
            .arg(depot)
            .args(["-port", &port.to_string(), "-challenge", EXT_CHALLENGE])
            // 30-day certificates: inside the default renewal window at once.
            .args(["-allowrenew", "0", "-crtvalid", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .expect("spawn scepserver (apt-get install scep)");
        let s = ScepServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "scepserver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

impl Drop for ScepServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// Every device key made during the scenario, by a name saying where it came from.
#[derive(Default)]
struct DeviceKeys {
    pem: BTreeMap<String, String>,
}

impl DeviceKeys {
    /// Keeps a copy of the key file as it is now (agents overwrite theirs when renewing).
    fn keep(&mut self, name: &str, key_file: &Path) {
        let pem = std::fs::read_to_string(key_file)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", key_file.display()));
        assert!(pem.contains("PRIVATE KEY-----"), "{name}: {pem}");
        assert!(
            !self.pem.values().any(|p| p == &pem),
            "{name}: the same key as an earlier step"
        );
        self.pem.insert(name.to_owned(), pem);
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn serial(dir: &Path, cert: &Path) -> String {
    openssl_ok(dir, &["x509", "-noout", "-serial", "-in", p(cert)])
        .stdout
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// A P-256 key and a base64 DER CSR (`CN=cn`) made by openssl, for EST.
fn est_csr(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let der = dir.join(format!("{name}.csr.der"));
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
            p(&key),
            "-subj",
            &format!("/CN={cn}"),
            "-outform",
            "DER",
            "-out",
            p(&der),
        ],
    );
    let b64 = openssl_ok(dir, &["base64", "-in", p(&der)]).stdout;
    let body = dir.join(format!("{name}.b64"));
    std::fs::write(&body, b64).unwrap();
    (key, body)
}

/// POSTs an EST body; a 200 answer's certificate is written to `cert_out` (PEM).
fn est(s: &Server, dir: &Path, op: &str, body: &Path, extra: &[&str], cert_out: &Path) {
    let data = format!("@{}", body.display());
    let url = format!("{}/.well-known/est/{op}", s.device_url());
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &data,
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let r = s.curl(&args);
    assert_eq!(r.status, 200, "EST {op}: {r:?}\n{}", s.log());
    let b64 = dir.join("est-answer.b64");
    std::fs::write(&b64, &r.body).unwrap();
    let p7 = dir.join("est-answer.p7");
    openssl_ok(dir, &["base64", "-d", "-in", p(&b64), "-out", p(&p7)]);
    openssl_ok(
        dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            p(&p7),
            "-print_certs",
            "-out",
            p(cert_out),
        ],
    );
}

fn curl_checkin(s: &Server, cert: &Path, key: &Path) -> common::Http {
    s.curl(&[
        "--cert",
        p(cert),
        "--key",
        p(key),
        "-X",
        "POST",
        &format!("{}/api/v1/checkin", s.device_url()),
    ])
}

fn scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let mut keys = DeviceKeys::default();

    // The external CA.
    let depot = work.join("depot");
    let mut init = clean_command("scepserver");
    init.args(["ca", "-init", "-depot"])
        .arg(&depot)
        .args(["-keySize", "2048"]);
    let init = run(init, None);
    assert_eq!(init.code, 0, "scepserver ca -init: {init:?}");
    let fp = openssl_ok(
        work,
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            p(&depot.join("ca.pem")),
        ],
    )
    .stdout;
    let fingerprint = fp.trim().rsplit('=').next().unwrap().to_owned();
    let scepserver = ScepServer::start(&depot, &work.join("scepserver.log"));

    let mut s = Server::start();
    s.add_user("alice");
    // Certificates of 30 days are inside the 60-day renewal window at once: every renewal
    // path is allowed straight away.
    s.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);

    // A legacy agent (before mutual authentication) that migrates later.
    let legacy = work.join("legacy");
    s.register_ok(&legacy, "alice", "android", "agent", "10.1.0");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);

    // Agent registration, then renewal (the check-in asks for it).
    let phone = work.join("phone");
    let reg = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    assert_eq!(reg["mode"], "mutual", "{reg}");
    keys.keep("agent registration", &phone.join("key.pem"));
    let first = serial(work, &phone.join("cert.pem"));
    let c = s.checkin_ok(&phone);
    assert!(c["actions"].to_string().contains("renew"), "{c}");
    assert_ne!(serial(work, &phone.join("cert.pem")), first, "not renewed");
    keys.keep("agent renewal", &phone.join("key.pem"));

    // Migration of the legacy agent, then its first mutual-TLS check-in.
    s.admin_ok(&["policies", "set", "default", "--migrate-client", "true"]);
    let out = s.checkin(&legacy);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    assert_eq!(out.json["actions"][0]["type"], "migrate", "{}", out.stdout);
    keys.keep("agent migration", &legacy.join("key.pem"));
    s.admin_ok(&["policies", "set", "default", "--migrate-client", "false"]);

    // EST: simpleenroll with the user's password, simplereenroll over mutual TLS.
    let est_dir = work.join("est");
    std::fs::create_dir_all(&est_dir).unwrap();
    let (k1, csr1) = est_csr(&est_dir, "est1", EST_UUID);
    let c1 = est_dir.join("est1.pem");
    let auth = format!("alice:{}", common::PASSWORD);
    est(&s, &est_dir, "simpleenroll", &csr1, &["-u", &auth], &c1);
    keys.keep("EST simpleenroll", &k1);
    let (k2, csr2) = est_csr(&est_dir, "est2", EST_UUID);
    let c2 = est_dir.join("est2.pem");
    est(
        &s,
        &est_dir,
        "simplereenroll",
        &csr2,
        &["--cert", p(&c1), "--key", p(&k1)],
        &c2,
    );
    keys.keep("EST simplereenroll", &k2);
    let r = curl_checkin(&s, &c2, &k2);
    assert_eq!(r.status, 200, "{r:?}");

    // SCEP: PKCSReq with a one-time challenge, then RenewalReq (scepclient keeps its key).
    let scep_dir = work.join("scep");
    let challenge = scep::challenge(&s, "alice", "ios");
    let out = scep::scepclient(&s, &scep_dir, Some(&challenge));
    assert_eq!(out.code, 0, "scepclient: {out:?}\n{}", s.log());
    keys.keep("SCEP PKCSReq", &scep_dir.join("key.pem"));
    let scep_first = serial(work, &scep_dir.join("cert.pem"));
    let out = scep::scepclient(&s, &scep_dir, None);
    assert_eq!(out.code, 0, "scepclient renewal: {out:?}\n{}", s.log());
    assert_ne!(serial(work, &scep_dir.join("cert.pem")), scep_first);

    // The external CA: an agent registers through it (RSA key, CSR with the CA's
    // challenge), then renews through it.
    let url = format!("http://127.0.0.1:{}/scep", scepserver.port);
    s.admin_ok(&[
        "enrollment",
        "add-scep",
        "ext",
        "--url",
        &url,
        "--challenge",
        EXT_CHALLENGE,
        "--ca-fingerprint",
        &fingerprint,
    ]);
    s.admin_ok(&["enrollment", "select", "ext", "--confirm"]);
    let ext = work.join("ext-phone");
    let reg = s.register_ok(&ext, "alice", "android", "agent", "10.1.0");
    let ext_id = reg["device_id"].as_str().unwrap().to_owned();
    keys.keep("external CA registration", &ext.join("key.pem"));
    let issuer = openssl_ok(
        work,
        &["x509", "-noout", "-issuer", "-in", p(&ext.join("cert.pem"))],
    );
    assert!(issuer.stdout.contains("scep-ca"), "{issuer:?}");
    let c = s.checkin_ok(&ext);
    assert!(c["actions"].to_string().contains("renew"), "{c}");
    keys.keep("external CA renewal", &ext.join("key.pem"));
    let certs = s.admin_ok(&["certificates", "list", "--device", &ext_id]);
    assert_eq!(certs["total"], 2, "{certs}");

    // Every path left its certificates on the server.
    let all = s.admin_ok(&["certificates", "list", "--limit", "100"]);
    let reasons: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["issue_reason"].as_str().unwrap())
        .collect();
    for reason in [
        "registration",
        "renewal",
        "migration",
        "est",
        "est_renewal",
        "scep",
        "scep_renewal",
    ] {
        assert!(reasons.contains(&reason), "no {reason}: {all}");
    }

    // The server is stopped so that what it wrote is all on disk.
    s.stop();
    let log = s.log();
    drop(scepserver);

    let needles = device_key_needles(work, &keys);
    positive_control(&keys, &needles);

    let mut files = Vec::new();
    walk(&s.data_dir, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("ferrocore.db")),
        "{files:?}"
    );
    let mut findings: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let mut found = search(&bytes, &needles);
        if bytes.starts_with(b"SQLite format 3\0") {
            found.extend(search_database(work, file, &needles));
        }
        if !found.is_empty() {
            findings.insert(file.clone(), found);
        }
    }
    let log_found = search(log.as_bytes(), &needles);
    assert!(log_found.is_empty(), "the server log: {log_found:?}");

    // What may be found: Ferrocore's own keys, each in its file beside its certificate.
    let own: Vec<(PathBuf, PathBuf)> = [
        ("ca/ca.key", "ca/ca.pem"),
        ("ca/ocsp.key", "ca/ocsp.pem"),
        ("tls/server.key", "tls/server.pem"),
        ("scep/ra.key", "scep/ra.pem"),
        ("ca/ext/ra.key", "ca/ext/ra.pem"),
    ]
    .iter()
    .map(|(k, c)| (s.data_dir.join(k), s.data_dir.join(c)))
    .collect();
    for (key, cert) in &own {
        let kinds = findings
            .remove(key)
            .unwrap_or_else(|| panic!("{}: Ferrocore's key not detected", key.display()));
        assert!(
            kinds.iter().all(|k| k.starts_with("private key")),
            "{}: {kinds:?}",
            key.display()
        );
        let from_key = openssl_ok(work, &["pkey", "-pubout", "-in", p(key)]).stdout;
        let from_cert = openssl_ok(work, &["x509", "-noout", "-pubkey", "-in", p(cert)]).stdout;
        assert_eq!(
            from_key,
            from_cert,
            "{} is not the key of {}",
            key.display(),
            cert.display()
        );
    }
    assert!(
        findings.is_empty(),
        "private keys other than Ferrocore's own in the data directory: {findings:#?}"
    );
}

/// Every regular file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            walk(&entry.path(), out);
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
}

/// The byte strings by which a device key would be recognised, each with a description.
fn device_key_needles(work: &Path, keys: &DeviceKeys) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut needles = Vec::new();
    for (i, (name, pem)) in keys.pem.iter().enumerate() {
        let file = work.join(format!("needle-{i}.pem"));
        std::fs::write(&file, pem).unwrap();
        let der = |args: &[&str]| {
            let out = work.join(format!("needle-{i}.der"));
            let mut args = args.to_vec();
            args.extend_from_slice(&["-in", p(&file), "-outform", "DER", "-out", p(&out)]);
            openssl_ok(work, &args);
            std::fs::read(&out).unwrap()
        };
        let pkcs8 = der(&["pkcs8", "-topk8", "-nocrypt"]);
        // openssl's DER output of `pkey` is the traditional form: SEC1 or PKCS#1.
        let traditional = der(&["pkey"]);
        assert_eq!(classify(&pkcs8, 0), Some("PKCS#8 PrivateKeyInfo"), "{name}");
        let scalars = private_scalars(&traditional)
            .unwrap_or_else(|| panic!("{name}: no SEC1 / PKCS#1 structure"));
        let mut add = |what: &str, bytes: Vec<u8>| {
            assert!(bytes.len() >= 16, "{name} {what}: too short to search");
            needles.push((format!("{name}: {what}"), bytes));
        };
        add("PEM", pem.trim().as_bytes().to_vec());
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // The first line of a PKCS#8 body is mostly the algorithm (the same for every
        // P-256 key); the second is the key's own.
        add("PEM base64 line", body[1].as_bytes().to_vec());
        add("PKCS#8 DER", pkcs8.clone());
        add("PKCS#8 DER as base64", b64.encode(&pkcs8).into_bytes());
        add("SEC1/PKCS#1 DER", traditional.clone());
        add(
            "SEC1/PKCS#1 DER as base64",
            b64.encode(&traditional).into_bytes(),
        );
        for (what, scalar) in scalars {
            add(&format!("{what} (binary)"), scalar.clone());
            add(&format!("{what} (hex)"), hex_lower(&scalar).into_bytes());
            add(
                &format!("{what} (HEX)"),
                hex_lower(&scalar).to_ascii_uppercase().into_bytes(),
            );
        }
    }
    needles
}

/// The searches find each device key in each of its encodings: run over a blob holding them
/// all, every needle matches and every DER form is recognised as a private key.
fn positive_control(keys: &DeviceKeys, needles: &[(String, Vec<u8>)]) {
    assert!(keys.pem.len() >= 7, "{:?}", keys.pem.keys());
    let mut blob = b"padding".to_vec();
    for (_, bytes) in needles {
        blob.extend_from_slice(bytes);
        blob.extend_from_slice(b"\n--\n");
    }
    let found = search(&blob, needles);
    for (what, _) in needles {
        assert!(
            found.iter().any(|f| f == &format!("device key: {what}")),
            "the search misses {what}"
        );
    }
    for (what, bytes) in needles {
        if what.ends_with("DER") {
            let kinds = search(bytes, &[]);
            assert!(
                kinds.iter().any(|k| k.starts_with("private key: DER")),
                "{what} not recognised: {kinds:?}"
            );
        }
    }
    for pem in keys.pem.values() {
        let kinds = search(pem.as_bytes(), &[]);
        assert!(
            kinds.iter().any(|k| k.starts_with("private key: PEM")),
            "{kinds:?}"
        );
        assert!(
            kinds.iter().any(|k| k.starts_with("private key: DER")),
            "{kinds:?}"
        );
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What `bytes` holds: device-key needles found, PEM private-key blocks, and DER private-key
/// structures at any offset of the bytes and of every PEM block's decoded body.
fn search(bytes: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for i in needles_in(bytes, needles) {
        found.push(format!("device key: {}", needles[i].0));
    }
    for kind in der_private_keys(bytes) {
        found.push(format!("private key: DER {kind}"));
    }
    for (label, body) in pem_blocks(bytes) {
        if label.contains("PRIVATE KEY") {
            found.push(format!("private key: PEM {label}"));
        }
        for kind in der_private_keys(&body) {
            found.push(format!("private key: DER {kind} in PEM {label}"));
        }
        for i in needles_in(&body, needles) {
            found.push(format!("device key: {} in PEM {label}", needles[i].0));
        }
    }
    found
}

/// A SQLite database row by row (`sqlite3 .dump`): a value split over overflow pages is whole
/// here. BLOBs (`X'..'`) are decoded and searched like files; the text as it is.
fn search_database(work: &Path, db: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    // A copy: sqlite3 must not touch the server's files (WAL and SHM are copied along).
    let copy = work.join("dump.db");
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        let to = PathBuf::from(format!("{}{suffix}", copy.display()));
        let _ = std::fs::remove_file(&to);
        if from.exists() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&copy).arg(".dump");
    let out = run(cmd, None);
    assert_eq!(
        out.code, 0,
        "sqlite3 .dump (apt-get install sqlite3): {out:?}"
    );
    assert!(out.stdout.contains("CREATE TABLE"), "{}", out.stdout);
    let mut found: Vec<String> = search(out.stdout.as_bytes(), needles)
        .into_iter()
        .map(|f| format!("{f} (sqlite3 .dump)"))
        .collect();
    let mut blobs = 0;
    let text = out.stdout.as_bytes();
    let mut i = 0;
    while let Some(at) = find(&text[i..], b"X'") {
        let start = i + at + 2;
        let len = text[start..]
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(text.len() - start);
        if let Some(blob) = unhex(&text[start..start + len]) {
            blobs += 1;
            found.extend(
                search(&blob, needles)
                    .into_iter()
                    .map(|f| format!("{f} (a BLOB of {})", db.display())),
            );
        }
        i = start + len;
    }
    assert!(blobs > 0, "no BLOB in the dump: {}", out.stdout);
    found
}

fn unhex(h: &[u8]) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Indexes of the needles (each at least 16 bytes) that occur in `hay`: one pass, looking
/// every 8-byte window up among the needles' first 8 bytes.
fn needles_in(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<usize> {
    let mut by_prefix: std::collections::HashMap<&[u8], Vec<usize>> =
        std::collections::HashMap::new();
    for (i, (_, n)) in needles.iter().enumerate() {
        by_prefix.entry(&n[..8]).or_default().push(i);
    }
    let mut hit = vec![false; needles.len()];
    for at in 0..hay.len().saturating_sub(7) {
        if let Some(candidates) = by_prefix.get(&hay[at..at + 8]) {
            for &i in candidates {
                if hay[at..].starts_with(&needles[i].1) {
                    hit[i] = true;
                }
            }
        }
    }
    (0..needles.len()).filter(|&i| hit[i]).collect()
}

/// `-----BEGIN X-----` ... `-----END X-----` blocks: (label, decoded body). Bodies that do
/// not decode are skipped.
fn pem_blocks(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(b) = rest.find("-----BEGIN ") {
        let after = &rest[b + 11..];
        let Some(e) = after.find("-----") else { break };
        let label = after[..e].to_owned();
        let body_start = &after[e + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            out.push((label, Vec::new()));
            break;
        };
        // PEM inside JSON or SQL text may carry escaped line breaks.
        let body: String = body_start[..end]
            .replace("\\n", "\n")
            .replace("\\r", "\r")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/' || *c == '=')
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .unwrap_or_default();
        out.push((label, decoded));
        rest = &body_start[end + end_marker.len()..];
    }
    out
}

/// A DER TLV: (tag, content start, content end).
type Tlv = (u8, usize, usize);

/// One DER TLV at `at`, definite lengths only.
fn tlv(buf: &[u8], at: usize) -> Option<Tlv> {
    let tag = *buf.get(at)?;
    let l0 = *buf.get(at + 1)? as usize;
    let (len, header) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for k in 0..n {
            len = (len << 8) | *buf.get(at + 2 + k)? as usize;
        }
        (len, 2 + n)
    };
    let start = at + header;
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((tag, start, end))
}

/// Up to `max` children of the constructed value `start..end`; `None` if they do not parse.
/// The bool says whether the children fill the value exactly.
fn children(buf: &[u8], start: usize, end: usize, max: usize) -> Option<(Vec<Tlv>, bool)> {
    let mut kids = Vec::new();
    let mut at = start;
    while at < end && kids.len() < max {
        let (tag, s, e) = tlv(&buf[..end], at)?;
        kids.push((tag, s, e));
        at = e;
    }
    Some((kids, at == end))
}

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;

/// The private-key structure starting at `at`, if any: PKCS#8 PrivateKeyInfo (version 0 or
/// 1, an AlgorithmIdentifier, the key as OCTET STRING), SEC1 ECPrivateKey (version 1, a
/// 20-66 byte OCTET STRING, then only [0]/[1]) or PKCS#1 RSAPrivateKey (nine INTEGERs,
/// version 0).
fn classify(buf: &[u8], at: usize) -> Option<&'static str> {
    let (tag, s, e) = tlv(buf, at)?;
    if tag != SEQUENCE {
        return None;
    }
    let (kids, exact) = children(buf, s, e, 10)?;
    let int_is = |k: &Tlv, v: u8| k.0 == INTEGER && buf[k.1..k.2] == [v];
    if kids.len() >= 3
        && (int_is(&kids[0], 0) || int_is(&kids[0], 1))
        && kids[1].0 == SEQUENCE
        && tlv(buf, kids[1].1).is_some_and(|(t, _, _)| t == OID)
        && kids[2].0 == OCTET_STRING
    {
        return Some("PKCS#8 PrivateKeyInfo");
    }
    if exact
        && kids.len() >= 2
        && int_is(&kids[0], 1)
        && kids[1].0 == OCTET_STRING
        && (20..=66).contains(&(kids[1].2 - kids[1].1))
        && kids[2..].iter().all(|k| k.0 == 0xa0 || k.0 == 0xa1)
    {
        return Some("SEC1 ECPrivateKey");
    }
    if exact && kids.len() == 9 && int_is(&kids[0], 0) && kids.iter().all(|k| k.0 == INTEGER) {
        return Some("PKCS#1 RSAPrivateKey");
    }
    None
}

/// Every private-key structure at any offset of `buf`.
fn der_private_keys(buf: &[u8]) -> Vec<&'static str> {
    (0..buf.len())
        .filter(|&i| buf[i] == SEQUENCE)
        .filter_map(|i| classify(buf, i))
        .collect()
}

/// The secret numbers of a SEC1 or PKCS#1 key: EC `d`; RSA `d`, `p`, `q` (without the
/// INTEGER's leading zero).
fn private_scalars(der: &[u8]) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let kind = classify(der, 0)?;
    let (_, s, e) = tlv(der, 0)?;
    let (kids, _) = children(der, s, e, 10)?;
    let value = |i: usize| {
        let v = &der[kids[i].1..kids[i].2];
        let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        v.to_vec()
    };
    match kind {
        // An OCTET STRING of the curve's size: kept whole.
        "SEC1 ECPrivateKey" => Some(vec![(
            "EC private scalar d",
            der[kids[1].1..kids[1].2].to_vec(),
        )]),
        "PKCS#1 RSAPrivateKey" => Some(vec![
            ("RSA private exponent d", value(3)),
            ("RSA prime p", value(4)),
            ("RSA prime q", value(5)),
        ]),
        _ => None,
    }
}
