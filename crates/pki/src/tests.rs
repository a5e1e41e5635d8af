//! Crate tests: issuance and CRLs checked with x509-parser and against the
//! real `openssl` command-line tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use rcgen::{CertificateParams, KeyPair};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::*;

const UUID: &str = "0E1D2C3B-4A59-6877-8695-a4b3c2d1e0f0";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed: {text}");
    text
}

fn profile() -> ClientProfile {
    ClientProfile {
        device_uuid: UUID.into(),
        username: "alice".into(),
        email: Some("alice@example.org".into()),
        upn: Some("alice@corp.example".into()),
        lifetime: Duration::days(90),
        crl_url: Some("http://mdm.example/crl.der".into()),
        ocsp_url: Some("http://mdm.example/ocsp".into()),
    }
}

fn rcgen_csr() -> Vec<u8> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["device.example".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rcgen-device");
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// Make a CSR with the openssl CLI; returns its PEM bytes.
fn openssl_csr(dir: &Path, name: &str, key_args: &[&str], extra: &[&str]) -> Vec<u8> {
    let csr = format!("{name}.csr");
    let key = format!("{name}.key");
    let mut args = vec![
        "req", "-new", "-nodes", "-subj", "/CN=x", "-keyout", &key, "-out", &csr,
    ];
    args.extend_from_slice(key_args);
    args.extend_from_slice(extra);
    openssl_ok(dir, &args);
    std::fs::read(dir.join(csr)).unwrap()
}

const EC_P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

#[test]
fn ca_generate_and_roundtrip() {
    let ca = LocalCa::generate("Ferrocore Test CA", now()).unwrap();
    let again = LocalCa::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
    assert_eq!(ca.cert_der(), again.cert_der());
    assert_eq!(ca.key_id(), again.key_id());
    let info = cert_info(ca.cert_der()).unwrap();
    assert!(info.is_ca);
    assert_eq!(info.subject, info.issuer);
    assert_eq!(info.serial_hex.len(), 32);
    assert!(info.subject.contains("CN=Ferrocore Test CA"));
    assert!(info.subject.contains("O=Ferrocore"));

    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let text = openssl_ok(dir.path(), &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("Subject Key Identifier"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    // A reloaded CA still issues verifiable certificates.
    let csr = parse_csr(&rcgen_csr()).unwrap();
    let cert = again.issue_client(&csr, &profile(), now()).unwrap();
    std::fs::write(dir.path().join("c.pem"), &cert.pem).unwrap();
    openssl_ok(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslclient",
            "c.pem",
        ],
    );
}

#[test]
fn ca_key_mismatch_and_non_ca_refused() {
    let a = LocalCa::generate("A", now()).unwrap();
    let b = LocalCa::generate("B", now()).unwrap();
    let err = LocalCa::from_pem(&a.cert_pem(), &b.key_pem()).unwrap_err();
    assert_eq!(err.code(), "key_mismatch");
    let (server, key) = a
        .issue_server(&["localhost".into()], Duration::days(1), now())
        .unwrap();
    let err = LocalCa::from_pem(&server.pem, &key).unwrap_err();
    assert_eq!(err.code(), "invalid_certificate");
    assert_eq!(
        LocalCa::from_pem("junk", &a.key_pem()).unwrap_err().code(),
        "invalid_certificate"
    );
    assert_eq!(
        LocalCa::from_pem(&a.cert_pem(), "junk").unwrap_err().code(),
        "invalid_key"
    );
}

#[test]
fn rcgen_csr_issues_client_cert_with_profile() {
    let ca = LocalCa::generate("CA", now()).unwrap();
    let csr_der = rcgen_csr();
    let csr = parse_csr(&csr_der).unwrap();
    assert_eq!(csr.subject_cn().as_deref(), Some("rcgen-device"));
    assert_eq!(csr.key_algorithm(), KeyAlgorithm::EcP256);
    assert_eq!(csr.spki_sha256_hex().len(), 64);
    let t = now();
    let cert = ca.issue_client(&csr, &profile(), t).unwrap();

    let info = cert_info(&cert.der).unwrap();
    assert_eq!(info.serial_hex, cert.serial_hex);
    assert_eq!(cert.serial_hex.len(), 32);
    assert_eq!(cert.serial_hex, cert.serial_hex.to_lowercase());
    assert_eq!(info.spki_sha256_hex, csr.spki_sha256_hex());
    assert_eq!(info.subject_cn.as_deref(), Some("alice"));
    assert!(
        cert.subject.contains("O=Ferrocore device"),
        "{}",
        cert.subject
    );
    assert!(!info.is_ca);
    assert_eq!(
        info.san_uris,
        vec![format!("urn:uuid:{}", UUID.to_lowercase())]
    );
    assert_eq!(info.san_emails, vec!["alice@example.org".to_string()]);
    assert_eq!(
        cert.not_after.unix_timestamp(),
        (t + Duration::days(90)).unix_timestamp()
    );
    assert_eq!(
        cert.not_before.unix_timestamp(),
        (t - Duration::minutes(5)).unix_timestamp()
    );
    assert_eq!(pem_to_der_certs(&cert.pem).unwrap(), vec![cert.der.clone()]);

    let (_, x509) = X509Certificate::from_der(&cert.der).unwrap();
    let eku = x509.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && eku.other.is_empty() && !eku.any);
    let ku = x509.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
    let mut saw = (false, false, false, false, false);
    for ext in x509.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(dps) => {
                let text = format!("{dps:?}");
                saw.0 = text.contains("http://mdm.example/crl.der");
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                let d = &aia.accessdescs[0];
                saw.1 = d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1"
                    && d.access_location == GeneralName::URI("http://mdm.example/ocsp");
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                saw.2 = aki.key_identifier.as_ref().map(|k| k.0) == Some(ca.key_id());
            }
            ParsedExtension::SubjectKeyIdentifier(_) => saw.3 = true,
            ParsedExtension::SubjectAlternativeName(san) => {
                saw.4 = san.general_names.iter().any(|n| {
                    matches!(n, GeneralName::OtherName(oid, _)
                        if oid.to_id_string() == "1.3.6.1.4.1.311.20.2.3")
                });
            }
            _ => {}
        }
    }
    assert_eq!(saw, (true, true, true, true, true));
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("c.pem"), &cert.pem).unwrap();
    let text = openssl_ok(dir.path(), &["x509", "-in", "c.pem", "-noout", "-text"]);
    assert!(
        text.contains("serialNumber = 0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f0"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("alice@corp.example"), "{text}");
}

