//! APNs MDM pushes: the request (`POST /3/device/<hex token>`, body
//! `{"mdm":"<PushMagic>"}`, `apns-push-type: mdm`, `apns-topic: <Topic>`) and the
//! mapping of APNs answers, as pure functions; the HTTP/2 transport implements
//! [`PushProvider`] elsewhere.

use async_trait::async_trait;

/// APNs production host (the endpoint is configurable).
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// APNs development host (only for development push certificates).
pub const APNS_DEVELOPMENT: &str = "https://api.sandbox.push.apple.com";

/// What a push needs from a TokenUpdate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The enrollment it wakes (for the caller's records).
    pub enrollment_id: String,
    /// APNs device token (bytes, as in TokenUpdate's `Token`).
    pub token: Vec<u8>,
    pub push_magic: String,
    /// The push certificate's topic.
    pub topic: String,
}

/// An HTTP/2 request to APNs, transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    pub method: &'static str,
    /// `/3/device/<hex token>`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Optional APNs headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// `apns-expiration` (UNIX seconds; 0 = deliver once or drop).
    pub expiration: Option<u64>,
    /// `apns-priority` (10 immediate, 5 power-considerate).
    pub priority: Option<u8>,
    /// `apns-id` (a UUID APNs echoes back).
    pub id: Option<String>,
}

/// The APNs request for one MDM push.
pub fn build_request(target: &PushTarget, opts: &PushOptions) -> ApnsRequest {
    let mut headers = vec![
        ("apns-push-type", "mdm".to_owned()),
        ("apns-topic", target.topic.clone()),
        ("content-type", "application/json".to_owned()),
    ];
    if let Some(e) = opts.expiration {
        headers.push(("apns-expiration", e.to_string()));
    }
    if let Some(p) = opts.priority {
        headers.push(("apns-priority", p.to_string()));
    }
    if let Some(id) = &opts.id {
        headers.push(("apns-id", id.clone()));
    }
    ApnsRequest {
        method: "POST",
        path: format!("/3/device/{}", hex::encode(&target.token)),
        headers,
        body: serde_json::json!({ "mdm": target.push_magic })
            .to_string()
            .into_bytes(),
    }
}

/// What an APNs answer means for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// 200: accepted for delivery.
    Delivered { apns_id: Option<String> },
    /// The token is dead (410 Unregistered, 400 BadDeviceToken): stop pushing
    /// to it until a new TokenUpdate.
    TokenInvalid { status: u16, reason: String },
    /// Our side is wrong (topic, certificate, payload): no retry helps.
    Rejected { status: u16, reason: String },
    /// Try again later (429, 5xx, or an unreadable answer).
    Retry { status: u16, reason: String },
}

/// Maps an APNs response (status and JSON body `{"reason": ...}`).
pub fn map_response(status: u16, apns_id: Option<&str>, body: &[u8]) -> PushOutcome {
    if status == 200 {
        return PushOutcome::Delivered {
            apns_id: apns_id.map(str::to_owned),
        };
    }
    let reason = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    match (status, reason.as_str()) {
        (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
            PushOutcome::TokenInvalid { status, reason }
        }
        (429, _) | (500..=599, _) => PushOutcome::Retry { status, reason },
        (400..=499, _) => PushOutcome::Rejected { status, reason },
        _ => PushOutcome::Retry { status, reason },
    }
}

/// Sends MDM pushes; one outcome per target, in order.
#[async_trait]
pub trait PushProvider: Send + Sync {
    async fn push(&self, targets: &[PushTarget]) -> Vec<PushOutcome>;
}
