//! The `ferrocore-agent` command line.
//!
//! ```text
//! ferrocore-agent --state DIR register --url https://HOST:PORT --ca CA.pem --user U --password P \
//!     --platform android|ios|macos|windows --client-kind agent|mdm|appconnect|storefront \
//!     --client-version 10.1.0 [--device-uuid UUID]
//! ferrocore-agent --state DIR checkin
//! ferrocore-agent --state DIR status
//! ferrocore-agent swarm enroll --state DIR --url URL --ca CA.pem --user U --password P --devices N
//!     [--platform windows] [--client-kind agent] [--client-version 1.0] [--concurrency C] [--json]
//! ferrocore-agent swarm run --state DIR [--url https://HOST:PORT] [--ca EXTRA.pem] --concurrency C
//!     (--requests N | --duration SECS) [--rate PER_SEC] [--timeout SECS] [--threads T] [--json]
//!     [--max-error-rate PERCENT] [--give-up-after SECS]
//! ```
//!
//! Exit codes: 0 success; 2 the server answered with an API error (printed as
//! `error: <code>: <message>`); 1 any other failure (for `swarm run`: an error rate over
//! `--max-error-rate`, or a run that gave up).

use crate::device::{self, RegisterParams};
use crate::state::StateDir;
use crate::swarm::{self, EnrollOptions, Limit, RunOptions};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ferrocore_client::{ClientError, output};
use ferrocore_proto::{ClientKind, Platform};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Ferrocore reference device agent and load generator.
#[derive(Debug, Parser)]
#[command(name = "ferrocore-agent", version)]
pub struct Cli {
    /// State directory (one device; for `swarm`, the swarm's root).
    #[arg(long, global = true, env = "FERROCORE_AGENT_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register this device (new key, CSR) and store its credentials.
    Register(RegisterArgs),
    /// Check in once and print the server's answer (JSON).
    Checkin,
    /// Keep checking in at the policy's interval (or --interval), resuming the TLS session
    /// between check-ins; one JSON line per check-in.
    Run {
        /// Stop after this many check-ins (exit status 1 if any failed); default: forever.
        #[arg(long)]
        checkins: Option<u64>,
        /// Seconds between check-ins instead of the policy's check-in interval.
        #[arg(long, value_name = "SECS")]
        interval: Option<f64>,
    },
    /// Print the stored state and the certificate's expiry (no network).
    Status,
    /// AppConnect check-in of an app with this device's identity (JSON answer).
    AppconnectCheckin {
        /// Reverse-DNS app identifier, e.g. com.example.app.
        #[arg(long)]
        app_id: String,
    },
    /// Many devices: enrolment and load generation.
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// SCEP enrollments per second against a SCEP server (requests prepared up front; JSON).
    ScepBench(ScepBenchArgs),
}

#[derive(Debug, Args)]
pub struct ScepBenchArgs {
    /// SCEP endpoint, `http(s)://HOST:PORT/scep`.
    #[arg(long)]
    pub url: String,
    /// CA (PEM) of an https:// server.
    #[arg(long, value_name = "CA.pem")]
    pub ca: Option<PathBuf>,
    /// Challenge password put in every CSR (a static challenge).
    #[arg(
        long,
        required_unless_present = "challenges_file",
        conflicts_with = "challenges_file"
    )]
    pub challenge: Option<String>,
    /// One challenge per line, enrollment i using line i (one-time challenges: the path MDM
    /// enrollments take); at least as many lines as enrollments.
    #[arg(long, value_name = "FILE")]
    pub challenges_file: Option<PathBuf>,
    /// Parallel connections.
    #[arg(short = 'c', long, default_value_t = 8)]
    pub concurrency: usize,
    /// Enrollments.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub requests: usize,
    /// RSA keys to generate, used in turn (0: one per enrollment). Each enrollment still has
    /// its own CSR, signer certificate and transaction ID; fewer keys only shorten the
    /// preparation.
    #[arg(long, default_value_t = 0)]
    pub keys: usize,
}

