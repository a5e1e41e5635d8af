//! Active Directory and LDAP directory sources over the network (`ldap3` on rustls): the
//! `[directory]` configuration, and [`LdapSource`], the
//! [`DirectorySource`](ferrocore_core::directory_sources::DirectorySource) that searches with
//! the service account and binds as the user over TLS (ldaps:// or StartTLS; plain LDAP only
//! when allowed), trying the configured URLs in order. AD's bind answers (`data 52e/775/533/
//! 532/773/701`) become [`SourceError`]s; every failing URL is logged with its reason.

use async_trait::async_trait;
use ferrocore_core::directory_sources::{
    DirectoryEntry, DirectorySource, LockoutPolicy, SourceError, SourceSettings,
};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `[directory]`: the order in which users are looked up, and the sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySection {
    /// `local` and source names, tried in this order.
    pub order: Vec<String>,
    /// How often recorded directory users are looked up again (disabled, deleted, removed
    /// from the enrolling groups block their devices' check-ins).
    pub refresh_interval_secs: u64,
    /// How long a failed (user, password) pair is answered without asking the directory.
    pub failed_password_cache_secs: u64,
    pub sources: Vec<SourceConfig>,
}

impl Default for DirectorySection {
    fn default() -> Self {
        DirectorySection {
            order: vec!["local".into()],
            refresh_interval_secs: 900,
            failed_password_cache_secs: 900,
            sources: Vec::new(),
        }
    }
}

/// `[[directory.sources]]`: one Active Directory domain or LDAP directory.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    /// `ad` or `ldap`.
    pub kind: String,
    /// `ldaps://` or `ldap://` (StartTLS) URLs, tried in order (failover).
    pub urls: Vec<String>,
    /// Allows plain `ldap://` without StartTLS (passwords in clear on the network).
    #[serde(default)]
    pub allow_plain_ldap: bool,
    /// PEM file with the CA(s) the directory's TLS certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    /// File (mode 0600) holding the service account's password...
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// ... or the name of an environment variable holding it.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    pub base_dn: String,
    /// Attributes a login is matched against (AD: sAMAccountName, userPrincipalName;
    /// LDAP: uid, mail).
    #[serde(default)]
    pub login_attributes: Vec<String>,
    /// Extra filter every user must match.
    #[serde(default)]
    pub user_filter: Option<String>,
    #[serde(default)]
    pub attributes: AttributeMap,
    /// Members of one of these groups (cn) may enroll; empty = every user of the source.
    #[serde(default)]
    pub enroll_groups: Vec<String>,
    /// Group (cn) → sync policy; the first match wins.
    #[serde(default)]
    pub group_policies: Vec<GroupPolicy>,
    /// Lockout threshold used when the directory's cannot be read (AD domain object).
    #[serde(default)]
    pub lockout_threshold: Option<u32>,
    #[serde(default)]
    pub lockout_window_secs: Option<u64>,
    /// Failed binds kept free below the threshold (default 2).
    #[serde(default)]
    pub lockout_margin: Option<u32>,
    /// Per-operation timeout (default 5 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Names in certificates of this source's users (default: UPN and mail). The SID
    /// extension (1.3.6.1.4.1.311.25.2) is not issued yet.
    #[serde(default)]
    pub cert_upn: Option<bool>,
    #[serde(default)]
    pub cert_mail: Option<bool>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("urls", &self.urls)
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPolicy {
    pub group: String,
    pub policy: String,
}

/// Which directory attribute holds what; unset = the kind's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeMap {
    pub user_id: Option<String>,
    pub upn: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    /// AD: objectGUID; LDAP: entryUUID.
    pub external_id: Option<String>,
    pub sid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ad,
    Ldap,
}

/// A validated source: the network side and the domain settings.
pub struct BuiltSource {
    pub source: Arc<LdapSource>,
    pub settings: SourceSettings,
}

impl DirectorySection {
    /// Checks names and order; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if s.name.is_empty() || s.name == "local" || !names.insert(s.name.clone()) {
                return Err(format!(
                    "directory.sources: name {:?} is empty, \"local\" or used twice",
                    s.name
                ));
            }
        }
        for o in &self.order {
            if o != "local" && !names.contains(o) {
                return Err(format!(
                    "directory.order: {o:?} is neither \"local\" nor a source"
                ));
            }
        }
        if self.refresh_interval_secs == 0 {
            return Err("directory.refresh_interval_secs: must be at least 1".into());
        }
        Ok(())
    }

    /// Builds the sources named in `order` (reads CA and password files).
    pub fn build(&self, env: &HashMap<String, String>) -> Result<Vec<BuiltSource>, String> {
        self.validate()?;
        let mut out = Vec::new();
        for name in &self.order {
            if let Some(s) = self.sources.iter().find(|s| &s.name == name) {
                out.push(s.build(env)?);
            }
        }
        Ok(out)
    }
}

