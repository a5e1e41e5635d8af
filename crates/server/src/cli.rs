//! The `ferrocore` command line: `serve`, and `admin ...`, a client of the admin API (token from
//! `DIR/admin-token`, server certificate checked against the CA in `DIR/ca/ca.pem`).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ferrocore_client::{ClientError, ClientOptions, TlsClient};
use ferrocore_proto::{
    AssignPolicy, NewEnrollmentConfig, NewUser, PolicyChange, PortSettingsRequest, RevokeRequest,
    SelectEnrollment,
};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ferrocore",
    version,
    about = "Ferrocore device-management core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (initialises DIR on first start).
    Serve {
        #[arg(long, default_value = "./ferrocore-data")]
        data_dir: PathBuf,
        /// TOML configuration file (also `FERROCORE_CONFIG`).
        #[arg(long, env = "FERROCORE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Administer a running server through its admin API.
    Admin(Box<AdminArgs>),
}

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Admin listener URL.
    #[arg(long, default_value = "https://localhost:8443")]
    pub url: String,
    /// The server's data directory (for admin-token and ca/ca.pem).
    #[arg(long, default_value = "./ferrocore-data")]
    pub data_dir: PathBuf,
    /// Admin token (overrides DIR/admin-token).
    #[arg(long, env = "FERROCORE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate to verify the server with (default DIR/ca/ca.pem).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show or change settings.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Local users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Registered devices.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Issued certificates.
    Certificates {
        #[command(subcommand)]
        command: CertificatesCommand,
    },
    /// Sync policies (check-in interval, certificate lifetime, renewal window, migration).
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Reports.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Run the expiry sweep now (it also runs hourly): retire devices past the renewal grace.
    Sweep,
    /// Enrollment configurations (certificate sources for mutual authentication).
    Enrollment {
        #[command(subcommand)]
        command: EnrollmentCommand,
    },
    /// The portal HTTPS certificate served on every listener.
    PortalCert {
        #[command(subcommand)]
        command: PortalCertCommand,
    },
    /// One-time EST enrollment tokens.
    EstToken {
        #[command(subcommand)]
        command: EstTokenCommand,
    },
    /// Apps published to the storefront.
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// SCEP challenge passwords.
    ScepChallenge {
        #[command(subcommand)]
        command: ScepChallengeCommand,
    },
    /// One-time enrollment grants (SCEP challenges and EST tokens): list, show, revoke.
    Grant {
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// Directory sources (Active Directory, LDAP): test, users, groups, failed attempts.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Service-account bind, lockout policy and timings of each source; with --user, the
    /// user's entry and groups (the user's password is never tried).
    Test {
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Users with their source (local or a directory) and state.
    Users,
    /// Groups allowed to enroll, group to policy mappings, lockout settings.
    Groups,
    /// Failed password attempts Ferrocore counts (in memory), optionally of one user.
    Attempts {
        #[arg(long)]
        user: Option<String>,
    },
    /// Forget a user's failed password attempts.
    ClearAttempts { user: String },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Grants, newest first (the secrets are never shown again).
    List {
        /// active | consumed | expired | revoked
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// scep | est
        #[arg(long)]
        protocol: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// One grant by its id.
    Show { id: String },
    /// Revoke an unused grant: from now on it is refused like an unknown one.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ScepChallengeCommand {
    /// A one-time challenge for one SCEP enrollment of USER's device (printed once, stored
    /// hashed; default lifetime 1h).
    Create(OneTimeGrantArgs),
    /// Set (replace) the static challenge of an enrollment configuration: each enrollment
    /// with it is a new device of USER on PLATFORM.
    SetStatic {
        #[arg(long)]
        config: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        platform: String,
    },
    /// Remove the static challenge of an enrollment configuration.
    ClearStatic {
        #[arg(long)]
        config: String,
    },
}

fn parse_platform(s: &str) -> Result<ferrocore_proto::Platform> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--platform {s:?}: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Publish a package (stored in DIR/apps/ with its SHA-256; at most 512 MiB).
    Publish {
        /// android | ios
        #[arg(long)]
        platform: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        file: PathBuf,
    },
    List {
        #[arg(long)]
        platform: Option<String>,
    },
    Remove {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PortalCertCommand {
    /// The certificate being served.
    Show,
    /// Replace it (validated, swapped without restart; the current one is kept for rollback).
    Upload {
        /// PEM chain: the server certificate first, then the intermediates.
        #[arg(long, requires = "key", conflicts_with = "pkcs12")]
        chain: Option<PathBuf>,
        /// PEM private key of the server certificate.
        #[arg(long, requires = "chain")]
        key: Option<PathBuf>,
        /// PKCS#12 file (key, certificate and chain).
        #[arg(long, required_unless_present = "chain")]
        pkcs12: Option<PathBuf>,
        /// Read the PKCS#12 password from standard input (first line).
        #[arg(long, requires = "pkcs12")]
        password_stdin: bool,
    },
    /// Go back to the previous certificate (again: forward to the replaced one).
    Rollback,
}

#[derive(Debug, Subcommand)]
pub enum EstTokenCommand {
    /// Create a one-time token for EST simpleenroll (shown once; only its hash is stored;
    /// default lifetime 24h, at most 30d).
    Create(OneTimeGrantArgs),
}

/// What a one-time enrollment credential (SCEP challenge, EST token) is bound to.
#[derive(Debug, clap::Args)]
pub struct OneTimeGrantArgs {
    #[arg(long)]
    user: String,
    /// android | ios | macos | windows
    #[arg(long)]
    platform: String,
    /// Bind the enrollment to this existing (or new) device UUID; a new device when absent.
    #[arg(long)]
    device_uuid: Option<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (30m, 12h, 7d).
    #[arg(long)]
    ttl: Option<String>,
}

/// A secret given as `--NAME VALUE` or read from standard input with `--NAME-stdin` (one
/// line; the trailing newline dropped), so it need not appear in the process list.
fn secret_arg(value: Option<String>, from_stdin: bool, name: &str) -> Result<String> {
    match (value, from_stdin) {
        (Some(v), _) => Ok(v),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Ok(s.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, false) => anyhow::bail!("give --{name} or --{name}-stdin"),
    }
}

/// `90`, `90s`, `15m`, `24h`, `7d` as seconds (SCEP challenges, EST tokens).
fn parse_ttl(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("--ttl {s:?}: expected a number with s, m, h or d"))?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => anyhow::bail!("--ttl {s:?}: unit must be s, m, h or d"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("--ttl {s:?}: too large"))
}

#[derive(Debug, Subcommand)]
pub enum EnrollmentCommand {
    List,
    /// Create a local-CA enrollment configuration (a new CA held by Ferrocore).
    Add {
        name: String,
    },
    /// Create an external SCEP CA configuration: Ferrocore forwards devices' CSRs to it as a
    /// registration authority. The CA certificate it serves must have this SHA-256.
    AddScep {
        name: String,
        /// The CA's SCEP URL, e.g. http://ca.example:8080/scep
        #[arg(long)]
        url: String,
        /// The CA's challenge password (visible in the process list: prefer --challenge-stdin).
        #[arg(long, conflicts_with = "challenge_stdin")]
        challenge: Option<String>,
        /// Read the challenge password from standard input.
        #[arg(long)]
        challenge_stdin: bool,
        /// SHA-256 fingerprint of the issuing CA certificate (hex, colons allowed); for an
        /// intermediate CA, the intermediate's, not the root's.
        #[arg(long)]
        ca_fingerprint: String,
        /// https:// URLs: PEM file of the CAs trusted for the SCEP endpoint's TLS server
        /// certificate (default: the system roots).
        #[arg(long)]
        tls_ca_bundle: Option<PathBuf>,
        /// PENDING answers: seconds between GetCertInitial polls (default 5).
        #[arg(long)]
        poll_interval_secs: Option<u64>,
        /// PENDING answers: total seconds to poll before giving up (default 30, 0: none).
        #[arg(long)]
        poll_max_wait_secs: Option<u64>,
    },
    /// Select the configuration mutual-auth identities come from. Without --confirm this is a
    /// dry run listing the devices that would have to register again.
    Select {
        name: String,
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    List,
    Show {
        name: String,
    },
    /// Create a policy (unset values come from the default policy).
    Add {
        name: String,
        #[command(flatten)]
        values: PolicyValues,
    },
    /// Change a policy.
    Set {
        name: String,
        #[command(flatten)]
        values: PolicyValues,
    },
    Remove {
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PolicyValues {
    #[arg(long)]
    checkin_interval_secs: Option<u64>,
    #[arg(long)]
    cert_lifetime_days: Option<u32>,
    /// Days before expiry a device may renew: 1 to 60; "" (blank) means 60.
    #[arg(long, allow_hyphen_values = true)]
    renewal_window_days: Option<String>,
    /// Migrate legacy agents to mutual authentication on their next check-in.
    #[arg(long)]
    migrate_client: Option<bool>,
}

impl PolicyValues {
    fn change(self) -> PolicyChange {
        PolicyChange {
            checkin_interval_secs: self.checkin_interval_secs,
            cert_lifetime_days: self.cert_lifetime_days,
            // Sent as text: the server validates and explains (1 to 60, blank = 60).
            renewal_window_days: self.renewal_window_days.map(Value::String),
            migrate_client: self.migrate_client,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Devices inside their renewal window or grace period that have not renewed, with the
    /// date each will be retired.
    RenewalAtRisk {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    Show,
    /// Mutual authentication (certificate authentication to the core).
    MutualAuth {
        #[arg(value_parser = ["enable", "disable"])]
        action: String,
    },
    /// App Storefront Authentication: password or certificate.
    StorefrontAuth {
        #[arg(value_parser = ["password", "certificate"])]
        mode: Option<String>,
    },
    /// The sync-TLS port (server-auth-only check-ins of legacy devices).
    SyncTls {
        #[arg(value_parser = ["enable", "disable"])]
        action: String,
        /// Disable even though legacy devices would lose contact.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    Add {
        username: String,
        /// Password (prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
    },
    List,
    Remove {
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Advanced search; filters combine. Times are Unix seconds.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        platform: Option<String>,
        #[arg(long)]
        client_kind: Option<String>,
        #[arg(long)]
        client_version: Option<String>,
        /// mutual | legacy
        #[arg(long)]
        mode: Option<String>,
        /// none | pending | success | not_supported
        #[arg(long)]
        migration_status: Option<String>,
        /// active | retired
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        cert_expires_after: Option<i64>,
        #[arg(long)]
        cert_expires_before: Option<i64>,
        /// Only devices inside their renewal window now.
        #[arg(long)]
        in_renewal_window: bool,
        #[arg(long)]
        last_checkin_after: Option<i64>,
        #[arg(long)]
        last_checkin_before: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    Show {
        id: String,
    },
    Retire {
        id: String,
    },
    /// Assign a sync policy to a device.
    SetPolicy {
        id: String,
        policy: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    List {
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    Revoke {
        serial: String,
        /// RFC 5280 reason, e.g. key_compromise.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Entry point of the `ferrocore` binary.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve { data_dir, config } => {
            init_logging();
            match rt.block_on(crate::serve(&data_dir, config.as_deref())) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("ferrocore: {e:#}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Admin(args) => match rt.block_on(admin(*args)) {
            Ok(v) => {
                if !v.is_null() {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                match e.downcast_ref::<ClientError>() {
                    Some(ClientError::Api { code, message, .. }) => {
                        eprintln!("error: {code}: {message}");
                    }
                    _ => eprintln!("error: {e:#}"),
                }
                Ok(ExitCode::from(2))
            }
        },
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn admin(args: AdminArgs) -> Result<Value> {
    let token = match args.token {
        Some(t) => t,
        None => {
            let p = args.data_dir.join("admin-token");
            std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read admin token (use --token)", p.display()))?
                .trim()
                .to_owned()
        }
    };
    let explicit_ca = args.ca.is_some();
    let ca_path = args
        .ca
        .unwrap_or_else(|| args.data_dir.join("ca").join("ca.pem"));
    let mut ca = std::fs::read_to_string(&ca_path)
        .with_context(|| format!("{}: cannot read CA certificate", ca_path.display()))?;
    if !explicit_ca {
        ca.push_str(&portal_roots(&args.data_dir));
    }
    let client = TlsClient::new(
        &ca,
        None,
        ClientOptions {
            bearer_token: Some(token),
            ..ClientOptions::default()
        },
    )?;
    let base = format!("{}/api/v1/admin", args.url.trim_end_matches('/'));
    let v: Value = match args.command {
        AdminCommand::Settings { command } => match command {
            SettingsCommand::Show => client.get_json(&format!("{base}/settings")).await?,
            SettingsCommand::MutualAuth { action } => {
                client
                    .post_json(
                        &format!("{base}/settings/mutual-auth/{action}"),
                        &Value::Null,
                    )
                    .await?
            }
            SettingsCommand::StorefrontAuth { mode } => match mode {
                None => {
                    client
                        .get_json(&format!("{base}/settings/storefront-auth"))
                        .await?
                }
                Some(mode) => {
                    client
                        .put_json(
                            &format!("{base}/settings/storefront-auth"),
                            &serde_json::json!({ "storefront_auth": mode }),
                        )
                        .await?
                }
            },
            SettingsCommand::SyncTls { action, force } => {
                client
                    .put_json(
                        &format!("{base}/settings/ports"),
                        &PortSettingsRequest {
                            sync_tls_enabled: action == "enable",
                            force,
                        },
                    )
                    .await?
            }
        },
        AdminCommand::Users { command } => match command {
            UsersCommand::Add {
                username,
                password,
                password_stdin,
                email,
            } => {
                let password = secret_arg(password, password_stdin, "password")?;
                client
                    .post_json(
                        &format!("{base}/users"),
                        &NewUser {
                            username,
                            password,
                            email,
                        },
                    )
                    .await?
            }
            UsersCommand::List => client.get_json(&format!("{base}/users")).await?,
            UsersCommand::Remove { username } => {
                client
                    .delete(&format!("{base}/users/{}", path_escape(&username)))
                    .await?
                    .empty()?;
                Value::Null
            }
        },
        AdminCommand::Devices { command } => match command {
            DevicesCommand::List {
                user,
                platform,
                client_kind,
                client_version,
                mode,
                migration_status,
                status,
                cert_expires_after,
                cert_expires_before,
                in_renewal_window,
                last_checkin_after,
                last_checkin_before,
                limit,
                offset,
            } => {
                let mut q = vec![format!("limit={limit}"), format!("offset={offset}")];
                let times = [
                    ("cert_expires_after", cert_expires_after),
                    ("cert_expires_before", cert_expires_before),
                    ("last_checkin_after", last_checkin_after),
                    ("last_checkin_before", last_checkin_before),
                ];
                let texts = [
                    ("username", user),
                    ("platform", platform),
                    ("client_kind", client_kind),
                    ("client_version", client_version),
                    ("mode", mode),
                    ("migration_status", migration_status),
                    ("status", status),
                ]
                .into_iter()
                .chain(
                    times
                        .into_iter()
                        .map(|(k, t)| (k, t.map(|t| t.to_string()))),
                )
                .chain([(
                    "in_renewal_window",
                    in_renewal_window.then(|| "true".into()),
                )]);
                for (k, v) in texts {
                    if let Some(v) = v {
                        q.push(format!("{k}={}", path_escape(&v)));
                    }
                }
                client
                    .get_json(&format!("{base}/devices?{}", q.join("&")))
                    .await?
            }
            DevicesCommand::Show { id } => {
                client
                    .get_json(&format!("{base}/devices/{}", path_escape(&id)))
                    .await?
            }
            DevicesCommand::SetPolicy { id, policy } => {
                client
                    .put_json(
                        &format!("{base}/devices/{}/policy", path_escape(&id)),
                        &AssignPolicy { policy },
                    )
                    .await?
            }
            DevicesCommand::Retire { id } => {
                client
                    .post_json(
                        &format!("{base}/devices/{}/retire", path_escape(&id)),
                        &Value::Null,
                    )
                    .await?
            }
        },
        AdminCommand::Certificates { command } => match command {
            CertificatesCommand::List {
                device,
                limit,
                offset,
            } => {
                let mut url = format!("{base}/certificates?limit={limit}&offset={offset}");
                if let Some(d) = device {
                    url.push_str(&format!("&device_id={}", path_escape(&d)));
                }
                client.get_json(&url).await?
            }
            CertificatesCommand::Revoke { serial, reason } => {
                client
                    .post_json(
                        &format!("{base}/certificates/{}/revoke", path_escape(&serial)),
                        &RevokeRequest { reason },
                    )
                    .await?
            }
        },
        AdminCommand::Policies { command } => match command {
            PoliciesCommand::List => client.get_json(&format!("{base}/policies")).await?,
            PoliciesCommand::Show { name } => {
                client
                    .get_json(&format!("{base}/policies/{}", path_escape(&name)))
                    .await?
            }
            PoliciesCommand::Add { name, values } => {
                client
                    .post_json(
                        &format!("{base}/policies/{}", path_escape(&name)),
                        &values.change(),
                    )
                    .await?
            }
            PoliciesCommand::Set { name, values } => {
                let resp = client
                    .request(
                        &format!("{base}/policies/{}", path_escape(&name)),
                        ferrocore_client::Method::PATCH,
                        &[("content-type", "application/json")],
                        serde_json::to_vec(&values.change())?,
                    )
                    .await?;
                resp.error_for_status()?.json()?
            }
            PoliciesCommand::Remove { name } => {
                client
                    .delete(&format!("{base}/policies/{}", path_escape(&name)))
                    .await?
                    .empty()?;
                Value::Null
            }
        },
        AdminCommand::Reports { command } => match command {
            ReportsCommand::RenewalAtRisk { limit, offset } => {
                client
                    .get_json(&format!(
                        "{base}/reports/renewal-at-risk?limit={limit}&offset={offset}"
                    ))
                    .await?
            }
        },
        AdminCommand::Enrollment { command } => match command {
            EnrollmentCommand::List => {
                client
                    .get_json(&format!("{base}/enrollment-configs"))
                    .await?
            }
            EnrollmentCommand::Add { name } => {
                client
                    .post_json(
                        &format!("{base}/enrollment-configs/{}", path_escape(&name)),
                        &NewEnrollmentConfig {
                            kind: "local_ca".into(),
                            ..NewEnrollmentConfig::default()
                        },
                    )
                    .await?
            }
            EnrollmentCommand::AddScep {
                name,
                url,
                challenge,
                challenge_stdin,
                ca_fingerprint,
                tls_ca_bundle,
                poll_interval_secs,
                poll_max_wait_secs,
            } => {
                let challenge = secret_arg(challenge, challenge_stdin, "challenge")?;
                let tls_ca_pem = match tls_ca_bundle {
                    Some(p) => Some(std::fs::read_to_string(&p).with_context(|| {
                        format!("--tls-ca-bundle {}: cannot read", p.display())
                    })?),
                    None => None,
                };
                client
                    .post_json(
                        &format!("{base}/enrollment-configs/{}", path_escape(&name)),
                        &NewEnrollmentConfig {
                            kind: "scep".into(),
                            url: Some(url),
                            challenge: Some(challenge),
                            ca_fingerprint: Some(ca_fingerprint),
                            tls_ca_pem,
                            poll_interval_secs,
                            poll_max_wait_secs,
                        },
                    )
                    .await?
            }
            EnrollmentCommand::Select { name, confirm } => {
                client
                    .put_json(
                        &format!("{base}/settings/mutual-auth/enrollment"),
                        &SelectEnrollment {
                            config: name,
                            confirm,
                        },
                    )
                    .await?
            }
        },
        AdminCommand::ScepChallenge { command } => match command {
            ScepChallengeCommand::Create(g) => {
                client
                    .post_json(
                        &format!("{base}/scep/challenges"),
                        &ferrocore_proto::NewScepChallenge {
                            platform: parse_platform(&g.platform)?,
                            ttl_secs: g.ttl.as_deref().map(parse_ttl).transpose()?,
                            username: g.user,
                            device_uuid: g.device_uuid,
                        },
                    )
                    .await?
            }
            ScepChallengeCommand::SetStatic {
                config,
                user,
                platform,
            } => {
                client
                    .put_json(
                        &format!("{base}/scep/static-challenges/{}", path_escape(&config)),
                        &ferrocore_proto::StaticScepChallenge {
                            username: user,
                            platform: parse_platform(&platform)?,
                        },
                    )
                    .await?
            }
            ScepChallengeCommand::ClearStatic { config } => {
                client
                    .delete(&format!(
                        "{base}/scep/static-challenges/{}",
                        path_escape(&config)
                    ))
                    .await?
                    .empty()?;
                serde_json::json!({ "cleared": config })
            }
        },
        AdminCommand::PortalCert { command } => match command {
            PortalCertCommand::Show => client.get_json(&format!("{base}/portal-cert")).await?,
            PortalCertCommand::Rollback => {
                client
                    .post_json(&format!("{base}/portal-cert/rollback"), &Value::Null)
                    .await?
            }
            PortalCertCommand::Upload {
                chain,
                key,
                pkcs12,
                password_stdin,
            } => {
                let read = |p: &PathBuf| {
                    std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))
                };
                let mut body = ferrocore_proto::PortalCertUpload::default();
                match (chain, key, pkcs12) {
                    (Some(c), Some(k), None) => {
                        body.chain_pem = Some(String::from_utf8_lossy(&read(&c)?).into_owned());
                        body.key_pem = Some(String::from_utf8_lossy(&read(&k)?).into_owned());
                    }
                    (None, None, Some(p)) => {
                        use base64::Engine as _;
                        body.pkcs12_base64 =
                            Some(base64::engine::general_purpose::STANDARD.encode(read(&p)?));
                        body.password = Some(if password_stdin {
                            let mut s = String::new();
                            std::io::stdin().read_to_string(&mut s)?;
                            s.lines().next().unwrap_or("").to_owned()
                        } else {
                            String::new()
                        });
                    }
                    _ => anyhow::bail!("give --chain and --key, or --pkcs12"),
                }
                client
                    .put_json(&format!("{base}/portal-cert"), &body)
                    .await?
            }
        },
        AdminCommand::Apps { command } => match command {
            AppsCommand::Publish {
                platform,
                name,
                version,
                file,
            } => {
                let data = std::fs::read(&file)
                    .with_context(|| format!("{}: cannot read", file.display()))?;
                let url = format!(
                    "{base}/apps?platform={}&name={}&version={}",
                    path_escape(&platform),
                    path_escape(&name),
                    path_escape(&version)
                );
                client
                    .request(
                        &url,
                        ferrocore_client::Method::POST,
                        &[("content-type", "application/octet-stream")],
                        data,
                    )
                    .await?
                    .error_for_status()?
                    .json()?
            }
            AppsCommand::List { platform } => {
                let mut url = format!("{base}/apps");
                if let Some(p) = platform {
                    url.push_str(&format!("?platform={}", path_escape(&p)));
                }
                client.get_json(&url).await?
            }
            AppsCommand::Remove { id } => {
                client
                    .delete(&format!("{base}/apps/{}", path_escape(&id)))
                    .await?
                    .empty()?;
                Value::Null
            }
        },
        AdminCommand::Grant { command } => match command {
            GrantCommand::List {
                state,
                user,
                protocol,
                limit,
                offset,
            } => {
                let mut url = format!("{base}/grants?limit={limit}&offset={offset}");
                for (name, v) in [("state", state), ("username", user), ("protocol", protocol)] {
                    if let Some(v) = v {
                        url.push_str(&format!("&{name}={}", path_escape(&v)));
                    }
                }
                client.get_json(&url).await?
            }
            GrantCommand::Show { id } => {
                client
                    .get_json(&format!("{base}/grants/{}", path_escape(&id)))
                    .await?
            }
            GrantCommand::Revoke { id } => {
                client
                    .post_json(
                        &format!("{base}/grants/{}/revoke", path_escape(&id)),
                        &Value::Null,
                    )
                    .await?
            }
        },
        AdminCommand::Directory { command } => {
            let q = |pairs: &[(&str, &Option<String>)]| -> String {
                let v: Vec<String> = pairs
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", path_escape(v))))
                    .collect();
                if v.is_empty() {
                    String::new()
                } else {
                    format!("?{}", v.join("&"))
                }
            };
            match command {
                DirectoryCommand::Test { source, user } => {
                    let query = q(&[("source", &source), ("user", &user)]);
                    client
                        .get_json(&format!("{base}/directory/test{query}"))
                        .await?
                }
                DirectoryCommand::Users => {
                    client.get_json(&format!("{base}/directory/users")).await?
                }
                DirectoryCommand::Groups => {
                    client.get_json(&format!("{base}/directory/groups")).await?
                }
                DirectoryCommand::Attempts { user } => {
                    let query = q(&[("user", &user)]);
                    client
                        .get_json(&format!("{base}/directory/attempts{query}"))
                        .await?
                }
                DirectoryCommand::ClearAttempts { user } => {
                    client
                        .delete_json(&format!("{base}/directory/attempts/{}", path_escape(&user)))
                        .await?
                }
            }
        }
        AdminCommand::EstToken { command } => match command {
            EstTokenCommand::Create(g) => {
                let ttl_secs = match g.ttl.as_deref().map(parse_ttl).transpose()? {
                    Some(t) => Some(i64::try_from(t).context("--ttl: too large")?),
                    None => None,
                };
                client
                    .post_json(
                        &format!("{base}/est-tokens"),
                        &ferrocore_proto::EstTokenRequest {
                            platform: parse_platform(&g.platform)?,
                            ttl_secs,
                            username: g.user,
                            device_uuid: g.device_uuid,
                        },
                    )
                    .await?
            }
        },
        AdminCommand::Sweep => {
            client
                .post_json(&format!("{base}/maintenance/sweep"), &Value::Null)
                .await?
        }
    };
    Ok(v)
}

/// Self-signed certificates at the end of the portal chains in `DIR/tls/` (an uploaded
/// certificate from a private CA), so the admin CLI keeps reaching the admin listener after
/// an upload or a rollback. The data directory is the administrator's own (0700).
fn portal_roots(data_dir: &std::path::Path) -> String {
    let mut out = String::new();
    for name in ["server.pem", "previous.pem"] {
        let Ok(text) = std::fs::read_to_string(data_dir.join("tls").join(name)) else {
            continue;
        };
        let Ok(ders) = ferrocore_pki_ders(&text) else {
            continue;
        };
        for der in ders {
            if let Ok((_, c)) = x509_parser::parse_x509_certificate(&der)
                && c.subject() == c.issuer()
                && c.is_ca()
            {
                out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", der)));
            }
        }
    }
    out
}

fn ferrocore_pki_ders(text: &str) -> Result<Vec<Vec<u8>>> {
    Ok(pem::parse_many(text)?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect())
}

/// Percent-escapes everything but unreserved characters.
fn path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
