//! Minimal DER encoding helpers for the few extensions rcgen does not build
//! itself (Authority Information Access).

/// Encode one TLV with a definite, minimal length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// DER body of an Authority Information Access extension with one OCSP URL:
/// `SEQUENCE { SEQUENCE { id-ad-ocsp, [6] IA5String url } }`.
pub(crate) fn aia_ocsp(url: &str) -> Vec<u8> {
    // id-ad-ocsp 1.3.6.1.5.5.7.48.1
    const ID_AD_OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut access = ID_AD_OCSP.to_vec();
    access.extend(tlv(0x86, url.as_bytes()));
    tlv(0x30, &tlv(0x30, &access))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_are_minimal() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
