//! Directory sources beside the local users (Active Directory, LDAP). The server implements
//! [`DirectorySource`] over the network; [`ChainDirectory`] is the [`Directory`] that tries
//! the local users and the sources in the configured order, guards every bind with
//! [`LockoutGuard`] (Ferrocore must never be what locks a directory account) and records
//! directory users by their immutable ID ([`DirectoryUserStore`]).

use crate::clock::Clock;
use crate::directory::{AuthenticatedUser, CertNames, Directory, LocalDirectory};
use crate::error::{CoreError, Result};
use crate::store::Store;
use async_trait::async_trait;
use aws_lc_rs::hmac;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A directory's answer to a lookup or a bind, in the domain's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// Wrong password (AD data 52e; LDAP invalidCredentials).
    WrongPassword,
    /// AD data 775.
    AccountLocked,
    /// AD data 533.
    AccountDisabled,
    /// AD data 532.
    PasswordExpired,
    /// AD data 773.
    PasswordMustChange,
    /// AD data 701.
    AccountExpired,
    /// No URL answered, or the service account was refused; the text names URL and reason.
    Unavailable(String),
}

/// A user entry found by the service account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub dn: String,
    /// objectGUID (hex) / entryUUID: never changes, even when the account is renamed.
    pub external_id: String,
    /// The user ID Ferrocore records (sAMAccountName, uid).
    pub user_id: String,
    pub upn: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    /// objectSid in its text form (`S-1-5-21-...`).
    pub sid: Option<String>,
    /// Names (cn) of the groups the user is a member of, nested ones included (AD).
    pub groups: Vec<String>,
    /// AD's badPwdCount, only while it counts (its last bad password within the window).
    pub bad_pwd_count: Option<u32>,
    /// Unix time of AD's badPasswordTime, when set.
    pub bad_password_time: Option<i64>,
    /// Unix time of AD's lockoutTime, when set (non-zero).
    pub lockout_time: Option<i64>,
    /// userAccountControl ACCOUNTDISABLE (AD), for the periodic refresh.
    pub disabled: bool,
}

/// The directory's own lockout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed binds that lock the account; 0 = the directory never locks.
    pub threshold: u32,
    /// AD's lockOutObservationWindow: failures older than this no longer count.
    pub window_secs: u64,
}

/// The network side of a directory (implemented in the server crate).
#[async_trait]
pub trait DirectorySource: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Finds the user a login names, with the service account. `Ok(None)`: no such user.
    async fn find(&self, login: &str) -> Result<Option<DirectoryEntry>, SourceError>;
    /// Binds as the user over TLS. Only [`ChainDirectory`] calls it, after the lockout guard.
    async fn bind(&self, entry: &DirectoryEntry, password: &str) -> Result<(), SourceError>;
    /// Looks a recorded user up again by its immutable ID (refresh). `Ok(None)`: deleted.
    async fn lookup(&self, external_id: &str) -> Result<Option<DirectoryEntry>, SourceError>;
    /// The directory's lockout policy when the service account may read it.
    async fn lockout_policy(&self) -> Result<Option<LockoutPolicy>, SourceError>;
}

/// What Ferrocore does with a source's users (configuration, per source).
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Only members of one of these groups may authenticate (and so enroll); empty = all.
    pub enroll_groups: Vec<String>,
    /// Group → sync policy; the first group the user is a member of wins.
    pub group_policies: Vec<(String, String)>,
    /// Used when the directory's own policy cannot be read.
    pub fallback: LockoutPolicy,
    /// Failed binds kept free below the directory's threshold for the user's other clients.
    pub margin: u32,
    /// Failed binds allowed per window when the directory never locks (threshold 0).
    pub max_failures_without_lockout: u32,
    /// Names put into certificates of this source's users.
    pub cert_upn: bool,
    pub cert_mail: bool,
    pub cert_sid: bool,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            enroll_groups: Vec::new(),
            group_policies: Vec::new(),
            fallback: LockoutPolicy {
                threshold: 5,
                window_secs: 1800,
            },
            margin: 2,
            max_failures_without_lockout: 10,
            cert_upn: true,
            cert_mail: true,
            cert_sid: false,
        }
    }
}

/// State of a recorded directory user.
pub const STATE_ACTIVE: &str = "active";
pub const STATE_DISABLED: &str = "disabled";
pub const STATE_DELETED: &str = "deleted";
pub const STATE_NOT_MEMBER: &str = "not_member";

