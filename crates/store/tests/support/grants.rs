//! What the grant tests (the conformance suite's and the SQLite migration test) share: a
//! fresh P-256 CSR, an EST enrollment with a token, and a grant listing query.
#![allow(dead_code)]

use ferrocore_core::est::EstCredential;
use ferrocore_core::store::GrantQuery;
use ferrocore_core::{Core, CoreError};
use ferrocore_proto::GrantState;

pub fn csr() -> ferrocore_pki::VerifiedCsr {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    ferrocore_pki::parse_csr(&der).unwrap()
}

/// EST `simpleenroll` with `token`; the issued serial.
pub async fn est_with(core: &Core, token: &str) -> Result<String, CoreError> {
    core.est_enroll(EstCredential::Token(token.to_owned()), None, &csr())
        .await
        .map(|e| e.issued.serial_hex)
}

/// Grants in `state` (all when `None`), up to 100.
pub fn query(state: Option<GrantState>) -> GrantQuery {
    GrantQuery {
        state,
        limit: 100,
        ..GrantQuery::default()
    }
}