#[test]
fn openssl_csr_issue_verify_and_crl() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let ca = LocalCa::generate("CA", now()).unwrap();
    // OpenSSL adds extension requests; they must be tolerated.
    let pem = openssl_csr(
        d,
        "ec",
        EC_P256,
        &[
            "-addext",
            "subjectKeyIdentifier=hash",
            "-addext",
            "subjectAltName=DNS:x",
        ],
    );
    let csr = parse_csr(&pem).unwrap();
    assert_eq!(csr.subject_cn().as_deref(), Some("x"));
    let cert = ca.issue_client(&csr, &profile(), now()).unwrap();
    let other = ca.issue_client(&csr, &profile(), now()).unwrap();
    assert_ne!(cert.serial_hex, other.serial_hex);
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(d.join("cert.pem"), &cert.pem).unwrap();
    let text = openssl_ok(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslclient",
            "cert.pem",
        ],
    );
    assert!(text.contains("cert.pem: OK"), "{text}");
    // Client-only EKU: not a server certificate.
    assert!(
        !openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "sslserver",
                "cert.pem"
            ]
        )
        .status
        .success()
    );

    let t = now();
    let revoke = |serial: &str| RevokedEntry {
        serial_hex: serial.to_string(),
        revoked_at: t - Duration::minutes(1),
        reason: RevocationReason::KeyCompromise,
    };
    let crl = ca
        .crl(
            &[revoke(&cert.serial_hex), revoke("01")],
            7,
            t,
            t + Duration::days(1),
        )
        .unwrap();
    std::fs::write(d.join("crl.der"), &crl).unwrap();
    let text = openssl_ok(
        d,
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", "-text",
        ],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains(&cert.serial_hex.to_uppercase()), "{text}");
    openssl_ok(
        d,
        &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"],
    );
    let out = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "cert.pem",
        ],
    );
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).to_string();
    assert!(
        text.contains("error 23") && text.contains("certificate revoked"),
        "{text}"
    );
    std::fs::write(d.join("other.pem"), &other.pem).unwrap();
    let text = openssl_ok(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "other.pem",
        ],
    );
    assert!(text.contains("other.pem: OK"), "{text}");

    // Empty CRL is valid too; bad inputs are refused.
    let empty = ca.crl(&[], 8, t, t + Duration::days(1)).unwrap();
    std::fs::write(d.join("empty.der"), &empty).unwrap();
    openssl_ok(
        d,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "empty.der",
            "-CAfile",
            "ca.pem",
            "-noout",
        ],
    );
    assert_eq!(ca.crl(&[], 9, t, t).unwrap_err().code(), "invalid_input");
    assert_eq!(
        ca.crl(&[revoke("xyz")], 9, t, t + Duration::days(1))
            .unwrap_err()
            .code(),
        "invalid_input"
    );
}

