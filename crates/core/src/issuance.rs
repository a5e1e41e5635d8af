//! The issuance pipeline (authorise → apply policy → sign → record) and CRL publication.
//!
//! [`Issuer`] is one enrollment configuration: a CA Ferrocore holds ([`LocalIssuer`]) or an
//! external SCEP CA Ferrocore is a registration authority for (implemented in the server
//! crate, which owns network IO). Every path that creates a device certificate (registration,
//! renewal, migration, SCEP, EST) goes through [`crate::Core`] and an `Issuer`, so lifecycle
//! rules treat all certificates alike.

use crate::error::Result;
use async_trait::async_trait;
use ferrocore_pki::{ClientProfile, IssuedCert, LocalCa, VerifiedCsr};
use time::OffsetDateTime;

/// Kind of the built-in and admin-created local CAs.
pub const KIND_LOCAL_CA: &str = "local_ca";
/// Kind of an external SCEP CA.
pub const KIND_SCEP: &str = "scep";

/// One certificate source (enrollment configuration).
#[async_trait]
pub trait Issuer: Send + Sync + 'static {
    /// Kind of the configuration (`local_ca`, `scep`).
    fn kind(&self) -> &'static str;
    /// Signs (or obtains) a client identity certificate for a verified CSR. May wait on the
    /// network (external CAs); on error nothing has been recorded.
    async fn issue(
        &self,
        csr: &VerifiedCsr,
        profile: &ClientProfile,
        now: OffsetDateTime,
    ) -> Result<IssuedCert>;
    /// The issuing CA certificate(s), PEM, handed to devices as their trust chain.
    fn ca_pem(&self) -> String;
    /// The CA certificate (DER) trusted for mutual TLS.
    fn ca_der(&self) -> Vec<u8>;
    /// The CA Ferrocore holds, when it holds one: it publishes that CA's CRL. External CAs
    /// publish their own.
    fn local_ca(&self) -> Option<&LocalCa> {
        None
    }
    /// What a device's CSR must carry for this configuration (nothing for local CAs).
    fn csr_requirements(&self) -> CsrRequirements {
        CsrRequirements::default()
    }
}

/// What a CSR must carry for an enrollment configuration. An external SCEP CA authorises a
/// request by the PKCS#9 challengePassword *inside* the PKCS#10, which only the key holder can
/// sign: Ferrocore cannot add it to a device's CSR (see ARCHITECTURE.md, "External SCEP CA").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrRequirements {
    /// The key must be RSA with at least this many bits (`None`: any supported key).
    pub rsa_min_bits: Option<usize>,
    /// The challengePassword attribute the CSR must carry.
    pub challenge_password: Option<String>,
}

impl CsrRequirements {
    /// Whether `csr` meets these requirements; the error says what is missing (never the
    /// challenge itself).
    pub fn check(&self, csr: &VerifiedCsr) -> std::result::Result<(), String> {
        if let Some(min) = self.rsa_min_bits {
            match csr.key_algorithm() {
                ferrocore_pki::KeyAlgorithm::Rsa { bits } if bits >= min => {}
                _ => {
                    return Err(format!(
                        "this enrollment configuration needs an RSA key of at least {min} bits \
                         and the CSR attributes from /api/v1/csr-attributes"
                    ));
                }
            }
        }
        if let Some(expected) = &self.challenge_password {
            let given = csr.challenge_password().unwrap_or_default();
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                given.as_bytes(),
            )
            .is_err()
            {
                return Err(
                    "this enrollment configuration needs the CSR attributes from \
                     /api/v1/csr-attributes (challengePassword missing or wrong)"
                        .to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// The built-in CA (default enrollment configuration), or another CA Ferrocore holds.
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

#[async_trait]
impl Issuer for LocalIssuer {
    fn kind(&self) -> &'static str {
        KIND_LOCAL_CA
    }
    async fn issue(
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
    fn ca_der(&self) -> Vec<u8> {
        self.ca.cert_der().to_vec()
    }
    fn local_ca(&self) -> Option<&LocalCa> {
        Some(&self.ca)
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