impl SourceConfig {
    fn build(&self, env: &HashMap<String, String>) -> Result<BuiltSource, String> {
        let key = |k: &str| format!("directory.sources[{}].{k}", self.name);
        let kind = match self.kind.as_str() {
            "ad" => Kind::Ad,
            "ldap" => Kind::Ldap,
            other => {
                return Err(format!(
                    "{}: {other:?} is neither \"ad\" nor \"ldap\"",
                    key("kind")
                ));
            }
        };
        if self.urls.is_empty() {
            return Err(format!("{}: at least one URL is required", key("urls")));
        }
        for u in &self.urls {
            let url = url::Url::parse(u).map_err(|e| format!("{}: {u:?}: {e}", key("urls")))?;
            match url.scheme() {
                "ldaps" | "ldap" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
                _ => {
                    return Err(format!(
                        "{}: {u:?} is not an ldaps:// or ldap:// URL with a host",
                        key("urls")
                    ));
                }
            }
        }
        let tls = match &self.ca_file {
            Some(f) => Some(tls_config(f).map_err(|e| format!("{}: {e}", key("ca_file")))?),
            None => None,
        };
        let needs_tls = !self.allow_plain_ldap || self.urls.iter().any(|u| u.starts_with("ldaps:"));
        if needs_tls && tls.is_none() {
            return Err(format!(
                "{}: required: the directory's CA certificate(s), PEM (TLS is required unless allow_plain_ldap)",
                key("ca_file")
            ));
        }
        let password = match (&self.bind_password_file, &self.bind_password_env) {
            (Some(f), None) => {
                read_secret(f).map_err(|e| format!("{}: {e}", key("bind_password_file")))?
            }
            (None, Some(v)) => env
                .get(v)
                .cloned()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    format!(
                        "{}: environment variable {v:?} is not set",
                        key("bind_password_env")
                    )
                })?,
            _ => {
                return Err(format!(
                    "{}: set exactly one of bind_password_file and bind_password_env",
                    key("bind_password_file")
                ));
            }
        };
        if self.bind_dn.is_empty() || self.base_dn.is_empty() {
            return Err(format!(
                "{}: bind_dn and base_dn are required",
                key("bind_dn")
            ));
        }
        let a = &self.attributes;
        let pick = |v: &Option<String>, ad: &str, ldap: &str| -> String {
            v.clone().unwrap_or_else(|| match kind {
                Kind::Ad => ad.to_owned(),
                Kind::Ldap => ldap.to_owned(),
            })
        };
        let attrs = Attrs {
            user_id: pick(&a.user_id, "sAMAccountName", "uid"),
            upn: pick(&a.upn, "userPrincipalName", ""),
            mail: pick(&a.mail, "mail", "mail"),
            display_name: pick(&a.display_name, "displayName", "displayName"),
            external_id: pick(&a.external_id, "objectGUID", "entryUUID"),
            sid: pick(&a.sid, "objectSid", ""),
        };
        let login_attributes = if self.login_attributes.is_empty() {
            match kind {
                Kind::Ad => vec!["sAMAccountName".into(), "userPrincipalName".into()],
                Kind::Ldap => vec!["uid".into()],
            }
        } else {
            self.login_attributes.clone()
        };
        for attr in login_attributes
            .iter()
            .chain([&attrs.user_id, &attrs.external_id])
        {
            if attr.is_empty()
                || !attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
            {
                return Err(format!(
                    "{}: {attr:?} is not an attribute name",
                    key("login_attributes")
                ));
            }
        }
        let user_filter = self.user_filter.clone().unwrap_or_else(|| {
            match kind {
                Kind::Ad => "(&(objectCategory=person)(objectClass=user))",
                Kind::Ldap => "(objectClass=*)",
            }
            .to_owned()
        });
        if ldap3::parse_filter(&user_filter).is_err() {
            return Err(format!(
                "{}: {user_filter:?} is not an LDAP filter",
                key("user_filter")
            ));
        }
        let defaults = SourceSettings::default();
        let settings = SourceSettings {
            enroll_groups: self.enroll_groups.clone(),
            group_policies: self
                .group_policies
                .iter()
                .map(|g| (g.group.clone(), g.policy.clone()))
                .collect(),
            fallback: LockoutPolicy {
                threshold: self
                    .lockout_threshold
                    .unwrap_or(defaults.fallback.threshold),
                window_secs: self
                    .lockout_window_secs
                    .unwrap_or(defaults.fallback.window_secs),
            },
            margin: self.lockout_margin.unwrap_or(defaults.margin),
            max_failures_without_lockout: defaults.max_failures_without_lockout,
            cert_upn: self.cert_upn.unwrap_or(defaults.cert_upn),
            cert_mail: self.cert_mail.unwrap_or(defaults.cert_mail),
            cert_sid: false,
        };
        Ok(BuiltSource {
            source: Arc::new(LdapSource {
                name: self.name.clone(),
                kind,
                urls: self.urls.clone(),
                allow_plain: self.allow_plain_ldap,
                tls,
                bind_dn: self.bind_dn.clone(),
                bind_password: password,
                base_dn: self.base_dn.clone(),
                login_attributes,
                user_filter,
                attrs,
                timeout: Duration::from_secs(self.timeout_secs.unwrap_or(5).clamp(1, 120)),
            }),
            settings,
        })
    }
}