/// A directory user Ferrocore has seen authenticate (recorded at first enrollment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUserRecord {
    pub source: String,
    pub external_id: String,
    /// The name devices are recorded under; kept when the account is renamed.
    pub username: String,
    /// The directory's current user ID (changes on rename).
    pub login: String,
    pub dn: String,
    pub upn: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub sid: Option<String>,
    pub groups: Vec<String>,
    pub policy: Option<String>,
    /// `active`, `disabled`, `deleted`, `not_member`.
    pub state: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub checked_at: i64,
}

/// Storage of directory users (SQLite: `ferrocore_store::directory`).
#[async_trait]
pub trait DirectoryUserStore: Send + Sync + 'static {
    async fn directory_user(
        &self,
        source: &str,
        external_id: &str,
    ) -> Result<Option<DirectoryUserRecord>>;
    async fn directory_user_by_name(&self, username: &str) -> Result<Option<DirectoryUserRecord>>;
    /// Inserts or replaces the record of (source, external_id); another record with the same
    /// username is [`CoreError::Conflict`].
    async fn put_directory_user(&self, rec: &DirectoryUserRecord) -> Result<()>;
    async fn directory_users(&self) -> Result<Vec<DirectoryUserRecord>>;
}

// ---------------------------------------------------------------------- lockout guard

/// Failed attempts of one directory account, in memory only.
#[derive(Debug, Clone, Default)]
struct Attempts {
    user_id: String,
    failures: u32,
    last_failure: i64,
    /// HMACs of passwords that failed, with their expiry (Unix time).
    failed_passwords: Vec<([u8; 32], i64)>,
}

/// One account's failed-attempt state, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptState {
    pub source: String,
    pub user_id: String,
    pub failures: u32,
    pub last_failure_at: Option<i64>,
    pub cached_failed_passwords: usize,
}

/// Counts failed binds per directory account across every password path and refuses to
/// forward more before the directory's own threshold; remembers failed (account, password)
/// pairs for a short time so a client retrying a saved old password never reaches the
/// directory again. Binds of one account are serialised, so concurrent identical attempts
/// cost one bind. Nothing is written to disk; passwords are kept only as keyed HMACs.
pub struct LockoutGuard {
    clock: Arc<dyn Clock>,
    key: hmac::Key,
    failed_ttl_secs: i64,
    accounts: Mutex<HashMap<String, Attempts>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a bind attempt turned out to be, for the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Neutral,
}

