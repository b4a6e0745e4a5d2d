//! Notification channels: the exact request each service takes, and how to read its answer.
//!
//! Every text of a [`Message`] may come from a webhook payload, so each service gets it as
//! plain text: Slack with `mrkdwn` off and `&`, `<`, `>` escaped (its only markup that
//! works without mrkdwn: links and mentions); Discord with its markdown characters
//! backslash-escaped and no mentions allowed; the others take text messages, which they
//! do not interpret. Each value is one line: control characters become spaces, so a
//! payload cannot forge a line of its own.

use serde_json::Value;

use super::{Channel, ChannelKind, Event, Message};
use crate::model::OutboundRequest;
use crate::support::crypto::{base64, hmac_sha256, unbase64};
use crate::support::text::cut;

/// The labels of the lines that hold links (checked to be plain http(s) URLs).
const LINKS: [&str; 2] = ["Platform", "Console"];

/// The title line and the labelled lines of a message, as plain (unescaped) text.
/// Absent or empty fields have no line.
pub fn render(msg: &Message) -> (String, Vec<(&'static str, String)>) {
    let app = clip(&msg.app, 100);
    let title = match (msg.test, msg.event) {
        (true, _) => format!("🔔 {app}: test message from autodeploy"),
        (false, Some(Event::Requested)) => format!("🚀 {app}: deploy requested"),
        (false, Some(Event::Refused)) => format!("❌ {app}: deploy refused"),
        (false, Some(Event::Succeeded)) => format!("✅ {app}: deploy succeeded"),
        (false, Some(Event::Failed)) => format!("❌ {app}: deploy failed"),
        (false, None) => format!("🔔 {app}: {}", clip(&msg.result, 100)),
    };
    let mut lines = Vec::new();
    let mut add = |label: &'static str, value: String| {
        if !value.is_empty() {
            lines.push((label, value));
        }
    };
    let opt = |v: &Option<String>| clip(v.as_deref().unwrap_or(""), 200);
    let mut trigger = clip(&msg.trigger, 100);
    if let Some(p) = msg.provider.as_deref().filter(|p| !p.is_empty()) {
        trigger = format!("{trigger} ({})", clip(p, 100));
    }
    add("Trigger", trigger);
    add("Repository", opt(&msg.repository));
    add("Branch", opt(&msg.branch));
    add("Tag", opt(&msg.tag));
    if let Some(c) = &msg.commit {
        let first_line = clip(c.message.lines().next().unwrap_or(""), 200);
        let mut commit = format!("{} {first_line}", clip(cut(&c.id, 7), 7))
            .trim()
            .to_string();
        if !c.author.is_empty() {
            commit = format!("{commit} ({})", clip(&c.author, 100))
                .trim()
                .to_string();
        }
        add("Commit", commit);
    }
    add("Image", opt(&msg.image));
    add("Result", clip(&msg.result, 100));
    add("Reason", clip(&msg.reason, 500));
    add(
        "Duration",
        msg.duration_ms.map(duration).unwrap_or_default(),
    );
    for (label, url) in LINKS.into_iter().zip([&msg.url, &msg.console_url]) {
        if let Some(url) = url.as_deref().filter(|u| plain_url(u)) {
            add(label, url.to_string());
        }
    }
    (title, lines)
}