/// Reads a secret from a file that only its owner may read (0600 or stricter).
fn read_secret(path: &Path) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{}: readable by group or others (mode {:o}); chmod 600",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
    }
    let s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\n', '\r']).to_owned();
    if s.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(s)
}

fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots
        .add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    if added == 0 {
        return Err(format!("{}: no usable CA certificate", ca_file.display()));
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug, Clone)]
struct Attrs {
    user_id: String,
    upn: String,
    mail: String,
    display_name: String,
    external_id: String,
    sid: String,
}

/// One directory over the network.
pub struct LdapSource {
    name: String,
    kind: Kind,
    urls: Vec<String>,
    allow_plain: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind_dn: String,
    bind_password: String,
    base_dn: String,
    login_attributes: Vec<String>,
    user_filter: String,
    attrs: Attrs,
    timeout: Duration,
}

/// A failed step on one URL.
enum Step {
    /// Connection, TLS, timeout: try the next URL.
    Network(String),
    /// The directory answered (bind refused, search failed).
    Answer(ldap3::LdapResult),
}

impl From<ldap3::LdapError> for Step {
    fn from(e: ldap3::LdapError) -> Self {
        match e {
            ldap3::LdapError::LdapResult { result } => Step::Answer(result),
            other => Step::Network(other.to_string()),
        }
    }
}

/// Timings of `ferrocore admin directory test`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TestReport {
    pub source: String,
    pub url: Option<String>,
    pub connect_and_bind_ms: Option<u64>,
    pub lockout_threshold: Option<u32>,
    pub lockout_window_secs: Option<u64>,
    pub user: Option<serde_json::Value>,
    pub search_ms: Option<u64>,
    pub error: Option<String>,
}

impl LdapSource {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn settings_for(&self, url: &str) -> Result<LdapConnSettings, String> {
        let mut s = LdapConnSettings::new().set_conn_timeout(self.timeout);
        if let Some(tls) = &self.tls {
            s = s.set_config(tls.clone());
        }
        if url.starts_with("ldap://") {
            if self.allow_plain && self.tls.is_none() {
                // Explicitly allowed plain LDAP.
            } else {
                s = s.set_starttls(true);
            }
        }
        Ok(s)
    }

    /// Connects to the first URL that answers; binds as `dn`. Network failures move on to
    /// the next URL (each logged); a bind answer from a directory is final.
    async fn connect_bind(
        &self,
        dn: &str,
        password: &str,
    ) -> Result<(ldap3::Ldap, String), Result<ldap3::LdapResult, String>> {
        let mut failures = Vec::new();
        for url in &self.urls {
            match self.try_url(url, dn, password).await {
                Ok(ldap) => return Ok((ldap, url.clone())),
                Err(Step::Network(why)) => {
                    tracing::warn!(source = %self.name, url = %url, reason = %why, "directory URL failed");
                    failures.push(format!("{url}: {why}"));
                }
                Err(Step::Answer(r)) => return Err(Ok(r)),
            }
        }
        Err(Err(failures.join("; ")))
    }

