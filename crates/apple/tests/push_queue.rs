//! APNs request building and answer mapping; the command queue state machine
//! (Idle, Acknowledged, Error, NotNow retried after the next Idle, repeats,
//! Authenticate clearing the queue).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use ferrocore_apple::checkin::{CheckinMessage, parse_checkin};
use ferrocore_apple::command::*;
use ferrocore_apple::push::*;
use ferrocore_apple::queue::{CommandQueue, CommandState};
use plist::{Dictionary, Value};

fn token_update(file: &str) -> ferrocore_apple::checkin::TokenUpdate {
    match parse_checkin(&common::ref_file(file)).unwrap() {
        CheckinMessage::TokenUpdate(t) => t,
        other => panic!("{other:?}"),
    }
}

fn target(file: &str) -> PushTarget {
    let t = token_update(file);
    PushTarget {
        enrollment_id: t.enrollment.id(),
        token: t.token,
        push_magic: t.push_magic,
        topic: t.topic,
    }
}

#[test]
fn push_request_from_a_real_token_update() {
    for file in [
        "nanomdm-testdata/mdm/testdata/TokenUpdate.1.plist",
        "nanomdm-testdata/mdm/testdata/TokenUpdate.2.plist",
    ] {
        let t = target(file);
        let req = build_request(&t, &PushOptions::default());
        assert_eq!(req.method, "POST");
        let hex_token = req.path.strip_prefix("/3/device/").unwrap();
        assert_eq!(hex_token.len(), 64);
        assert!(
            hex_token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(hex::decode(hex_token).unwrap(), t.token);
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body, serde_json::json!({ "mdm": t.push_magic }));
        let h = |k: &str| {
            req.headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("apns-push-type"), Some("mdm"));
        assert_eq!(h("apns-topic"), Some(t.topic.as_str()));
        assert_eq!(h("apns-priority"), None);
    }
    let t = target("nanomdm-testdata/mdm/testdata/TokenUpdate.2.plist");
    let req = build_request(
        &t,
        &PushOptions {
            expiration: Some(0),
            priority: Some(10),
            id: Some("0d6c5b2e-0000-4000-8000-000000000001".into()),
        },
    );
    let names: Vec<_> = req.headers.iter().map(|(n, _)| *n).collect();
    for n in ["apns-expiration", "apns-priority", "apns-id"] {
        assert!(names.contains(&n), "{n}");
    }
}

#[test]
fn apns_answers_map_to_outcomes() {
    assert_eq!(
        map_response(200, Some("id-1"), b""),
        PushOutcome::Delivered {
            apns_id: Some("id-1".into())
        }
    );
    let cases: [(u16, &[u8], &str, &str); 8] = [
        (
            410,
            br#"{"reason":"Unregistered","timestamp":1700000000000}"#,
            "token",
            "Unregistered",
        ),
        (
            400,
            br#"{"reason":"BadDeviceToken"}"#,
            "token",
            "BadDeviceToken",
        ),
        (
            400,
            br#"{"reason":"DeviceTokenNotForTopic"}"#,
            "token",
            "DeviceTokenNotForTopic",
        ),
        (400, br#"{"reason":"BadTopic"}"#, "rejected", "BadTopic"),
        (
            403,
            br#"{"reason":"BadCertificateEnvironment"}"#,
            "rejected",
            "BadCertificateEnvironment",
        ),
        (
            429,
            br#"{"reason":"TooManyRequests"}"#,
            "retry",
            "TooManyRequests",
        ),
        (
            503,
            br#"{"reason":"ServiceUnavailable"}"#,
            "retry",
            "ServiceUnavailable",
        ),
        (500, b"<html>oops</html>", "retry", ""),
    ];
    for (status, body, kind, reason) in cases {
        let got = map_response(status, None, body);
        let (k, r) = match &got {
            PushOutcome::TokenInvalid { reason, .. } => ("token", reason),
            PushOutcome::Rejected { reason, .. } => ("rejected", reason),
            PushOutcome::Retry { reason, .. } => ("retry", reason),
            PushOutcome::Delivered { .. } => ("delivered", &String::new()),
        };
        assert_eq!((k, r.as_str()), (kind, reason), "{status}: {got:?}");
    }
}

/// A provider that answers from canned statuses: the trait is usable as a
/// shared object, and carries the built requests.
struct Canned {
    status: u16,
    sent: Mutex<Vec<ApnsRequest>>,
}

#[async_trait::async_trait]
impl PushProvider for Canned {
    async fn push(&self, targets: &[PushTarget]) -> Vec<PushOutcome> {
        targets
            .iter()
            .map(|t| {
                self.sent
                    .lock()
                    .unwrap()
                    .push(build_request(t, &PushOptions::default()));
                map_response(self.status, None, br#"{"reason":"Unregistered"}"#)
            })
            .collect()
    }
}

#[tokio::test]
async fn push_provider_is_object_safe() {
    let p: Arc<dyn PushProvider> = Arc::new(Canned {
        status: 410,
        sent: Mutex::new(vec![]),
    });
    let t = target("nanomdm-testdata/mdm/testdata/TokenUpdate.1.plist");
    let out = p.push(&[t.clone(), t]).await;
    assert_eq!(out.len(), 2);
    assert!(matches!(
        out[0],
        PushOutcome::TokenInvalid { status: 410, .. }
    ));
}

fn report(status: Status, uuid: Option<&str>) -> Report {
    let mut d = Dictionary::new();
    d.insert("UDID".into(), "device-1".into());
    d.insert("Status".into(), status.as_str().into());
    if let Some(u) = uuid {
        d.insert("CommandUUID".into(), u.into());
    }
    if status == Status::Error {
        let mut e = Dictionary::new();
        e.insert("ErrorCode".into(), Value::Integer(12021.into()));
        e.insert("ErrorDomain".into(), "MCMDMErrorDomain".into());
        d.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Dictionary(e)]),
        );
    }
    let mut body = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut body).unwrap();
    parse_report(&body).unwrap()
}

