//! Black-box harness: runs the real `ferrocore` and `ferrocore-agent` binaries (and `curl` /
//! `openssl`) against a server listening on free loopback ports with its own data directory.
//!
//! Every test starts its own [`Server`]; nothing is shared between tests, so they run in
//! parallel. Waiting is always bounded: a process that does not answer in time is killed and
//! the test fails with the server log attached.

#![allow(dead_code)]

pub mod certmonger;
pub mod scep;
pub mod x509;

pub use ferrocore_client::{AdminClient, ClientError};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const FERROCORE: &str = env!("CARGO_BIN_EXE_ferrocore");
pub const AGENT: &str = env!("CARGO_BIN_EXE_ferrocore-agent");

/// Password of every test user (argon2 is slow in debug builds: create few users).
pub const PASSWORD: &str = "Alice-pass1";

/// How long the server may take to print "ferrocore ready".
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for any one command the tests run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one async call (an [`AdminClient`] method) to completion, bounded by
/// [`COMMAND_TIMEOUT`].
pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(COMMAND_TIMEOUT, fut)
                .await
                .expect("admin call within the time limit")
        })
}

/// The HTTP status and stable code of a refused admin call (panics on success or on a
/// failure that is not an API error).
pub fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The four listener ports of one server.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub device: u16,
    pub sync_tls: u16,
    pub admin: u16,
    pub storefront: u16,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Ports {
    /// Four distinct free loopback ports (all bound at once, then released).
    pub fn free() -> Ports {
        let ls: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let p: Vec<u16> = ls
            .iter()
            .map(|l| l.local_addr().expect("local_addr").port())
            .collect();
        Ports {
            device: p[0],
            sync_tls: p[1],
            admin: p[2],
            storefront: p[3],
        }
    }

    /// The `FERROCORE_*` variables that put the listeners on these ports.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "FERROCORE_LISTENERS_DEVICE".into(),
                format!("127.0.0.1:{}", self.device),
            ),
            (
                "FERROCORE_LISTENERS_SYNC_TLS".into(),
                format!("127.0.0.1:{}", self.sync_tls),
            ),
            (
                "FERROCORE_LISTENERS_ADMIN".into(),
                format!("127.0.0.1:{}", self.admin),
            ),
            (
                "FERROCORE_LISTENERS_STOREFRONT".into(),
                format!("127.0.0.1:{}", self.storefront),
            ),
            (
                "FERROCORE_SERVER_HOSTNAMES".into(),
                "localhost,127.0.0.1".into(),
            ),
        ]
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout parsed as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

impl Out {
    pub fn from_parts(status: ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> Out {
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        Out {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            json,
        }
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone)]
pub struct Http {
    /// HTTP status; 0 when there was no HTTP answer at all.
    pub status: u16,
    pub body: String,
    pub json: Value,
    /// curl's exit code and stderr (connection and TLS failures).
    pub curl_code: i32,
    pub curl_stderr: String,
}

impl Http {
    /// `error.code` of a standard error body.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Runs `cmd` to completion (stdin from `input`), killing it after [`COMMAND_TIMEOUT`].
pub fn run(mut cmd: Command, input: Option<&[u8]>) -> Out {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let out_reader = drain(child.stdout.take().expect("stdout"));
    let err_reader = drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, COMMAND_TIMEOUT)
        .unwrap_or_else(|| panic!("{desc} did not finish within {COMMAND_TIMEOUT:?}"));
    Out::from_parts(
        status,
        out_reader.join().expect("stdout reader"),
        err_reader.join().expect("stderr reader"),
    )
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Waits for `child` up to `limit` (polling); kills it and returns `None` on timeout.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A command with every inherited `FERROCORE_*` variable removed, so the caller's
/// environment cannot leak into a test.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FERROCORE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs `ferrocore serve` expecting start-up to fail: returns its output. If it becomes ready
/// instead, it is stopped and the test fails.
pub fn serve_expecting_failure(
    data_dir: &Path,
    extra_args: &[&str],
    env: &[(String, String)],
) -> Out {
    let mut cmd = clean_command(FERROCORE);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .envs(env.iter().cloned())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let out = run(cmd, None);
    assert!(
        !out.stdout.contains("ferrocore ready"),
        "serve started although it should have refused: {out:?}"
    );
    out
}

/// One running `ferrocore serve` with its own data directory and free loopback ports.
pub struct Server {
    tmp: TempDir,
    pub data_dir: PathBuf,
    pub ports: Ports,
    log_path: PathBuf,
    child: Option<Child>,
    /// The extra environment of `start_with_env`, kept for `restart`.
    extra_env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on free ports with a fresh data directory.
    pub fn start() -> Server {
        Self::start_with_env(&[])
    }