impl LockoutGuard {
    pub fn new(clock: Arc<dyn Clock>, failed_ttl_secs: u64) -> Result<Self> {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| CoreError::Internal("rng failure".into()))?;
        Ok(LockoutGuard {
            clock,
            key: hmac::Key::new(hmac::HMAC_SHA256, &raw),
            failed_ttl_secs: i64::try_from(failed_ttl_secs).unwrap_or(i64::MAX / 2),
            accounts: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn mac(&self, account: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(account.len() as u64).to_be_bytes());
        ctx.update(account.as_bytes());
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn accounts(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Attempts>>> {
        self.accounts
            .lock()
            .map_err(|_| CoreError::Internal("lockout state poisoned".into()))
    }

    /// Serialises the binds of one account.
    async fn lock(&self, account: &str) -> Result<AccountLock<'_>> {
        let m = {
            let mut locks = self
                .locks
                .lock()
                .map_err(|_| CoreError::Internal("lockout state poisoned".into()))?;
            locks
                .entry(account.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        let guard = m.clone().lock_owned().await;
        Ok(AccountLock {
            guard: Some(guard),
            account: account.to_owned(),
            owner: self,
        })
    }

    /// Whether this password already failed for this account recently.
    fn known_failure(&self, account: &str, password: &str) -> Result<bool> {
        let mac = self.mac(account, password);
        let now = self.now();
        let accounts = self.accounts()?;
        Ok(accounts.get(account).is_some_and(|a| {
            a.failed_passwords.iter().any(|(m, exp)| {
                *exp > now && aws_lc_rs::constant_time::verify_slices_are_equal(m, &mac).is_ok()
            })
        }))
    }

    /// Refuses (with the seconds to wait) when one more failed bind could bring the account
    /// too close to the directory's threshold.
    fn admit(
        &self,
        account: &str,
        policy: LockoutPolicy,
        settings: &SourceSettings,
        entry: &DirectoryEntry,
    ) -> Result<()> {
        let now = self.now();
        let window = i64::try_from(policy.window_secs).unwrap_or(i64::MAX / 4);
        let budget = if policy.threshold == 0 {
            settings.max_failures_without_lockout.max(1)
        } else {
            policy.threshold.saturating_sub(settings.margin).max(1)
        };
        // Locked by the directory (lockoutTime within the window; AD's lockout duration is
        // usually the same): say so, without a bind.
        if policy.threshold > 0 && entry.lockout_time.is_some_and(|t| now - t < window) {
            return Err(CoreError::AccountLocked);
        }
        let mut accounts = self.accounts()?;
        let a = accounts.entry(account.to_owned()).or_default();
        a.user_id = entry.user_id.clone();
        if a.failures > 0 && now - a.last_failure > window {
            a.failures = 0;
        }
        let retry = |last: i64| -> u64 { u64::try_from((last + window - now).max(1)).unwrap_or(1) };
        if a.failures >= budget {
            return Err(CoreError::TooManyAttempts {
                retry_after_secs: retry(a.last_failure),
            });
        }
        // The directory's own count includes failures from elsewhere (other servers, the
        // user's other clients, a restart of this one).
        // AD stops counting a bad password older than the window (it resets the count at
        // the next failure), so such a count is stale.
        let counting = entry.bad_password_time.is_none_or(|t| now - t <= window);
        if policy.threshold > 0
            && counting
            && let Some(bad) = entry.bad_pwd_count
            && bad + 1 > budget
        {
            return Err(CoreError::TooManyAttempts {
                retry_after_secs: retry(entry.bad_password_time.unwrap_or(now)),
            });
        }
        Ok(())
    }

    fn record(&self, account: &str, mac: [u8; 32], outcome: Outcome) -> Result<()> {
        let now = self.now();
        let mut accounts = self.accounts()?;
        match outcome {
            Outcome::Success => {
                accounts.remove(account);
            }
            Outcome::Failure => {
                let a = accounts.entry(account.to_owned()).or_default();
                a.failures = a.failures.saturating_add(1);
                a.last_failure = now;
                a.failed_passwords.retain(|(_, exp)| *exp > now);
                if a.failed_passwords.len() < 32 {
                    a.failed_passwords.push((mac, now + self.failed_ttl_secs));
                }
            }
            Outcome::Neutral => {}
        }
        Ok(())
    }

    /// Failed-attempt states (all accounts with one, or those of `user_id`).
    pub fn states(&self, user_id: Option<&str>) -> Result<Vec<AttemptState>> {
        let now = self.now();
        let accounts = self.accounts()?;
        let mut out: Vec<AttemptState> = accounts
            .iter()
            .filter(|(_, a)| user_id.is_none_or(|u| a.user_id.eq_ignore_ascii_case(u)))
            .map(|(k, a)| AttemptState {
                source: k.split('\0').next().unwrap_or_default().to_owned(),
                user_id: a.user_id.clone(),
                failures: a.failures,
                last_failure_at: (a.failures > 0).then_some(a.last_failure),
                cached_failed_passwords: a
                    .failed_passwords
                    .iter()
                    .filter(|(_, e)| *e > now)
                    .count(),
            })
            .collect();
        out.sort_by(|a, b| (&a.source, &a.user_id).cmp(&(&b.source, &b.user_id)));
        Ok(out)
    }

    /// Forgets a user's failed attempts (admin). Returns how many accounts were cleared.
    pub fn clear(&self, user_id: &str) -> Result<usize> {
        let mut accounts = self.accounts()?;
        let before = accounts.len();
        accounts.retain(|_, a| !a.user_id.eq_ignore_ascii_case(user_id));
        Ok(before - accounts.len())
    }
}

/// The per-account bind lock; released (and its map entry dropped when unused) on drop.
struct AccountLock<'a> {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    account: String,
    owner: &'a LockoutGuard,
}

impl Drop for AccountLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Ok(mut locks) = self.owner.locks.lock()
            && locks
                .get(&self.account)
                .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.account);
        }
    }
}

/// A bind in progress: unless finished, it counts as a failure (the request may have been
/// dropped after the directory already counted it).
struct Attempt<'a> {
    guard: &'a LockoutGuard,
    account: String,
    mac: [u8; 32],
    done: bool,
}