#[test]
fn rsa_csrs() {
    let dir = TempDir::new().unwrap();
    let pem = openssl_csr(dir.path(), "rsa2048", &["-newkey", "rsa:2048"], &[]);
    let csr = parse_csr(&pem).unwrap();
    assert_eq!(csr.key_algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
    let ca = LocalCa::generate("CA", now()).unwrap();
    let cert = ca.issue_client(&csr, &profile(), now()).unwrap();
    let (_, x509) = X509Certificate::from_der(&cert.der).unwrap();
    assert!(x509.key_usage().unwrap().unwrap().value.key_encipherment());

    let pem = openssl_csr(dir.path(), "rsa1024", &["-newkey", "rsa:1024"], &[]);
    assert_eq!(parse_csr(&pem).unwrap_err().code(), "unsupported_key");
}

#[test]
fn sha1_and_odd_curves_refused() {
    let dir = TempDir::new().unwrap();
    let pem = openssl_csr(dir.path(), "sha1", EC_P256, &["-sha1"]);
    assert_eq!(parse_csr(&pem).unwrap_err().code(), "unsupported_signature");
    let pem = openssl_csr(dir.path(), "rsasha1", &["-newkey", "rsa:2048"], &["-sha1"]);
    assert_eq!(parse_csr(&pem).unwrap_err().code(), "unsupported_signature");
    let pem = openssl_csr(
        dir.path(),
        "p384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &[],
    );
    assert_eq!(
        parse_csr(&pem).unwrap().key_algorithm(),
        KeyAlgorithm::EcP384
    );
    let pem = openssl_csr(
        dir.path(),
        "k256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        &[],
    );
    assert_eq!(parse_csr(&pem).unwrap_err().code(), "unsupported_key");
    let pem = openssl_csr(dir.path(), "ed", &["-newkey", "ed25519"], &[]);
    assert_eq!(parse_csr(&pem).unwrap_err().code(), "unsupported_key");
}

#[test]
fn tampered_and_garbage_csrs_refused() {
    let mut der = rcgen_csr();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(parse_csr(&der).unwrap_err().code(), "csr_signature");

    let good = rcgen_csr();
    // Tamper with the subject (inside the signed part).
    let pos = good.windows(12).position(|w| w == b"rcgen-device").unwrap();
    let mut tampered = good.clone();
    tampered[pos] = b'R';
    assert_eq!(parse_csr(&tampered).unwrap_err().code(), "csr_signature");

    for bad in [
        &b""[..],
        b"garbage",
        &good[..good.len() / 2],
        &[0x30, 0x82, 0xff, 0xff],
    ] {
        assert_eq!(parse_csr(bad).unwrap_err().code(), "invalid_csr");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(parse_csr(&trailing).unwrap_err().code(), "invalid_csr");
    assert_eq!(
        parse_csr(&vec![0x30; CSR_MAX_BYTES + 1])
            .unwrap_err()
            .code(),
        "invalid_csr"
    );
    let wrong_label = pem::encode(&pem::Pem::new("CERTIFICATE", good.clone()));
    assert_eq!(
        parse_csr(wrong_label.as_bytes()).unwrap_err().code(),
        "invalid_csr"
    );
    let ok_pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", good));
    assert!(parse_csr(format!("\n  {ok_pem}").as_bytes()).is_ok());
}

type Mutation = Box<dyn Fn(&mut ClientProfile)>;

#[test]
fn bad_profiles_refused() {
    let ca = LocalCa::generate("CA", now()).unwrap();
    let csr = parse_csr(&rcgen_csr()).unwrap();
    let cases: Vec<Mutation> = vec![
        Box::new(|p| p.device_uuid = "not-a-uuid".into()),
        Box::new(|p| p.username = String::new()),
        Box::new(|p| p.username = "a\nb".into()),
        Box::new(|p| p.email = Some("no-at-sign".into())),
        Box::new(|p| p.email = Some("ünï@example.org".into())),
        Box::new(|p| p.lifetime = Duration::ZERO),
        Box::new(|p| p.crl_url = Some("file:///etc/passwd".into())),
        Box::new(|p| p.ocsp_url = Some("http://a b".into())),
    ];
    for mutate in cases {
        let mut p = profile();
        mutate(&mut p);
        assert_eq!(
            ca.issue_client(&csr, &p, now()).unwrap_err().code(),
            "invalid_input",
            "{p:?}"
        );
    }
    // Lifetime is clamped to the CA's own validity.
    let mut p = profile();
    p.lifetime = Duration::days(365 * 50);
    let cert = ca.issue_client(&csr, &p, now()).unwrap();
    assert_eq!(cert.not_after, ca.not_after());
}

#[test]
fn server_cert_has_dns_ip_sans_and_server_auth() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let ca = LocalCa::generate("CA", now()).unwrap();
    let hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let (cert, key_pem) = ca.issue_server(&hosts, Duration::days(30), now()).unwrap();
    let info = cert_info(&cert.der).unwrap();
    assert_eq!(info.san_dns, vec!["localhost".to_string()]);
    assert_eq!(
        info.san_ips,
        vec!["127.0.0.1".to_string(), "::1".to_string()]
    );
    assert_eq!(info.subject_cn.as_deref(), Some("localhost"));
    let (_, x509) = X509Certificate::from_der(&cert.der).unwrap();
    let eku = x509.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(KeyPair::from_pem(&key_pem).is_ok());
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(d.join("s.pem"), &cert.pem).unwrap();
    openssl_ok(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "s.pem",
        ],
    );
    for bad in [
        vec![],
        vec!["bad host".to_string()],
        vec!["-x.example".to_string()],
    ] {
        assert_eq!(
            ca.issue_server(&bad, Duration::days(1), now())
                .unwrap_err()
                .code(),
            "invalid_input"
        );
    }
}

