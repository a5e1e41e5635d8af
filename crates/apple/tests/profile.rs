//! Enrollment and e-mail profiles: every generated profile, unsigned and
//! CMS-signed (EC and RSA signers, intermediate embedded), passes Apple's schemas
//! through `check_payload.py`, and `openssl cms -verify` / `smime -verify` accept
//! the signed ones against the root only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_payload, openssl, pem};
use ferrocore_apple::profile::*;
use ferrocore_pki::RsaKey;
use ferrocore_pki::cms::{EcKey, SignerKey};
use plist::{Data, Value};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tempfile::TempDir;

struct Chain {
    root_der: Vec<u8>,
    inter_der: Vec<u8>,
    inter_key: KeyPair,
    inter_params: CertificateParams,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p
}

fn chain() -> Chain {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Test Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let inter_key = KeyPair::generate().unwrap();
    let inter_params = ca_params("Test Intermediate");
    let inter = inter_params
        .signed_by(&inter_key, &Issuer::new(root_params, root_key))
        .unwrap();
    Chain {
        root_der: root.der().to_vec(),
        inter_der: inter.der().to_vec(),
        inter_key,
        inter_params,
    }
}

/// The portal's TLS certificate (serverAuth only), issued by the intermediate.
fn signer_cert(chain: &Chain, key: &KeyPair) -> Vec<u8> {
    let mut p = CertificateParams::new(vec!["mdm.example.test".to_owned()]).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "mdm.example.test");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::from_params(&chain.inter_params, &chain.inter_key);
    p.signed_by(key, &issuer).unwrap().der().to_vec()
}

fn spec(ca_der: &[u8]) -> EnrollmentSpec {
    EnrollmentSpec {
        identifier: "org.example.ferrocore.enroll".into(),
        display_name: "Ferrocore enrollment".into(),
        organization: Some("Example".into()),
        topic: "com.apple.mgmt.External.00000000-1111-2222-3333-444444444444".into(),
        server_url: "https://mdm.example.test/mdm/connect".into(),
        check_in_url: Some("https://mdm.example.test/mdm/checkin".into()),
        sign_message: true,
        access_rights: access::ALL,
        check_out_when_removed: true,
        scep: ScepContent {
            url: "https://mdm.example.test/scep".into(),
            challenge: Some("one-time-challenge".into()),
            key_size: Some(2048),
            key_type: Some("RSA".into()),
            key_usage: Some(5),
            subject: Some(Subject::from_pairs([
                ("O", "Example"),
                ("CN", "device-0001"),
            ])),
            ..ScepContent::default()
        },
        ca_certs_der: vec![ca_der.to_vec()],
    }
}

fn assert_clean(path: &std::path::Path, args: &[&str]) -> common::Findings {
    let f = check_payload(path, args);
    assert!(
        f.status == 0 && f.errors.is_empty() && f.warnings.is_empty(),
        "{}: errors {:#?} warnings {:#?}",
        path.display(),
        f.errors,
        f.warnings
    );
    f
}

