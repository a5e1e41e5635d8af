//! Many devices: enrolment into `{state}/devices/NNNNN/` and the check-in load generator.
//!
//! `run` loads every device once (one rustls config per device, built up front), then replays
//! check-ins round-robin over the devices with `concurrency` workers. Each request is a new TCP
//! connection, with a full TLS handshake unless `--resume` lets each device resume its last
//! session (one session cache per device, as a real device has): mutual-mode devices
//! present their own certificate, legacy devices send their secret header.
//!
//! Against a dead or failing server (transport errors, timeouts, 5xx answers) each worker backs
//! off (50 ms doubling to 2 s, reset by a success), and the run gives up when no request has
//! succeeded for `give_up_after`; the CLI exits non-zero when the error rate passes
//! `--max-error-rate` (default 1 %).

use crate::device::{self, RegisterParams};
use crate::state::StateDir;
use anyhow::{Context, Result, bail};
use ferrocore_client::{ClientOptions, Method, TlsClient, Url};
use ferrocore_proto::{AuthMode, CheckinRequest, paths};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The directory of device `index` under a swarm state directory.
pub fn device_dir(state: &Path, index: u64) -> PathBuf {
    state.join("devices").join(format!("{index:05}"))
}

/// Options of `swarm enroll`.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub state: PathBuf,
    /// Template: `device_uuid` is ignored (each device keeps its stored uuid or gets a new one).
    pub params: RegisterParams,
    pub ca_pem: String,
    pub devices: u64,
    pub concurrency: usize,
}

/// Outcome of `swarm enroll`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnrollReport {
    pub devices: u64,
    pub registered: u64,
    pub mutual: u64,
    pub legacy: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Whether any error was an API error (a `{"error": ...}` answer).
    pub api_errors: bool,
    pub first_error: Option<String>,
    pub elapsed_secs: f64,
}

/// Register `devices` devices concurrently.
pub async fn enroll(opts: EnrollOptions) -> Result<EnrollReport> {
    let client = device::registration_client(&opts.ca_pem)?;
    let next = Arc::new(AtomicU64::new(0));
    let opts = Arc::new(opts);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency.max(1) {
        let (client, next, opts) = (client.clone(), next.clone(), opts.clone());
        tasks.spawn(async move {
            let mut report = EnrollReport::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.devices {
                    break;
                }
                let dir = StateDir::new(device_dir(&opts.state, i));
                let mut params = opts.params.clone();
                params.device_uuid = None;
                match device::register(&dir, &params, &client, &opts.ca_pem).await {
                    Ok(state) => {
                        report.registered += 1;
                        match state.mode {
                            AuthMode::Mutual => report.mutual += 1,
                            AuthMode::Legacy => report.legacy += 1,
                        }
                    }
                    Err(e) => {
                        let client_err = e
                            .chain()
                            .find_map(|c| c.downcast_ref::<ferrocore_client::ClientError>());
                        let label = client_err
                            .map_or_else(|| "other".to_string(), |c| c.label().into_owned());
                        if matches!(client_err, Some(ferrocore_client::ClientError::Api { .. })) {
                            report.api_errors = true;
                        }
                        report.errors += 1;
                        *report.errors_by_kind.entry(label).or_default() += 1;
                        if report.first_error.is_none() {
                            report.first_error = Some(format!("device {i:05}: {e:#}"));
                        }
                    }
                }
            }
            report
        });
    }
    let mut total = EnrollReport {
        devices: opts.devices,
        ..EnrollReport::default()
    };
    while let Some(r) = tasks.join_next().await {
        let r = r.context("enrolment worker panicked")?;
        total.registered += r.registered;
        total.mutual += r.mutual;
        total.legacy += r.legacy;
        total.errors += r.errors;
        total.api_errors |= r.api_errors;
        for (k, v) in r.errors_by_kind {
            *total.errors_by_kind.entry(k).or_default() += v;
        }
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(total)
}

/// When `swarm run` stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Requests(u64),
    Duration(Duration),
}

/// Options of `swarm run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub state: PathBuf,
    /// Send every check-in to this URL instead of each device's own check-in endpoint
    /// (`https://HOST:PORT` gets the check-in path appended; a URL with a path is used as is).
    pub target: Option<String>,
    /// Extra trust anchors (PEM) for the target.
    pub extra_ca_pem: Option<String>,
    pub concurrency: usize,
    pub limit: Limit,
    /// Global request start rate (requests per second).
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Each device keeps its TLS session and resumes it on its next check-in (a new
    /// connection per check-in either way); `false`: a full handshake every time.
    pub resume: bool,
    /// Stop when no request has succeeded for this long (a dead server).
    pub give_up_after: Duration,
}

