//! One-time enrollment grants: the SCEP challenge passwords and the EST tokens an
//! administrator creates for one enrollment. One mechanism for both (store table
//! `enrollment_grants`):
//!
//! - a grant is a random secret shown once; only its SHA-256 is stored;
//! - it names a user, a platform and optionally a device UUID (else the CSR subject or a new
//!   device), and expires;
//! - it records the protocol it was created for (`scep` or `est`) and **only that protocol
//!   accepts it**: a SCEP challenge presented as an EST token is refused like an unknown one
//!   (an administrator hands a credential to one kind of client; accepting it elsewhere would
//!   only widen what a leaked secret opens);
//! - it is consumed in the transaction that records the certificate it paid for
//!   (`DeviceStore::apply_enrollment`), so a reused grant changes nothing;
//! - the administrator lists grants (state active / consumed / expired / revoked, user,
//!   protocol) and revokes unused ones; a revoked grant is refused exactly like an unknown
//!   one (EST `est_token_invalid`, SCEP FAILURE `badRequest`), revoking a consumed one is
//!   `grant_consumed` (409).
//!
//! The static SCEP challenge of an enrollment configuration is not a grant: it is reusable
//! configuration (one per configuration, no expiry, never consumed) and stays in
//! `scep_static_challenges`; [`Core::scep_grant`] looks there after the one-time grants.

use crate::Core;
use crate::error::{CoreError, Result};
use crate::service::{normalise_uuid, sha256_hex};
use crate::store::{GrantQuery, GrantRecord, Page, ScepGrant};
use aws_lc_rs::rand as lc_rand;
use base64::Engine;
use ferrocore_proto::{EnrollmentGrant, GrantProtocol, Platform};

/// Longest lifetime of a grant (both protocols).
pub const GRANT_MAX_TTL_SECS: i64 = 30 * 86_400;

/// Lifetime when the administrator gives none: SCEP challenges 1 hour, EST tokens 1 day.
pub fn default_ttl_secs(protocol: GrantProtocol) -> i64 {
    match protocol {
        GrantProtocol::Scep => 3_600,
        GrantProtocol::Est => 86_400,
    }
}

/// Shortest lifetime: SCEP challenges 60 s (a SCEP client polls), EST tokens 1 s.
pub fn min_ttl_secs(protocol: GrantProtocol) -> i64 {
    match protocol {
        GrantProtocol::Scep => 60,
        GrantProtocol::Est => 1,
    }
}

/// A grant as created: the secret is shown this once.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub secret: String,
    pub record: GrantRecord,
}