/// The request that posts `msg` to `channel`. `message_id` (unique per message, the same
/// on retries) and `now_ms` go into the signatures that need them.
pub fn request(channel: &Channel, msg: &Message, now_ms: u64, message_id: &str) -> OutboundRequest {
    let mut url = channel.url.expose().to_string();
    let secret = channel
        .secret
        .as_ref()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty());
    let secs = now_ms / 1000;
    let mut content_type = "application/json; charset=utf-8";
    let mut headers = Vec::new();
    let body = match channel.kind {
        ChannelKind::Webhook => {
            content_type = "application/json";
            let body = webhook_body(msg, now_ms);
            headers.push(("webhook-id".to_string(), message_id.to_string()));
            headers.push(("webhook-timestamp".to_string(), secs.to_string()));
            if let Some(sig) = secret.and_then(|s| standard_signature(s, message_id, secs, &body)) {
                headers.push(("webhook-signature".to_string(), sig));
            }
            body
        }
        ChannelKind::Slack => {
            content_type = "application/json";
            format!(
                r#"{{"text":{},"mrkdwn":false}}"#,
                q(&text(msg, slack_escape, slack_escape))
            )
            .into_bytes()
        }
        ChannelKind::Discord => {
            content_type = "application/json";
            let content = text(msg, discord_escape, str::to_string);
            let content = cut_chars(content, 2000);
            format!(
                r#"{{"content":{},"allowed_mentions":{{"parse":[]}}}}"#,
                q(&content)
            )
            .into_bytes()
        }
        ChannelKind::Dingtalk => {
            if let Some(secret) = secret {
                let sign = base64(&hmac_sha256(
                    secret.as_bytes(),
                    format!("{now_ms}\n{secret}").as_bytes(),
                ));
                let sign: String = form_urlencoded::byte_serialize(sign.as_bytes()).collect();
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{sep}timestamp={now_ms}&sign={sign}");
            }
            text_message(&text(msg, str::to_string, str::to_string))
        }
        ChannelKind::Wecom => {
            let content = text(msg, str::to_string, str::to_string);
            let content = if content.len() > 2048 {
                format!("{}…", cut(&content, 2048 - '…'.len_utf8()))
            } else {
                content
            };
            text_message(&content)
        }
        ChannelKind::Feishu => {
            let content = q(&text(msg, str::to_string, str::to_string));
            match secret {
                Some(secret) => {
                    // Feishu's quirk: the string to sign is the key, the message is empty.
                    let sign = base64(&hmac_sha256(format!("{secs}\n{secret}").as_bytes(), b""));
                    format!(
                        r#"{{"msg_type":"text","content":{{"text":{content}}},"timestamp":"{secs}","sign":"{sign}"}}"#
                    )
                }
                None => format!(r#"{{"msg_type":"text","content":{{"text":{content}}}}}"#),
            }
            .into_bytes()
        }
    };
    headers.insert(0, ("content-type".to_string(), content_type.to_string()));
    OutboundRequest {
        method: "POST".to_string(),
        url,
        headers,
        body,
    }
}

/// Whether the service accepted the message; the error never holds the channel's URL
/// or secret, only the status and the service's own (cut) error code and message.
pub fn check_answer(kind: ChannelKind, status: u16, body: &[u8]) -> Result<(), String> {
    let json = crate::support::json::parse(body).ok();
    let field = |names: &[&str]| {
        let j = json.as_ref()?;
        names
            .iter()
            .find_map(|n| j.get(*n).filter(|v| !v.is_null()))
    };
    let (name, code_name, code, text) = match kind {
        ChannelKind::Dingtalk => (
            "DingTalk",
            "errcode",
            field(&["errcode"]),
            field(&["errmsg"]),
        ),
        ChannelKind::Wecom => ("WeCom", "errcode", field(&["errcode"]), field(&["errmsg"])),
        ChannelKind::Feishu => (
            "Feishu",
            "code",
            field(&["code", "StatusCode"]),
            field(&["msg", "StatusMessage"]),
        ),
        ChannelKind::Discord => ("Discord", "", None, field(&["message"])),
        ChannelKind::Slack | ChannelKind::Webhook => ("", "", None, None),
    };
    let text = text
        .and_then(Value::as_str)
        .map(|t| clip(t, 200))
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        let slack = std::str::from_utf8(body).unwrap_or("").trim();
        let detail = match kind {
            ChannelKind::Slack
                if !slack.is_empty()
                    && slack.len() <= 100
                    && slack.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                slack.to_string()
            }
            _ => text,
        };
        return Err(if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        });
    }
    if code_name.is_empty() {
        return Ok(()); // Slack, Discord and webhooks: a 2xx is a success
    }
    match code.and_then(Value::as_i64) {
        Some(0) => Ok(()),
        Some(n) => Err(format!("{name} {code_name} {n}: {text}")),
        None => Err(format!("{name}: unexpected answer")),
    }
}