impl Attempt<'_> {
    fn finish(mut self, outcome: Outcome) -> Result<()> {
        self.done = true;
        self.guard.record(&self.account, self.mac, outcome)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.guard.record(&self.account, self.mac, Outcome::Failure);
        }
    }
}

// ---------------------------------------------------------------------- the chain

/// One member of the configured order.
pub enum Member {
    Local,
    Source {
        source: Arc<dyn DirectorySource>,
        settings: SourceSettings,
    },
}

/// The [`Directory`] of a configured `[directory]`: local users and directory sources tried
/// in order. A user found in a source is decided there (a wrong password never falls through
/// to the next source); an unavailable source stops the search (`directory_unavailable`),
/// so an outage can never let a same-named user of a later source in.
pub struct ChainDirectory {
    local: LocalDirectory,
    store: Arc<dyn Store>,
    users: Arc<dyn DirectoryUserStore>,
    members: Vec<Member>,
    guard: LockoutGuard,
    clock: Arc<dyn Clock>,
    /// The directories' lockout policies, read at start and at every refresh.
    policies: Mutex<HashMap<String, LockoutPolicy>>,
}

impl ChainDirectory {
    pub fn new(
        store: Arc<dyn Store>,
        users: Arc<dyn DirectoryUserStore>,
        members: Vec<Member>,
        clock: Arc<dyn Clock>,
        failed_password_ttl_secs: u64,
    ) -> Result<Self> {
        Ok(ChainDirectory {
            local: LocalDirectory::new(store.clone()),
            store,
            users,
            members,
            guard: LockoutGuard::new(clock.clone(), failed_password_ttl_secs)?,
            clock,
            policies: Mutex::new(HashMap::new()),
        })
    }

    pub fn guard(&self) -> &LockoutGuard {
        &self.guard
    }

    pub fn users(&self) -> &Arc<dyn DirectoryUserStore> {
        &self.users
    }

    /// The configured sources, in order.
    pub fn sources(&self) -> impl Iterator<Item = (&Arc<dyn DirectorySource>, &SourceSettings)> {
        self.members.iter().filter_map(|m| match m {
            Member::Source { source, settings } => Some((source, settings)),
            Member::Local => None,
        })
    }

    /// The lockout policy in force for a source: the directory's own when it could be read.
    pub fn lockout_policy_of(&self, source: &str, settings: &SourceSettings) -> LockoutPolicy {
        self.policies
            .lock()
            .ok()
            .and_then(|p| p.get(source).copied())
            .unwrap_or(settings.fallback)
    }