/// Server and account arguments shared by `register` and `swarm enroll`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Device listener, `https://HOST:PORT`.
    #[arg(long)]
    pub url: String,
    /// PEM file with the CA that the server's certificate chains to.
    #[arg(long, value_name = "CA.pem")]
    pub ca: PathBuf,
    /// The user registering.
    #[arg(long)]
    pub user: String,
    /// The user's password.
    #[arg(long, env = "FERROCORE_PASSWORD", hide_env_values = true)]
    pub password: String,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The device's platform: android, ios, macos or windows.
    #[arg(long)]
    pub platform: Platform,
    /// The client speaking for the device: agent, mdm, appconnect or storefront.
    #[arg(long)]
    pub client_kind: ClientKind,
    /// The client's version, e.g. 10.1.0.
    #[arg(long)]
    pub client_version: String,
    /// Device uuid (default: the stored one, else a new random uuid).
    #[arg(long)]
    pub device_uuid: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Register N devices into `{state}/devices/NNNNN/`.
    Enroll(EnrollArgs),
    /// Check in round-robin over the enrolled devices, a new connection per request.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// How many devices to register.
    #[arg(long)]
    pub devices: u64,
    /// The devices' platform: android, ios, macos or windows.
    #[arg(long, default_value = "windows")]
    pub platform: Platform,
    /// The devices' client: agent, mdm, appconnect or storefront.
    #[arg(long, default_value = "agent")]
    pub client_kind: ClientKind,
    /// The devices' client version.
    #[arg(long, default_value = "1.0")]
    pub client_version: String,
    /// Registrations in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Runtime worker threads (default: number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("limit").required(true).args(["requests", "duration"])))]
pub struct RunArgs {
    /// Send check-ins to this `https://HOST:PORT` instead of each device's check-in endpoint.
    #[arg(long)]
    pub url: Option<String>,
    /// Extra trust anchors (PEM) for `--url`.
    #[arg(long, value_name = "CA.pem")]
    pub ca: Option<PathBuf>,
    /// Requests in flight.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Stop after this many requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Start at most this many requests per second (all workers together).
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Exit non-zero when more than this share of requests failed, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub max_error_rate: f64,
    /// Stop when no request has succeeded for this many seconds (a dead server).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub give_up_after: f64,
    /// Runtime worker threads (default: number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Let each device resume its previous TLS session (tickets) instead of a full handshake.
    #[arg(long)]
    pub resume: bool,
}

/// Entry point of the `ferrocore-agent` binary.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return Ok(ExitCode::from(code));
        }
    };
    Ok(match execute(cli) {
        Ok(code) => code,
        Err(e) => report_error(&e),
    })
}

