//! SCEP PKIOperation in the domain: which message type does what, and which failInfo a
//! refusal gets. The server layer decrypts the message, verifies its signer certificate like
//! a TLS client certificate ([`ScepSigner`]) and renders the answer as a CertRep.
//!
//! - PKCSReq signed with a certificate this server trusts is the pre-RFC 8894 renewal
//!   (certmonger): a renewal authenticated by that certificate; otherwise a first enrollment
//!   authorised by the CSR's challengePassword ([`Core::scep_enroll`]).
//! - RenewalReq: a renewal ([`Core::scep_renew`]); an untrusted signer is `badCertId`.
//! - GetCertInitial: [`Core::scep_poll`]; GetCert / GetCRL: [`crate::scep_access`].
//! - Refusals: [`fail_info_of`] (lifecycle refusals `badRequest`; unknown, revoked,
//!   superseded or retired identities `badCertId`); internal errors stay errors.

use crate::Core;
use crate::error::{CoreError, Result};
use crate::service::{PresentedCert, ScepEnrollment};
use ferrocore_pki::scep::{FailInfo, MessageType};

/// A decrypted, signature-checked SCEP request.
#[derive(Debug, Clone)]
pub struct ScepOperation {
    pub message_type: MessageType,
    pub transaction_id: String,
    /// The message content: a CSR (PKCSReq, RenewalReq), IssuerAndSubject (GetCertInitial)
    /// or IssuerAndSerialNumber (GetCert, GetCRL), DER.
    pub content: Vec<u8>,
    /// The CSR's challengePassword (PKCSReq).
    pub challenge: Option<String>,
    /// The certificate that signed the request.
    pub signer_cert_der: Vec<u8>,
}

/// The request's signer certificate as the server layer's trust store judged it.
#[derive(Debug, Clone)]
pub enum ScepSigner {
    /// Issued by one of this server's CAs and verified (as of its notAfter when expired).
    Trusted(PresentedCert),
    /// Not verifiable (foreign, malformed): the reason.
    Untrusted(String),
    /// Self-signed: a first enrollment.
    SelfSigned,
}

/// What a PKIOperation is answered with.
#[derive(Debug, Clone)]
pub enum ScepAnswer {
    /// SUCCESS with these certificates (the requested or issued one first, then its CA); the
    /// device it belongs to when one was issued or found for a transaction.
    Certificates {
        certs: Vec<Vec<u8>>,
        device_id: Option<String>,
    },
    /// SUCCESS with a CRL.
    Crl(Vec<u8>),
    /// FAILURE with this failInfo; the domain error, for the log.
    Failure {
        fail_info: FailInfo,
        error: String,
        code: &'static str,
    },
}

/// The failInfo of a refusal; `None` for an internal error (answered as such, not as a SCEP
/// FAILURE).
pub fn fail_info_of(e: &CoreError) -> Option<FailInfo> {
    use CoreError::*;
    Some(match e {
        Internal(_) => return None,
        ScepTransactionUnknown(_)
        | CertUnknown(_)
        | CertRevoked { .. }
        | CertSuperseded
        | DeviceRetired
        | ReregistrationRequired => FailInfo::BadCertId,
        // RFC 8894 badTime is about signingTime, not certificate validity: an expired
        // certificate whose client may not renew in the grace is a transaction not permitted.
        _ => FailInfo::BadRequest,
    })
}

impl Core {
    /// Serves one PKIOperation (module docs).
    pub async fn scep_operation(
        &self,
        op: &ScepOperation,
        signer: ScepSigner,
    ) -> Result<ScepAnswer> {
        let tx = op.transaction_id.as_str();
        let outcome: Result<ScepAnswer> = match op.message_type {
            MessageType::PkcsReq | MessageType::RenewalReq => {
                let issued = match (op.message_type, signer) {
                    (_, ScepSigner::Trusted(presented)) => {
                        self.scep_renew(&presented, &op.signer_cert_der, &op.content, tx)
                            .await
                    }
                    (MessageType::PkcsReq, _) => {
                        self.scep_enroll(&ScepEnrollment {
                            challenge: op.challenge.clone(),
                            csr_der: op.content.clone(),
                            transaction_id: tx.to_owned(),
                            signer_cert_der: op.signer_cert_der.clone(),
                        })
                        .await
                    }
                    (_, ScepSigner::Untrusted(why)) => Err(CoreError::CertUnknown(why)),
                    (_, ScepSigner::SelfSigned) => Err(CoreError::ClientCertRequired),
                };
                issued.map(|i| ScepAnswer::Certificates {
                    certs: vec![i.cert_der, i.ca_der],
                    device_id: Some(i.device_id),
                })
            }
            MessageType::CertPoll => {
                self.scep_poll(tx, &op.signer_cert_der)
                    .await
                    .map(|i| ScepAnswer::Certificates {
                        certs: vec![i.cert_der, i.ca_der],
                        device_id: Some(i.device_id),
                    })
            }
            MessageType::GetCert | MessageType::GetCrl => {
                match ferrocore_pki::scep::parse_issuer_and_serial(&op.content) {
                    Err(e) => Err(CoreError::BadRequest(e.to_string())),
                    Ok((issuer, serial)) if op.message_type == MessageType::GetCert => self
                        .scep_get_cert(&issuer, &serial, &op.signer_cert_der)
                        .await
                        .map(|(cert, ca)| ScepAnswer::Certificates {
                            certs: vec![cert, ca],
                            device_id: None,
                        }),
                    Ok((issuer, _)) => self.scep_get_crl(&issuer).map(ScepAnswer::Crl),
                }
            }
            MessageType::CertRep => Err(CoreError::BadRequest(
                "only PKCSReq, RenewalReq, GetCertInitial, GetCert and GetCRL are served".into(),
            )),
        };
        match outcome {
            Ok(a) => Ok(a),
            Err(e) => match fail_info_of(&e) {
                Some(fail_info) => Ok(ScepAnswer::Failure {
                    fail_info,
                    code: e.code(),
                    error: e.to_string(),
                }),
                None => Err(e),
            },
        }
    }
}
