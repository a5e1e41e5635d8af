//! CMS and SCEP codec tests: round trips through our own client and server
//! sides, refusals, and interop with the real `openssl cms` tool (BER
//! indefinite lengths, DES-EDE3, SHA-1 signers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;
use time::OffsetDateTime;

use crate::cms::{self, ContentCipher, DigestAlg, RsaKey};
use crate::scep::*;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Two RSA keys reused by every test (keygen is slow in debug builds).
fn keys() -> &'static (RsaKey, RsaKey) {
    static KEYS: OnceLock<(RsaKey, RsaKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            RsaKey::generate_2048().unwrap(),
            RsaKey::generate_2048().unwrap(),
        )
    })
}

fn ra() -> RaKey {
    let (ra_key, _) = keys();
    let key = RsaKey::from_pkcs8_der(ra_key.pkcs8_der()).unwrap();
    RaKey {
        cert_der: self_signed_rsa(&key, "Test RA", now()).unwrap(),
        key,
        enc_cert_der: None,
    }
}

fn client() -> (&'static RsaKey, Vec<u8>) {
    let (_, k) = keys();
    (k, self_signed_rsa(k, "device-1", now()).unwrap())
}

pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}

/// `openssl ARGS` in `dir`, which must succeed: its stdout.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn certs_only_round_trip_and_openssl_reads_it() {
    let (k, c) = client();
    let other = self_signed_rsa(k, "second", now()).unwrap();
    let der = cms::certs_only(&[c.clone(), other.clone()]).unwrap();
    let mut back = cms::parse_certs_only(&der).unwrap();
    back.sort();
    let mut want = vec![c, other];
    want.sort();
    assert_eq!(back, want);

    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("p7.der"), &der).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "p7.der",
            "-print_certs",
            "-noout",
        ],
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("CN = device-1") && text.contains("CN = second"),
        "{text}"
    );

    // openssl's certs-only output (crl2pkcs7) parses too.
    std::fs::write(dir.path().join("c.pem"), pem("CERTIFICATE", &want[0])).unwrap();
    let p7 = openssl(
        dir.path(),
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "c.pem",
            "-outform",
            "DER",
        ],
    );
    assert_eq!(cms::parse_certs_only(&p7).unwrap(), vec![want[0].clone()]);
}

#[test]
fn malformed_cms_is_refused_with_a_code() {
    for bad in [
        &b""[..],
        b"\x30\x03\x02\x01",
        b"not der at all",
        &[0x30; 300_000],
    ] {
        let e = cms::parse_certs_only(bad).unwrap_err();
        assert_eq!(e.code(), "invalid_cms", "{e}");
    }
    let e = cms::verify(&cms::certs_only(&[client().1]).unwrap()).unwrap_err();
    assert_eq!(e.code(), "invalid_cms", "{e}");
}

#[test]
fn openssl_envelopes_decrypt_aes_and_3des_ber() {
    let ra = ra();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ra.pem"), pem("CERTIFICATE", &ra.cert_der)).unwrap();
    std::fs::write(dir.path().join("msg"), b"hello scep").unwrap();
    for (flag, cipher) in [
        ("-aes128", ContentCipher::Aes128Cbc),
        ("-aes192", ContentCipher::Aes192Cbc),
        ("-aes256", ContentCipher::Aes256Cbc),
        ("-des3", ContentCipher::DesEde3Cbc),
    ] {
        // -stream writes BER with indefinite lengths and a chunked OCTET STRING.
        let der = openssl(
            dir.path(),
            &[
                "cms", "-encrypt", "-binary", "-stream", flag, "-in", "msg", "-outform", "DER",
                "ra.pem",
            ],
        );
        assert_eq!(der[1], 0x80, "{flag}: expected an indefinite length");
        let (plain, used) = cms::open_envelope(&der, &ra.cert_der, &ra.key).unwrap();
        assert_eq!(plain, b"hello scep");
        assert_eq!(used, cipher);
    }
}