    /// Like [`Server::start`], with extra environment variables for `serve`.
    pub fn start_with_env(extra_env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("ferrocore-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = tmp.path().join("data");
        let log_path = tmp.path().join("server.log");
        let mut server = Server {
            tmp,
            data_dir,
            ports: Ports::free(),
            log_path,
            child: None,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // Another process may grab a port between our probe and the server's bind: pick new
        // ports and try again (a few times) when that happens.
        for attempt in 0.. {
            match server.spawn() {
                Ok(()) => return server,
                Err(log) if log.contains("Address already in use") && attempt < 4 => {
                    server.ports = Ports::free();
                }
                Err(log) => panic!("ferrocore serve did not become ready; log:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Starts a server on free ports with a copy of `data_dir` (taken while its server is
    /// stopped): a second node with the first one's keys and records.
    pub fn start_with_copy_of(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("ferrocore-e2e-")
            .tempdir()
            .expect("tempdir");
        let copy = tmp.path().join("data");
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(data_dir).arg(&copy);
        let out = run(cp, None);
        assert_eq!(out.code, 0, "cp -a: {out:?}");
        let mut server = Server {
            log_path: tmp.path().join("server.log"),
            data_dir: copy,
            tmp,
            ports: Ports::free(),
            child: None,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        if let Err(log) = server.spawn() {
            panic!("ferrocore serve did not become ready; log:\n{log}");
        }
        server
    }

    /// Spawns `serve` and waits for "ferrocore ready". `Err(log)` if it exits or times out.
    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let mut cmd = clean_command(FERROCORE);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .envs(self.ports.env())
            .envs(self.extra_env.iter().cloned())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn ferrocore serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads stdout for the whole life of the process (so it never blocks on a full pipe).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("ferrocore ready") {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(self.log())
            }
        }
    }

    /// Stops the server (SIGTERM, then kill) and starts it again on the same ports with the
    /// same data directory and extra environment.
    pub fn restart(&mut self) {
        self.stop();
        // The ports were ours a moment ago; retry briefly in case one is still being released.
        let mut last = String::new();
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => return,
                Err(log) => last = log,
            }
        }
        panic!("ferrocore serve did not restart; log:\n{last}");
    }

    /// [`Server::restart`] with another extra environment (kept for later restarts).
    pub fn restart_with_env(&mut self, extra_env: &[(&str, &str)]) {
        self.extra_env = extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.restart();
    }

    /// SIGTERM, wait (bounded), then kill. Returns the exit status if it exited by itself.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&mut child)
    }

    /// The server's stderr (its log) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A path inside the test's temporary directory (outside the data directory).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.data_dir.join("ca").join("ca.pem")
    }

    pub fn device_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.device)
    }

