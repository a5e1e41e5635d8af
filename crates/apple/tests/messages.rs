//! Check-ins, reports and commands: every device plist of the nanomdm and
//! micromdm test data (and the Mdm-Signature vector bodies) parses into the
//! typed messages with the values the plist holds; command envelopes round-trip
//! and pass `check_payload.py`; malformed input gets a typed error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_payload, check_payloads, ref_file, ref_plists};
use ferrocore_apple::ParseError;
use ferrocore_apple::checkin::{CheckinMessage, parse_checkin};
use ferrocore_apple::command::*;
use ferrocore_apple::plist_in::{CHECKIN_MAX_BYTES, MAX_DEPTH};
use plist::{Data, Dictionary, Value};
use tempfile::TempDir;

fn dict(body: &[u8]) -> Dictionary {
    Value::from_reader_xml(body)
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn s<'a>(d: &'a Dictionary, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_string)
}

/// Every check-in and report in the reference folders: each parses as what its
/// `MessageType` / `Status` says, and the typed fields equal the plist's values.
#[test]
fn every_reference_device_plist_parses_with_its_values() {
    let mut files = ref_plists("nanomdm-testdata/mdm/testdata");
    files.extend(ref_plists("mdm-signature-vectors"));
    let (mut checkins, mut reports) = (0, 0);
    for (name, body) in files {
        let d = dict(&body);
        if let Some(mt) = s(&d, "MessageType") {
            checkins += 1;
            let m = parse_checkin(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.message_type(), mt, "{name}");
            assert_eq!(m.topic(), s(&d, "Topic"), "{name}");
            assert_eq!(Some(m.enrollment().device_id()), s(&d, "UDID"), "{name}");
            assert_eq!(m.enrollment().id(), s(&d, "UDID").unwrap(), "{name}");
            match m {
                CheckinMessage::Authenticate(a) => {
                    assert_eq!(a.serial_number.as_deref(), s(&d, "SerialNumber"));
                    assert_eq!(a.os_version.as_deref(), s(&d, "OSVersion"));
                    assert_eq!(a.build_version.as_deref(), s(&d, "BuildVersion"));
                    assert_eq!(a.product_name.as_deref(), s(&d, "ProductName"));
                    assert_eq!(a.model_name.as_deref(), s(&d, "ModelName"));
                    assert_eq!(a.device_name.as_deref(), s(&d, "DeviceName"));
                }
                CheckinMessage::TokenUpdate(t) => {
                    assert_eq!(Some(&t.token[..]), d["Token"].as_data(), "{name}");
                    assert_eq!(t.token.len(), 32, "{name}: APNs tokens are 32 bytes");
                    assert_eq!(Some(t.push_magic.as_str()), s(&d, "PushMagic"));
                    assert_eq!(
                        t.unlock_token.as_deref(),
                        d.get("UnlockToken").and_then(Value::as_data)
                    );
                    assert_eq!(
                        Some(t.awaiting_configuration),
                        d.get("AwaitingConfiguration").and_then(Value::as_boolean)
                    );
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        } else {
            reports += 1;
            let r = parse_report(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(Some(r.status.as_str()), s(&d, "Status"), "{name}");
            assert_eq!(r.command_uuid.as_deref(), s(&d, "CommandUUID"), "{name}");
            assert_eq!(r.enrollment.udid.as_deref(), s(&d, "UDID"), "{name}");
            let rt = r.request_type.clone().unwrap();
            match r.response(&rt).unwrap() {
                Response::DeviceInformation(q) => {
                    assert_eq!(&q, d["QueryResponses"].as_dictionary().unwrap());
                    assert_eq!(s(&q, "UDID"), s(&d, "UDID"));
                }
                Response::ProfileList(list) => {
                    assert_eq!(list.len(), d["ProfileList"].as_array().unwrap().len())
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
    // Authenticate x2, TokenUpdate x2 + the vector's; DeviceInformation + the vector's report.
    assert_eq!((checkins, reports), (5, 2));
}

#[test]
fn user_enrollment_and_user_channel_ids() {
    let mut d = Dictionary::new();
    d.insert("MessageType".into(), "TokenUpdate".into());
    d.insert("Topic".into(), "com.apple.mgmt.External.t".into());
    d.insert("EnrollmentID".into(), "E-1".into());
    d.insert("EnrollmentUserID".into(), "U-1".into());
    d.insert("Token".into(), Value::Data(vec![1; 32]));
    d.insert("PushMagic".into(), "magic".into());
    let body = xml(&d);
    let m = parse_checkin(&body).unwrap();
    assert!(m.enrollment().is_user_enrollment());
    assert_eq!(m.enrollment().id(), "E-1:U-1");
}

/// Other MessageTypes are identified and kept whole.
#[test]
fn unknown_message_type_is_kept_as_other() {
    let mut d = Dictionary::new();
    d.insert("MessageType".into(), "GetBootstrapToken".into());
    d.insert("Topic".into(), "com.apple.mgmt.External.t".into());
    d.insert("UDID".into(), "U".into());
    d.insert("AwaitingConfiguration".into(), false.into());
    match parse_checkin(&xml(&d)).unwrap() {
        CheckinMessage::Other {
            message_type,
            enrollment,
            topic,
            fields,
        } => {
            assert_eq!(message_type, "GetBootstrapToken");
            assert_eq!(enrollment.id(), "U");
            assert_eq!(topic.as_deref(), Some("com.apple.mgmt.External.t"));
            assert_eq!(fields, d);
        }
        other => panic!("{other:?}"),
    }
}

fn xml(d: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dictionary(d.clone())
        .to_writer_xml(&mut out)
        .unwrap();
    out
}

fn all_commands() -> Vec<Command> {
    vec![
        Command::DeviceInformation {
            queries: vec!["UDID".into(), "OSVersion".into(), "SerialNumber".into()],
        },
        Command::ProfileList { managed_only: None },
        Command::ProfileList {
            managed_only: Some(true),
        },
        Command::InstallProfile {
            payload: Data::new(b"<plist>profile bytes</plist>".to_vec()),
        },
        Command::RemoveProfile {
            identifier: "org.example.mail".into(),
        },
        Command::CertificateList {
            managed_only: Some(false),
        },
        Command::InstalledApplicationList {
            identifiers: Some(vec!["com.example.app".into()]),
            managed_apps_only: Some(true),
        },
        Command::InstalledApplicationList {
            identifiers: None,
            managed_apps_only: None,
        },
    ]
}

#[test]
fn command_envelopes_round_trip_and_pass_the_schemas() {
    let dir = TempDir::new().unwrap();
    let mut files = Vec::new();
    for (i, c) in all_commands().into_iter().enumerate() {
        let env = CommandEnvelope::new(c);
        let body = env.to_xml().unwrap();
        assert_eq!(parse_command(&body).unwrap(), env);
        let d = dict(&body);
        let cmd = d["Command"].as_dictionary().unwrap();
        assert_eq!(s(cmd, "RequestType"), Some(env.command.request_type()));
        assert_eq!(s(&d, "CommandUUID"), Some(env.command_uuid.as_str()));
        // Absent options are absent keys, never {"None": ...} dictionaries.
        assert!(cmd.values().all(|v| v.as_dictionary().is_none()), "{cmd:?}");
        let path = dir
            .path()
            .join(format!("{i}-{}.plist", env.command.request_type()));
        std::fs::write(&path, &body).unwrap();
        files.push(path);
    }
    let f = check_payloads(&files, &["--kind", "command", "--strict"]);
    assert!(
        f.status == 0 && f.errors.is_empty() && f.warnings.is_empty(),
        "{:#?} {:#?}",
        f.errors,
        f.warnings
    );
    // The checker does judge commands: one without its required key fails.
    let mut d = Dictionary::new();
    d.insert("CommandUUID".into(), "c".into());
    let mut c = Dictionary::new();
    c.insert("RequestType".into(), "RemoveProfile".into());
    d.insert("Command".into(), Value::Dictionary(c));
    let bad = dir.path().join("bad.plist");
    std::fs::write(&bad, xml(&d)).unwrap();
    let f = check_payload(&bad, &["--kind", "command"]);
    assert_eq!(f.status, 1, "{:#?}", f.infos);
    assert!(
        f.errors.iter().any(|e| e.contains("Identifier")),
        "{:#?}",
        f.errors
    );
}

#[test]
fn micromdm_install_profile_envelope_parses_and_round_trips() {
    let body = ref_file("micromdm-testdata/mdm/mdm/testdata/InstallProfile.plist");
    let json: serde_json::Value = serde_json::from_slice(&ref_file(
        "micromdm-testdata/mdm/mdm/testdata/InstallProfile.json",
    ))
    .unwrap();
    let env = parse_command(&body).unwrap();
    assert_eq!(env.command_uuid, json["command_uuid"].as_str().unwrap());
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD
        .decode(json["command"]["payload"].as_str().unwrap())
        .unwrap();
    match &env.command {
        Command::InstallProfile { payload } => assert_eq!(payload.as_ref(), &want[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_command(&env.to_xml().unwrap()).unwrap(), env);
}

fn report(status: &str, uuid: Option<&str>, extra: &[(&str, Value)]) -> Vec<u8> {
    let mut d = Dictionary::new();
    d.insert("UDID".into(), "device-1".into());
    d.insert("Status".into(), status.into());
    if let Some(u) = uuid {
        d.insert("CommandUUID".into(), u.into());
    }
    for (k, v) in extra {
        d.insert((*k).into(), v.clone());
    }
    xml(&d)
}

#[test]
fn reports_of_every_status_and_their_responses() {
    let idle = parse_report(&report("Idle", None, &[])).unwrap();
    assert_eq!(idle.status, Status::Idle);
    assert!(idle.command_uuid.is_none());

    let mut e = Dictionary::new();
    e.insert("ErrorCode".into(), Value::Integer(12021.into()));
    e.insert("ErrorDomain".into(), "MCMDMErrorDomain".into());
    e.insert("LocalizedDescription".into(), "Unknown command".into());
    let err = parse_report(&report(
        "Error",
        Some("c-1"),
        &[("ErrorChain", Value::Array(vec![Value::Dictionary(e)]))],
    ))
    .unwrap();
    assert_eq!(err.status, Status::Error);
    assert_eq!(err.error_chain.len(), 1);
    assert_eq!(err.error_chain[0].error_code, 12021);
    assert_eq!(err.error_chain[0].error_domain, "MCMDMErrorDomain");
    assert_eq!(
        err.error_chain[0].localized_description.as_deref(),
        Some("Unknown command")
    );
    for st in [
        Status::CommandFormatError,
        Status::NotNow,
        Status::Acknowledged,
    ] {
        let r = parse_report(&report(st.as_str(), Some("c-2"), &[])).unwrap();
        assert_eq!(r.status, st);
        assert_eq!(st.is_final(), st != Status::NotNow);
    }

    let mut cert = Dictionary::new();
    cert.insert("CommonName".into(), "device-1".into());
    cert.insert("IsIdentity".into(), true.into());
    cert.insert("Data".into(), Value::Data(vec![0x30, 0x03, 1, 2, 3]));
    let certs = parse_report(&report(
        "Acknowledged",
        Some("c-3"),
        &[(
            "CertificateList",
            Value::Array(vec![Value::Dictionary(cert)]),
        )],
    ))
    .unwrap();
    match certs.response("CertificateList").unwrap() {
        Response::CertificateList(l) => {
            assert_eq!(l[0].common_name, "device-1");
            assert!(l[0].is_identity);
            assert_eq!(l[0].der, vec![0x30, 0x03, 1, 2, 3]);
        }
        other => panic!("{other:?}"),
    }
    let mut app = Dictionary::new();
    app.insert("Identifier".into(), "com.example.app".into());
    app.insert("ShortVersion".into(), "1.2".into());
    let apps = parse_report(&report(
        "Acknowledged",
        Some("c-4"),
        &[(
            "InstalledApplicationList",
            Value::Array(vec![Value::Dictionary(app)]),
        )],
    ))
    .unwrap();
    match apps.response("InstalledApplicationList").unwrap() {
        Response::InstalledApplicationList(l) => {
            assert_eq!(l[0].identifier.as_deref(), Some("com.example.app"));
            assert_eq!(l[0].short_version.as_deref(), Some("1.2"));
        }
        other => panic!("{other:?}"),
    }
    // A response key of the wrong shape is a typed error.
    let bad = parse_report(&report(
        "Acknowledged",
        Some("c-5"),
        &[("ProfileList", Value::String("x".into()))],
    ))
    .unwrap();
    assert_eq!(
        bad.response("ProfileList").unwrap_err().code(),
        "wrong_type"
    );
    assert_eq!(
        bad.response("EraseDevice").unwrap_err(),
        ParseError::UnknownRequestType("EraseDevice".into())
    );
}

#[test]
fn malformed_input_gets_typed_errors() {
    let tu = ref_file("nanomdm-testdata/mdm/testdata/TokenUpdate.2.plist");
    let text = String::from_utf8(tu.clone()).unwrap();
    let deep = format!(
        "<plist><dict><key>A</key>{}{}</dict></plist>",
        "<array>".repeat(MAX_DEPTH + 1),
        "</array>".repeat(MAX_DEPTH + 1)
    );
    let mut binary = Vec::new();
    Value::from_reader_xml(tu.as_slice())
        .unwrap()
        .to_writer_binary(&mut binary)
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty_body"),
        ("blank", b"  \n".to_vec(), "empty_body"),
        ("binary plist", binary, "malformed_plist"),
        (
            "json",
            br#"{"MessageType":"Authenticate"}"#.to_vec(),
            "malformed_plist",
        ),
        ("truncated", tu[..tu.len() / 2].to_vec(), "malformed_plist"),
        ("too deep", deep.into_bytes(), "malformed_plist"),
        (
            "too large",
            vec![b' '; CHECKIN_MAX_BYTES]
                .into_iter()
                .chain(tu.clone())
                .collect(),
            "body_too_large",
        ),
        (
            "array top level",
            b"<plist><array><string>x</string></array></plist>".to_vec(),
            "not_a_dictionary",
        ),
        (
            "no MessageType",
            text.replace("<key>MessageType</key>", "<key>Kind</key>")
                .into_bytes(),
            "missing_key",
        ),
        (
            "Token as string",
            text.replace(
                "<data>\n\tG6fJAGbFD3domiTzpCXK9oowD3KeiORgqUFgItXWQsw=\n\t</data>",
                "<string>abc</string>",
            )
            .into_bytes(),
            "wrong_type",
        ),
        (
            "no PushMagic",
            text.replace("<key>PushMagic</key>", "<key>PushMagik</key>")
                .into_bytes(),
            "missing_key",
        ),
        (
            "no UDID",
            text.replace("<key>UDID</key>", "<key>UUID</key>")
                .into_bytes(),
            "no_enrollment_id",
        ),
        (
            "no Topic",
            text.replace("<key>Topic</key>", "<key>Topik</key>")
                .into_bytes(),
            "missing_key",
        ),
    ];
    for (what, body, code) in cases {
        let err = parse_checkin(&body).unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err}");
    }
    assert_eq!(
        parse_report(&report("Done", Some("c"), &[])).unwrap_err(),
        ParseError::UnknownStatus("Done".into())
    );
    assert_eq!(
        parse_report(&report("NotNow", None, &[])).unwrap_err(),
        ParseError::MissingKey("CommandUUID")
    );
    let mut d = Dictionary::new();
    d.insert("CommandUUID".into(), "c".into());
    let mut c = Dictionary::new();
    c.insert("RequestType".into(), "EraseDevice".into());
    d.insert("Command".into(), Value::Dictionary(c));
    assert_eq!(
        parse_command(&xml(&d)).unwrap_err(),
        ParseError::UnknownRequestType("EraseDevice".into())
    );
    let mut c = Dictionary::new();
    c.insert("RequestType".into(), "RemoveProfile".into());
    d.insert("Command".into(), Value::Dictionary(c));
    assert_eq!(
        parse_command(&xml(&d)).unwrap_err().code(),
        "malformed_plist"
    );
}

/// Prefixes and single-byte corruptions (every 4th / 7th position) of the reference messages
/// gets an answer (a message or a typed error), never a panic.
#[test]
fn truncations_and_byte_flips_never_panic() {
    let mut files = ref_plists("nanomdm-testdata/mdm/testdata");
    files.extend(ref_plists("micromdm-testdata/mdm/mdm/testdata"));
    let mut refused = 0;
    for (_, body) in files {
        for n in (0..body.len()).step_by(4) {
            refused += usize::from(parse_checkin(&body[..n]).is_err());
            let _ = parse_report(&body[..n]);
            let _ = parse_command(&body[..n]);
        }
        for i in (0..body.len()).step_by(7) {
            let mut b = body.clone();
            b[i] = b[i].wrapping_add(0x41);
            let _ = parse_checkin(&b);
            let _ = parse_report(&b);
            let _ = parse_command(&b);
        }
    }
    assert!(refused > 0);
}