    /// Reads each directory's lockout policy (start-up and refresh); failures keep the last.
    pub async fn refresh_lockout_policies(&self) {
        for (source, _) in self.sources() {
            match source.lockout_policy().await {
                Ok(Some(p)) => {
                    if let Ok(mut m) = self.policies.lock() {
                        m.insert(source.name().to_owned(), p);
                    }
                    tracing::info!(
                        source = source.name(),
                        threshold = p.threshold,
                        window_secs = p.window_secs,
                        "directory lockout policy read"
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(source = source.name(), error = ?e,
                    "cannot read the directory's lockout policy; using the configured one"),
            }
        }
    }

    async fn authenticate_in(
        &self,
        source: &Arc<dyn DirectorySource>,
        settings: &SourceSettings,
        entry: DirectoryEntry,
        password: &str,
    ) -> Result<AuthenticatedUser> {
        let account = format!("{}\0{}", source.name(), entry.external_id);
        let _serialised = self.guard.lock(&account).await?;
        if self.guard.known_failure(&account, password)? {
            tracing::info!(source = source.name(), user = %entry.user_id,
                "password refused from the recent-failures cache (directory not asked)");
            return Err(CoreError::InvalidCredentials);
        }
        let policy = self.lockout_policy_of(source.name(), settings);
        if let Err(e) = self.guard.admit(&account, policy, settings, &entry) {
            tracing::warn!(source = source.name(), user = %entry.user_id,
                threshold = policy.threshold, bad_pwd_count = ?entry.bad_pwd_count,
                "bind not forwarded: too many failed attempts");
            return Err(e);
        }
        let attempt = Attempt {
            guard: &self.guard,
            mac: self.guard.mac(&account, password),
            account: account.clone(),
            done: false,
        };
        let answer = source.bind(&entry, password).await;
        let (outcome, result) = match answer {
            Ok(()) => (Outcome::Success, Ok(())),
            Err(SourceError::WrongPassword) => {
                (Outcome::Failure, Err(CoreError::InvalidCredentials))
            }
            Err(SourceError::AccountLocked) => (Outcome::Neutral, Err(CoreError::AccountLocked)),
            Err(SourceError::AccountDisabled) => {
                (Outcome::Neutral, Err(CoreError::AccountDisabled))
            }
            Err(SourceError::PasswordExpired) => {
                (Outcome::Neutral, Err(CoreError::PasswordExpired))
            }
            Err(SourceError::PasswordMustChange) => {
                (Outcome::Neutral, Err(CoreError::PasswordMustChange))
            }
            Err(SourceError::AccountExpired) => (Outcome::Neutral, Err(CoreError::AccountExpired)),
            Err(SourceError::Unavailable(why)) => {
                tracing::error!(source = source.name(), user = %entry.user_id, reason = %why,
                    "directory unavailable during the user's bind");
                // The bind may have reached the directory: count it.
                (Outcome::Failure, Err(CoreError::DirectoryUnavailable))
            }
        };
        attempt.finish(outcome)?;
        if let Err(e) = result {
            tracing::info!(source = source.name(), user = %entry.user_id, code = e.code(),
                "directory refused the password");
            return Err(e);
        }
        if !settings.enroll_groups.is_empty()
            && !entry.groups.iter().any(|g| {
                settings
                    .enroll_groups
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(g))
            })
        {
            tracing::info!(source = source.name(), user = %entry.user_id,
                "not in a group allowed to enroll");
            return Err(CoreError::EnrollmentNotAllowed);
        }
        let rec = self.record(source.name(), settings, &entry).await?;
        Ok(AuthenticatedUser {
            username: rec.username,
            email: rec.mail,
            source: source.name().to_owned(),
            policy: rec.policy,
        })
    }

    /// Records (first enrollment) or updates a directory user; a renamed account keeps the
    /// username its devices are recorded under.
    async fn record(
        &self,
        source: &str,
        settings: &SourceSettings,
        entry: &DirectoryEntry,
    ) -> Result<DirectoryUserRecord> {
        let now = self.clock.now().unix_timestamp();
        let existing = self
            .users
            .directory_user(source, &entry.external_id)
            .await?;
        let policy = policy_for(settings, &entry.groups);
        let rec = match existing {
            Some(mut r) => {
                r.login = entry.user_id.clone();
                r.dn = entry.dn.clone();
                r.upn = entry.upn.clone();
                r.mail = entry.mail.clone();
                r.display_name = entry.display_name.clone();
                r.sid = entry.sid.clone();
                r.groups = entry.groups.clone();
                r.policy = policy;
                r.state = STATE_ACTIVE.into();
                r.last_seen_at = now;
                r.checked_at = now;
                r
            }
            None => {
                let username = entry.user_id.clone();
                if self.store.user(&username).await?.is_some() {
                    tracing::warn!(source, user = %username,
                        "a local user has this directory user's name: refused");
                    return Err(CoreError::Conflict(format!(
                        "user {username:?} exists both locally and in directory {source:?}"
                    )));
                }
                DirectoryUserRecord {
                    source: source.to_owned(),
                    external_id: entry.external_id.clone(),
                    username,
                    login: entry.user_id.clone(),
                    dn: entry.dn.clone(),
                    upn: entry.upn.clone(),
                    mail: entry.mail.clone(),
                    display_name: entry.display_name.clone(),
                    sid: entry.sid.clone(),
                    groups: entry.groups.clone(),
                    policy,
                    state: STATE_ACTIVE.into(),
                    first_seen_at: now,
                    last_seen_at: now,
                    checked_at: now,
                }
            }
        };
        self.users.put_directory_user(&rec).await?;
        Ok(rec)
    }

    /// Looks every recorded user up again (periodic, by immutable ID) and records whether
    /// they are still allowed: disabled, deleted or no longer in an enrolling group blocks
    /// their devices' next check-in. A source that does not answer changes nothing.
    pub async fn refresh_users(&self) -> Result<RefreshReport> {
        let mut report = RefreshReport::default();
        let now = self.clock.now().unix_timestamp();
        for mut rec in self.users.directory_users().await? {
            let Some((source, settings)) = self.sources().find(|(s, _)| s.name() == rec.source)
            else {
                continue;
            };
            let state = match source.lookup(&rec.external_id).await {
                Ok(None) => STATE_DELETED.to_owned(),
                Ok(Some(entry)) => {
                    let state = if entry.disabled {
                        STATE_DISABLED
                    } else if !settings.enroll_groups.is_empty()
                        && !entry.groups.iter().any(|g| {
                            settings
                                .enroll_groups
                                .iter()
                                .any(|e| e.eq_ignore_ascii_case(g))
                        })
                    {
                        STATE_NOT_MEMBER
                    } else {
                        STATE_ACTIVE
                    };
                    rec.login = entry.user_id.clone();
                    rec.dn = entry.dn.clone();
                    rec.upn = entry.upn.clone();
                    rec.mail = entry.mail.clone();
                    rec.display_name = entry.display_name.clone();
                    rec.sid = entry.sid.clone();
                    rec.policy = policy_for(settings, &entry.groups);
                    rec.groups = entry.groups;
                    state.to_owned()
                }
                Err(e) => {
                    report.unavailable += 1;
                    tracing::warn!(source = %rec.source, user = %rec.username, error = ?e,
                        "directory refresh failed; the user's state is kept");
                    continue;
                }
            };
            if state != rec.state {
                tracing::warn!(source = %rec.source, user = %rec.username,
                    from = %rec.state, to = %state, "directory user state changed");
                report.changed += 1;
            }
            rec.state = state;
            rec.checked_at = now;
            self.users.put_directory_user(&rec).await?;
            report.checked += 1;
        }
        Ok(report)
    }
}

/// Outcome of [`ChainDirectory::refresh_users`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RefreshReport {
    pub checked: u32,
    pub changed: u32,
    pub unavailable: u32,
}