#[test]
fn atomic_file_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let secret = dir.path().join("ca.key");
    write_secret_file(&secret, b"one").unwrap();
    write_secret_file(&secret, b"two").unwrap();
    assert_eq!(std::fs::read(&secret).unwrap(), b"two");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let public = dir.path().join("ca.pem");
    write_public_file(&public, b"pub").unwrap();
    let mode = std::fs::metadata(&public).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    assert!(write_secret_file(&dir.path().join("missing/x"), b"x").is_err());
}

#[test]
fn pem_bundles_and_serials() {
    let ca = LocalCa::generate("CA", now()).unwrap();
    let bundle = format!("{}{}", ca.cert_pem(), ca.cert_pem());
    assert_eq!(pem_to_der_certs(&bundle).unwrap().len(), 2);
    assert_eq!(
        pem_to_der_certs(&ca.key_pem()).unwrap_err().code(),
        "invalid_certificate"
    );
    assert_eq!(
        cert_info(b"nope").unwrap_err().code(),
        "invalid_certificate"
    );
    assert_eq!(serial_hex_from_bytes(&[0, 0, 0x8f, 1]), "8f01");
    assert_eq!(serial_hex_from_bytes(&[0]), "00");
}

fn serial_bytes(serial_hex: &str) -> Vec<u8> {
    hex::decode(serial_hex).unwrap()
}