/// First and longest pause of a worker after a failure of the server.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Whether an error says the server is failing (rather than refusing this one device).
fn server_failing(e: &ferrocore_client::ClientError) -> bool {
    use ferrocore_client::ClientError as E;
    match e {
        E::Api { status, .. } | E::Status { status, .. } => *status >= 500,
        E::Io(_) | E::Tls(_) | E::Http(_) | E::Timeout => true,
        _ => false,
    }
}

/// The pause after `consecutive` failures of the server in a row.
fn backoff(consecutive: u32) -> Duration {
    let factor = 1u32 << consecutive.saturating_sub(1).min(10);
    (BACKOFF_MIN * factor).min(BACKOFF_MAX)
}

/// One device ready to check in.
struct Prepared {
    client: TlsClient,
    url: Url,
    body: Vec<u8>,
}

/// Result of `swarm run` (also its `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub devices: usize,
    pub concurrency: usize,
    /// Requests sent (successes + errors).
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Failed requests (non-2xx answers, TLS/IO/timeouts).
    pub errors: u64,
    /// Errors by API error code (`certificate_revoked`, ...), `http_<status>` for non-2xx answers
    /// without an error body, or `tls`, `io`, `http`, `timeout`.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub elapsed_secs: f64,
    /// `requests / elapsed_secs`.
    pub requests_per_sec: f64,
    /// `ok / elapsed_secs`.
    pub ok_per_sec: f64,
    /// Latency of successful requests (connect + handshake + answer), milliseconds.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// `errors / requests` in percent (100 when nothing was sent).
    pub error_rate_percent: f64,
    /// Why the run stopped before its limit (no success for `give_up_after`).
    pub gave_up: Option<String>,
    /// Successful requests whose TLS handshake resumed a session (`--resume`).
    pub resumed: u64,
}

impl RunReport {
    /// Human-readable summary.
    pub fn render(&self) -> String {
        let errs = if self.errors_by_kind.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = self
                .errors_by_kind
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("  ({})", parts.join(", "))
        };
        format!(
            "devices:     {}\nconcurrency: {}\nrequests:    {}\nok:          {}\nerrors:      {}{errs}\n\
             elapsed:     {:.3} s\nrequests/s:  {:.1}\nlatency ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}\n",
            self.devices,
            self.concurrency,
            self.requests,
            self.ok,
            self.errors,
            self.elapsed_secs,
            self.requests_per_sec,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.mean_ms,
        ) + &self
            .gave_up
            .as_ref()
            .map(|g| format!("gave up:     {g}\n"))
            .unwrap_or_default()
    }
}

/// The list of enrolled device directories, in index order.
pub fn device_dirs(state: &Path) -> Result<Vec<PathBuf>> {
    let root = state.join("devices");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {} (run `swarm enroll` first)", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(crate::state::STATE_FILE).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no enrolled devices under {}", root.display());
    }
    Ok(dirs)
}

fn target_url(target: &str) -> Result<Url> {
    let mut url = Url::parse_https(target)?;
    if url.path == "/" {
        url.path = paths::CHECKIN.to_string();
    }
    Ok(url)
}

/// Load every device and build its client once.
async fn prepare(opts: &RunOptions) -> Result<Vec<Prepared>> {
    let dirs = device_dirs(&opts.state)?;
    let override_url = opts.target.as_deref().map(target_url).transpose()?;
    let mut roots: HashMap<String, Arc<rustls::RootCertStore>> = HashMap::new();
    let mut resolved: HashMap<(String, u16), SocketAddr> = HashMap::new();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let files = StateDir::new(&dir).load()?;
        let url = match &override_url {
            Some(u) => u.clone(),
            None => Url::parse_https(&files.state.checkin_url())?,
        };
        let mut trust = files.trust_pem();
        if let Some(extra) = &opts.extra_ca_pem {
            trust.push('\n');
            trust.push_str(extra);
        }
        let roots = match roots.get(&trust) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(ferrocore_client::root_store_from_pem(&trust)?);
                roots.insert(trust, r.clone());
                r
            }
        };
        let key = (url.host.clone(), url.port);
        let addr = match resolved.get(&key) {
            Some(a) => *a,
            None => {
                let a = tokio::net::lookup_host((url.host.as_str(), url.port))
                    .await
                    .with_context(|| format!("resolving {}", url.host))?
                    .next()
                    .with_context(|| format!("no address for {}", url.host))?;
                resolved.insert(key, a);
                a
            }
        };
        let creds = device::checkin_credentials(&files)
            .with_context(|| format!("device {}", dir.display()))?;
        let client = TlsClient::with_roots(
            roots,
            creds.identity.as_ref(),
            ClientOptions {
                session_resumption: opts.resume,
                timeout: Some(opts.timeout),
                connect_to: Some(addr),
                default_headers: creds.headers,
                ..ClientOptions::default()
            },
        )
        .with_context(|| format!("device {}", dir.display()))?;
        let body = serde_json::to_vec(&CheckinRequest {
            client_version: Some(files.state.client_version.clone()),
        })?;
        out.push(Prepared { client, url, body });
    }
    Ok(out)
}