    pub fn sync_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.sync_tls)
    }

    pub fn admin_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.admin)
    }

    pub fn admin_token(&self) -> String {
        fs::read_to_string(self.data_dir.join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_owned()
    }

    /// `ferrocore admin --url ADMIN --data-dir DIR ARGS...`
    pub fn admin(&self, args: &[&str]) -> Out {
        let mut cmd = clean_command(FERROCORE);
        cmd.arg("admin")
            .arg("--url")
            .arg(self.admin_url())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args);
        run(cmd, None)
    }

    /// Like [`Server::admin`] but asserts exit 0 and returns the JSON.
    pub fn admin_ok(&self, args: &[&str]) -> Value {
        let out = self.admin(args);
        assert_eq!(
            out.code,
            0,
            "admin {args:?} failed: {out:?}\n{}",
            self.log()
        );
        out.json
    }

    /// `ferrocore-agent --state STATE ARGS...`
    pub fn agent(&self, state: &Path, args: &[&str]) -> Out {
        let mut cmd = clean_command(AGENT);
        cmd.arg("--state").arg(state).args(args);
        run(cmd, None)
    }

    /// Adds a local user with [`PASSWORD`].
    pub fn add_user(&self, name: &str) {
        let v = self.admin_ok(&["users", "add", name, "--password", PASSWORD]);
        assert_eq!(v["username"], name, "{v}");
    }

    /// `ferrocore-agent register` on the device listener as `user`.
    pub fn register(
        &self,
        state: &Path,
        user: &str,
        platform: &str,
        kind: &str,
        version: &str,
    ) -> Out {
        let ca = self.ca_pem();
        self.agent(
            state,
            &[
                "register",
                "--url",
                &self.device_url(),
                "--ca",
                ca.to_str().expect("utf-8 path"),
                "--user",
                user,
                "--password",
                PASSWORD,
                "--platform",
                platform,
                "--client-kind",
                kind,
                "--client-version",
                version,
            ],
        )
    }

    /// [`Server::register`], asserting success; returns the agent's state JSON.
    pub fn register_ok(
        &self,
        state: &Path,
        user: &str,
        platform: &str,
        kind: &str,
        version: &str,
    ) -> Value {
        let out = self.register(state, user, platform, kind, version);
        assert_eq!(
            out.code,
            0,
            "register {platform} {kind} {version} failed: {out:?}\n{}",
            self.log()
        );
        out.json
    }

    pub fn checkin(&self, state: &Path) -> Out {
        self.agent(state, &["checkin"])
    }

    /// Check-in that must succeed; returns the server's answer.
    pub fn checkin_ok(&self, state: &Path) -> Value {
        let out = self.checkin(state);
        assert_eq!(
            out.code,
            0,
            "check-in of {} failed: {out:?}\n{}",
            state.display(),
            self.log()
        );
        out.json
    }

    /// `admin devices list` (all devices).
    pub fn devices(&self) -> Value {
        self.admin_ok(&["devices", "list"])
    }

    pub fn device_total(&self) -> u64 {
        self.devices()["total"].as_u64().expect("devices total")
    }

    /// `admin grant list ARGS...`: the ids of the enrollment grants listed, in order.
    pub fn grant_ids(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["grant", "list"];
        all.extend_from_slice(args);
        let list = self.admin_ok(&all);
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("not a page: {list}"))
            .iter()
            .map(|g| g["id"].as_str().expect("grant id").to_owned())
            .collect()
    }

    /// The typed admin API client for this server (its token, its CA). Async: run its calls
    /// with [`block_on`].
    pub fn admin_client(&self) -> AdminClient {
        self.admin_client_with_token(&self.admin_token())
    }

    /// [`Server::admin_client`] presenting `token` instead of the server's.
    pub fn admin_client_with_token(&self, token: &str) -> AdminClient {
        let ca = fs::read_to_string(self.ca_pem()).expect("ca.pem");
        AdminClient::new(&self.admin_url(), &ca, token).expect("admin client")
    }

    /// One device from `admin devices list`, by id.
    pub fn device(&self, id: &str) -> Value {
        let list = self.devices();
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|d| d["device_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("device {id} not listed: {list}"))
    }

    /// Runs curl trusting the server's CA; `args` are extra curl arguments (URL included).
    pub fn curl(&self, args: &[&str]) -> Http {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.ca_pem())
            .args(["-w", "\n%{http_code}"])
            .args(args);
        let out = run(cmd, None);
        let (body, status) = out
            .stdout
            .rsplit_once('\n')
            .unwrap_or(("", out.stdout.as_str()));
        Http {
            status: status.trim().parse().unwrap_or(0),
            body: body.to_owned(),
            json: serde_json::from_str(body).unwrap_or(Value::Null),
            curl_code: out.code,
            curl_stderr: out.stderr,
        }
    }

    /// POST JSON `body` to the device listener's registration endpoint.
    pub fn curl_register(&self, body: &str) -> Http {
        let url = format!("{}/api/v1/register", self.device_url());
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &url,
        ])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `openssl ARGS...` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    run(cmd, None)
}