#[test]
fn unsigned_enrollment_profile_passes_the_schemas_and_links_its_identity() {
    let chain = chain();
    let built = enrollment_profile_struct(&spec(&chain.root_der)).unwrap();
    let xml = built.to_xml().unwrap();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("enroll.mobileconfig");
    std::fs::write(&path, &xml).unwrap();
    assert_clean(&path, &["--strict", "--os", "iOS"]);
    assert_clean(&path, &["--strict", "--os", "macOS"]);

    // What a device reads: the MDM payload names the SCEP payload's UUID, the
    // challenge and URLs are the ones asked for, the root is the DER given.
    let top = Value::from_reader_xml(xml.as_slice()).unwrap();
    let top = top.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    let payloads = top["PayloadContent"].as_array().unwrap();
    let by_type = |t: &str| {
        payloads
            .iter()
            .map(|p| p.as_dictionary().unwrap())
            .find(|p| p["PayloadType"].as_string() == Some(t))
            .unwrap_or_else(|| panic!("no {t} payload"))
    };
    let mdm = by_type("com.apple.mdm");
    let scep = by_type("com.apple.security.scep");
    let root = by_type("com.apple.security.root");
    assert_eq!(
        mdm["IdentityCertificateUUID"].as_string(),
        scep["PayloadUUID"].as_string()
    );
    assert_eq!(mdm["SignMessage"].as_boolean(), Some(true));
    assert_eq!(mdm["AccessRights"].as_unsigned_integer(), Some(8191));
    assert_eq!(
        mdm["CheckInURL"].as_string(),
        Some("https://mdm.example.test/mdm/checkin")
    );
    let sc = scep["PayloadContent"].as_dictionary().unwrap();
    assert_eq!(sc["Challenge"].as_string(), Some("one-time-challenge"));
    assert_eq!(sc["Key Type"].as_string(), Some("RSA"));
    assert_eq!(root["PayloadContent"].as_data(), Some(&chain.root_der[..]));

    // Parsing it back gives the typed profile it was written from.
    let back: Profile = plist::from_bytes(&xml).unwrap();
    assert_eq!(back, built);
}

fn sign_and_check(key_name: &str, signer_key: SignerKey<'_>, signer_der: &[u8], chain: &Chain) {
    let xml = enrollment_profile(&spec(&chain.root_der)).unwrap();
    let signed = sign_profile(
        &xml,
        signer_der,
        signer_key,
        std::slice::from_ref(&chain.inter_der),
    )
    .unwrap();
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    std::fs::write(d.join("signed.mobileconfig"), &signed).unwrap();
    std::fs::write(d.join("root.pem"), pem("CERTIFICATE", &chain.root_der)).unwrap();

    let f = assert_clean(
        &d.join("signed.mobileconfig"),
        &[
            "--strict",
            "--ca-file",
            d.join("root.pem").to_str().unwrap(),
        ],
    );
    assert!(
        f.infos.iter().any(|i| i.contains("chains to --ca-file")),
        "{key_name}: {:#?}",
        f.infos
    );

    // openssl: attached (not detached), chain built from the embedded intermediate.
    for tool in ["cms", "smime"] {
        let (ok, out, err) = openssl(
            d,
            &[
                tool,
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "signed.mobileconfig",
                "-CAfile",
                "root.pem",
                "-purpose",
                "any",
            ],
        );
        assert!(ok, "{key_name}: openssl {tool} -verify: {err}");
        assert_eq!(out, xml, "{key_name}: openssl {tool} extracts the profile");
    }
    let (ok, printed, _) = openssl(
        d,
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            "signed.mobileconfig",
        ],
    );
    assert!(ok);
    assert!(!String::from_utf8_lossy(&printed).contains("eContent: <ABSENT>"));

    // The upload path reads the identity of the signed profile and its signer.
    let id = profile_identity(&signed).unwrap();
    assert_eq!(id.identifier, "org.example.ferrocore.enroll");
    assert_eq!(id.signer_cert_der.as_deref(), Some(signer_der));
    assert_eq!(profile_identity(&xml).unwrap().uuid, id.uuid);

    // A flipped byte inside the embedded plist: openssl refuses it, so do we.
    let pos = signed
        .windows(b"one-time-challenge".len())
        .position(|w| w == b"one-time-challenge")
        .unwrap();
    let mut bad = signed.clone();
    bad[pos] ^= 1;
    std::fs::write(d.join("bad.mobileconfig"), &bad).unwrap();
    let (ok, _, _) = openssl(
        d,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "bad.mobileconfig",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
        ],
    );
    assert!(!ok, "{key_name}: a tampered profile must not verify");
    assert_eq!(
        profile_identity(&bad).unwrap_err().code(),
        "malformed_plist"
    );
}