/// Checks a channel URL: an absolute `https://` or `http://` URL with a host, without
/// spaces, control or non-ASCII characters, fragment or user info, ≤ 2048 characters.
/// (Which hosts each kind may post to is checked elsewhere, on [`origin`].)
pub fn validate_url(_kind: ChannelKind, url: &str) -> Result<(), &'static str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if url.len() > 2048 {
        Err("is longer than 2048 characters")
    } else if !url.bytes().all(|b| b.is_ascii_graphic()) {
        Err("must not contain spaces, control or non-ASCII characters")
    } else if !lower.starts_with("https://") && !lower.starts_with("http://") {
        Err("must start with https:// or http://")
    } else if url.contains('#') {
        Err("must not have a #fragment")
    } else if authority(url).contains('@') {
        Err("must not hold a user name or password (@)")
    } else if origin(url).is_none() {
        Err("has no valid host or port")
    } else {
        Ok(())
    }
}

/// `scheme://host[:port]` of an http(s) URL: scheme and host lowercased, a trailing dot
/// of the host and the scheme's default port left out. `None` if the URL has no valid
/// host (names of letters, digits, `.` and `-`, or a bracketed IPv6 address).
pub fn origin(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = authority(url);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, rest) = v6.split_once(']')?;
            let ok = !addr.is_empty()
                && addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            (ok.then(|| format!("[{addr}]"))?, rest)
        }
        None => {
            let end = authority.find(':').unwrap_or(authority.len());
            let host = authority[..end]
                .strip_suffix('.')
                .unwrap_or(&authority[..end]);
            let ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            (
                ok.then(|| host.to_string()).filter(|h| !h.is_empty())?,
                &authority[end..],
            )
        }
    };
    let port = match rest_port(port)? {
        Some(p) if p != default_port => format!(":{p}"),
        _ => String::new(),
    };
    Some(format!("{scheme}://{}{port}", host.to_ascii_lowercase()))
}

/// A channel URL as the API shows it: its origin, the rest (a credential) hidden, and a
/// short fingerprint (32 bits of its SHA-256) that tells two channels on one service
/// apart, so that a `PUT` sending the mask back finds the URL it stands for.
pub fn masked(url: &str) -> String {
    let fingerprint = &crate::support::crypto::sha256_hex(url.as_bytes())[..8];
    match origin(url) {
        Some(origin) => format!("{origin}/***{fingerprint}"),
        None => format!("***{fingerprint}"),
    }
}

/// Checks a channel's signing secret: `whsec_` + base64 of 24 to 64 bytes for `webhook`;
/// 1 to 256 printable ASCII characters for DingTalk and Feishu; none for the others.
pub fn validate_secret(kind: ChannelKind, s: &str) -> Result<(), &'static str> {
    match kind {
        ChannelKind::Webhook => {
            let key = s
                .strip_prefix("whsec_")
                .and_then(unbase64)
                .ok_or("must be whsec_ followed by standard base64")?;
            match key.len() {
                24..=64 => Ok(()),
                _ => Err("must hold 24 to 64 bytes after whsec_"),
            }
        }
        ChannelKind::Dingtalk | ChannelKind::Feishu => {
            if (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(())
            } else {
                Err("must be 1 to 256 printable characters")
            }
        }
        ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Wecom => {
            Err("not used by this channel")
        }
    }
}

/// A new Standard Webhooks secret: `whsec_` + base64 of 32 bytes from `fill` (a CSPRNG).
pub fn generate_webhook_secret(fill: &mut dyn FnMut(&mut [u8])) -> String {
    let mut key = [0u8; 32];
    fill(&mut key);
    format!("whsec_{}", base64(&key))
}

