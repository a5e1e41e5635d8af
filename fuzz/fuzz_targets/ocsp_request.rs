//! The OCSP request parser (`POST /ocsp` bodies, decoded `GET /ocsp/<base64>` paths).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ferrocore_pki::parse_ocsp_request(data) {
        // What the responder reads from a parsed request must be well formed.
        assert!(!req.certs.is_empty() && req.certs.len() <= ferrocore_pki::OCSP_MAX_CERT_IDS);
        for c in &req.certs {
            assert!(!c.serial_hex.is_empty());
            assert!(c.serial_hex.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
});