#[test]
fn ocsp_responses_verify_with_openssl_for_every_hash_and_status() {
    let dir = TempDir::new().unwrap();
    let ca = LocalCa::generate("Ferrocore OCSP Test CA", now()).unwrap();
    let csr = parse_csr(&rcgen_csr()).unwrap();
    let dev = ca.issue_client(&csr, &profile(), now()).unwrap();
    let (signer, signer_key) = ca.issue_ocsp_signer(Duration::days(90), now()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("dev.pem"), &dev.pem).unwrap();
    std::fs::write(dir.path().join("signer.pem"), &signer.pem).unwrap();
    let text = openssl_ok(
        dir.path(),
        &["x509", "-in", "signer.pem", "-noout", "-text"],
    );
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");

    let responder = OcspResponder::new(ca.cert_der(), &signer.der, &signer_key).unwrap();
    let cases = [
        (OcspHash::Sha1, "-sha1", OcspStatus::Good, "dev.pem: good"),
        (
            OcspHash::Sha256,
            "-sha256",
            OcspStatus::Revoked {
                at: now() - Duration::hours(1),
                reason: RevocationReason::KeyCompromise,
            },
            "Reason: keyCompromise",
        ),
        (
            OcspHash::Sha512,
            "-sha512",
            OcspStatus::Unknown,
            "dev.pem: unknown",
        ),
    ];
    for (hash, digest, status, expect) in cases {
        let req = build_ocsp_request(
            ca.cert_der(),
            &serial_bytes(&dev.serial_hex),
            hash,
            Some(b"0123456789abcdef"),
        )
        .unwrap();
        let parsed = parse_ocsp_request(&req).unwrap();
        assert_eq!(parsed.certs.len(), 1);
        assert_eq!(parsed.certs[0].serial_hex, dev.serial_hex);
        assert_eq!(parsed.certs[0].hash, Some(hash));
        assert!(responder.matches(&parsed.certs[0]), "{hash:?}");
        let answer = OcspAnswer {
            cert_id: parsed.certs[0].cert_id.clone(),
            status,
            this_update: now(),
            next_update: Some(now() + Duration::hours(1)),
        };
        let resp = responder
            .sign(&[answer], parsed.nonce.as_ref(), now())
            .unwrap();
        std::fs::write(dir.path().join("req.der"), &req).unwrap();
        std::fs::write(dir.path().join("resp.der"), &resp).unwrap();
        let out = openssl_ok(
            dir.path(),
            &[
                "ocsp",
                "-reqin",
                "req.der",
                "-respin",
                "resp.der",
                digest,
                "-issuer",
                "ca.pem",
                "-cert",
                "dev.pem",
                "-CAfile",
                "ca.pem",
                "-resp_text",
                "-no_nonce",
            ],
        );
        assert!(out.contains("Response verify OK"), "{hash:?}: {out}");
        assert!(out.contains(expect), "{hash:?}: {out}");
        assert!(out.contains("OCSP Nonce"), "{hash:?}: {out}");
        assert!(!out.contains("WARNING: no nonce"), "{hash:?}: {out}");
    }

    // Another CA's CertID does not match this responder.
    let other = LocalCa::generate("Other CA", now()).unwrap();
    let req = build_ocsp_request(other.cert_der(), &[0x41; 16], OcspHash::Sha1, None).unwrap();
    assert!(!responder.matches(&parse_ocsp_request(&req).unwrap().certs[0]));
    // A signer from another CA, or a key that is not the signer's, is refused.
    let (foreign, foreign_key) = other.issue_ocsp_signer(Duration::days(9), now()).unwrap();
    assert!(OcspResponder::new(ca.cert_der(), &foreign.der, &foreign_key).is_err());
    assert_eq!(
        OcspResponder::new(ca.cert_der(), &signer.der, &foreign_key)
            .unwrap_err()
            .code(),
        "key_mismatch"
    );
}