/// `v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`, the key being the base64
/// after `whsec_`; `None` for a malformed secret (the message then goes unsigned).
fn standard_signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
    let key = unbase64(secret.strip_prefix("whsec_")?)?;
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    Some(format!("v1,{}", base64(&hmac_sha256(&key, &signed))))
}

fn webhook_body(msg: &Message, now_ms: u64) -> Vec<u8> {
    let kind = match (msg.test, msg.event) {
        (true, _) => "test".to_string(),
        (false, Some(e)) => format!("deploy.{}", e.as_str()),
        (false, None) => "deploy".to_string(),
    };
    let o = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_string(), q);
    let commit = msg.commit.as_ref().map_or_else(
        || "null".to_string(),
        |c| {
            format!(
                r#"{{"id":{},"message":{},"author":{}}}"#,
                q(&c.id),
                q(&c.message),
                q(&c.author)
            )
        },
    );
    let duration = msg
        .duration_ms
        .map_or_else(|| "null".to_string(), |d| d.to_string());
    format!(
        r#"{{"type":{},"timestamp":{},"data":{{"app":{},"trigger":{},"provider":{},"delivery":{},"repository":{},"branch":{},"tag":{},"commit":{commit},"image":{},"result":{},"reason":{},"duration_ms":{duration},"url":{},"console_url":{}}}}}"#,
        q(&kind),
        q(&crate::support::time::rfc3339(now_ms)),
        q(&msg.app),
        q(&msg.trigger),
        o(&msg.provider),
        o(&msg.delivery),
        o(&msg.repository),
        o(&msg.branch),
        o(&msg.tag),
        o(&msg.image),
        q(&msg.result),
        q(&msg.reason),
        o(&msg.url),
        o(&msg.console_url),
    )
    .into_bytes()
}

/// `s` as a JSON string.
fn q(s: &str) -> String {
    Value::from(s).to_string()
}

/// DingTalk's and WeCom's text message.
fn text_message(content: &str) -> Vec<u8> {
    format!(
        r#"{{"msgtype":"text","text":{{"content":{}}}}}"#,
        q(content)
    )
    .into_bytes()
}

/// The message as lines of text, each value through `escape` (links through `link`).
fn text(msg: &Message, escape: fn(&str) -> String, link: fn(&str) -> String) -> String {
    let (title, lines) = render(msg);
    let mut out = escape(&title);
    for (label, value) in lines {
        let value = if LINKS.contains(&label) {
            link(&value)
        } else {
            escape(&value)
        };
        out.push('\n');
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&value);
    }
    out
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn discord_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\*_~`|>#@[]()<".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` on one line (control characters and line separators as spaces), trimmed, cut to `max` bytes with "…".
fn clip(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| match c {
            '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let s = s.trim();
    if s.len() > max {
        format!("{}…", cut(s, max - '…'.len_utf8()).trim_end())
    } else {
        s.to_string()
    }
}

/// A link safe to show as is: http(s), ≤ 2048 printable ASCII characters, no `<`/`>`
/// (which would end an autolink in Discord or start markup in Slack).
fn plain_url(u: &str) -> bool {
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && u.len() <= 2048
        && u.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// `s` cut to at most `max` characters, the last one "…" when cut.
fn cut_chars(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some(_) => format!("{}…", s.chars().take(max - 1).collect::<String>()),
        None => s,
    }
}

/// "42 s", "1 min 5 s", "2 h 3 min"; under a second, "350 ms".
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// The authority of a URL: between `://` and the first `/`, `?` or `#`.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())]
}

/// `""` → no port; `":443"` → 443; anything else (empty, non-digits, 0, > 65535) → `None`.
fn rest_port(rest: &str) -> Option<Option<u16>> {
    if rest.is_empty() {
        return Some(None);
    }
    let digits = rest.strip_prefix(':')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|&p| p != 0).map(Some)
}

#[cfg(test)]
mod tests;
