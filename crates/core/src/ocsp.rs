//! The OCSP responder's domain side: one delegated responder per enrollment configuration,
//! and [`Core::ocsp_respond`], which signs an answer from the certificate's status in the
//! store (a request without a nonce may get the same signed answer again for
//! [`OCSP_REUSE`]). Statuses read are kept in a [`StatusCache`] that every
//! revocation empties ([`Core::publish_crl`] runs after each one has committed, before the
//! revoking call returns), so a revocation is visible to the very next request; an entry read
//! before a revocation is never stored after it (epoch check). Only found certificates are
//! cached (a serial issued later is read from the store). The cache assumes this process makes
//! every revocation (one server per database, as with SQLite).
//!
//! Statuses: `good` (ours, not revoked), `revoked` (time and reason from the store),
//! `unknown` (serial not issued by the CA the CertID names, which is one of ours). A request
//! with a CertID naming none of our CAs gets the unsigned RFC 6960 `unauthorized` response:
//! no responder of ours could sign an answer a relying party would accept for it. One
//! response is signed by one responder: the CA of the first CertID; CertIDs of another of
//! our CAs in the same request answer `unknown`.

use crate::Core;
use crate::store::CertStatusRow;
use ferrocore_pki::{
    OcspAnswer, OcspResponder, OcspStatus, RevocationReason, internal_error_response,
    malformed_request_response, parse_ocsp_request, unauthorized_response,
};
use ferrocore_proto::CertStatus;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// Most statuses kept; the cache starts over when full.
const STATUS_CACHE_MAX: usize = 100_000;

/// Certificate statuses read by the OCSP responder, and signed answers to requests without a
/// nonce; both emptied by every revocation and every change of responder.
#[derive(Default)]
pub struct StatusCache {
    inner: RwLock<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    epoch: u64,
    statuses: HashMap<String, CertStatusRow>,
    /// Request DER → (when signed, response DER).
    responses: HashMap<Vec<u8>, (OffsetDateTime, Vec<u8>)>,
}

impl StatusCache {
    /// The cached row and the epoch to store a fresh read under.
    fn get(&self, serial: &str) -> (Option<CertStatusRow>, u64) {
        match self.inner.read() {
            Ok(g) => (g.statuses.get(serial).cloned(), g.epoch),
            Err(_) => (None, u64::MAX),
        }
    }
    /// Stores a row read from the store, unless a revocation happened since `epoch`.
    fn put(&self, serial: &str, row: &CertStatusRow, epoch: u64) {
        if let Ok(mut g) = self.inner.write()
            && g.epoch == epoch
        {
            if g.statuses.len() >= STATUS_CACHE_MAX {
                g.statuses.clear();
            }
            g.statuses.insert(serial.to_owned(), row.clone());
        }
    }
    /// A signed answer to these request bytes made less than [`OCSP_REUSE`] before `now`, and
    /// the epoch to store a fresh one under.
    fn response(&self, request: &[u8], now: OffsetDateTime) -> (Option<Vec<u8>>, u64) {
        match self.inner.read() {
            Ok(g) => {
                let fresh = g.responses.get(request).and_then(|(signed, der)| {
                    let age = now - *signed;
                    (age >= time::Duration::ZERO && age < OCSP_REUSE).then(|| der.clone())
                });
                (fresh, g.epoch)
            }
            Err(_) => (None, u64::MAX),
        }
    }
    /// Keeps a signed answer, unless a revocation happened since `epoch`.
    fn put_response(&self, request: &[u8], signed: OffsetDateTime, der: &[u8], epoch: u64) {
        if let Ok(mut g) = self.inner.write()
            && g.epoch == epoch
        {
            if g.responses.len() >= STATUS_CACHE_MAX {
                g.responses.clear();
            }
            g.responses.insert(request.to_vec(), (signed, der.to_vec()));
        }
    }
    /// Forgets everything (a revocation committed, or a responder changed).
    pub fn invalidate(&self) {
        let mut g = match self.inner.write() {
            Ok(g) => g,
            Err(poisoned) => {
                self.inner.clear_poison();
                poisoned.into_inner()
            }
        };
        g.epoch = g.epoch.wrapping_add(1);
        g.statuses.clear();
        g.responses.clear();
    }
}

/// How long a signed answer to a request without a nonce is served again to the same request
/// (RFC 5019 2.2: responses may be produced ahead of the request). Its thisUpdate is then at
/// most this old, well inside its nextUpdate; a revocation or a new responder empties the
/// cache first, so revocations are still visible to the very next request. Requests with a
/// nonce are always signed afresh (the nonce is echoed); answers naming an `unknown`
/// certificate are never kept (it may be issued the next moment).
pub const OCSP_REUSE: time::Duration = time::Duration::seconds(60);

/// nextUpdate - thisUpdate of every answer (answers are made per request).
pub const OCSP_VALIDITY: time::Duration = time::Duration::hours(1);
/// Lifetime of a delegated OCSP-signing certificate.
pub const OCSP_SIGNER_LIFETIME: time::Duration = time::Duration::days(90);
/// A signing certificate closer than this to its notAfter is re-issued.
pub const OCSP_SIGNER_RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// How a request was answered (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspOutcome {
    Answered,
    Malformed,
    /// A CertID names a CA Ferrocore is not authoritative for.
    Unauthorized,
    InternalError,
}