    async fn try_url(&self, url: &str, dn: &str, password: &str) -> Result<ldap3::Ldap, Step> {
        let settings = self.settings_for(url).map_err(Step::Network)?;
        let (conn, mut ldap) =
            tokio::time::timeout(self.timeout, LdapConnAsync::with_settings(settings, url))
                .await
                .map_err(|_| Step::Network("timed out connecting".into()))??;
        ldap3::drive!(conn);
        ldap.with_timeout(self.timeout);
        let r = ldap.simple_bind(dn, password).await?;
        if r.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(Step::Answer(r));
        }
        Ok(ldap)
    }

    /// A connection bound as the service account.
    async fn service(&self) -> Result<(ldap3::Ldap, String), SourceError> {
        match self.connect_bind(&self.bind_dn, &self.bind_password).await {
            Ok(c) => Ok(c),
            Err(Err(why)) => Err(SourceError::Unavailable(why)),
            Err(Ok(r)) => {
                tracing::error!(source = %self.name, rc = r.rc, text = %r.text, "the service account's bind was refused");
                Err(SourceError::Unavailable(format!(
                    "service account bind refused (rc {}): {}",
                    r.rc,
                    r.text.trim()
                )))
            }
        }
    }

    fn user_attributes(&self) -> Vec<&str> {
        let a = &self.attrs;
        let mut v: Vec<&str> = [
            &a.user_id,
            &a.upn,
            &a.mail,
            &a.display_name,
            &a.external_id,
            &a.sid,
        ]
        .into_iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
        if self.kind == Kind::Ad {
            v.extend([
                "badPwdCount",
                "badPasswordTime",
                "lockoutTime",
                "userAccountControl",
            ]);
        }
        v
    }

    async fn search_one(
        &self,
        ldap: &mut ldap3::Ldap,
        filter: &str,
    ) -> Result<Option<DirectoryEntry>, SourceError> {
        let full = format!("(&{}{filter})", self.user_filter);
        let res = ldap
            .search(&self.base_dn, Scope::Subtree, &full, self.user_attributes())
            .await
            .map_err(|e| SourceError::Unavailable(format!("search failed: {e}")))?;
        let (entries, result) = (res.0, res.1);
        if result.rc != 0 {
            return Err(SourceError::Unavailable(format!(
                "search failed (rc {}): {}",
                result.rc,
                result.text.trim()
            )));
        }
        let mut found: Vec<SearchEntry> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect();
        if found.len() > 1 {
            tracing::warn!(source = %self.name, filter = %full, count = found.len(),
                "a login matches several directory entries: refused");
            return Ok(None);
        }
        let Some(e) = found.pop() else {
            return Ok(None);
        };
        let entry = self.entry_of(&e)?;
        let groups = self.groups_of(ldap, &entry).await?;
        Ok(Some(DirectoryEntry { groups, ..entry }))
    }

    fn entry_of(&self, e: &SearchEntry) -> Result<DirectoryEntry, SourceError> {
        let text = |name: &str| -> Option<String> {
            if name.is_empty() {
                return None;
            }
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
        };
        let raw = |name: &str| -> Option<Vec<u8>> {
            if name.is_empty() {
                return None;
            }
            e.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
                .or_else(|| text(name).map(String::into_bytes))
        };
        let external_id = match self.kind {
            Kind::Ad if self.attrs.external_id.eq_ignore_ascii_case("objectGUID") => {
                raw(&self.attrs.external_id).and_then(|b| guid_text(&b))
            }
            _ => text(&self.attrs.external_id),
        };
        let Some(external_id) = external_id else {
            return Err(SourceError::Unavailable(format!(
                "{}: entry {} has no {} (the service account may not read it)",
                self.name, e.dn, self.attrs.external_id
            )));
        };
        let Some(user_id) = text(&self.attrs.user_id) else {
            return Err(SourceError::Unavailable(format!(
                "{}: entry {} has no {}",
                self.name, e.dn, self.attrs.user_id
            )));
        };
        let bad_password_time = text("badPasswordTime")
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|t| *t > 0)
            .map(filetime_to_unix);
        let uac = text("userAccountControl")
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(0);
        Ok(DirectoryEntry {
            dn: e.dn.clone(),
            external_id,
            user_id,
            upn: text(&self.attrs.upn),
            mail: text(&self.attrs.mail),
            display_name: text(&self.attrs.display_name),
            sid: raw(&self.attrs.sid).and_then(|b| sid_text(&b)),
            groups: Vec::new(),
            bad_pwd_count: text("badPwdCount").and_then(|t| t.parse().ok()),
            bad_password_time,
            lockout_time: text("lockoutTime")
                .and_then(|t| t.parse::<i64>().ok())
                .filter(|t| *t > 0)
                .map(filetime_to_unix),
            disabled: uac & 0x2 != 0,
        })
    }

    /// Group names (cn) of a user: AD with nested groups (LDAP_MATCHING_RULE_IN_CHAIN),
    /// LDAP groupOfNames / groupOfUniqueNames / posixGroup.
    async fn groups_of(
        &self,
        ldap: &mut ldap3::Ldap,
        entry: &DirectoryEntry,
    ) -> Result<Vec<String>, SourceError> {
        let dn = ldap_escape(entry.dn.as_str());
        let filter = match self.kind {
            Kind::Ad => format!("(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))"),
            Kind::Ldap => format!(
                "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))(&(objectClass=posixGroup)(memberUid={})))",
                ldap_escape(entry.user_id.as_str())
            ),
        };
        let res = ldap
            .search(&self.base_dn, Scope::Subtree, &filter, vec!["cn"])
            .await
            .map_err(|e| SourceError::Unavailable(format!("group search failed: {e}")))?;
        let mut groups: Vec<String> = res
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .filter_map(|e| {
                e.attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("cn"))
                    .and_then(|(_, v)| v.first().cloned())
            })
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    fn login_filter(&self, login: &str) -> String {
        let v = ldap_escape(login);
        let parts: String = self
            .login_attributes
            .iter()
            .map(|a| format!("({a}={v})"))
            .collect();
        format!("(|{parts})")
    }

    fn id_filter(&self, external_id: &str) -> Option<String> {
        if self.kind == Kind::Ad && self.attrs.external_id.eq_ignore_ascii_case("objectGUID") {
            let bytes = guid_bytes(external_id)?;
            let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
            Some(format!("(objectGUID={escaped})"))
        } else {
            Some(format!(
                "({}={})",
                self.attrs.external_id,
                ldap_escape(external_id)
            ))
        }
    }

    /// `ferrocore admin directory test`: service bind, lockout policy, and optionally a user
    /// search with groups (never a user bind).
    pub async fn test(&self, user: Option<&str>) -> TestReport {
        let mut report = TestReport {
            source: self.name.clone(),
            ..TestReport::default()
        };
        let t = Instant::now();
        let (mut ldap, url) = match self.service().await {
            Ok(c) => c,
            Err(e) => {
                report.error = Some(format!("{e:?}"));
                return report;
            }
        };
        report.url = Some(url);
        report.connect_and_bind_ms = Some(ms(t));
        if let Ok(Some(p)) = self.read_lockout_policy(&mut ldap).await {
            report.lockout_threshold = Some(p.threshold);
            report.lockout_window_secs = Some(p.window_secs);
        }
        if let Some(u) = user {
            let t = Instant::now();
            match self.search_one(&mut ldap, &self.login_filter(u)).await {
                Ok(Some(e)) => {
                    report.user = Some(serde_json::json!({
                        "dn": e.dn, "external_id": e.external_id, "user_id": e.user_id,
                        "upn": e.upn, "mail": e.mail, "display_name": e.display_name,
                        "sid": e.sid, "groups": e.groups, "bad_pwd_count": e.bad_pwd_count,
                        "disabled": e.disabled,
                    }))
                }
                Ok(None) => report.error = Some(format!("user {u:?} not found")),
                Err(e) => report.error = Some(format!("{e:?}")),
            }
            report.search_ms = Some(ms(t));
        }
        let _ = ldap.unbind().await;
        report
    }

    async fn read_lockout_policy(
        &self,
        ldap: &mut ldap3::Ldap,
    ) -> Result<Option<LockoutPolicy>, SourceError> {
        if self.kind != Kind::Ad {
            return Ok(None);
        }
        let res = ldap
            .search(
                &self.base_dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["lockoutThreshold", "lockOutObservationWindow"],
            )
            .await
            .map_err(|e| SourceError::Unavailable(format!("domain object: {e}")))?;
        let Some(e) = res.0.into_iter().find(|e| !e.is_ref()) else {
            return Ok(None);
        };
        let e = SearchEntry::construct(e);
        let get = |n: &str| {
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .and_then(|(_, v)| v.first())
                .and_then(|v| v.parse::<i64>().ok())
        };
        match (get("lockoutThreshold"), get("lockOutObservationWindow")) {
            (Some(t), Some(w)) => Ok(Some(LockoutPolicy {
                threshold: u32::try_from(t).unwrap_or(0),
                // A negative count of 100 ns intervals.
                window_secs: w.unsigned_abs() / 10_000_000,
            })),
            _ => Ok(None),
        }
    }
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// AD's bind answer `... data 52e, ...` to a domain answer.
fn bind_answer(r: &ldap3::LdapResult) -> SourceError {
    let text = r.text.to_ascii_lowercase();
    let data = text.split("data ").nth(1).map(|s| {
        s.chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect::<String>()
    });
    match (r.rc, data.as_deref()) {
        (49, Some("775")) => SourceError::AccountLocked,
        (49, Some("533")) => SourceError::AccountDisabled,
        (49, Some("532")) => SourceError::PasswordExpired,
        (49, Some("773")) => SourceError::PasswordMustChange,
        (49, Some("701")) => SourceError::AccountExpired,
        (49, _) => SourceError::WrongPassword,
        // strongerAuthRequired, confidentialityRequired: TLS missing (configuration).
        (rc, _) => SourceError::Unavailable(format!("bind answered rc {rc}: {}", r.text.trim())),
    }
}