#[test]
fn our_envelopes_and_signatures_open_in_openssl() {
    let ra = ra();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ra.pem"), pem("CERTIFICATE", &ra.cert_der)).unwrap();
    std::fs::write(
        dir.path().join("ra.key"),
        pem("PRIVATE KEY", ra.key.pkcs8_der()),
    )
    .unwrap();
    for cipher in [
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::DesEde3Cbc,
    ] {
        let der = cms::envelope(b"secret body", &ra.cert_der, cipher).unwrap();
        std::fs::write(dir.path().join("env.der"), &der).unwrap();
        let plain = openssl(
            dir.path(),
            &[
                "cms", "-decrypt", "-inform", "DER", "-in", "env.der", "-inkey", "ra.key",
                "-recip", "ra.pem",
            ],
        );
        assert_eq!(plain, b"secret body", "{cipher:?}");
    }
    let signed = cms::sign(
        Some(b"payload"),
        &ra.cert_der,
        &ra.key,
        DigestAlg::Sha256,
        &[],
        std::slice::from_ref(&ra.cert_der),
    )
    .unwrap();
    std::fs::write(dir.path().join("s.der"), &signed).unwrap();
    let content = openssl(
        dir.path(),
        &[
            "cms", "-verify", "-inform", "DER", "-in", "s.der", "-CAfile", "ra.pem", "-purpose",
            "any",
        ],
    );
    assert_eq!(content, b"payload");
}

#[test]
fn openssl_sha1_and_sha512_signatures_verify() {
    let ra = ra();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ra.pem"), pem("CERTIFICATE", &ra.cert_der)).unwrap();
    std::fs::write(
        dir.path().join("ra.key"),
        pem("PRIVATE KEY", ra.key.pkcs8_der()),
    )
    .unwrap();
    std::fs::write(dir.path().join("msg"), b"signed body").unwrap();
    for (md, want) in [
        ("sha1", DigestAlg::Sha1),
        ("sha512", DigestAlg::Sha512),
        ("sha256", DigestAlg::Sha256),
    ] {
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
                "ra.pem",
                "-inkey",
                "ra.key",
                "-in",
                "msg",
                "-outform",
                "DER",
            ],
        );
        let v = cms::verify(&der).unwrap();
        assert_eq!(v.content, b"signed body");
        assert_eq!(v.digest, want);
        assert_eq!(v.signer_cert_der, ra.cert_der);
        // A flipped byte in the content breaks the messageDigest.
        let pos = der.windows(11).position(|w| w == b"signed body").unwrap();
        let mut bad = der.clone();
        bad[pos] ^= 1;
        assert_eq!(cms::verify(&bad).unwrap_err().code(), "cms_signature");
    }
}

#[test]
fn scep_enrollment_round_trip_for_every_cipher() {
    let ra = ra();
    let (key, signer) = client();
    let csr = rsa_csr(key, "device-1", Some("one-time-123")).unwrap();
    assert_eq!(
        csr_challenge_password(&csr).as_deref(),
        Some("one-time-123")
    );
    for cipher in [
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::DesEde3Cbc,
    ] {
        let tx = transaction_id_for(key.spki_der());
        let (req, nonce) =
            build_pkcs_req(&csr, &tx, &signer, key, &ra.cert_der, cipher, false).unwrap();
        let msg = parse_request(&req, &ra).unwrap();
        assert_eq!(msg.message_type, MessageType::PkcsReq);
        assert_eq!(msg.transaction_id(), tx);
        assert_eq!(msg.reply_to.sender_nonce, nonce);
        assert_eq!(msg.reply_to.signer_cert_der, signer);
        assert_eq!(msg.cipher, cipher);
        assert_eq!(msg.content, csr);

        let issued = self_signed_rsa(key, "issued", now()).unwrap();
        let rep = build_cert_rep(
            &ra,
            &msg.reply_to,
            &CertRepBody::Success(vec![issued.clone()]),
            ContentCipher::Aes128Cbc,
        )
        .unwrap();
        let parsed = parse_cert_rep(
            &rep,
            &signer,
            key,
            &tx,
            std::slice::from_ref(&ra.cert_der),
            Some(&nonce),
        )
        .unwrap();
        assert_eq!(parsed.status, PkiStatus::Success);
        assert_eq!(parsed.certs, vec![issued]);
        // Another transaction, or a reply signed by someone else, is refused.
        assert!(
            parse_cert_rep(
                &rep,
                &signer,
                key,
                "other",
                std::slice::from_ref(&ra.cert_der),
                None
            )
            .is_err()
        );
        assert_eq!(
            parse_cert_rep(&rep, &signer, key, &tx, std::slice::from_ref(&signer), None)
                .unwrap_err()
                .code(),
            "cms_signature"
        );
    }
}