#[derive(Default)]
struct WorkerStats {
    ok_latencies_us: Vec<u64>,
    resumed: u64,
    errors: HashMap<String, u64>,
}

/// Run the load generator.
pub async fn run(opts: RunOptions) -> Result<RunReport> {
    let devices = Arc::new(prepare(&opts).await?);
    let concurrency = opts.concurrency.max(1);
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let deadline = match opts.limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Requests(_) => None,
    };
    let max_requests = match opts.limit {
        Limit::Requests(n) => Some(n),
        Limit::Duration(_) => None,
    };
    let rate = opts.rate.filter(|r| *r > 0.0);
    // Milliseconds after `start` of the last success; set when giving up.
    let last_ok_ms = Arc::new(AtomicU64::new(0));
    let gave_up = Arc::new(AtomicBool::new(false));
    let give_up_ms = u64::try_from(opts.give_up_after.as_millis()).unwrap_or(u64::MAX);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (devices, next) = (devices.clone(), next.clone());
        let (last_ok_ms, gave_up) = (last_ok_ms.clone(), gave_up.clone());
        tasks.spawn(async move {
            let mut stats = WorkerStats::default();
            let headers = [("content-type", "application/json")];
            let mut consecutive: u32 = 0;
            loop {
                if gave_up.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if max_requests.is_some_and(|n| i >= n) {
                    break;
                }
                if let Some(r) = rate {
                    let at = start + Duration::from_secs_f64(i as f64 / r);
                    if deadline.is_some_and(|d| at >= d) {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                let len = devices.len() as u64;
                let Some(dev) = devices.get((i % len.max(1)) as usize) else {
                    break;
                };
                let t0 = Instant::now();
                let result = dev
                    .client
                    .request_url(&dev.url, Method::POST, &headers, dev.body.clone())
                    .await
                    .and_then(|r| r.error_for_status());
                let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                match result {
                    Ok(_) => {
                        consecutive = 0;
                        last_ok_ms.fetch_max(now_ms, Ordering::Relaxed);
                        stats
                            .ok_latencies_us
                            .push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                        if dev.client.last_handshake_resumed() {
                            stats.resumed += 1;
                        }
                    }
                    Err(e) => {
                        *stats.errors.entry(e.label().into_owned()).or_default() += 1;
                        if now_ms.saturating_sub(last_ok_ms.load(Ordering::Relaxed)) >= give_up_ms {
                            gave_up.store(true, Ordering::Relaxed);
                            break;
                        }
                        if server_failing(&e) {
                            consecutive = consecutive.saturating_add(1);
                            let pause = backoff(consecutive);
                            match deadline {
                                Some(d) => {
                                    tokio::time::sleep_until(
                                        d.min(tokio::time::Instant::now() + pause),
                                    )
                                    .await
                                }
                                None => tokio::time::sleep(pause).await,
                            }
                        }
                    }
                }
            }
            stats
        });
    }
    let mut latencies = Vec::new();
    let mut errors_by_kind = BTreeMap::new();
    let mut resumed = 0;
    while let Some(r) = tasks.join_next().await {
        let s = r.context("load worker panicked")?;
        latencies.extend(s.ok_latencies_us);
        resumed += s.resumed;
        for (k, v) in s.errors {
            *errors_by_kind.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut report = summarize(
        devices.len(),
        concurrency,
        latencies,
        errors_by_kind,
        elapsed,
    );
    report.resumed = resumed;
    if gave_up.load(Ordering::Relaxed) {
        report.gave_up = Some(format!(
            "no request succeeded for {:.1} s: is the server up?",
            opts.give_up_after.as_secs_f64()
        ));
    }
    Ok(report)
}

fn summarize(
    devices: usize,
    concurrency: usize,
    mut latencies_us: Vec<u64>,
    errors_by_kind: BTreeMap<String, u64>,
    elapsed_secs: f64,
) -> RunReport {
    latencies_us.sort_unstable();
    let ok = latencies_us.len() as u64;
    let errors: u64 = errors_by_kind.values().sum();
    let requests = ok + errors;
    let ms = |us: u64| us as f64 / 1000.0;
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p * latencies_us.len() as f64).ceil() as usize).clamp(1, latencies_us.len());
        latencies_us.get(rank - 1).copied().map_or(0.0, ms)
    };
    let mean_ms = if latencies_us.is_empty() {
        0.0
    } else {
        ms(latencies_us.iter().sum::<u64>()) / latencies_us.len() as f64
    };
    let per_sec = |n: u64| {
        if elapsed_secs > 0.0 {
            n as f64 / elapsed_secs
        } else {
            0.0
        }
    };
    RunReport {
        devices,
        concurrency,
        requests,
        ok,
        errors,
        errors_by_kind,
        elapsed_secs,
        requests_per_sec: per_sec(requests),
        ok_per_sec: per_sec(ok),
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: latencies_us.last().copied().map_or(0.0, ms),
        mean_ms,
        error_rate_percent: if requests == 0 {
            100.0
        } else {
            errors as f64 * 100.0 / requests as f64
        },
        gave_up: None,
        resumed: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        let lat: Vec<u64> = (1..=100).rev().map(|x| x * 1000).collect();
        let mut errs = BTreeMap::new();
        errs.insert("tls".to_string(), 5);
        errs.insert("certificate_revoked".to_string(), 15);
        let r = summarize(10, 4, lat, errs, 2.0);
        assert_eq!((r.requests, r.ok, r.errors), (120, 100, 20));
        assert_eq!(r.p50_ms, 50.0);
        assert_eq!(r.p90_ms, 90.0);
        assert_eq!(r.p99_ms, 99.0);
        assert_eq!(r.max_ms, 100.0);
        assert_eq!(r.mean_ms, 50.5);
        assert_eq!(r.requests_per_sec, 60.0);
        assert_eq!(r.ok_per_sec, 50.0);
        let json = serde_json::to_value(&r).unwrap();
        for k in [
            "requests",
            "errors",
            "errors_by_kind",
            "elapsed_secs",
            "requests_per_sec",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert!(r.render().contains("certificate_revoked: 15"));

        assert!((r.error_rate_percent - 20.0 * 100.0 / 120.0).abs() < 1e-9);
        let empty = summarize(1, 1, Vec::new(), BTreeMap::new(), 0.0);
        assert_eq!(empty.error_rate_percent, 100.0);
        assert_eq!(
            (empty.requests, empty.p99_ms, empty.requests_per_sec),
            (0, 0.0, 0.0)
        );
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_and_only_for_server_failures() {
        assert_eq!(backoff(1), BACKOFF_MIN);
        assert_eq!(backoff(2), BACKOFF_MIN * 2);
        assert_eq!(backoff(40), BACKOFF_MAX);
        use ferrocore_client::ClientError as E;
        assert!(server_failing(&E::Timeout));
        assert!(server_failing(&E::Status {
            status: 503,
            body: String::new()
        }));
        assert!(!server_failing(&E::Api {
            status: 403,
            code: "certificate_revoked".into(),
            message: String::new()
        }));
    }

    #[test]
    fn target_url_gets_checkin_path() {
        assert_eq!(
            target_url("https://127.0.0.1:8443").unwrap().path,
            "/api/v1/checkin"
        );
        assert_eq!(target_url("https://h:1/x").unwrap().path, "/x");
    }

    #[test]
    fn device_dirs_are_numbered_and_sorted() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(device_dirs(tmp.path()).is_err());
        for i in [2u64, 0, 10, 1] {
            let dir = StateDir::new(device_dir(tmp.path(), i));
            dir.save_state(&crate::state::tests_support::sample_state(AuthMode::Legacy))
                .unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("devices/junk")).unwrap();
        let names: Vec<String> = device_dirs(tmp.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["00000", "00001", "00002", "00010"]);
    }
}