#[async_trait]
impl DirectorySource for LdapSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, login: &str) -> Result<Option<DirectoryEntry>, SourceError> {
        let (mut ldap, _) = self.service().await?;
        let r = self.search_one(&mut ldap, &self.login_filter(login)).await;
        let _ = ldap.unbind().await;
        r
    }

    async fn bind(&self, entry: &DirectoryEntry, password: &str) -> Result<(), SourceError> {
        if password.is_empty() {
            return Err(SourceError::WrongPassword);
        }
        match self.connect_bind(&entry.dn, password).await {
            Ok((mut ldap, _)) => {
                let _ = ldap.unbind().await;
                Ok(())
            }
            Err(Ok(answer)) => Err(bind_answer(&answer)),
            Err(Err(why)) => Err(SourceError::Unavailable(why)),
        }
    }

    async fn lookup(&self, external_id: &str) -> Result<Option<DirectoryEntry>, SourceError> {
        let Some(filter) = self.id_filter(external_id) else {
            return Ok(None);
        };
        let (mut ldap, _) = self.service().await?;
        let r = self.search_one(&mut ldap, &filter).await;
        let _ = ldap.unbind().await;
        r
    }

    async fn lockout_policy(&self) -> Result<Option<LockoutPolicy>, SourceError> {
        if self.kind != Kind::Ad {
            return Ok(None);
        }
        let (mut ldap, _) = self.service().await?;
        let r = self.read_lockout_policy(&mut ldap).await;
        let _ = ldap.unbind().await;
        r
    }
}