/// Print an error the documented way and pick the exit code. A closed output pipe
/// (`... | head`) ends the command quietly.
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    if output::is_broken_pipe(e.as_ref()) {
        return ExitCode::SUCCESS;
    }
    let api = e
        .chain()
        .find_map(|c| match c.downcast_ref::<ClientError>() {
            Some(ClientError::Api { code, message, .. }) => Some((code, message)),
            _ => None,
        });
    match api {
        Some((code, message)) => {
            eprintln!("error: {code}: {message}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime(threads: Option<usize>, multi: bool) -> Result<tokio::runtime::Runtime> {
    let mut b = if multi {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(t) = threads.filter(|t| *t > 0) {
            b.worker_threads(t);
        }
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().context("starting the async runtime")
}

fn state_dir(cli_state: &Option<PathBuf>) -> Result<&Path> {
    cli_state.as_deref().context("--state DIR is required")
}

fn read_pem(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Run a parsed command line.
pub fn execute(cli: Cli) -> Result<ExitCode> {
    if let Command::ScepBench(args) = &cli.command {
        let opts = crate::scep_bench::BenchOptions {
            url: args.url.clone(),
            ca_pem: args.ca.as_deref().map(read_pem).transpose()?,
            challenges: match (&args.challenge, &args.challenges_file) {
                (_, Some(file)) => crate::scep_bench::Challenges::PerRequest(
                    read_pem(file)?
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                (Some(c), None) => crate::scep_bench::Challenges::Static(c.clone()),
                (None, None) => anyhow::bail!("--challenge or --challenges-file is required"),
            },
            concurrency: args.concurrency,
            requests: args.requests,
            keys: args.keys,
        };
        let report = runtime(None, true)?.block_on(crate::scep_bench::run(opts))?;
        output::print_json_line(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let state = state_dir(&cli.state)?;
    match cli.command {
        Command::Register(args) => {
            let ca_pem = read_pem(&args.server.ca)?;
            let dir = StateDir::new(state);
            let params = RegisterParams {
                url: args.server.url,
                username: args.server.user,
                password: args.server.password,
                platform: args.platform,
                client_kind: args.client_kind,
                client_version: args.client_version,
                device_uuid: args.device_uuid,
            };
            let st = runtime(None, false)?.block_on(async {
                let client = device::registration_client(&ca_pem)?;
                device::register(&dir, &params, &client, &ca_pem).await
            })?;
            output::print_json(&st)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkin => {
            let dir = StateDir::new(state);
            let resp = runtime(None, false)?.block_on(device::checkin(&dir))?;
            output::print_json(&resp)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { checkins, interval } => {
            let dir = StateDir::new(state);
            let fixed = interval
                .map(Duration::try_from_secs_f64)
                .transpose()
                .context("invalid --interval")?;
            let failed = runtime(None, false)?.block_on(run_loop(&dir, checkins, fixed))?;
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::AppconnectCheckin { app_id } => {
            let dir = StateDir::new(state);
            let resp = runtime(None, false)?.block_on(device::appconnect_checkin(&dir, &app_id))?;
            output::print_json(&resp)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let v = device::status(&StateDir::new(state))?;
            output::print_json(&v)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Swarm(SwarmCommand::Enroll(args)) => {
            let ca_pem = read_pem(&args.server.ca)?;
            let opts = EnrollOptions {
                state: state.to_path_buf(),
                params: RegisterParams {
                    url: args.server.url,
                    username: args.server.user,
                    password: args.server.password,
                    platform: args.platform,
                    client_kind: args.client_kind,
                    client_version: args.client_version,
                    device_uuid: None,
                },
                ca_pem,
                devices: args.devices,
                concurrency: args.concurrency,
            };
            let report = runtime(args.threads, true)?.block_on(swarm::enroll(opts))?;
            if args.json {
                output::print_json_line(&report)?;
            } else {
                let mut text = format!(
                    "enrolled {}/{} devices (mutual {}, legacy {}) in {:.3} s\n",
                    report.registered,
                    report.devices,
                    report.mutual,
                    report.legacy,
                    report.elapsed_secs
                );
                if report.errors > 0 {
                    let parts: Vec<String> = report
                        .errors_by_kind
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    text.push_str(&format!(
                        "errors: {} ({})\n",
                        report.errors,
                        parts.join(", ")
                    ));
                }
                output::print_text(&text)?;
            }
            if let Some(first) = &report.first_error {
                eprintln!("error: {first}");
            }
            Ok(match (report.errors, report.api_errors) {
                (0, _) => ExitCode::SUCCESS,
                (_, true) => ExitCode::from(2),
                (_, false) => ExitCode::from(1),
            })
        }
        Command::ScepBench(_) => unreachable!("handled above"),
        Command::Swarm(SwarmCommand::Run(args)) => {
            let limit = match (args.requests, args.duration) {
                (Some(n), _) => Limit::Requests(n),
                (None, Some(d)) => {
                    Limit::Duration(Duration::try_from_secs_f64(d).context("invalid --duration")?)
                }
                (None, None) => anyhow::bail!("one of --requests or --duration is required"),
            };
            let extra_ca_pem = args.ca.as_deref().map(read_pem).transpose()?;
            let opts = RunOptions {
                state: state.to_path_buf(),
                target: args.url,
                extra_ca_pem,
                concurrency: args.concurrency,
                limit,
                rate: args.rate,
                timeout: Duration::try_from_secs_f64(args.timeout).context("invalid --timeout")?,
                resume: args.resume,
                give_up_after: Duration::try_from_secs_f64(args.give_up_after)
                    .context("invalid --give-up-after")?,
            };
            if !(0.0..=100.0).contains(&args.max_error_rate) {
                anyhow::bail!("--max-error-rate is a percentage from 0 to 100");
            }
            let report = runtime(args.threads, true)?.block_on(swarm::run(opts))?;
            if args.json {
                output::print_json_line(&report)?;
            } else {
                output::print_text(&report.render())?;
            }
            if let Some(g) = &report.gave_up {
                eprintln!("error: gave up: {g}");
                return Ok(ExitCode::from(1));
            }
            if report.error_rate_percent > args.max_error_rate {
                eprintln!(
                    "error: {} of {} requests failed ({:.2} %, over --max-error-rate {} %)",
                    report.errors, report.requests, report.error_rate_percent, args.max_error_rate
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ferrocore-agent run`: check in, wait, repeat, keeping the TLS session between check-ins.
/// A failed check-in is reported and retried at the next interval; returns whether any failed.
async fn run_loop(dir: &StateDir, count: Option<u64>, fixed: Option<Duration>) -> Result<bool> {
    let sessions = device::Sessions::default();
    let mut failed = false;
    let mut n: u64 = 0;
    loop {
        n += 1;
        let wait = match device::checkin_with(dir, Some(&sessions)).await {
            Ok((resp, resumed)) => {
                let line =
                    serde_json::json!({"checkin": n, "tls_resumed": resumed, "answer": resp});
                println!("{line}");
                Duration::from_secs(resp.policy.checkin_interval_secs)
            }
            Err(e) => {
                failed = true;
                eprintln!("error: check-in {n}: {e:#}");
                // Retry sooner than a whole policy interval, but never in a tight loop.
                Duration::from_secs(60)
            }
        };
        if count.is_some_and(|c| n >= c) {
            return Ok(failed);
        }
        tokio::time::sleep(fixed.unwrap_or(wait)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferrocore-agent").chain(args.iter().copied()))
    }

    #[test]
    fn parses_register() {
        let cli = parse(&[
            "--state",
            "/tmp/d",
            "register",
            "--url",
            "https://h:8443",
            "--ca",
            "ca.pem",
            "--user",
            "alice",
            "--password",
            "pw",
            "--platform",
            "ios",
            "--client-kind",
            "appconnect",
            "--client-version",
            "10.1.0",
            "--device-uuid",
            "u-1",
        ])
        .unwrap();
        assert_eq!(cli.state.as_deref(), Some(Path::new("/tmp/d")));
        let Command::Register(r) = cli.command else {
            panic!("not register")
        };
        assert_eq!(r.server.url, "https://h:8443");
        assert_eq!(r.server.user, "alice");
        assert_eq!(r.server.password, "pw");
        assert_eq!(r.platform, Platform::Ios);
        assert_eq!(r.client_kind, ClientKind::Appconnect);
        assert_eq!(r.client_version, "10.1.0");
        assert_eq!(r.device_uuid.as_deref(), Some("u-1"));

        assert!(
            parse(&[
                "--state",
                "d",
                "register",
                "--url",
                "u",
                "--ca",
                "c",
                "--user",
                "u",
                "--password",
                "p",
                "--platform",
                "beos",
                "--client-kind",
                "agent",
                "--client-version",
                "1"
            ])
            .is_err()
        );
    }

    #[test]
    fn parses_checkin_and_status() {
        assert!(matches!(
            parse(&["--state", "d", "checkin"]).unwrap().command,
            Command::Checkin
        ));
        let cli = parse(&["status", "--state", "d"]).unwrap();
        assert!(matches!(cli.command, Command::Status));
        assert_eq!(cli.state.as_deref(), Some(Path::new("d")));
    }

    #[test]
    fn parses_swarm() {
        let cli = parse(&[
            "swarm",
            "enroll",
            "--state",
            "s",
            "--url",
            "https://h:1",
            "--ca",
            "ca.pem",
            "--user",
            "u",
            "--password",
            "p",
            "--devices",
            "100",
        ])
        .unwrap();
        assert_eq!(cli.state.as_deref(), Some(Path::new("s")));
        let Command::Swarm(SwarmCommand::Enroll(e)) = cli.command else {
            panic!("not enroll")
        };
        assert_eq!(e.devices, 100);
        assert_eq!(e.platform, Platform::Windows);
        assert_eq!(e.client_kind, ClientKind::Agent);
        assert_eq!(e.client_version, "1.0");
        assert_eq!(e.concurrency, 8);

        let cli = parse(&[
            "swarm",
            "run",
            "--state",
            "s",
            "--url",
            "https://nginx:8443",
            "--concurrency",
            "16",
            "--duration",
            "10",
            "--rate",
            "500",
            "--json",
        ])
        .unwrap();
        let Command::Swarm(SwarmCommand::Run(r)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.url.as_deref(), Some("https://nginx:8443"));
        assert_eq!(r.concurrency, 16);
        assert_eq!(r.duration, Some(10.0));
        assert_eq!(r.requests, None);
        assert_eq!(r.rate, Some(500.0));
        assert!(r.json);

        // Exactly one of --requests / --duration.
        assert!(parse(&["swarm", "run", "--state", "s", "--concurrency", "2"]).is_err());
        assert!(
            parse(&[
                "swarm",
                "run",
                "--state",
                "s",
                "--requests",
                "5",
                "--duration",
                "1"
            ])
            .is_err()
        );
        assert!(parse(&["swarm", "run", "--state", "s", "--requests", "5"]).is_ok());
    }

    #[test]
    fn missing_state_is_an_error() {
        let cli = parse(&["status"]).unwrap();
        let err = execute(cli).unwrap_err();
        assert!(err.to_string().contains("--state"));
    }

    #[test]
    fn api_errors_exit_with_2() {
        let e = anyhow::Error::from(ClientError::Api {
            status: 403,
            code: "device_retired".into(),
            message: "gone".into(),
        })
        .context("checking in");
        assert_eq!(report_error(&e), ExitCode::from(2));
        let e = anyhow::Error::from(ClientError::Timeout);
        assert_eq!(report_error(&e), ExitCode::from(1));
    }
}