/// A new secret in the protocol's form: SCEP challenges are 40 hex digits (every SCEP client
/// passes them unquoted), EST tokens `est_` plus 32 random bytes base64url.
fn new_secret(protocol: GrantProtocol) -> Result<String> {
    let mut raw = [0u8; 32];
    lc_rand::fill(&mut raw).map_err(|_| CoreError::Internal("rng failure".into()))?;
    Ok(match protocol {
        GrantProtocol::Scep => hex::encode(&raw[..20]),
        GrantProtocol::Est => format!(
            "est_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        ),
    })
}

/// The admin API's view of a grant at `now` (never the secret or its hash).
pub fn grant_view(g: GrantRecord, now: i64) -> EnrollmentGrant {
    EnrollmentGrant {
        state: g.state(now),
        id: g.id,
        protocol: g.protocol,
        username: g.username,
        platform: g.platform,
        device_uuid: g.device_uuid,
        created_at: g.created_at,
        expires_at: g.expires_at,
        consumed_at: g.consumed_at,
        device_id: g.device_id,
        cert_serial: g.consumed_by_serial,
        revoked_at: g.revoked_at,
    }
}

impl Core {
    /// Creates a one-time grant of `protocol` for `username` (who must exist) on `platform`,
    /// optionally bound to a device UUID, valid `ttl_secs` (the protocol's minimum to 30
    /// days; default [`default_ttl_secs`]).
    pub async fn create_grant(
        &self,
        protocol: GrantProtocol,
        username: &str,
        platform: Platform,
        device_uuid: Option<&str>,
        ttl_secs: Option<i64>,
    ) -> Result<NewGrant> {
        let ttl = ttl_secs.unwrap_or_else(|| default_ttl_secs(protocol));
        let min = min_ttl_secs(protocol);
        if !(min..=GRANT_MAX_TTL_SECS).contains(&ttl) {
            return Err(CoreError::BadRequest(format!(
                "ttl {ttl} s: must be {min} s to {} days",
                GRANT_MAX_TTL_SECS / 86_400
            )));
        }
        let device_uuid = device_uuid.map(normalise_uuid).transpose()?;
        if self.store.user(username).await?.is_none() {
            return Err(CoreError::NotFound(format!("user {username:?}")));
        }
        // A grant naming another user's device could never be used: refused now, with the
        // code the enrollment would give.
        if let Some(u) = &device_uuid {
            let existing = self.store.device_by_uuid(u).await?;
            crate::enrollment::ensure_owner(existing.as_ref(), username)?;
        }
        let secret = new_secret(protocol)?;
        let at = self.now().unix_timestamp();
        let record = GrantRecord {
            id: uuid::Uuid::new_v4().to_string(),
            secret_hash: sha256_hex(secret.as_bytes()),
            protocol,
            username: username.to_owned(),
            platform,
            device_uuid,
            created_at: at,
            expires_at: at + ttl,
            consumed_at: None,
            consumed_by_serial: None,
            device_id: None,
            revoked_at: None,
        };
        self.store.create_grant(&record).await?;
        tracing::info!(id = %record.id, %protocol, user = %username, %platform, "enrollment grant created");
        Ok(NewGrant { secret, record })
    }

    /// The usable (unused, unrevoked, unexpired at `at`) grant of `protocol` with this
    /// secret. Its consumption is decided again, atomically, by the enrollment's transaction.
    pub(crate) async fn usable_grant(
        &self,
        protocol: GrantProtocol,
        secret: &str,
        at: i64,
    ) -> Result<Option<GrantRecord>> {
        Ok(self
            .store
            .grant_by_secret(protocol, &sha256_hex(secret.as_bytes()))
            .await?
            .filter(|g| g.consumed_at.is_none() && g.revoked_at.is_none() && g.expires_at > at))
    }

    /// What a SCEP challenge password grants: a usable one-time SCEP grant, else the static
    /// challenge of an enrollment configuration.
    pub(crate) async fn scep_grant(&self, challenge: &str, at: i64) -> Result<Option<ScepGrant>> {
        if let Some(g) = self
            .usable_grant(GrantProtocol::Scep, challenge, at)
            .await?
        {
            return Ok(Some(ScepGrant {
                hash: g.secret_hash,
                username: g.username,
                platform: g.platform,
                device_uuid: g.device_uuid,
                static_config: None,
            }));
        }
        self.store
            .static_scep_challenge(&sha256_hex(challenge.as_bytes()))
            .await
    }

    /// Grants matching the filters, newest first (`query.now` is set here).
    pub async fn grants(&self, mut query: GrantQuery) -> Result<Page<EnrollmentGrant>> {
        let now = self.now().unix_timestamp();
        query.now = now;
        let page = self.store.list_grants(&query).await?;
        Ok(Page {
            items: page.items.into_iter().map(|g| grant_view(g, now)).collect(),
            total: page.total,
        })
    }

    pub async fn grant(&self, id: &str) -> Result<EnrollmentGrant> {
        let g = self
            .store
            .grant(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("enrollment grant {id:?}")))?;
        Ok(grant_view(g, self.now().unix_timestamp()))
    }

    /// Revokes an unused grant: from now on it is refused like an unknown one. A consumed
    /// grant is `GrantConsumed`; revoking a revoked grant changes nothing.
    pub async fn revoke_grant(&self, id: &str) -> Result<EnrollmentGrant> {
        let at = self.now().unix_timestamp();
        let g = self.store.revoke_grant(id, at).await?;
        tracing::info!(id, protocol = %g.protocol, user = %g.username, "enrollment grant revoked");
        Ok(grant_view(g, at))
    }
}
