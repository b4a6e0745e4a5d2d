//! Notification channels (placeholder until the builders land).

use super::{Channel, ChannelKind, Message};
use crate::model::OutboundRequest;

pub fn request(
    channel: &Channel,
    msg: &Message,
    _now_ms: u64,
    _message_id: &str,
) -> OutboundRequest {
    OutboundRequest {
        method: "POST".into(),
        url: channel.url.expose().to_string(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&serde_json::json!({"text": msg.reason})).unwrap(),
    }
}

pub fn check_answer(_kind: ChannelKind, status: u16, _body: &[u8]) -> Result<(), String> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

pub fn validate_url(_kind: ChannelKind, url: &str) -> Result<(), &'static str> {
    origin(url)
        .map(|_| ())
        .ok_or("must be an http:// or https:// URL")
}

pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(format!("{scheme}://{}", rest[..end].to_ascii_lowercase()))
}

pub fn masked(url: &str) -> String {
    format!("{}/***", origin(url).unwrap_or_default())
}

pub fn validate_secret(kind: ChannelKind, s: &str) -> Result<(), &'static str> {
    match kind {
        ChannelKind::Webhook if s.starts_with("whsec_") => Ok(()),
        ChannelKind::Webhook => Err("must be whsec_ and base64"),
        ChannelKind::Dingtalk | ChannelKind::Feishu => Ok(()),
        _ => Err("not used by this channel"),
    }
}

pub fn generate_webhook_secret(fill: &mut dyn FnMut(&mut [u8])) -> String {
    let mut key = [0u8; 32];
    fill(&mut key);
    format!("whsec_{}", crate::support::crypto::base64(&key))
}
