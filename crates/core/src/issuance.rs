//! The issuance pipeline (authorise → apply policy → sign → record) and CRL publication.
//!
//! [`Issuer`] is one enrollment configuration: the local CA now, an external SCEP CA later.
//! Every path that creates a device certificate (registration, renewal, SCEP, EST) goes
//! through [`crate::Core`] and an `Issuer`, so lifecycle rules treat all certificates alike.

use crate::error::Result;
use ferrocore_pki::{ClientProfile, IssuedCert, LocalCa, VerifiedCsr};
use time::OffsetDateTime;

/// One certificate source (enrollment configuration).
pub trait Issuer: Send + Sync + 'static {
    /// Stable name of the enrollment configuration (`local` for the built-in CA).
    fn name(&self) -> &str;
    /// Signs a client identity certificate for a verified CSR.
    fn issue(
        &self,
        csr: &VerifiedCsr,
        profile: &ClientProfile,
        now: OffsetDateTime,
    ) -> Result<IssuedCert>;
    /// The issuing CA certificate(s), PEM, handed to devices as their trust chain.
    fn ca_pem(&self) -> String;
}

/// The built-in CA (default enrollment configuration).
pub struct LocalIssuer {
    ca: LocalCa,
}

impl LocalIssuer {
    pub fn new(ca: LocalCa) -> Self {
        LocalIssuer { ca }
    }
    pub fn ca(&self) -> &LocalCa {
        &self.ca
    }
}

impl Issuer for LocalIssuer {
    fn name(&self) -> &str {
        "local"
    }
    fn issue(
        &self,
        csr: &VerifiedCsr,
        profile: &ClientProfile,
        now: OffsetDateTime,
    ) -> Result<IssuedCert> {
        Ok(self.ca.issue_client(csr, profile, now)?)
    }
    fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }
}

/// A published CRL, DER and PEM.
#[derive(Debug, Clone, Default)]
pub struct PublishedCrl {
    pub der: Vec<u8>,
    pub pem: String,
    pub number: u64,
    pub next_update: i64,
}
