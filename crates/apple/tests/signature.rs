//! `Mdm-Signature` against the shared vectors: the good signer verifies over
//! its body and chains to the device CA; the rogue signer's CMS verifies but its
//! certificate does not chain (the caller's trust-store step refuses it);
//! swapped or altered bodies and malformed headers are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{openssl, pem, ref_file};
use ferrocore_apple::cert_hash;
use ferrocore_apple::signature::{MAX_HEADER_BYTES, verify_mdm_signature};
use ferrocore_pki::cms::{EcKey, SignerKey};
use tempfile::TempDir;

const BODIES: [&str; 2] = ["checkin-tokenupdate", "report-acknowledged"];

fn vector(name: &str) -> Vec<u8> {
    ref_file(&format!("mdm-signature-vectors/{name}"))
}

fn header(name: &str) -> String {
    String::from_utf8(vector(name)).unwrap()
}

/// Whether `openssl verify` chains `cert_der` to the device CA for clientAuth.
fn chains_to_device_ca(cert_der: &[u8]) -> bool {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ca.pem"), vector("device-ca.pem")).unwrap();
    std::fs::write(dir.path().join("c.pem"), pem("CERTIFICATE", cert_der)).unwrap();
    openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslclient",
            "c.pem",
        ],
    )
    .0
}

#[test]
fn good_signer_verifies_and_its_certificate_chains_to_the_device_ca() {
    let device = vector("device.der");
    let want_hash = header("device.sha256.txt");
    for b in BODIES {
        let body = vector(&format!("{b}.plist"));
        let sig = verify_mdm_signature(&header(&format!("{b}.Mdm-Signature.txt")), &body)
            .unwrap_or_else(|e| panic!("{b}: {e}"));
        assert_eq!(sig.signer_cert_der, device, "{b}");
        assert_eq!(cert_hash(&sig.signer_cert_der), want_hash.trim(), "{b}");
        assert!(chains_to_device_ca(&sig.signer_cert_der), "{b}");
        // openssl put a signingTime in (UTCTime).
        assert_eq!(sig.signing_time_der.as_deref().map(|t| t[0]), Some(0x17));
    }
}

#[test]
fn rogue_signer_verifies_as_cms_but_its_certificate_does_not_chain() {
    let device = vector("device.der");
    for b in BODIES {
        let body = vector(&format!("{b}.plist"));
        let sig =
            verify_mdm_signature(&header(&format!("{b}.rogue.Mdm-Signature.txt")), &body).unwrap();
        assert_ne!(sig.signer_cert_der, device);
        assert!(!chains_to_device_ca(&sig.signer_cert_der), "{b}");
        let rogue = ::pem::parse(vector("rogue.pem")).unwrap();
        assert_eq!(sig.signer_cert_der, rogue.contents());
    }
}

#[test]
fn swapped_and_altered_bodies_are_refused() {
    let (a, b) = (BODIES[0], BODIES[1]);
    let body_a = vector(&format!("{a}.plist"));
    let body_b = vector(&format!("{b}.plist"));
    for (h, body) in [
        (format!("{a}.Mdm-Signature.txt"), &body_b),
        (format!("{b}.Mdm-Signature.txt"), &body_a),
        (format!("{a}.rogue.Mdm-Signature.txt"), &body_b),
    ] {
        let err = verify_mdm_signature(&header(&h), body).unwrap_err();
        assert_eq!(err.code(), "bad_signature", "{h}: {err}");
    }
    // Any changed byte of the body breaks it; so does a re-serialisation that
    // changes only whitespace.
    let h = header(&format!("{a}.Mdm-Signature.txt"));
    for i in [0, body_a.len() / 2, body_a.len() - 1] {
        let mut bad = body_a.clone();
        bad[i] ^= 0x20;
        assert_eq!(
            verify_mdm_signature(&h, &bad).unwrap_err().code(),
            "bad_signature"
        );
    }
    let reformatted = String::from_utf8(body_a.clone())
        .unwrap()
        .replace('\t', "  ");
    assert!(verify_mdm_signature(&h, reformatted.as_bytes()).is_err());
}

#[test]
fn malformed_headers_are_refused() {
    let body = vector("checkin-tokenupdate.plist");
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    // The profile-style (attached) signature of the same body is not an Mdm-Signature.
    let attached = {
        let key = EcKey::generate(ferrocore_pki::cms::Curve::P256).unwrap();
        let kp = rcgen::KeyPair::try_from(key.pkcs8_der()).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".to_owned()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        ferrocore_pki::cms::sign_with(
            Some(&body),
            cert.der(),
            SignerKey::Ec(&key),
            &[],
            &[cert.der().to_vec()],
        )
        .unwrap()
    };
    let cases = [
        ("empty", String::new()),
        ("not base64", "not base64 at all!".to_owned()),
        ("not CMS", b64(b"hello world")),
        ("truncated", {
            let h = header("checkin-tokenupdate.Mdm-Signature.txt");
            h[..h.len() / 2].to_owned()
        }),
        ("attached", b64(&attached)),
        ("too large", "A".repeat(MAX_HEADER_BYTES + 4)),
    ];
    for (what, h) in cases {
        let err = verify_mdm_signature(&h, &body).unwrap_err();
        assert_eq!(err.code(), "malformed_signature", "{what}: {err}");
    }
}

/// What a simulated device will do: sign its body with its identity key
/// (`cms::sign_detached`); the server side accepts it and returns the signer.
#[test]
fn our_own_detached_signature_round_trips() {
    let key = EcKey::generate(ferrocore_pki::cms::Curve::P256).unwrap();
    let kp = rcgen::KeyPair::try_from(key.pkcs8_der()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["device".to_owned()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let body = vector("report-acknowledged.plist");
    let sig = ferrocore_pki::cms::sign_detached(
        &body,
        cert.der(),
        SignerKey::Ec(&key),
        &[],
        &[cert.der().to_vec()],
    )
    .unwrap();
    let h = base64::engine::general_purpose::STANDARD.encode(&sig);
    let v = verify_mdm_signature(&h, &body).unwrap();
    assert_eq!(v.signer_cert_der, cert.der().to_vec());
    assert!(verify_mdm_signature(&h, b"<plist/>").is_err());
}