/// A DER `OCSPResponse` and how it came about.
#[derive(Debug, Clone)]
pub struct OcspReply {
    pub der: Vec<u8>,
    pub outcome: OcspOutcome,
}

impl Core {
    /// Installs (or replaces) the delegated responder of an enrollment configuration.
    pub fn install_ocsp_responder(&self, config: &str, responder: Arc<OcspResponder>) {
        let mut map = self.ocsp.load().as_ref().clone();
        map.insert(config.to_owned(), responder);
        self.ocsp.store(Arc::new(map));
        // Answers signed by the previous responder are not served again.
        self.ocsp_cache.invalidate();
    }

    /// The responder of a configuration, if one is installed.
    pub fn ocsp_responder(&self, config: &str) -> Option<Arc<OcspResponder>> {
        self.ocsp.load().get(config).cloned()
    }

    /// Answers a DER OCSP request. Never fails: a request that does not decode gets
    /// `malformedRequest`, one naming a CA that is none of ours `unauthorized`, a store or
    /// signing failure `internalError` (all logged).
    pub async fn ocsp_respond(&self, der: &[u8]) -> OcspReply {
        let req = match parse_ocsp_request(der) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, bytes = der.len(), "malformed OCSP request");
                return OcspReply {
                    der: malformed_request_response(),
                    outcome: OcspOutcome::Malformed,
                };
            }
        };
        let now = self.now();
        let (reused, epoch) = match req.nonce {
            None => self.ocsp_cache.response(der, now),
            Some(_) => (None, 0),
        };
        if let Some(der) = reused {
            return OcspReply {
                der,
                outcome: OcspOutcome::Answered,
            };
        }
        match self.ocsp_answer(&req, now).await {
            Ok(None) => {
                tracing::info!("OCSP request for a CA that is not ours: unauthorized");
                OcspReply {
                    der: unauthorized_response(),
                    outcome: OcspOutcome::Unauthorized,
                }
            }
            Ok(Some((answer, reusable))) => {
                if reusable && req.nonce.is_none() {
                    self.ocsp_cache.put_response(der, now, &answer, epoch);
                }
                OcspReply {
                    der: answer,
                    outcome: OcspOutcome::Answered,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP request failed");
                OcspReply {
                    der: internal_error_response(),
                    outcome: OcspOutcome::InternalError,
                }
            }
        }
    }

    /// The signed response and whether it may be served again (no `unknown` answer in it), or
    /// `None` when a CertID names a CA that is none of ours.
    async fn ocsp_answer(
        &self,
        req: &ferrocore_pki::ParsedOcspRequest,
        now: OffsetDateTime,
    ) -> crate::Result<Option<(Vec<u8>, bool)>> {
        let responders = self.ocsp.load_full();
        let config_of = |c: &ferrocore_pki::OcspCertRequest| {
            responders
                .iter()
                .find(|(_, r)| r.matches(c))
                .map(|(name, r)| (name.clone(), r.clone()))
        };
        if req.certs.iter().any(|c| config_of(c).is_none()) {
            return Ok(None);
        }
        let Some(signer) = req.certs.iter().find_map(config_of) else {
            // A request without CertIDs does not parse; nothing to be authoritative for.
            return Ok(None);
        };
        let mut answers = Vec::with_capacity(req.certs.len());
        for c in &req.certs {
            let status = match config_of(c) {
                Some((config, _)) if config == signer.0 => self.ocsp_status(&config, c).await?,
                _ => OcspStatus::Unknown,
            };
            answers.push(OcspAnswer {
                cert_id: c.cert_id.clone(),
                status,
                this_update: now,
                next_update: Some(now + OCSP_VALIDITY),
            });
        }
        let reusable = !answers
            .iter()
            .any(|a| matches!(a.status, OcspStatus::Unknown));
        Ok(Some((
            signer.1.sign(&answers, req.nonce.as_ref(), now)?,
            reusable,
        )))
    }

    async fn ocsp_status(
        &self,
        config: &str,
        c: &ferrocore_pki::OcspCertRequest,
    ) -> crate::Result<OcspStatus> {
        let (cached, epoch) = self.ocsp_cache.get(&c.serial_hex);
        let row = match cached {
            Some(row) => row,
            None => {
                let Some(row) = self.store.cert_status(&c.serial_hex).await? else {
                    return Ok(OcspStatus::Unknown);
                };
                self.ocsp_cache.put(&c.serial_hex, &row, epoch);
                row
            }
        };
        if row.enrollment_config != config {
            return Ok(OcspStatus::Unknown);
        }
        Ok(match row.status {
            CertStatus::Active => OcspStatus::Good,
            CertStatus::Revoked => OcspStatus::Revoked {
                at: OffsetDateTime::from_unix_timestamp(row.revoked_at.unwrap_or(0))
                    .map_err(crate::CoreError::internal)?,
                reason: row
                    .revocation_reason
                    .as_deref()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(RevocationReason::Unspecified),
            },
        })
    }
}