#[test]
fn signed_enrollment_profile_verifies_with_openssl_and_check_payload_ec_signer() {
    let chain = chain();
    let kp = KeyPair::generate().unwrap();
    let signer = signer_cert(&chain, &kp);
    let key = EcKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    sign_and_check("P-256", SignerKey::Ec(&key), &signer, &chain);
}

#[test]
fn signed_enrollment_profile_verifies_with_openssl_and_check_payload_rsa_signer() {
    let chain = chain();
    let rsa = RsaKey::generate_2048().unwrap();
    let kp = KeyPair::try_from(rsa.pkcs8_der()).unwrap();
    let signer = signer_cert(&chain, &kp);
    sign_and_check(
        "RSA",
        SignerKey::Rsa(&rsa, ferrocore_pki::cms::DigestAlg::Sha256),
        &signer,
        &chain,
    );
}

#[test]
fn eas_profile_with_a_scep_identity_passes_the_schemas() {
    let scep = ScepPayload {
        common: PayloadCommon::new("org.example.mail.identity").named("Mail identity"),
        content: ScepContent {
            url: "https://mdm.example.test/scep".into(),
            challenge: Some("one-time".into()),
            key_size: Some(2048),
            key_type: Some("RSA".into()),
            key_usage: Some(5),
            subject: Some(Subject::from_pairs([("CN", "alice@example.test")])),
            subject_alt_name: Some(SubjectAltName {
                rfc822_name: Some("alice@example.test".into()),
                nt_principal_name: Some("alice@corp.example.test".into()),
                ..SubjectAltName::default()
            }),
            ..ScepContent::default()
        },
    };
    let eas = EasPayload {
        common: PayloadCommon::new("org.example.mail.eas").named("Exchange"),
        host: Some("mail.example.test".into()),
        ssl: Some(true),
        user_name: Some("alice".into()),
        email_address: Some("alice@example.test".into()),
        payload_certificate_uuid: Some(scep.common.uuid.clone()),
        mail_number_of_past_days_to_sync: Some(14),
        prevent_move: Some(true),
        ..EasPayload::default()
    };
    let profile = Profile::new(
        PayloadCommon::new("org.example.mail").named("Mail"),
        vec![Payload::Scep(scep), Payload::Eas(eas)],
    );
    let xml = profile.to_xml().unwrap();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("eas.mobileconfig");
    std::fs::write(&path, &xml).unwrap();
    assert_clean(&path, &["--strict", "--os", "iOS"]);
    let text = String::from_utf8(xml).unwrap();
    assert!(text.contains("<key>ntPrincipalName</key>"));
    assert!(text.contains("<key>rfc822Name</key>"));
}

#[test]
fn the_checker_catches_what_validate_refuses() {
    // Serialised without `validate`, these profiles are wrong; check_payload.py
    // says so (the harness can fail), and `to_xml` refuses them first.
    let chain = chain();
    type Breaker = Box<dyn Fn(&mut Profile)>;
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "Keysize",
            Box::new(|p| {
                for x in &mut p.content {
                    if let Payload::Scep(s) = x {
                        s.content.key_size = Some(3000);
                    }
                }
            }),
        ),
        (
            "IdentityCertificateUUID",
            Box::new(|p| {
                for x in &mut p.content {
                    if let Payload::Mdm(m) = x {
                        m.identity_certificate_uuid = new_uuid();
                    }
                }
            }),
        ),
        (
            "PayloadUUID",
            Box::new(|p| {
                let u = p.content[0].common().uuid.clone();
                if let Payload::Mdm(m) = p.content.last_mut().unwrap() {
                    m.common.uuid = u;
                }
            }),
        ),
    ];
    let dir = TempDir::new().unwrap();
    let mut files = Vec::new();
    for (field, break_it) in &cases {
        let mut p = enrollment_profile_struct(&spec(&chain.root_der)).unwrap();
        break_it(&mut p);
        let err = p.to_xml().unwrap_err();
        assert_eq!(err.code(), "invalid_profile", "{field}");
        assert!(err.to_string().contains(field), "{field}: {err}");
        let mut raw = Vec::new();
        plist::to_writer_xml(&mut raw, &p).unwrap();
        let path = dir.path().join(format!("broken-{field}.mobileconfig"));
        std::fs::write(&path, raw).unwrap();
        files.push(path);
    }
    let f = common::check_payloads(&files, &[]);
    assert_eq!(f.status, 1, "check_payload.py accepted them");
    for (field, _) in &cases {
        let file = format!("broken-{field}.mobileconfig");
        assert!(
            f.errors
                .iter()
                .any(|e| e.contains(&file) && e.split_once(": ").unwrap().1.contains(field)),
            "{field}: {:#?}",
            f.errors
        );
    }
}