/// AD's objectGUID (16 bytes, first three fields little-endian) as the usual text form.
pub fn guid_text(b: &[u8]) -> Option<String> {
    let b: [u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        hex::encode(&b[10..])
    ))
}

/// The inverse of [`guid_text`].
pub fn guid_bytes(s: &str) -> Option<[u8; 16]> {
    let h = hex::decode(s.replace('-', "")).ok()?;
    let h: [u8; 16] = h.try_into().ok()?;
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&[h[3], h[2], h[1], h[0]]);
    b[4..6].copy_from_slice(&[h[5], h[4]]);
    b[6..8].copy_from_slice(&[h[7], h[6]]);
    b[8..].copy_from_slice(&h[8..]);
    Some(b)
}

/// A binary SID as `S-1-5-21-...`.
pub fn sid_text(b: &[u8]) -> Option<String> {
    if b.len() < 8 {
        return None;
    }
    let count = usize::from(b[1]);
    if b.len() != 8 + 4 * count {
        return None;
    }
    let mut authority = [0u8; 8];
    authority[2..].copy_from_slice(&b[2..8]);
    let mut s = format!("S-{}-{}", b[0], u64::from_be_bytes(authority));
    for i in 0..count {
        let o = 8 + 4 * i;
        let v = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        s.push_str(&format!("-{v}"));
    }
    Some(s)
}