#[test]
fn scep_renewal_failure_and_pending_replies() {
    let ra = ra();
    let (key, signer) = client();
    let csr = rsa_csr(key, "device-1", None).unwrap();
    let (req, nonce) = build_pkcs_req(
        &csr,
        "tx-renew",
        &signer,
        key,
        &ra.cert_der,
        ContentCipher::Aes256Cbc,
        true,
    )
    .unwrap();
    let msg = parse_request(&req, &ra).unwrap();
    assert_eq!(msg.message_type, MessageType::RenewalReq);
    for (body, status, fi) in [
        (
            CertRepBody::Failure(FailInfo::BadRequest),
            PkiStatus::Failure,
            Some(FailInfo::BadRequest),
        ),
        (
            CertRepBody::Failure(FailInfo::BadCertId),
            PkiStatus::Failure,
            Some(FailInfo::BadCertId),
        ),
        (CertRepBody::Pending, PkiStatus::Pending, None),
    ] {
        let rep = build_cert_rep(&ra, &msg.reply_to, &body, ContentCipher::Aes128Cbc).unwrap();
        let parsed = parse_cert_rep(
            &rep,
            &signer,
            key,
            "tx-renew",
            std::slice::from_ref(&ra.cert_der),
            Some(&nonce),
        )
        .unwrap();
        assert_eq!(
            (parsed.status, parsed.fail_info, parsed.certs.len()),
            (status, fi, 0)
        );
    }

    // GetCertInitial carries IssuerAndSubject.
    let (poll, _) =
        build_get_cert_initial(&ra.cert_der, &csr, "tx-renew", &signer, key, &ra.cert_der).unwrap();
    let msg = parse_request(&poll, &ra).unwrap();
    assert_eq!(msg.message_type, MessageType::CertPoll);
    let (issuer, subject) = parse_issuer_and_subject(&msg.content).unwrap();
    assert!(issuer.len() > 10 && subject.len() > 10 && issuer != subject);
}

