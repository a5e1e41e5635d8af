//! The SCEP server's parser of untrusted PKIOperation bodies (`scep::parse_request`: BER
//! normalisation, SignedData reading and verification, EnvelopedData decryption with the
//! RA key), the readers of decrypted messageData (IssuerAndSerialNumber of GetCert / GetCRL,
//! IssuerAndSubject), and the client-side readers of GetCACert answers and CMS certs-only
//! messages.
//!
//! The RA is the throw-away one in `fuzz/fixtures/` (never used by a server): the seeds in
//! `seeds/scep_message/` were captured from real clients encrypting to it, so mutations start
//! from messages that verify and decrypt (RSA and ECDSA signers), not only from ones refused
//! at the envelope.
#![no_main]

use std::sync::OnceLock;

use ferrocore_pki::RsaKey;
use ferrocore_pki::scep::{self, RaKey, ScepError};
use libfuzzer_sys::fuzz_target;

fn ra() -> &'static RaKey {
    static RA: OnceLock<RaKey> = OnceLock::new();
    RA.get_or_init(|| RaKey {
        cert_der: include_bytes!("../fixtures/scep_ra.der").to_vec(),
        key: RsaKey::from_pkcs8_der(include_bytes!("../fixtures/scep_ra.pk8")).expect("RA key"),
        enc_cert_der: None,
    })
}

fuzz_target!(|data: &[u8]| {
    match scep::parse_request(data, ra()) {
        Ok(msg) => assert!(!msg.transaction_id().is_empty()),
        Err(ScepError::Refused { reply_to, .. }) => {
            assert!(!reply_to.transaction_id.is_empty());
        }
        Err(ScepError::Malformed(_)) => {}
    }
    let _ = ferrocore_pki::cms::parse_certs_only(data);
    let _ = scep::parse_get_ca_cert("application/x-x509-ca-ra-cert", data);
    // Decrypted messageData of GetCert / GetCRL and GetCertInitial.
    if let Ok((issuer, serial)) = scep::parse_issuer_and_serial(data) {
        assert!(!issuer.is_empty() && !serial.is_empty());
    }
    let _ = scep::parse_issuer_and_subject(data);
});