#[test]
fn malformed_ocsp_requests_are_refused() {
    let ca = LocalCa::generate("Ferrocore OCSP Test CA", now()).unwrap();
    let good = build_ocsp_request(ca.cert_der(), &[0x41; 16], OcspHash::Sha256, None).unwrap();
    assert!(parse_ocsp_request(&good).is_ok());
    let mut trailing = good.clone();
    trailing.push(0);
    let truncated = &good[..good.len() - 3];
    // OCSPRequest with an empty requestList.
    let empty_list = [0x30, 0x04, 0x30, 0x02, 0x30, 0x00];
    let huge = vec![0x30; OCSP_REQUEST_MAX_BYTES + 1];
    for bad in [
        &b""[..],
        b"not an ocsp request",
        &trailing,
        truncated,
        &empty_list,
        &huge,
        &[0x30, 0x80, 0x00, 0x00],
    ] {
        let err = parse_ocsp_request(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{bad:?}");
    }
    assert_eq!(malformed_request_response(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    assert_eq!(unauthorized_response(), [0x30, 0x03, 0x0a, 0x01, 0x06]);
}

#[test]
fn est_bodies_base64_with_line_breaks_and_garbage() {
    let der = rcgen_csr();
    let answer = est_base64(&der);
    assert!(!answer.contains('\r'), "LF line breaks only");
    assert!(answer.lines().all(|l| l.len() <= 64) && answer.ends_with('\n'));
    assert!(parse_est_body(answer.as_bytes()).is_ok());
    // Bodies from clients that wrap with CRLF (RFC 7030 examples) are still read.
    let wrapped = answer.replace('\n', "\r\n");
    let csr = parse_est_body(wrapped.as_bytes()).unwrap();
    assert_eq!(csr.subject_cn().as_deref(), Some("rcgen-device"));
    let spaced = format!(
        " \n{}\n",
        wrapped.replace("\r\n", "\n  ").trim_end_matches('=')
    );
    assert!(parse_est_body(spaced.as_bytes()).is_ok());
    for (body, not_base64) in [
        (&b""[..], true),
        (b" \r\n ", true),
        (b"%%%% not base64 %%%%", true),
        (b"aGVsbG8gd29ybGQ=", false), // base64 of "hello world": not a CSR
        (b"MAMCAQE=", false),         // SEQUENCE { INTEGER 1 }
    ] {
        match parse_est_body(body) {
            Err(EstBodyError::NotBase64(_)) => assert!(not_base64, "{body:?}"),
            Err(EstBodyError::Csr(e)) => {
                assert!(!not_base64, "{body:?}");
                assert_eq!(e.code(), "invalid_csr", "{body:?}");
            }
            Ok(_) => panic!("{body:?} accepted"),
        }
    }
    let huge = vec![b'A'; EST_BODY_MAX_BYTES + 1];
    assert!(matches!(
        parse_est_body(&huge),
        Err(EstBodyError::NotBase64(_))
    ));
    assert_eq!(csr_attrs_der()[0], 0x30);
}

#[test]
fn certs_only_pkcs7_prints_with_openssl() {
    let dir = TempDir::new().unwrap();
    let ca = LocalCa::generate("Ferrocore P7 CA", now()).unwrap();
    let csr = parse_csr(&rcgen_csr()).unwrap();
    let dev = ca.issue_client(&csr, &profile(), now()).unwrap();
    let p7 = cms::certs_only(&[dev.der.clone(), ca.cert_der().to_vec()]).unwrap();
    std::fs::write(dir.path().join("p7.der"), &p7).unwrap();
    let out = openssl_ok(
        dir.path(),
        &["pkcs7", "-inform", "DER", "-in", "p7.der", "-print_certs"],
    );
    assert!(out.contains("CN = alice"), "{out}");
    assert!(out.contains("CN = Ferrocore P7 CA"), "{out}");
    // An empty set is a valid (degenerate) answer and reads back empty.
    let empty = cms::certs_only(&[]).unwrap();
    assert!(cms::parse_certs_only(&empty).unwrap().is_empty());
}

#[test]
fn ca_key_algorithm_names_parse_and_refuse_others() {
    for alg in CaKeyAlgorithm::ALL {
        assert_eq!(alg.as_str().parse::<CaKeyAlgorithm>(), Ok(alg));
    }
    assert_eq!("RSA-2048".parse(), Ok(CaKeyAlgorithm::Rsa2048));
    assert_eq!(CaKeyAlgorithm::default(), CaKeyAlgorithm::EcdsaP256);
    for bad in ["", "rsa", "rsa-1024", "ecdsa-p384", "ed25519"] {
        let err = bad.parse::<CaKeyAlgorithm>().unwrap_err();
        assert!(err.contains("rsa-4096"), "{bad}: {err}");
    }
    let ca = LocalCa::generate("P-256 CA", now()).unwrap();
    assert_eq!(ca.key_algorithm(), "ecdsa-p256");
}

/// An RSA-2048 CA signs everything the local CA signs (client identity, portal server
/// certificate, SCEP RA and its encryption certificate, delegated OCSP signer, CRL, OCSP
/// response through the signer), reloads from its PEM files, and `openssl` verifies each.
#[test]
fn rsa_ca_signs_everything_and_openssl_verifies_it() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let t = now();
    let generated = LocalCa::generate_with("RSA CA", CaKeyAlgorithm::Rsa2048, t).unwrap();
    assert!(
        generated
            .key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let ca = LocalCa::from_pem(&generated.cert_pem(), &generated.key_pem()).unwrap();
    assert_eq!(ca.key_algorithm(), "rsa-2048");
    assert_eq!(cert_key_algorithm(ca.cert_der()).unwrap(), "rsa-2048");
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).unwrap();
    let text = openssl_ok(d, &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");

    // Client identity (EC and RSA CSRs).
    let ec = ca
        .issue_client(&parse_csr(&rcgen_csr()).unwrap(), &profile(), t)
        .unwrap();
    let rsa_csr = openssl_csr(d, "rsa", &["-newkey", "rsa:2048"], &[]);
    let rsa = ca
        .issue_client(&parse_csr(&rsa_csr).unwrap(), &profile(), t)
        .unwrap();
    std::fs::write(d.join("ec.pem"), &ec.pem).unwrap();
    std::fs::write(d.join("rsa.pem"), &rsa.pem).unwrap();
    let text = openssl_ok(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslclient",
            "ec.pem",
            "rsa.pem",
        ],
    );
    assert!(
        text.contains("ec.pem: OK") && text.contains("rsa.pem: OK"),
        "{text}"
    );
    let text = openssl_ok(d, &["x509", "-in", "ec.pem", "-noout", "-text"]);
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(
        text.contains("OCSP - URI:http://mdm.example/ocsp"),
        "{text}"
    );

    // Portal server certificate.
    let (server, _key) = ca
        .issue_server(&["mdm.example".into()], Duration::days(30), t)
        .unwrap();
    std::fs::write(d.join("server.pem"), &server.pem).unwrap();
    openssl_ok(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "server.pem",
        ],
    );

    // SCEP RA: signing and encryption certificates for one RSA key.
    let ra_key = RsaKey::generate_2048().unwrap();
    let ra = ca
        .issue_ra(ra_key.spki_der(), "RA", Duration::days(30), t)
        .unwrap();
    let enc = ca
        .issue_ra_encryption(ra_key.spki_der(), "RA enc", Duration::days(30), t)
        .unwrap();
    std::fs::write(d.join("ra.pem"), &ra.pem).unwrap();
    std::fs::write(d.join("enc.pem"), &enc.pem).unwrap();
    openssl_ok(d, &["verify", "-CAfile", "ca.pem", "ra.pem", "enc.pem"]);
    let (_, x) = X509Certificate::from_der(&enc.der).unwrap();
    let ku = x.key_usage().unwrap().unwrap().value;
    assert!(ku.key_encipherment() && !ku.digital_signature());
    let (_, x) = X509Certificate::from_der(&ra.der).unwrap();
    let ku = x.key_usage().unwrap().unwrap().value;
    assert!(ku.key_encipherment() && ku.digital_signature());
    assert_eq!(
        cert_info(&ra.der).unwrap().spki_sha256_hex,
        cert_info(&enc.der).unwrap().spki_sha256_hex
    );

    // CRL.
    let crl = ca
        .crl(
            &[RevokedEntry {
                serial_hex: ec.serial_hex.clone(),
                revoked_at: t - Duration::minutes(1),
                reason: RevocationReason::Superseded,
            }],
            3,
            t,
            t + Duration::days(1),
        )
        .unwrap();
    std::fs::write(d.join("crl.der"), &crl).unwrap();
    let text = openssl_ok(
        d,
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", "-text",
        ],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(text.contains(&ec.serial_hex.to_uppercase()), "{text}");

    // Delegated OCSP signer (P-256 key, RSA-signed certificate) and a response.
    let (signer, signer_key) = ca.issue_ocsp_signer(Duration::days(30), t).unwrap();
    std::fs::write(d.join("signer.pem"), &signer.pem).unwrap();
    openssl_ok(d, &["verify", "-CAfile", "ca.pem", "signer.pem"]);
    let responder = OcspResponder::new(ca.cert_der(), &signer.der, &signer_key).unwrap();
    let req = build_ocsp_request(
        ca.cert_der(),
        &serial_bytes(&ec.serial_hex),
        OcspHash::Sha1,
        Some(b"rsa-ca-nonce"),
    )
    .unwrap();
    let parsed = parse_ocsp_request(&req).unwrap();
    assert!(responder.matches(&parsed.certs[0]));
    let answer = OcspAnswer {
        cert_id: parsed.certs[0].cert_id.clone(),
        status: OcspStatus::Revoked {
            at: t - Duration::minutes(1),
            reason: RevocationReason::Superseded,
        },
        this_update: t,
        next_update: Some(t + Duration::hours(1)),
    };
    let resp = responder.sign(&[answer], parsed.nonce.as_ref(), t).unwrap();
    std::fs::write(d.join("req.der"), &req).unwrap();
    std::fs::write(d.join("resp.der"), &resp).unwrap();
    let out = openssl_ok(
        d,
        &[
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-issuer",
            "ca.pem",
            "-cert",
            "ec.pem",
            "-CAfile",
            "ca.pem",
            "-resp_text",
            "-no_nonce",
        ],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("ec.pem: revoked"), "{out}");
    assert!(out.contains("Reason: superseded"), "{out}");
}

/// RSA-3072 and RSA-4096 CAs: the key size is the configured one and issued certificates
/// verify.
#[test]
fn larger_rsa_cas_issue_verifiable_certificates() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    for (alg, bits) in [
        (CaKeyAlgorithm::Rsa3072, "3072"),
        (CaKeyAlgorithm::Rsa4096, "4096"),
    ] {
        let ca = LocalCa::generate_with("Big RSA CA", alg, now()).unwrap();
        assert_eq!(ca.key_algorithm(), alg.as_str());
        let cert = ca
            .issue_client(&parse_csr(&rcgen_csr()).unwrap(), &profile(), now())
            .unwrap();
        std::fs::write(d.join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(d.join("c.pem"), &cert.pem).unwrap();
        let text = openssl_ok(d, &["x509", "-in", "ca.pem", "-noout", "-text"]);
        assert!(
            text.contains(&format!("Public-Key: ({bits} bit)")),
            "{text}"
        );
        openssl_ok(d, &["verify", "-CAfile", "ca.pem", "c.pem"]);
    }
}

/// GetCRL's answer body: a degenerate SignedData with the CRL in `crls`, which openssl
/// prints; IssuerAndSerialNumber (GetCert / GetCRL content) reads back what was encoded, and
/// garbage is refused.
#[test]
fn scep_access_content_and_crls_only() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let t = now();
    let ca = LocalCa::generate_with("CRL CA", CaKeyAlgorithm::Rsa2048, t).unwrap();
    let crl = ca
        .crl(
            &[RevokedEntry {
                serial_hex: "4142434445464748494a4b4c4d4e4f50".into(),
                revoked_at: t - Duration::minutes(1),
                reason: RevocationReason::KeyCompromise,
            }],
            1,
            t,
            t + Duration::days(1),
        )
        .unwrap();
    let p7 = cms::crls_only(&crl).unwrap();
    std::fs::write(d.join("crl.p7"), &p7).unwrap();
    let text = openssl_ok(
        d,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "crl.p7",
            "-print_certs",
            "-noout",
        ],
    );
    assert!(text.contains("4142434445464748494A4B4C4D4E4F50"), "{text}");
    assert!(
        text.contains("CN=CRL CA") || text.contains("CN = CRL CA"),
        "{text}"
    );
    assert!(cms::crls_only(b"not a crl").is_err());

    // IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }
    let (issuer, subject) = cert_names_der(ca.cert_der()).unwrap();
    assert_eq!(issuer, subject);
    let mut body = issuer.clone();
    body.extend_from_slice(&[0x02, 0x03, 0x00, 0x9a, 0x01]);
    let mut ias = vec![0x30, body.len() as u8];
    assert!(body.len() < 128);
    ias.extend_from_slice(&body);
    let (name, serial) = scep::parse_issuer_and_serial(&ias).unwrap();
    assert_eq!(name, issuer);
    assert_eq!(serial, "9a01");
    for bad in [
        &b""[..],
        b"\x30\x03\x02\x01\x01",
        b"\x30\x00",
        &ias[..ias.len() - 1],
    ] {
        assert!(scep::parse_issuer_and_serial(bad).is_err(), "{bad:?}");
    }
}
