//! The `ferrocore` command line: `serve`, and `admin ...`, a thin layer over
//! [`ferrocore_client::AdminClient`] (token from `DIR/admin-token`, server certificate checked
//! against the CA in `DIR/ca/ca.pem`). Output is JSON with every time also in RFC 3339.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ferrocore_client::{AdminClient, ClientError, output};
use ferrocore_proto::{
    AppListQuery, CertListQuery, DeviceListQuery, EstTokenRequest, GrantListQuery,
    NewEnrollmentConfig, NewScepChallenge, NewUser, PageQuery, PolicyChange, PortSettingsRequest,
    PortalCertUpload, PublishQuery, RevokeRequest, SelectEnrollment, StaticScepChallenge,
    StorefrontAuth,
};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ferrocore device-management core: the server and its admin command line.
#[derive(Debug, Parser)]
#[command(name = "ferrocore", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (initialises DIR on first start).
    Serve {
        /// The data directory (CA, database, tokens, TLS material).
        #[arg(long, default_value = "./ferrocore-data", value_name = "DIR")]
        data_dir: PathBuf,
        /// Configuration file (TOML; also `FERROCORE_CONFIG`); FERROCORE_* variables override it.
        #[arg(long, value_name = "FILE", env = "FERROCORE_CONFIG")]
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
    #[arg(long, default_value = "./ferrocore-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Admin token (overrides DIR/admin-token).
    #[arg(long, env = "FERROCORE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate to verify the server with (default DIR/ca/ca.pem).
    #[arg(long, value_name = "CA.pem")]
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
    /// The database: sizes of its file and write-ahead log.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
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
        /// Only this directory source (its configured name).
        #[arg(long)]
        source: Option<String>,
        /// Also look this user up: entry, groups, policy (no bind as the user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Users with their source (local or a directory) and state.
    Users,
    /// Groups allowed to enroll, group to policy mappings, lockout settings.
    Groups,
    /// Failed password attempts Ferrocore counts (in memory), optionally of one user.
    Attempts {
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Forget a user's failed password attempts.
    ClearAttempts {
        /// The user whose attempts Ferrocore forgets (the directory's own count stays).
        user: String,
    },
}

/// `--limit` and `--offset` of a paged listing.
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// Most items to show (1 to 1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Items to skip.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Database and WAL sizes, the WAL limit, the largest WAL seen and its truncations.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Grants, newest first (the secrets are never shown again).
    List {
        /// Only grants in this state: active, consumed, expired or revoked.
        #[arg(long)]
        state: Option<String>,
        /// Only grants for this user.
        #[arg(long)]
        user: Option<String>,
        /// Only grants of this protocol: scep or est.
        #[arg(long)]
        protocol: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One grant by its id.
    Show {
        /// The grant's id.
        id: String,
    },
    /// Revoke an unused grant: from now on it is refused like an unknown one.
    Revoke {
        /// The grant's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScepChallengeCommand {
    /// A one-time challenge for one SCEP enrollment of USER's device (printed once, stored
    /// hashed; default lifetime 1h).
    Create(OneTimeGrantArgs),
    /// Set (replace) the static challenge of an enrollment configuration: each enrollment
    /// with it is a new device of USER on PLATFORM.
    SetStatic {
        /// The enrollment configuration.
        #[arg(long)]
        config: String,
        /// The user the enrolled devices belong to.
        #[arg(long)]
        user: String,
        /// The enrolled devices' platform: android, ios, macos or windows.
        #[arg(long, value_parser = parse_platform)]
        platform: ferrocore_proto::Platform,
    },
    /// Remove the static challenge of an enrollment configuration.
    ClearStatic {
        /// The enrollment configuration.
        #[arg(long)]
        config: String,
    },
}

fn parse_platform(s: &str) -> Result<ferrocore_proto::Platform, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Publish a package (stored in DIR/apps/ with its SHA-256; at most 512 MiB).
    Publish {
        /// android or ios.
        #[arg(long)]
        platform: String,
        /// The app's name as the storefront lists it.
        #[arg(long)]
        name: String,
        /// The app's version.
        #[arg(long)]
        version: String,
        /// The package file.
        #[arg(long)]
        file: PathBuf,
    },
    /// The published apps.
    List {
        /// Only the apps of this platform.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Remove a published app (its package is deleted).
    Remove {
        /// The app's id.
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
    /// The user the enrolled device belongs to.
    #[arg(long)]
    user: String,
    /// The device's platform: android, ios, macos or windows.
    #[arg(long, value_parser = parse_platform)]
    platform: ferrocore_proto::Platform,
    /// Bind the enrollment to this existing (or new) device UUID; a new device when absent.
    #[arg(long)]
    device_uuid: Option<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (30m, 12h, 7d).
    #[arg(long, value_parser = parse_ttl)]
    ttl: Option<u64>,
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
fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with s, m, h or d"))?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// A time given as RFC 3339 (`2026-12-01T00:00:00Z`) or as Unix seconds, as Unix seconds.
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{s:?}: expected RFC 3339 (2026-12-01T00:00:00Z) or Unix seconds"))
}

#[derive(Debug, Subcommand)]
pub enum EnrollmentCommand {
    /// The enrollment configurations (which one is selected, their CAs).
    List,
    /// Create a local-CA enrollment configuration (a new CA held by Ferrocore).
    Add {
        /// The configuration's name.
        name: String,
    },
    /// Create an external SCEP CA configuration: Ferrocore forwards devices' CSRs to it as a
    /// registration authority. The CA certificate it serves must have this SHA-256.
    AddScep {
        /// The configuration's name.
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
        /// The configuration's name.
        name: String,
        /// Apply the change (without it: a dry run).
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// The sync policies.
    List,
    /// One policy.
    Show {
        /// The policy's name.
        name: String,
    },
    /// Create a policy (unset values come from the default policy).
    Add {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        values: PolicyValues,
    },
    /// Change a policy.
    Set {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        values: PolicyValues,
    },
    /// Remove a policy no device uses.
    Remove {
        /// The policy's name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PolicyValues {
    /// Seconds between a device's check-ins.
    #[arg(long)]
    checkin_interval_secs: Option<u64>,
    /// Lifetime of issued identity certificates, in days.
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
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// All settings.
    Show,
    /// Mutual authentication (certificate authentication to the core).
    MutualAuth {
        /// enable or disable.
        #[arg(value_parser = ["enable", "disable"])]
        action: String,
    },
    /// App Storefront Authentication: show it, or set it to password or certificate.
    StorefrontAuth {
        /// password or certificate (absent: show the setting).
        #[arg(value_parser = ["password", "certificate"])]
        mode: Option<String>,
    },
    /// The sync-TLS port (server-auth-only check-ins of legacy devices).
    SyncTls {
        /// enable or disable.
        #[arg(value_parser = ["enable", "disable"])]
        action: String,
        /// Disable even though legacy devices would lose contact.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a local user.
    Add {
        /// The user name.
        username: String,
        /// Password (prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The user's e-mail address.
        #[arg(long)]
        email: Option<String>,
    },
    /// The local users.
    List,
    /// Remove a local user.
    Remove {
        /// The user name.
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Advanced search; filters combine. Times are RFC 3339 or Unix seconds.
    List(Box<DeviceListArgs>),
    /// One device with its certificates and recent check-ins.
    Show {
        /// The device's id.
        id: String,
    },
    /// Retire a device: its certificates are revoked and it must register again.
    Retire {
        /// The device's id.
        id: String,
    },
    /// Assign a sync policy to a device.
    SetPolicy {
        /// The device's id.
        id: String,
        /// The policy's name.
        policy: String,
    },
}

/// The filters of `devices list`.
#[derive(Debug, clap::Args)]
pub struct DeviceListArgs {
    /// Only devices of this user.
    #[arg(long)]
    user: Option<String>,
    /// Only devices of this platform: android, ios, macos or windows.
    #[arg(long)]
    platform: Option<String>,
    /// Only devices with this client: agent, mdm, appconnect or storefront.
    #[arg(long)]
    client_kind: Option<String>,
    /// Only devices with this client version.
    #[arg(long)]
    client_version: Option<String>,
    /// Only devices in this mode: mutual or legacy.
    #[arg(long)]
    mode: Option<String>,
    /// Only devices with this migration status: none, pending, success or not_supported.
    #[arg(long)]
    migration_status: Option<String>,
    /// Only devices with this status: active or retired.
    #[arg(long)]
    status: Option<String>,
    /// Only devices whose certificate expires after this time.
    #[arg(long, value_parser = parse_time)]
    cert_expires_after: Option<i64>,
    /// Only devices whose certificate expires before this time.
    #[arg(long, value_parser = parse_time)]
    cert_expires_before: Option<i64>,
    /// Only devices inside their renewal window now.
    #[arg(long)]
    in_renewal_window: bool,
    /// Only devices that checked in after this time.
    #[arg(long, value_parser = parse_time)]
    last_checkin_after: Option<i64>,
    /// Only devices that checked in before this time.
    #[arg(long, value_parser = parse_time)]
    last_checkin_before: Option<i64>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    /// Issued certificates, newest first.
    List {
        /// Only the certificates of this device (its id).
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke a certificate (published in the CRL and by OCSP).
    Revoke {
        /// The certificate's serial number (hex).
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
        Command::Admin(args) => {
            let result = rt.block_on(admin(*args)).and_then(|v| match v {
                Value::Null => Ok(()),
                v => Ok(output::print_json(&v)?),
            });
            Ok(match result {
                Ok(()) => ExitCode::SUCCESS,
                // The reader of our output has gone (`... | head`): nothing more to say.
                Err(e) if output::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
                Err(e) => {
                    match e.downcast_ref::<ClientError>() {
                        Some(ClientError::Api { code, message, .. }) => {
                            eprintln!("error: {code}: {message}");
                        }
                        _ => eprintln!("error: {e:#}"),
                    }
                    ExitCode::from(2)
                }
            })
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colours(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Colour codes only on a terminal, and never when `NO_COLOR` is set to anything non-empty
/// (no-color.org).
fn log_colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The admin client of `args`: URL, token (argument or `DIR/admin-token`) and trust anchors
/// (`--ca`, else `DIR/ca/ca.pem` plus the roots of an uploaded portal certificate).
pub fn admin_client(args: &AdminArgs) -> Result<AdminClient> {
    let token = match &args.token {
        Some(t) => t.clone(),
        None => {
            let p = args.data_dir.join("admin-token");
            std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read admin token (use --token)", p.display()))?
                .trim()
                .to_owned()
        }
    };
    let ca_path = args
        .ca
        .clone()
        .unwrap_or_else(|| args.data_dir.join("ca").join("ca.pem"));
    let mut ca = std::fs::read_to_string(&ca_path)
        .with_context(|| format!("{}: cannot read CA certificate", ca_path.display()))?;
    if args.ca.is_none() {
        ca.push_str(&portal_roots(&args.data_dir));
    }
    Ok(AdminClient::new(&args.url, &ca, &token)?)
}

/// JSON of an answer, for printing.
fn json(v: impl Serialize) -> Result<Value> {
    Ok(serde_json::to_value(v)?)
}

fn read_file(p: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))
}

/// Runs one admin command; the answer as JSON (`null`: nothing to print).
async fn admin(args: AdminArgs) -> Result<Value> {
    let c = admin_client(&args)?;
    let page = |p: PageArgs| PageQuery {
        limit: Some(p.limit),
        offset: Some(p.offset),
    };
    match args.command {
        AdminCommand::Settings { command } => match command {
            SettingsCommand::Show => json(c.settings().await?),
            SettingsCommand::MutualAuth { action } if action == "enable" => {
                json(c.enable_mutual_auth().await?)
            }
            SettingsCommand::MutualAuth { .. } => json(c.disable_mutual_auth().await?),
            SettingsCommand::StorefrontAuth { mode: None } => json(c.storefront_auth().await?),
            SettingsCommand::StorefrontAuth { mode: Some(mode) } => {
                let mode: StorefrontAuth = mode.parse().map_err(anyhow::Error::msg)?;
                json(c.set_storefront_auth(mode).await?)
            }
            SettingsCommand::SyncTls { action, force } => json(
                c.set_ports(&PortSettingsRequest {
                    sync_tls_enabled: action == "enable",
                    force,
                })
                .await?,
            ),
        },
        AdminCommand::Users { command } => match command {
            UsersCommand::Add {
                username,
                password,
                password_stdin,
                email,
            } => {
                let password = secret_arg(password, password_stdin, "password")?;
                json(
                    c.add_user(&NewUser {
                        username,
                        password,
                        email,
                    })
                    .await?,
                )
            }
            UsersCommand::List => json(c.users().await?),
            UsersCommand::Remove { username } => {
                c.remove_user(&username).await?;
                Ok(Value::Null)
            }
        },
        AdminCommand::Devices { command } => match command {
            DevicesCommand::List(a) => json(
                c.devices(&DeviceListQuery {
                    username: a.user,
                    platform: a.platform,
                    client_kind: a.client_kind,
                    client_version: a.client_version,
                    mode: a.mode,
                    migration_status: a.migration_status,
                    status: a.status,
                    cert_expires_after: a.cert_expires_after,
                    cert_expires_before: a.cert_expires_before,
                    in_renewal_window: a.in_renewal_window.then_some(true),
                    last_checkin_after: a.last_checkin_after,
                    last_checkin_before: a.last_checkin_before,
                    limit: Some(a.page.limit),
                    offset: Some(a.page.offset),
                })
                .await?,
            ),
            DevicesCommand::Show { id } => json(c.device(&id).await?),
            DevicesCommand::SetPolicy { id, policy } => json(c.assign_policy(&id, &policy).await?),
            DevicesCommand::Retire { id } => json(c.retire_device(&id).await?),
        },
        AdminCommand::Certificates { command } => match command {
            CertificatesCommand::List { device, page: p } => json(
                c.certificates(&CertListQuery {
                    device_id: device,
                    limit: Some(p.limit),
                    offset: Some(p.offset),
                })
                .await?,
            ),
            CertificatesCommand::Revoke { serial, reason } => json(
                c.revoke_certificate(&serial, &RevokeRequest { reason })
                    .await?,
            ),
        },
        AdminCommand::Policies { command } => match command {
            PoliciesCommand::List => json(c.policies().await?),
            PoliciesCommand::Show { name } => json(c.policy(&name).await?),
            PoliciesCommand::Add { name, values } => {
                json(c.create_policy(&name, &values.change()).await?)
            }
            PoliciesCommand::Set { name, values } => {
                json(c.change_policy(&name, &values.change()).await?)
            }
            PoliciesCommand::Remove { name } => {
                c.delete_policy(&name).await?;
                Ok(Value::Null)
            }
        },
        AdminCommand::Reports { command } => match command {
            ReportsCommand::RenewalAtRisk { page: p } => json(c.renewal_at_risk(&page(p)).await?),
        },
        AdminCommand::Enrollment { command } => match command {
            EnrollmentCommand::List => json(c.enrollment_configs().await?),
            EnrollmentCommand::Add { name } => json(
                c.add_enrollment_config(
                    &name,
                    &NewEnrollmentConfig {
                        kind: "local_ca".into(),
                        ..NewEnrollmentConfig::default()
                    },
                )
                .await?,
            ),
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
                let config = NewEnrollmentConfig {
                    kind: "scep".into(),
                    url: Some(url),
                    challenge: Some(challenge),
                    ca_fingerprint: Some(ca_fingerprint),
                    tls_ca_pem,
                    poll_interval_secs,
                    poll_max_wait_secs,
                };
                json(c.add_enrollment_config(&name, &config).await?)
            }
            EnrollmentCommand::Select { name, confirm } => json(
                c.select_enrollment(&SelectEnrollment {
                    config: name,
                    confirm,
                })
                .await?,
            ),
        },
        AdminCommand::ScepChallenge { command } => match command {
            ScepChallengeCommand::Create(g) => json(
                c.create_scep_challenge(&NewScepChallenge {
                    platform: g.platform,
                    ttl_secs: g.ttl,
                    username: g.user,
                    device_uuid: g.device_uuid,
                })
                .await?,
            ),
            ScepChallengeCommand::SetStatic {
                config,
                user,
                platform,
            } => json(
                c.set_static_scep_challenge(
                    &config,
                    &StaticScepChallenge {
                        username: user,
                        platform,
                    },
                )
                .await?,
            ),
            ScepChallengeCommand::ClearStatic { config } => {
                c.clear_static_scep_challenge(&config).await?;
                Ok(serde_json::json!({ "cleared": config }))
            }
        },
        AdminCommand::PortalCert { command } => match command {
            PortalCertCommand::Show => json(c.portal_cert().await?),
            PortalCertCommand::Rollback => json(c.rollback_portal_cert().await?),
            PortalCertCommand::Upload {
                chain,
                key,
                pkcs12,
                password_stdin,
            } => {
                let mut body = PortalCertUpload::default();
                match (chain, key, pkcs12) {
                    (Some(ch), Some(k), None) => {
                        body.chain_pem = Some(String::from_utf8_lossy(&read_file(&ch)?).into());
                        body.key_pem = Some(String::from_utf8_lossy(&read_file(&k)?).into());
                    }
                    (None, None, Some(p)) => {
                        use base64::Engine as _;
                        body.pkcs12_base64 =
                            Some(base64::engine::general_purpose::STANDARD.encode(read_file(&p)?));
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
                json(c.upload_portal_cert(&body).await?)
            }
        },
        AdminCommand::Apps { command } => match command {
            AppsCommand::Publish {
                platform,
                name,
                version,
                file,
            } => {
                let package = read_file(&file)?;
                let q = PublishQuery {
                    platform,
                    name,
                    version,
                };
                json(c.publish_app(&q, package).await?)
            }
            AppsCommand::List { platform } => json(c.apps(&AppListQuery { platform }).await?),
            AppsCommand::Remove { id } => {
                c.remove_app(&id).await?;
                Ok(Value::Null)
            }
        },
        AdminCommand::Grant { command } => match command {
            GrantCommand::List {
                state,
                user,
                protocol,
                page: p,
            } => json(
                c.grants(&GrantListQuery {
                    state,
                    username: user,
                    protocol,
                    limit: Some(p.limit),
                    offset: Some(p.offset),
                })
                .await?,
            ),
            GrantCommand::Show { id } => json(c.grant(&id).await?),
            GrantCommand::Revoke { id } => json(c.revoke_grant(&id).await?),
        },
        AdminCommand::Directory { command } => match command {
            DirectoryCommand::Test { source, user } => {
                json(c.directory_test(source.as_deref(), user.as_deref()).await?)
            }
            DirectoryCommand::Users => json(c.directory_users().await?),
            DirectoryCommand::Groups => json(c.directory_groups().await?),
            DirectoryCommand::Attempts { user } => {
                json(c.directory_attempts(user.as_deref()).await?)
            }
            DirectoryCommand::ClearAttempts { user } => {
                json(c.directory_clear_attempts(&user).await?)
            }
        },
        AdminCommand::EstToken { command } => match command {
            EstTokenCommand::Create(g) => {
                let ttl_secs = g
                    .ttl
                    .map(|t| i64::try_from(t).context("--ttl: too large"))
                    .transpose()?;
                json(
                    c.create_est_token(&EstTokenRequest {
                        platform: g.platform,
                        ttl_secs,
                        username: g.user,
                        device_uuid: g.device_uuid,
                    })
                    .await?,
                )
            }
        },
        AdminCommand::Sweep => json(c.sweep().await?),
        AdminCommand::Store {
            command: StoreCommand::Status,
        } => json(c.store_status().await?),
    }
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
