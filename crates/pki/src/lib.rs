//! Ferrocore's X.509 toolkit: a local issuing CA (ECDSA P-256 or RSA), PKCS#10 CSR
//! verification, client and server certificate issuance, CRLs, certificate
//! facts, and atomic file writing for key material.
//!
//! Pure Rust: rcgen builds certificates and CRLs, x509-parser reads them, and
//! aws-lc-rs performs every signature and verification. The wall clock is never
//! read here: callers pass `now` in.

mod ca;
pub mod cms;
mod crl;
mod csr;
mod der;
mod error;
mod est;
mod files;
mod info;
mod ocsp;
mod ra;
pub mod scep;

pub use ca::{CaKeyAlgorithm, ClientProfile, IssuedCert, LocalCa, cert_key_algorithm};
pub use cms::RsaKey;
pub use crl::{RevocationReason, RevokedEntry};
pub use csr::{CSR_MAX_BYTES, KeyAlgorithm, VerifiedCsr, parse_csr};
pub use error::PkiError;
pub use est::{EST_BODY_MAX_BYTES, EstBodyError, csr_attrs_der, est_base64, parse_est_body};
pub use files::{write_public_file, write_secret_file};
pub use info::{
    CertInfo, cert_info, cert_names_der, pem_to_der_certs, serial_hex_from_bytes, sha256_hex,
};
pub use ocsp::{
    OCSP_MAX_CERT_IDS, OCSP_REQUEST_MAX_BYTES, OcspAnswer, OcspCertRequest, OcspHash,
    OcspResponder, OcspStatus, ParsedOcspRequest, build_ocsp_request, internal_error_response,
    malformed_request_response, parse_ocsp_request, unauthorized_response,
};
pub use ra::RaIdentity;

#[cfg(test)]
mod scep_ec_tests;
#[cfg(test)]
mod scep_tests;
#[cfg(test)]
mod tests;