#[test]
fn scep_bad_requests_are_malformed_or_refused() {
    let ra = ra();
    let (key, signer) = client();
    let csr = rsa_csr(key, "device-1", Some("x")).unwrap();
    assert!(matches!(
        parse_request(b"\x30\x80garbage", &ra),
        Err(ScepError::Malformed(_))
    ));
    assert!(matches!(
        parse_request(
            &cms::certs_only(std::slice::from_ref(&signer)).unwrap(),
            &ra
        ),
        Err(ScepError::Malformed(_))
    ));

    let (req, _) = build_pkcs_req(
        &csr,
        "tx-1",
        &signer,
        key,
        &ra.cert_der,
        ContentCipher::Aes128Cbc,
        false,
    )
    .unwrap();
    // A flipped byte inside the signature: refused with badMessageCheck, still answerable.
    let mut bad = req.clone();
    let n = bad.len();
    bad[n - 10] ^= 0x55;
    match parse_request(&bad, &ra) {
        Err(ScepError::Refused {
            fail_info,
            reply_to,
            ..
        }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck);
            assert_eq!(reply_to.transaction_id, "tx-1");
            let rep = build_cert_rep(
                &ra,
                &reply_to,
                &CertRepBody::Failure(fail_info),
                ContentCipher::Aes128Cbc,
            )
            .unwrap();
            let parsed = parse_cert_rep(
                &rep,
                &signer,
                key,
                "tx-1",
                std::slice::from_ref(&ra.cert_der),
                None,
            )
            .unwrap();
            assert_eq!(parsed.fail_info, Some(FailInfo::BadMessageCheck));
        }
        other => panic!("expected badMessageCheck, got {other:?}"),
    }

    // Encrypted to somebody else: the RA cannot open it.
    let (req, _) = build_pkcs_req(
        &csr,
        "tx-2",
        &signer,
        key,
        &signer,
        ContentCipher::Aes128Cbc,
        false,
    )
    .unwrap();
    match parse_request(&req, &ra) {
        Err(ScepError::Refused { fail_info, .. }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn get_ca_cert_and_caps_parsing() {
    let ra = ra();
    let (_, c) = client();
    assert_eq!(
        parse_get_ca_cert("application/x-x509-ca-cert", &c).unwrap(),
        vec![c.clone()]
    );
    let p7 = cms::certs_only(&[c.clone(), ra.cert_der.clone()]).unwrap();
    assert_eq!(
        parse_get_ca_cert("application/x-x509-ca-ra-cert", &p7)
            .unwrap()
            .len(),
        2
    );
    assert!(parse_get_ca_cert("text/html", &c).is_err());
    assert!(parse_get_ca_cert("application/x-x509-ca-cert", b"junk").is_err());

    let caps = CaCaps::parse("AES\r\nPOSTPKIOperation\nsha-256\n\n");
    assert!(caps.has("SHA-256") && caps.has("aes") && !caps.has("DES3"));
    assert_eq!(caps.cipher(), ContentCipher::Aes256Cbc);
    assert_eq!(CaCaps::parse("DES3\n").cipher(), ContentCipher::DesEde3Cbc);
}

/// A transactionID PrintableString cannot carry, in the UTF8String a client used: the CertRep
/// echoes it byte for byte (building the reply used to fail on `_`).
#[test]
fn cert_rep_echoes_the_transaction_id_as_the_client_encoded_it() {
    let ra = ra();
    let (key, signer) = client();
    let csr = rsa_csr(key, "device-1", Some("one-time-123")).unwrap();
    let (req, nonce) = build_pkcs_req(
        &csr,
        "placeholder",
        &signer,
        key,
        &ra.cert_der,
        ContentCipher::Aes128Cbc,
        false,
    )
    .unwrap();
    let mut msg = parse_request(&req, &ra).unwrap();
    let utf8 = der::Encode::to_der(&der::asn1::Utf8StringRef::new("a_b@c*").unwrap()).unwrap();
    msg.reply_to.transaction_id = "a_b@c*".into();
    msg.reply_to.transaction_id_der = utf8.clone();
    let issued = self_signed_rsa(key, "issued", now()).unwrap();
    for body in [
        CertRepBody::Success(vec![issued.clone()]),
        CertRepBody::Failure(FailInfo::BadRequest),
    ] {
        let rep = build_cert_rep(&ra, &msg.reply_to, &body, ContentCipher::Aes128Cbc).unwrap();
        let signed = cms::inspect_signed(&rep).unwrap();
        let echoed = signed
            .attr("2.16.840.1.113733.1.9.7")
            .and_then(|a| a.single_value())
            .unwrap();
        assert_eq!(echoed, utf8.as_slice());
        let parsed = parse_cert_rep(
            &rep,
            &signer,
            key,
            "a_b@c*",
            std::slice::from_ref(&ra.cert_der),
            Some(&nonce),
        )
        .unwrap();
        match body {
            CertRepBody::Success(_) => assert_eq!(parsed.certs, vec![issued.clone()]),
            _ => assert_eq!(parsed.fail_info, Some(FailInfo::BadRequest)),
        }
    }
}

#[test]
fn openssl_detached_signature_verifies_over_the_external_content_only() {
    let ra = ra();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ra.pem"), pem("CERTIFICATE", &ra.cert_der)).unwrap();
    std::fs::write(
        dir.path().join("ra.key"),
        pem("PRIVATE KEY", ra.key.pkcs8_der()),
    )
    .unwrap();
    std::fs::write(dir.path().join("msg"), b"request body").unwrap();
    let sign = |detach: bool| {
        let mut args = vec![
            "cms", "-sign", "-binary", "-signer", "ra.pem", "-inkey", "ra.key", "-in", "msg",
            "-outform", "DER",
        ];
        if !detach {
            args.push("-nodetach");
        }
        openssl(dir.path(), &args)
    };
    let detached = sign(true);
    let v = cms::verify_detached(&detached, b"request body").unwrap();
    assert_eq!(v.content, b"request body");
    assert!(!v.has_content);
    assert_eq!(v.signer_cert_der, ra.cert_der);
    // Another body, or no body (plain verify), does not verify.
    assert_eq!(
        cms::verify_detached(&detached, b"request bodz")
            .unwrap_err()
            .code(),
        "cms_signature"
    );
    assert_eq!(cms::verify(&detached).unwrap_err().code(), "cms_signature");
    // An attached signature is not what a detached verifier expects.
    let attached = sign(false);
    assert!(cms::verify(&attached).is_ok());
    assert_eq!(
        cms::verify_detached(&attached, b"request body")
            .unwrap_err()
            .code(),
        "invalid_cms"
    );
}

#[test]
fn sign_detached_is_verified_by_openssl_over_the_external_content() {
    let ra = ra();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ra.pem"), pem("CERTIFICATE", &ra.cert_der)).unwrap();
    std::fs::write(dir.path().join("msg"), b"request body").unwrap();
    let sig = cms::sign_detached(
        b"request body",
        &ra.cert_der,
        cms::SignerKey::Rsa(&ra.key, DigestAlg::Sha256),
        &[],
        std::slice::from_ref(&ra.cert_der),
    )
    .unwrap();
    std::fs::write(dir.path().join("sig.der"), &sig).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "msg",
            "-CAfile", "ra.pem", "-purpose", "any",
        ],
    );
    assert_eq!(out, b"request body");
    assert!(
        !cms::verify_detached(&sig, b"request body")
            .unwrap()
            .has_content
    );
    assert!(cms::verify_detached(&sig, b"other body").is_err());
}
