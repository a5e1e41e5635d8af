//! Certificate revocation: [`RevokedEntry`], [`RevocationReason`] and CRL
//! (v2) construction by a [`LocalCa`].

use std::fmt;
use std::str::FromStr;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::OffsetDateTime;

use crate::{LocalCa, PkiError};

/// Why a certificate was revoked (RFC 5280 §5.3.1 CRLReason subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

const REASONS: [(RevocationReason, &str); 8] = [
    (RevocationReason::Unspecified, "unspecified"),
    (RevocationReason::KeyCompromise, "key_compromise"),
    (RevocationReason::CaCompromise, "ca_compromise"),
    (RevocationReason::AffiliationChanged, "affiliation_changed"),
    (RevocationReason::Superseded, "superseded"),
    (
        RevocationReason::CessationOfOperation,
        "cessation_of_operation",
    ),
    (RevocationReason::CertificateHold, "certificate_hold"),
    (RevocationReason::PrivilegeWithdrawn, "privilege_withdrawn"),
];

impl RevocationReason {
    /// Stable snake_case name (`"key_compromise"`, ...).
    pub fn as_str(&self) -> &'static str {
        REASONS
            .iter()
            .find(|(r, _)| r == self)
            .map_or("unspecified", |(_, s)| s)
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            RevocationReason::Unspecified => R::Unspecified,
            RevocationReason::KeyCompromise => R::KeyCompromise,
            RevocationReason::CaCompromise => R::CaCompromise,
            RevocationReason::AffiliationChanged => R::AffiliationChanged,
            RevocationReason::Superseded => R::Superseded,
            RevocationReason::CessationOfOperation => R::CessationOfOperation,
            RevocationReason::CertificateHold => R::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        REASONS
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(r, _)| *r)
            .ok_or_else(|| PkiError::input("revocation reason", format!("unknown reason {s:?}")))
    }
}

/// One revoked certificate to list in a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial in the canonical form of [`crate::CertInfo::serial_hex`]
    /// (leading zeros and case are tolerated).
    pub serial_hex: String,
    pub revoked_at: OffsetDateTime,
    pub reason: RevocationReason,
}

/// Parse a serial hex string into unsigned big-endian bytes (max 20 significant bytes).
fn serial_bytes(serial_hex: &str) -> Result<Vec<u8>, PkiError> {
    let s = serial_hex.trim();
    if s.is_empty() || s.len() > 64 {
        return Err(PkiError::input("serial", format!("bad length: {s:?}")));
    }
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    let bytes = hex::decode(padded)
        .map_err(|e| PkiError::input("serial", format!("not hex ({e}): {s:?}")))?;
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes[skip..].to_vec();
    if significant.len() > 20 {
        return Err(PkiError::input("serial", "longer than 20 bytes"));
    }
    Ok(if significant.is_empty() {
        vec![0]
    } else {
        significant
    })
}

impl LocalCa {
    /// Build a DER CRL (v2) signed by this CA, listing `revoked`, with
    /// CRL number and authority key identifier extensions.
    /// `thisUpdate = now`, `nextUpdate = next_update` (must be later).
    pub fn crl(
        &self,
        revoked: &[RevokedEntry],
        crl_number: u64,
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        if next_update <= now {
            return Err(PkiError::input("next_update", "must be after now"));
        }
        let revoked_certs = revoked
            .iter()
            .map(|entry| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(&entry.serial_hex)?),
                    revocation_time: entry.revoked_at,
                    reason_code: Some(entry.reason.to_rcgen()),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        // Big-endian CRL number with one leading zero byte, so it is always
        // positive; rcgen keeps DER minimal.
        let mut number = vec![0u8];
        number.extend_from_slice(&crl_number.to_be_bytes());
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from_slice(&number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::PreSpecified(self.ski.clone()),
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| PkiError::internal("signing CRL", e))?;
        Ok(crl.der().to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reasons_roundtrip() {
        for (r, s) in REASONS {
            assert_eq!(r.as_str(), s);
            assert_eq!(s.parse::<RevocationReason>().ok(), Some(r));
        }
        assert_eq!(
            "bogus".parse::<RevocationReason>().err().map(|e| e.code()),
            Some("invalid_input")
        );
    }

    #[test]
    fn serial_parsing() {
        assert_eq!(serial_bytes("0001ff").ok(), Some(vec![1, 0xff]));
        assert_eq!(serial_bytes("abc").ok(), Some(vec![0x0a, 0xbc]));
        assert!(serial_bytes("zz").is_err());
        assert!(serial_bytes("").is_err());
    }
}