#[test]
fn builder_refuses_values_apple_refuses() {
    let chain = chain();
    let base = spec(&chain.root_der);
    let cases: Vec<(&str, EnrollmentSpec)> = vec![
        (
            "ServerURL",
            EnrollmentSpec {
                server_url: "http://mdm.example.test/mdm".into(),
                ..base.clone()
            },
        ),
        (
            "CheckInURL",
            EnrollmentSpec {
                check_in_url: Some("https:///x".into()),
                ..base.clone()
            },
        ),
        (
            "AccessRights",
            EnrollmentSpec {
                access_rights: access::PROFILE_INSTALL,
                ..base.clone()
            },
        ),
        (
            "AccessRights",
            EnrollmentSpec {
                access_rights: 8192,
                ..base.clone()
            },
        ),
        (
            "Topic",
            EnrollmentSpec {
                topic: String::new(),
                ..base.clone()
            },
        ),
    ];
    for (field, s) in cases {
        let err = enrollment_profile(&s).unwrap_err();
        assert!(err.to_string().starts_with(field), "{field}: {err}");
    }
    let eas = Profile::new(
        PayloadCommon::new("org.example.mail"),
        vec![Payload::Eas(EasPayload {
            common: PayloadCommon::new("org.example.mail.eas"),
            payload_certificate_uuid: Some(new_uuid()),
            ..EasPayload::default()
        })],
    );
    assert!(
        eas.to_xml()
            .unwrap_err()
            .to_string()
            .starts_with("PayloadCertificateUUID")
    );
    let days = Profile::new(
        PayloadCommon::new("org.example.mail"),
        vec![Payload::Eas(EasPayload {
            common: PayloadCommon::new("org.example.mail.eas"),
            mail_number_of_past_days_to_sync: Some(2),
            ..EasPayload::default()
        })],
    );
    assert!(days.to_xml().is_err());
    // A root payload carries the DER as <data>.
    let root = Profile::new(
        PayloadCommon::new("org.example.ca"),
        vec![Payload::Root(CertificatePayload {
            common: PayloadCommon::new("org.example.ca.root"),
            file_name: None,
            content: Data::new(chain.root_der.clone()),
        })],
    );
    assert!(
        String::from_utf8(root.to_xml().unwrap())
            .unwrap()
            .contains("<data>")
    );
}

#[test]
fn uploaded_profiles_are_identified_or_refused() {
    // nanomdm's example enrollment profile (not ours) is read at its top level.
    let nano = common::ref_file("nanomdm-testdata/docs/enroll.mobileconfig");
    let id = profile_identity(&nano).unwrap();
    assert_eq!(id.identifier, "com.github.micromdm.nanomdm");
    assert_eq!(id.signer_cert_der, None);
    // A command report is not a profile; garbage is not a signed profile.
    let report = common::ref_file("nanomdm-testdata/mdm/testdata/DeviceInformation.1.plist");
    assert_eq!(profile_identity(&report).unwrap_err().code(), "missing_key");
    assert_eq!(
        profile_identity(&[0x30, 0x03, 1, 2, 3]).unwrap_err().code(),
        "malformed_plist"
    );
}
