//! SCEP with ECDSA signers: RenewalReq signed with a P-256 or P-384 identity
//! (as registration issues them) is verified and decrypted, the CertRep to such
//! a requester is encrypted by key agreement, and the real `openssl cms` tool
//! both signs ECDSA SignedData we verify and opens the CertRep envelopes we build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tempfile::TempDir;
use time::OffsetDateTime;

use crate::cms::{self, ContentCipher, Curve, DigestAlg, EcKey, RsaKey, SignerKey};
use crate::scep::*;
use crate::scep_tests::{openssl, pem};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn ra() -> RaKey {
    let key = RsaKey::generate_2048().unwrap();
    RaKey {
        cert_der: self_signed_rsa(&key, "Test RA", now()).unwrap(),
        key,
        enc_cert_der: None,
    }
}

/// An EC identity: key and a certificate for it (self-signed stands in for the
/// local CA's; the SCEP layer only needs the key in the certificate).
fn ec_identity(curve: Curve) -> (EcKey, Vec<u8>) {
    let key = EcKey::generate(curve).unwrap();
    let alg = match curve {
        Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, alg).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["device-ec".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "device-ec");
    let cert = params.self_signed(&kp).unwrap();
    (key, cert.der().to_vec())
}

fn new_csr() -> Vec<u8> {
    let k = EcKey::generate(Curve::P256).unwrap();
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(k.pkcs8_der().to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "device-ec");
    params.serialize_request(&kp).unwrap().der().to_vec()
}

#[test]
fn ecdsa_renewal_req_p256_and_p384_verify_decrypt_and_get_an_ec_encrypted_reply() {
    let ra = ra();
    for curve in [Curve::P256, Curve::P384] {
        let (key, cert) = ec_identity(curve);
        let csr = new_csr();
        let (der, nonce) = build_renewal_req(
            &csr,
            "tx-ec",
            &cert,
            SignerKey::Ec(&key),
            &ra.cert_der,
            ContentCipher::Aes256Cbc,
        )
        .unwrap();
        let msg = parse_request(&der, &ra).unwrap();
        assert_eq!(msg.message_type, MessageType::RenewalReq, "{curve:?}");
        assert_eq!(msg.content, csr, "{curve:?}");
        assert_eq!(msg.reply_to.signer_cert_der, cert);
        assert_eq!(msg.reply_to.sender_nonce, nonce);
        assert_eq!(msg.reply_to.digest, curve.digest());

        // The CertRep is encrypted to the EC signer certificate by key agreement.
        let issued = ec_identity(Curve::P256).1;
        let rep = build_cert_rep(
            &ra,
            &msg.reply_to,
            &CertRepBody::Success(vec![issued.clone()]),
            ContentCipher::Aes128Cbc,
        )
        .unwrap();
        let v = cms::verify(&rep).unwrap();
        assert_eq!(v.signer_cert_der, ra.cert_der);
        // With the wrong EC key it does not open.
        let (other, _) = ec_identity(curve);
        assert!(cms::open_kari(&v.content, &other).is_err(), "{curve:?}");
        let (inner, cipher) = cms::open_kari(&v.content, &key).unwrap();
        assert_eq!(cipher, ContentCipher::Aes128Cbc);
        assert_eq!(cms::parse_certs_only(&inner).unwrap(), vec![issued]);
    }
}

#[test]
fn openssl_opens_the_ec_envelope_and_signs_ecdsa_we_verify() {
    let dir = TempDir::new().unwrap();
    for (curve, md) in [(Curve::P256, "sha256"), (Curve::P384, "sha384")] {
        let (key, cert) = ec_identity(curve);
        std::fs::write(dir.path().join("c.pem"), pem("CERTIFICATE", &cert)).unwrap();
        std::fs::write(
            dir.path().join("c.key"),
            pem("PRIVATE KEY", key.pkcs8_der()),
        )
        .unwrap();

        // Our key-agreement envelope, opened by openssl.
        for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes256Cbc] {
            let env = cms::envelope(b"certs for an EC device", &cert, cipher).unwrap();
            std::fs::write(dir.path().join("env.der"), &env).unwrap();
            let plain = openssl(
                dir.path(),
                &[
                    "cms", "-decrypt", "-inform", "DER", "-in", "env.der", "-inkey", "c.key",
                    "-recip", "c.pem",
                ],
            );
            assert_eq!(plain, b"certs for an EC device", "{curve:?} {cipher:?}");
        }

        // openssl's ECDSA SignedData (ecdsa-with-SHA*), verified by us.
        std::fs::write(dir.path().join("msg"), b"signed by openssl").unwrap();
        let der = openssl(
            dir.path(),
            &[
                "cms",
                "-sign",
                "-binary",
                "-nodetach",
                "-md",
                md,
                "-signer",
                "c.pem",
                "-inkey",
                "c.key",
                "-in",
                "msg",
                "-outform",
                "DER",
            ],
        );
        let v = cms::verify(&der).unwrap();
        assert_eq!(v.content, b"signed by openssl");
        assert_eq!(v.signer_cert_der, cert);

        // Our ECDSA SignedData, verified by openssl.
        let ours = cms::sign_with(
            Some(b"signed by us"),
            &cert,
            SignerKey::Ec(&key),
            &[],
            std::slice::from_ref(&cert),
        )
        .unwrap();
        std::fs::write(dir.path().join("ours.der"), &ours).unwrap();
        let out = openssl(
            dir.path(),
            &[
                "cms", "-verify", "-inform", "DER", "-in", "ours.der", "-CAfile", "c.pem",
                "-purpose", "any",
            ],
        );
        assert_eq!(out, b"signed by us", "{curve:?}");
    }
}