fn policy_for(settings: &SourceSettings, groups: &[String]) -> Option<String> {
    settings
        .group_policies
        .iter()
        .find(|(g, _)| groups.iter().any(|m| m.eq_ignore_ascii_case(g)))
        .map(|(_, p)| p.clone())
}

/// A login Ferrocore will look up at all (the LDAP layer escapes it; this bounds it).
fn plausible(login: &str, password: &str) -> bool {
    !login.trim().is_empty()
        && login.len() <= 256
        && !login.chars().any(char::is_control)
        // An empty password would be an unauthenticated bind, which LDAP servers accept.
        && !password.is_empty()
        && password.len() <= 1024
}

#[async_trait]
impl Directory for ChainDirectory {
    async fn authenticate(&self, username: &str, password: &str) -> Result<AuthenticatedUser> {
        if !plausible(username, password) {
            return Err(CoreError::InvalidCredentials);
        }
        for member in &self.members {
            match member {
                Member::Local => {
                    if self.store.user(username).await?.is_some() {
                        return self.local.authenticate(username, password).await;
                    }
                }
                Member::Source { source, settings } => match source.find(username).await {
                    Ok(Some(entry)) => {
                        return self
                            .authenticate_in(source, settings, entry, password)
                            .await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(source = source.name(), error = ?e,
                            "directory unavailable: user search failed");
                        return Err(CoreError::DirectoryUnavailable);
                    }
                },
            }
        }
        tracing::info!(login = %username, "user not found in any directory");
        // Same answer as a wrong password: the caller learns nothing about which users exist.
        Err(CoreError::InvalidCredentials)
    }

    async fn check_user(&self, username: &str) -> Result<()> {
        match self.users.directory_user_by_name(username).await? {
            Some(r) if r.state != STATE_ACTIVE => Err(CoreError::DirectoryUserBlocked(r.state)),
            _ => Ok(()),
        }
    }

    async fn cert_names(&self, username: &str) -> Result<Option<CertNames>> {
        let Some(rec) = self.users.directory_user_by_name(username).await? else {
            return Ok(None);
        };
        let Some((_, settings)) = self.sources().find(|(s, _)| s.name() == rec.source) else {
            return Ok(None);
        };
        Ok(Some(CertNames {
            upn: rec.upn.filter(|_| settings.cert_upn),
            email: rec.mail.filter(|_| settings.cert_mail),
            sid: rec.sid.filter(|_| settings.cert_sid),
        }))
    }
}

#[cfg(test)]
mod tests;