fn cmd(uuid: &str) -> CommandEnvelope {
    CommandEnvelope {
        command_uuid: uuid.into(),
        command: Command::ProfileList { managed_only: None },
    }
}

fn next(q: &mut CommandQueue, status: Status, uuid: Option<&str>) -> Option<String> {
    q.on_report(&report(status, uuid))
        .map(|c| c.command_uuid.clone())
}

#[test]
fn queue_hands_out_in_order_and_stores_results() {
    let mut q = CommandQueue::new();
    assert_eq!(
        next(&mut q, Status::Idle, None),
        None,
        "empty queue: empty 200"
    );
    q.enqueue(cmd("A"));
    q.enqueue(cmd("B"));
    q.enqueue(cmd("C"));
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    assert_eq!(q.state("A"), Some(&CommandState::Pending { sent: 1 }));
    assert_eq!(
        next(&mut q, Status::Acknowledged, Some("A")).as_deref(),
        Some("B")
    );
    assert_eq!(next(&mut q, Status::Error, Some("B")).as_deref(), Some("C"));
    assert_eq!(next(&mut q, Status::CommandFormatError, Some("C")), None);
    assert_eq!(q.pending_len(), 0);
    assert_eq!(q.state("A"), Some(&CommandState::Acknowledged));
    match q.state("B") {
        Some(CommandState::Error(chain)) => assert_eq!(chain[0].error_code, 12021),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.state("C"), Some(&CommandState::CommandFormatError));
    assert_eq!(
        q.result("A").unwrap().command_uuid.as_deref(),
        Some("A"),
        "the report is kept"
    );
    // A repeated final status changes nothing.
    assert_eq!(next(&mut q, Status::Error, Some("A")), None);
    assert_eq!(q.state("A"), Some(&CommandState::Acknowledged));
}

#[test]
fn not_now_is_kept_and_retried_after_the_next_idle() {
    let mut q = CommandQueue::new();
    q.enqueue(cmd("A"));
    q.enqueue(cmd("B"));
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    // NotNow: A stays queued but this session moves on to B, then ends.
    assert_eq!(
        next(&mut q, Status::NotNow, Some("A")).as_deref(),
        Some("B")
    );
    assert_eq!(q.state("A"), Some(&CommandState::NotNow { sent: 1 }));
    assert_eq!(next(&mut q, Status::Acknowledged, Some("B")), None);
    assert_eq!(q.pending_len(), 1);
    // Only NotNow commands left in this session: the device gets an empty 200.
    assert_eq!(next(&mut q, Status::NotNow, Some("A")), None);
    // The next session (Idle) retries it.
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    assert_eq!(q.state("A"), Some(&CommandState::Pending { sent: 2 }));
    assert_eq!(next(&mut q, Status::Acknowledged, Some("A")), None);
    assert_eq!(q.state("A"), Some(&CommandState::Acknowledged));
}

#[test]
fn unknown_reports_and_repeated_idles() {
    let mut q = CommandQueue::new();
    q.enqueue(cmd("A"));
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    // A report about a command we never sent is ignored; A is still next.
    assert_eq!(
        next(&mut q, Status::Acknowledged, Some("Z")).as_deref(),
        Some("A")
    );
    assert_eq!(q.state("Z"), None);
    // The device starts over without answering: A again.
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    assert_eq!(q.state("A"), Some(&CommandState::Pending { sent: 3 }));
}

#[test]
fn authenticate_cancels_the_queue() {
    let mut q = CommandQueue::new();
    q.enqueue(cmd("A"));
    q.enqueue(cmd("B"));
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("A"));
    assert_eq!(
        next(&mut q, Status::NotNow, Some("A")).as_deref(),
        Some("B")
    );
    q.on_authenticate();
    assert_eq!(q.pending_len(), 0);
    assert_eq!(q.state("A"), Some(&CommandState::Cancelled));
    assert_eq!(q.state("B"), Some(&CommandState::Cancelled));
    assert_eq!(next(&mut q, Status::Idle, None), None);
    // A late answer to a cancelled command does not revive it.
    assert_eq!(next(&mut q, Status::Acknowledged, Some("B")), None);
    assert_eq!(q.state("B"), Some(&CommandState::Cancelled));
    q.enqueue(cmd("C"));
    assert_eq!(next(&mut q, Status::Idle, None).as_deref(), Some("C"));
}
