//! The EST request body parser (`simpleenroll` / `simplereenroll`: base64 PKCS#10).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = ferrocore_pki::parse_est_body(data) {
        assert!(!csr.spki_der().is_empty());
    }
});
