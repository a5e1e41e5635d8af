//! SCEP certificate and CRL access (RFC 8894 3.3.3 GetCert, 3.3.4 GetCRL): the domain side of
//! the two PKIOperation message types whose content is an IssuerAndSerialNumber.
//!
//! - [`Core::scep_get_cert`]: a client fetches a copy of **its own** certificate. The request
//!   must be signed with the certificate's key (the signer certificate's public key is the
//!   requested certificate's, e.g. a self-signed certificate of the same key), so nobody
//!   learns another device's certificate; an unknown serial, another CA or another key all
//!   get the same refusal (`cert_unknown`, failInfo badCertId).
//! - [`Core::scep_get_crl`]: the CRL currently published for the CA named as issuer (public
//!   anyway at `/pki/...`); a CA Ferrocore does not hold is refused the same way.

use crate::Core;
use crate::error::{CoreError, Result};

fn unknown() -> CoreError {
    CoreError::CertUnknown("no such certificate of this requester".into())
}

impl Core {
    /// GetCert: the certificate `serial_hex` issued by the CA named `issuer_der`, and its
    /// issuing CA's certificate, if the request's signer certificate holds the same key.
    pub async fn scep_get_cert(
        &self,
        issuer_der: &[u8],
        serial_hex: &str,
        signer_cert_der: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let serial = serial_hex.trim().to_ascii_lowercase();
        let cert = self.store.certificate(&serial).await?.ok_or_else(unknown)?;
        let (cert_issuer, _) = ferrocore_pki::cert_names_der(&cert.der)
            .map_err(|e| CoreError::internal(format!("recorded certificate {serial}: {e}")))?;
        if cert_issuer != issuer_der {
            return Err(unknown());
        }
        let spki = |der: &[u8]| ferrocore_pki::cert_info(der).map(|i| i.spki_sha256_hex);
        let owner = spki(&cert.der)
            .map_err(|e| CoreError::internal(format!("recorded certificate {serial}: {e}")))?;
        match spki(signer_cert_der) {
            Ok(signer) if signer == owner => {}
            _ => return Err(unknown()),
        }
        let ca = self.issuer(&cert.enrollment_config)?.ca_der();
        Ok((cert.der, ca))
    }

    /// GetCRL: the CRL published for the CA whose subject is `issuer_der`.
    pub fn scep_get_crl(&self, issuer_der: &[u8]) -> Result<Vec<u8>> {
        for name in self.issuer_names() {
            let ca = self.issuer(&name)?.ca_der();
            let Ok((_, subject)) = ferrocore_pki::cert_names_der(&ca) else {
                continue;
            };
            if subject == issuer_der
                && let Some(crl) = self.crl_of(&name)
                && !crl.der.is_empty()
            {
                return Ok(crl.der.clone());
            }
        }
        Err(CoreError::CertUnknown(
            "no CRL published for this issuer".into(),
        ))
    }
}