#[test]
fn tampered_or_mismatched_ecdsa_signatures_are_refused_with_bad_message_check() {
    let ra = ra();
    let (key, cert) = ec_identity(Curve::P256);
    let (der, _) = build_renewal_req(
        &new_csr(),
        "tx-bad",
        &cert,
        SignerKey::Ec(&key),
        &ra.cert_der,
        ContentCipher::Aes128Cbc,
    )
    .unwrap();
    // Flip a byte of the encrypted content: messageDigest no longer matches.
    let mut tampered = der.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    match parse_request(&tampered, &ra) {
        Err(ScepError::Refused { fail_info, .. }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck)
        }
        Err(ScepError::Malformed(_)) => {}
        other => panic!("tampered request accepted: {other:?}"),
    }
    // Signed with another key than the certificate's.
    let (other_key, _) = ec_identity(Curve::P256);
    let (der, _) = build_renewal_req(
        &new_csr(),
        "tx-other",
        &cert,
        SignerKey::Ec(&other_key),
        &ra.cert_der,
        ContentCipher::Aes128Cbc,
    )
    .unwrap();
    match parse_request(&der, &ra) {
        Err(ScepError::Refused { fail_info, .. }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck)
        }
        other => panic!("foreign signature accepted: {other:?}"),
    }
}

#[test]
fn rsa_signers_still_verify_with_sha384() {
    let ra = ra();
    let key = RsaKey::generate_2048().unwrap();
    let cert = self_signed_rsa(&key, "rsa-device", now()).unwrap();
    let (der, _) = build_renewal_req(
        &new_csr(),
        "tx-rsa",
        &cert,
        SignerKey::Rsa(&key, DigestAlg::Sha384),
        &ra.cert_der,
        ContentCipher::Aes128Cbc,
    )
    .unwrap();
    let msg = parse_request(&der, &ra).unwrap();
    assert_eq!(msg.message_type, MessageType::RenewalReq);
    assert_eq!(msg.reply_to.digest, DigestAlg::Sha384);
    // The reply to an RSA signer stays RSA key transport, opened with its key.
    let rep = build_cert_rep(
        &ra,
        &msg.reply_to,
        &CertRepBody::Success(vec![cert.clone()]),
        ContentCipher::Aes128Cbc,
    )
    .unwrap();
    let parsed = parse_cert_rep(
        &rep,
        &cert,
        &key,
        "tx-rsa",
        std::slice::from_ref(&ra.cert_der),
        None,
    )
    .unwrap();
    assert_eq!(parsed.status, PkiStatus::Success);
    assert_eq!(parsed.certs, vec![cert]);
}

/// The fuzz seeds are real client messages (fuzz/seeds/README.md): each verifies and decrypts
/// with the fixture RA they were captured against, so the fuzzer starts from valid input.
#[test]
fn captured_client_messages_verify_and_decrypt() {
    let ra = RaKey {
        cert_der: include_bytes!("../../../fuzz/fixtures/scep_ra.der").to_vec(),
        key: RsaKey::from_pkcs8_der(include_bytes!("../../../fuzz/fixtures/scep_ra.pk8")).unwrap(),
        enc_cert_der: None,
    };
    for (name, der, kind) in [
        (
            "scepclient PKCSReq",
            &include_bytes!("../../../fuzz/seeds/scep_message/scepclient-1.der")[..],
            MessageType::PkcsReq,
        ),
        (
            "scepclient RenewalReq",
            include_bytes!("../../../fuzz/seeds/scep_message/scepclient-2.der"),
            MessageType::RenewalReq,
        ),
        (
            "certmonger PKCSReq",
            include_bytes!("../../../fuzz/seeds/scep_message/certmonger-1.der"),
            MessageType::PkcsReq,
        ),
        (
            "certmonger renewal",
            include_bytes!("../../../fuzz/seeds/scep_message/certmonger-2.der"),
            MessageType::PkcsReq,
        ),
        (
            "ECDSA RenewalReq",
            include_bytes!("../../../fuzz/seeds/scep_message/ferrocore-ecdsa-renewal.der"),
            MessageType::RenewalReq,
        ),
    ] {
        let msg = parse_request(der, &ra).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.message_type, kind, "{name}");
        crate::parse_csr(&msg.content).unwrap_or_else(|e| panic!("{name}: CSR {e}"));
    }
}
