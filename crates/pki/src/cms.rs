//! CMS / PKCS#7 (RFC 5652) forms Ferrocore builds. EST's certs-only answer is a degenerate
//! SignedData (no content, no signers), encoded here directly in DER.

use crate::PkiError;
use crate::der::tlv;

/// Degenerate certs-only SignedData (`ContentInfo`, DER) carrying `certs_der` in order:
/// version 1, no digest algorithms, id-data without content, no signer infos.
pub fn certs_only(certs_der: &[Vec<u8>]) -> Result<Vec<u8>, PkiError> {
    const ID_SIGNED_DATA: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    const ID_DATA: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    if certs_der.is_empty() {
        return Err(PkiError::input("certificates", "at least one is required"));
    }
    let mut certs = Vec::new();
    for c in certs_der {
        if c.first() != Some(&0x30) {
            return Err(PkiError::InvalidCertificate {
                reason: "not a DER certificate".into(),
            });
        }
        certs.extend_from_slice(c);
    }
    let mut sd = vec![0x02, 0x01, 0x01, 0x31, 0x00];
    sd.extend(tlv(0x30, &ID_DATA));
    sd.extend(tlv(0xa0, &certs));
    sd.extend([0x31, 0x00]);
    let mut ci = ID_SIGNED_DATA.to_vec();
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    Ok(tlv(0x30, &ci))
}