/// Like [`openssl`], asserting success.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> Out {
    let out = openssl(dir, args);
    assert_eq!(out.code, 0, "openssl {args:?} failed: {out:?}");
    out
}

/// Reads `state.json` of an agent state directory.
pub fn agent_state(state: &Path) -> Value {
    let text = fs::read_to_string(state.join("state.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", state.join("state.json").display()));
    serde_json::from_str(&text).expect("state.json is JSON")
}

/// Unix permission bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// SIGTERM (so a master process such as nginx's stops its workers too), wait up to
/// [`STOP_TIMEOUT`], then kill. Returns the exit status if the process exited by itself.
pub fn terminate(child: &mut Child) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    wait_bounded(child, STOP_TIMEOUT)
}

/// libfaketime (Debian package `faketime`, installed by `.ci/run`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A clock file read by libfaketime in every process started with [`FakeClock::env`]; moving
/// it moves their clocks (`FAKETIME_NO_CACHE`), the monotonic clock is left alone.
pub struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    /// A clock at the real now, its file in `dir`. Fails the test when libfaketime is missing.
    pub fn new(dir: &Path) -> FakeClock {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "libfaketime is missing: apt-get install -y faketime (.ci/run installs it)"
        );
        let clock = FakeClock {
            file: dir.join("faketime"),
        };
        clock.set_days(0);
        clock
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.into()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
        ]
    }

    /// Moves the clock to `days` after the real now.
    pub fn set_days(&self, days: i64) {
        std::fs::write(&self.file, format!("+{days}d\n")).unwrap();
    }
}

/// Set in the inner run of [`in_namespace`].
const NETNS_INNER: &str = "FERROCORE_E2E_NETNS_INNER";

/// Runs `scenario` in a new network namespace with only loopback up (for peers that bind
/// every interface, such as micromdm's `scepserver`): the outer run re-executes exactly the
/// test `name` (its path in the e2e binary, e.g. `extca::some_test`) under `unshare -n`; the
/// inner run calls `scenario`. Needs root or CAP_SYS_ADMIN.
pub fn in_namespace(name: &str, scenario: fn()) {
    if std::env::var_os(NETNS_INNER).is_some() {
        scenario();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_INNER, "1")
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

/// The ```sh blocks of the README section under `heading`, concatenated.
pub fn readme_block(heading: &str) -> String {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} not in README"));
    let section = &readme[at + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut out = String::new();
    let mut rest = section;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let end = body.find("```").unwrap();
        out.push_str(&body[..end]);
        rest = &body[end + 3..];
    }
    out
}

/// A server under libfaketime (a [`FakeClock`] in `dir`, at day 0) with `user`, mutual
/// authentication on and the default policy at 30-day certificates and a 10-day renewal
/// window: the window opens at day 20, expiry at day 30, the grace ends at day 60.
pub fn short_lifetime_server(dir: &Path, user: &str) -> (FakeClock, Server) {
    let clock = FakeClock::new(dir);
    let env = clock.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_with_env(&env_refs);
    s.add_user(user);
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let p = s.admin_ok(&[
        "policies",
        "set",
        "default",
        "--cert-lifetime-days",
        "30",
        "--renewal-window-days",
        "10",
    ]);
    assert_eq!(p["effective_renewal_window_days"], 10, "{p}");
    (clock, s)
}