/// Windows FILETIME (100 ns since 1601) to Unix time.
fn filetime_to_unix(ft: i64) -> i64 {
    ft / 10_000_000 - 11_644_473_600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_and_sid_forms() {
        // erin's objectGUID and objectSid as Samba returned them (base64 in ldapsearch).
        use base64::Engine;
        let g = base64::engine::general_purpose::STANDARD
            .decode("35X6Trn/bke3cSwukCknTw==")
            .unwrap();
        let t = guid_text(&g).unwrap();
        assert_eq!(t, "4efa95df-ffb9-476e-b771-2c2e9029274f");
        assert_eq!(guid_bytes(&t).unwrap().to_vec(), g);
        let s = base64::engine::general_purpose::STANDARD
            .decode("AQUAAAAAAAUVAAAAVv+YdhfL6p7pSRDSUgQAAA==")
            .unwrap();
        assert_eq!(
            sid_text(&s).unwrap(),
            "S-1-5-21-1989738326-2666187543-3524282857-1106"
        );
        assert_eq!(sid_text(&s[..9]), None);
    }

    #[test]
    fn ad_bind_answers_map_to_domain_errors() {
        let r = |rc, data: &str| ldap3::LdapResult {
            rc,
            matched: String::new(),
            text: format!(
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {data}, v1db1"
            ),
            refs: vec![],
            ctrls: vec![],
        };
        assert_eq!(bind_answer(&r(49, "52e")), SourceError::WrongPassword);
        assert_eq!(bind_answer(&r(49, "775")), SourceError::AccountLocked);
        assert_eq!(bind_answer(&r(49, "533")), SourceError::AccountDisabled);
        assert_eq!(bind_answer(&r(49, "532")), SourceError::PasswordExpired);
        assert_eq!(bind_answer(&r(49, "773")), SourceError::PasswordMustChange);
        assert_eq!(bind_answer(&r(49, "701")), SourceError::AccountExpired);
        assert!(matches!(
            bind_answer(&r(8, "0")),
            SourceError::Unavailable(_)
        ));
        assert_eq!(filetime_to_unix(116_444_736_000_000_000), 0);
    }

    #[test]
    fn configuration_errors_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let base = || SourceConfig {
            name: "corp".into(),
            kind: "ad".into(),
            urls: vec!["ldap://127.0.0.1".into()],
            allow_plain_ldap: false,
            ca_file: None,
            bind_dn: "svc@example.test".into(),
            bind_password_file: Some(pw.clone()),
            bind_password_env: None,
            base_dn: "DC=example,DC=test".into(),
            login_attributes: vec![],
            user_filter: None,
            attributes: AttributeMap::default(),
            enroll_groups: vec![],
            group_policies: vec![],
            lockout_threshold: None,
            lockout_window_secs: None,
            lockout_margin: None,
            timeout_secs: None,
            cert_upn: None,
            cert_mail: None,
        };
        let env = HashMap::new();
        // TLS is required: without a CA file a source is refused unless plain LDAP is allowed.
        let err = base().build(&env).err().unwrap();
        assert!(err.contains("ca_file"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
            let c = SourceConfig {
                allow_plain_ldap: true,
                ..base()
            };
            let err = c.build(&env).err().unwrap();
            assert!(
                err.contains("bind_password_file") && err.contains("chmod 600"),
                "{err}"
            );
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let c = SourceConfig {
            allow_plain_ldap: true,
            ..base()
        };
        let built = c.build(&env).unwrap();
        assert_eq!(
            built.source.login_filter("a*)(x"),
            "(|(sAMAccountName=a\\2a\\29\\28x)(userPrincipalName=a\\2a\\29\\28x))"
        );
        let c = SourceConfig {
            urls: vec!["http://x".into()],
            allow_plain_ldap: true,
            ..base()
        };
        assert!(c.build(&env).err().unwrap().contains("urls"));
        let c = SourceConfig {
            allow_plain_ldap: true,
            bind_password_file: None,
            bind_password_env: Some("NOPE".into()),
            ..base()
        };
        assert!(c.build(&env).err().unwrap().contains("bind_password_env"));
        let section = DirectorySection {
            order: vec!["local".into(), "other".into()],
            ..DirectorySection::default()
        };
        assert!(section.validate().unwrap_err().contains("directory.order"));
    }
}
