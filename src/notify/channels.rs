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
mod tests {
    use super::*;
    use crate::notify::CommitInfo;
    use crate::support::secret::Secret;
    use serde_json::json;

    const NOW_MS: u64 = 1_700_000_000_123;

    fn message() -> Message {
        Message {
            event: Some(Event::Succeeded),
            app: "shop".into(),
            trigger: "git".into(),
            provider: Some("github".into()),
            delivery: Some("d-1".into()),
            repository: Some("acme/shop".into()),
            branch: Some("main".into()),
            tag: None,
            commit: Some(CommitInfo {
                id: "0123456789abcdef".into(),
                message: "Fix the cart\n\nThe long story.".into(),
                author: "Alice".into(),
            }),
            image: None,
            result: "succeeded".into(),
            reason: "The platform reported success.".into(),
            duration_ms: Some(65_000),
            url: Some("https://paas.example/deploys/7?a=1&b=2".into()),
            console_url: Some("https://gw.example/console/#/deliveries/d-1".into()),
            test: false,
        }
    }

    const TEXT: &str = "✅ shop: deploy succeeded\n\
        Trigger: git (github)\n\
        Repository: acme/shop\n\
        Branch: main\n\
        Commit: 0123456 Fix the cart (Alice)\n\
        Result: succeeded\n\
        Reason: The platform reported success.\n\
        Duration: 1 min 5 s\n\
        Platform: https://paas.example/deploys/7?a=1&b=2\n\
        Console: https://gw.example/console/#/deliveries/d-1";

    fn channel(kind: ChannelKind, url: &str, secret: Option<&str>) -> Channel {
        Channel {
            kind,
            url: Secret::new(url),
            secret: secret.map(Secret::new),
            events: Event::ALL.to_vec(),
        }
    }

    fn send(kind: ChannelKind, url: &str, secret: Option<&str>, msg: &Message) -> OutboundRequest {
        request(&channel(kind, url, secret), msg, NOW_MS, "msg_1")
    }

    fn body(req: &OutboundRequest) -> Value {
        serde_json::from_slice(&req.body).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn evil() -> Message {
        let mut msg = message();
        msg.commit.as_mut().unwrap().message =
            "<!channel> *bold* @everyone [x](http://evil) <@&123> & co".into();
        msg
    }

    #[test]
    fn renders_a_title_and_the_present_fields() {
        let (title, lines) = render(&message());
        let mut text = title;
        for (label, value) in lines {
            text.push_str(&format!("\n{label}: {value}"));
        }
        assert_eq!(text, TEXT);

        let msg = Message {
            event: Some(Event::Requested),
            app: "api".into(),
            trigger: "image".into(),
            image: Some("acme/api:1.2".into()),
            duration_ms: Some(42_400),
            ..Message::default()
        };
        let expected = vec![
            ("Trigger", "image".to_string()),
            ("Image", "acme/api:1.2".to_string()),
            ("Duration", "42 s".to_string()),
        ];
        assert_eq!(
            render(&msg),
            ("🚀 api: deploy requested".to_string(), expected)
        );
    }

    #[test]
    fn titles_say_what_happened() {
        let title = |event, test| {
            let msg = Message {
                event,
                test,
                app: "shop".into(),
                result: "queued".into(),
                ..Message::default()
            };
            render(&msg).0
        };
        assert_eq!(
            title(Some(Event::Refused), false),
            "❌ shop: deploy refused"
        );
        assert_eq!(title(Some(Event::Failed), false), "❌ shop: deploy failed");
        assert_eq!(
            title(Some(Event::Succeeded), false),
            "✅ shop: deploy succeeded"
        );
        assert_eq!(title(None, false), "🔔 shop: queued");
        assert_eq!(
            title(Some(Event::Failed), true),
            "🔔 shop: test message from autodeploy"
        );
    }

    #[test]
    fn long_texts_are_cut_and_kept_on_one_line() {
        let mut msg = message();
        msg.commit.as_mut().unwrap().message = format!("{}\nsecond line", "é".repeat(300));
        msg.reason = "r".repeat(600);
        msg.branch = Some("main\nResult: forged\u{2028}x".into());
        let (_, lines) = render(&msg);
        let get = |l| {
            lines
                .iter()
                .find(|(label, _)| *label == l)
                .unwrap()
                .1
                .clone()
        };
        let commit = get("Commit");
        assert!(commit.starts_with("0123456 éé"));
        assert!(commit.ends_with("é… (Alice)"), "{commit}");
        assert!(commit.len() <= 8 + 200 + 8, "{}", commit.len());
        assert_eq!(get("Reason"), format!("{}…", "r".repeat(497)));
        assert_eq!(get("Branch"), "main Result: forged x");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(350), "350 ms");
        assert_eq!(duration(42_999), "42 s");
        assert_eq!(duration(65_000), "1 min 5 s");
        assert_eq!(duration(3_725_000), "1 h 2 min");
    }

    #[test]
    fn links_that_are_not_plain_urls_are_left_out() {
        let mut msg = message();
        for bad in [
            "javascript:alert(1)",
            "https://gw.example/a<b",
            "https://gw.example/a>b",
            "https://gw.example/a b",
            "https://gw.example/é",
            "ftp://gw.example/",
        ] {
            msg.url = Some(bad.into());
            msg.console_url = Some(bad.into());
            let (_, lines) = render(&msg);
            assert!(lines.iter().all(|(l, _)| !LINKS.contains(l)), "{lines:?}");
        }
        msg.url = Some(format!("http://gw.example/{}", "a".repeat(2048 - 18)));
        assert_eq!(render(&msg).1.last().unwrap().0, "Platform");
        msg.url = Some(format!("http://gw.example/{}", "a".repeat(2049 - 18)));
        assert!(render(&msg).1.iter().all(|(l, _)| !LINKS.contains(l)));
    }

    #[test]
    fn standard_webhooks_known_answer() {
        // The test vector of the Standard Webhooks reference libraries.
        assert_eq!(
            standard_signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            standard_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, b""),
            None
        );
        assert_eq!(standard_signature("whsec_not base64", "m", 1, b""), None);
    }

    #[test]
    fn webhook_request() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let req = send(
            ChannelKind::Webhook,
            "https://hooks.example/in",
            Some(secret),
            &message(),
        );
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://hooks.example/in");
        let key = unbase64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let mut signed = b"msg_1.1700000000.".to_vec();
        signed.extend_from_slice(&req.body);
        let signature = format!("v1,{}", base64(&hmac_sha256(&key, &signed)));
        assert_eq!(
            req.headers,
            headers(&[
                ("content-type", "application/json"),
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", "1700000000"),
                ("webhook-signature", &signature),
            ])
        );
        assert_eq!(
            body(&req),
            json!({
                "type": "deploy.succeeded",
                "timestamp": "2023-11-14T22:13:20.123Z",
                "data": {
                    "app": "shop",
                    "trigger": "git",
                    "provider": "github",
                    "delivery": "d-1",
                    "repository": "acme/shop",
                    "branch": "main",
                    "tag": null,
                    "commit": {
                        "id": "0123456789abcdef",
                        "message": "Fix the cart\n\nThe long story.",
                        "author": "Alice",
                    },
                    "image": null,
                    "result": "succeeded",
                    "reason": "The platform reported success.",
                    "duration_ms": 65000,
                    "url": "https://paas.example/deploys/7?a=1&b=2",
                    "console_url": "https://gw.example/console/#/deliveries/d-1",
                },
            })
        );
    }

    #[test]
    fn webhook_test_messages_and_events_have_their_type() {
        let kind = |msg: &Message| {
            let req = send(ChannelKind::Webhook, "https://h.example/", None, msg);
            assert!(req.headers.iter().all(|(n, _)| n != "webhook-signature"));
            body(&req)["type"].clone()
        };
        let mut msg = message();
        msg.event = Some(Event::Refused);
        assert_eq!(kind(&msg), "deploy.refused");
        msg.test = true;
        assert_eq!(kind(&msg), "test");
        msg.test = false;
        msg.event = None;
        assert_eq!(kind(&msg), "deploy");
    }

    #[test]
    fn slack_request() {
        let url = "https://hooks.slack.com/services/T0/B0/XXXX";
        let req = send(ChannelKind::Slack, url, None, &message());
        assert_eq!(req.url, url);
        assert_eq!(
            req.headers,
            headers(&[("content-type", "application/json")])
        );
        let text = TEXT.replace("a=1&b=2", "a=1&amp;b=2");
        assert_eq!(body(&req), json!({"text": text, "mrkdwn": false}));
    }

    #[test]
    fn slack_gets_payload_text_inert() {
        let req = send(
            ChannelKind::Slack,
            "https://hooks.slack.com/x",
            None,
            &evil(),
        );
        let text = body(&req)["text"].as_str().unwrap().to_string();
        assert!(text.contains(
            "Commit: 0123456 &lt;!channel&gt; *bold* @everyone [x](http://evil) &lt;@&amp;123&gt; &amp; co (Alice)"
        ), "{text}");
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert_eq!(body(&req)["mrkdwn"], false);
    }

    #[test]
    fn discord_request() {
        let url = "https://discord.com/api/webhooks/1/abc";
        let req = send(ChannelKind::Discord, url, None, &message());
        assert_eq!(req.url, url);
        assert_eq!(
            req.headers,
            headers(&[("content-type", "application/json")])
        );
        let content = TEXT
            .replace("(github)", "\\(github\\)")
            .replace("(Alice)", "\\(Alice\\)");
        assert_eq!(
            body(&req),
            json!({"content": content, "allowed_mentions": {"parse": []}})
        );
    }

    #[test]
    fn discord_gets_payload_text_inert() {
        let req = send(
            ChannelKind::Discord,
            "https://discord.com/api/webhooks/1/a",
            None,
            &evil(),
        );
        let body = body(&req);
        let content = body["content"].as_str().unwrap();
        assert!(content.contains(
            r"Commit: 0123456 \<!channel\> \*bold\* \@everyone \[x\]\(http://evil\) \<\@&123\> & co \(Alice\)"
        ), "{content}");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(discord_escape(r"\_~`|>#"), r"\\\_\~\`\|\>\#");
    }

    #[test]
    fn discord_content_fits_in_2000_characters() {
        let mut msg = message();
        msg.reason = "字".repeat(500);
        msg.repository = Some("*".repeat(200));
        msg.branch = Some("_".repeat(200));
        msg.tag = Some("~".repeat(200));
        msg.image = Some("#".repeat(200));
        msg.result = "|".repeat(100);
        let req = send(
            ChannelKind::Discord,
            "https://discord.com/api/webhooks/1/a",
            None,
            &msg,
        );
        let content = body(&req)["content"].as_str().unwrap().to_string();
        assert_eq!(content.chars().count(), 2000);
        assert!(content.ends_with('…'));
        assert_eq!(cut_chars("é".repeat(2000), 2000), "é".repeat(2000));
        assert_eq!(
            cut_chars("é".repeat(2001), 2000),
            format!("{}…", "é".repeat(1999))
        );
        let short = send(ChannelKind::Discord, "https://d.example/", None, &message());
        assert!(!body(&short)["content"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn dingtalk_request_unsigned() {
        let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
        let req = send(ChannelKind::Dingtalk, url, None, &message());
        assert_eq!(req.url, url);
        assert_eq!(send(ChannelKind::Dingtalk, url, Some(""), &message()), req);
        assert_eq!(
            req.headers,
            headers(&[("content-type", "application/json; charset=utf-8")])
        );
        assert_eq!(
            body(&req),
            json!({"msgtype": "text", "text": {"content": TEXT}})
        );
    }

    #[test]
    fn dingtalk_signature_known_answer() {
        // python3 -c 'import hmac,hashlib,base64,urllib.parse; s="SECtestsecret0123";
        //   t="1700000000123"; print(urllib.parse.quote_plus(base64.b64encode(hmac.new(
        //   s.encode(), (t+"\n"+s).encode(), hashlib.sha256).digest())))'
        let sign = "6iCTNpdpt8CwpBWNdf2JU%2BGG8qdXWHGRP2jd%2B7e9xFI%3D";
        let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
        let req = send(
            ChannelKind::Dingtalk,
            url,
            Some("SECtestsecret0123"),
            &message(),
        );
        assert_eq!(
            req.url,
            format!("{url}&timestamp=1700000000123&sign={sign}")
        );
        assert_eq!(
            body(&req),
            json!({"msgtype": "text", "text": {"content": TEXT}})
        );
        let req = send(
            ChannelKind::Dingtalk,
            "https://d.example/x=y",
            Some("SECtestsecret0123"),
            &message(),
        );
        assert_eq!(
            req.url,
            format!("https://d.example/x=y?timestamp=1700000000123&sign={sign}")
        );
    }

    #[test]
    fn wecom_request() {
        let url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k";
        let req = send(ChannelKind::Wecom, url, None, &message());
        assert_eq!(req.url, url);
        assert_eq!(
            req.headers,
            headers(&[("content-type", "application/json; charset=utf-8")])
        );
        assert_eq!(
            body(&req),
            json!({"msgtype": "text", "text": {"content": TEXT}})
        );
    }

    #[test]
    fn wecom_content_fits_in_2048_bytes() {
        let mut msg = message();
        msg.reason = "字".repeat(166);
        msg.repository = Some("字".repeat(66));
        msg.branch = Some("字".repeat(66));
        msg.tag = Some("字".repeat(66));
        msg.image = Some("字".repeat(66));
        msg.url = Some(format!("https://p.example/{}", "a".repeat(600)));
        let req = send(ChannelKind::Wecom, "https://w.example/", None, &msg);
        let content = body(&req)["text"]["content"].as_str().unwrap().to_string();
        assert!(
            content.len() <= 2048 && content.len() > 2040,
            "{}",
            content.len()
        );
        assert!(content.ends_with('…'));
    }

    #[test]
    fn feishu_request() {
        let url = "https://open.feishu.cn/open-apis/bot/v2/hook/xyz";
        let req = send(ChannelKind::Feishu, url, None, &message());
        assert_eq!(req.url, url);
        assert_eq!(
            req.headers,
            headers(&[("content-type", "application/json; charset=utf-8")])
        );
        assert_eq!(
            body(&req),
            json!({"msg_type": "text", "content": {"text": TEXT}})
        );
    }

    #[test]
    fn feishu_signature_known_answer() {
        // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
        //   b"1700000000\nfstestsecret", b"", hashlib.sha256).digest()))'
        let url = "https://open.feishu.cn/open-apis/bot/v2/hook/xyz";
        let req = request(
            &channel(ChannelKind::Feishu, url, Some("fstestsecret")),
            &message(),
            1_700_000_000_999,
            "msg_1",
        );
        assert_eq!(req.url, url);
        assert_eq!(
            body(&req),
            json!({
                "msg_type": "text",
                "content": {"text": TEXT},
                "timestamp": "1700000000",
                "sign": "Cya5daaPm3koJ9K0NInXTMGHY0q+Qc6+O+Q4QHdkADo=",
            })
        );
    }

    #[test]
    fn answers() {
        use ChannelKind::*;
        let ok = |kind, status, body: &str| check_answer(kind, status, body.as_bytes());
        assert_eq!(ok(Webhook, 204, ""), Ok(()));
        assert_eq!(ok(Webhook, 500, "secret page"), Err("HTTP 500".into()));
        assert_eq!(ok(Slack, 200, "ok"), Ok(()));
        assert_eq!(
            ok(Slack, 403, "invalid_token"),
            Err("HTTP 403: invalid_token".into())
        );
        assert_eq!(
            ok(Slack, 404, "<html>https://x/T0/B0</html>"),
            Err("HTTP 404".into())
        );
        assert_eq!(ok(Discord, 204, ""), Ok(()));
        assert_eq!(
            ok(
                Discord,
                404,
                r#"{"message": "Unknown Webhook", "code": 10015}"#
            ),
            Err("HTTP 404: Unknown Webhook".into())
        );
        assert_eq!(ok(Dingtalk, 200, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            ok(
                Dingtalk,
                200,
                r#"{"errcode":310000,"errmsg":"sign not match"}"#
            ),
            Err("DingTalk errcode 310000: sign not match".into())
        );
        assert_eq!(
            ok(Dingtalk, 200, "<html>"),
            Err("DingTalk: unexpected answer".into())
        );
        assert_eq!(ok(Dingtalk, 502, ""), Err("HTTP 502".into()));
        assert_eq!(ok(Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            ok(
                Wecom,
                200,
                r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            ),
            Err("WeCom errcode 93000: invalid webhook url".into())
        );
        assert_eq!(
            ok(Feishu, 200, r#"{"code":0,"data":{},"msg":"success"}"#),
            Ok(())
        );
        assert_eq!(
            ok(
                Feishu,
                200,
                r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#
            ),
            Ok(())
        );
        assert_eq!(
            ok(Feishu, 200, r#"{"code":19021,"msg":"sign match fail"}"#),
            Err("Feishu code 19021: sign match fail".into())
        );
        assert_eq!(
            ok(
                Feishu,
                200,
                r#"{"StatusCode":9499,"StatusMessage":"Bad Request"}"#
            ),
            Err("Feishu code 9499: Bad Request".into())
        );
        let long = format!(r#"{{"errcode":1,"errmsg":"{}\nx"}}"#, "e".repeat(300));
        let err = ok(Wecom, 200, &long).unwrap_err();
        assert!(err.len() < 230 && !err.contains('\n'), "{err}");
    }

    #[test]
    fn urls() {
        use ChannelKind::*;
        assert_eq!(
            validate_url(Slack, "https://hooks.slack.com/services/T/B/X"),
            Ok(())
        );
        assert_eq!(validate_url(Webhook, "http://10.0.0.2:8080/in?x=1"), Ok(()));
        assert_eq!(validate_url(Webhook, "HTTPS://[::1]:8443/in"), Ok(()));
        assert_eq!(
            validate_url(Webhook, "ftp://h.example/"),
            Err("must start with https:// or http://")
        );
        for bad in [
            "ftp://h.example/",
            "hooks.slack.com/x",
            "https://h.example/a b",
            "https://h.example/\n",
            "https://h.example/é",
            "https://h.example/#x",
            "https://user:pw@h.example/",
            "https://h.example@evil.example/",
            "https:///path",
            "https://h.example:0/",
            "https://h.example:99999/",
            "https://h.example:/",
            "https://h_x.example/",
            "https://h.example\\@evil/",
            "https://[::1/",
        ] {
            assert!(validate_url(Webhook, bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_url(Webhook, &format!("https://h.example/{}", "a".repeat(2031))),
            Err("is longer than 2048 characters")
        );
        assert_eq!(
            validate_url(Webhook, &format!("https://h.example/{}", "a".repeat(2030))),
            Ok(())
        );
        assert_eq!(
            validate_url(Webhook, "https://u@h/"),
            Err("must not hold a user name or password (@)")
        );
        assert_eq!(validate_url(Webhook, "https://h/?to=a@b"), Ok(()));
    }

    #[test]
    fn origins_and_masks() {
        assert_eq!(
            origin("HTTPS://Hooks.Slack.COM./services/T/B/X").as_deref(),
            Some("https://hooks.slack.com")
        );
        assert_eq!(
            origin("https://h.example:443/x").as_deref(),
            Some("https://h.example")
        );
        assert_eq!(
            origin("http://h.example:80").as_deref(),
            Some("http://h.example")
        );
        assert_eq!(
            origin("http://h.example:443?x").as_deref(),
            Some("http://h.example:443")
        );
        assert_eq!(
            origin("http://[FE80::1]:8080/").as_deref(),
            Some("http://[fe80::1]:8080")
        );
        assert_eq!(origin("https://a@h.example/"), None);
        assert_eq!(origin("mailto:x@y"), None);
        assert_eq!(origin("http://[evil.example]/"), None);
        // python3 -c 'import hashlib; print(hashlib.sha256(b"https://oapi.dingtalk.com/robot/send?access_token=abc").hexdigest()[:8])'
        assert_eq!(
            masked("https://oapi.dingtalk.com/robot/send?access_token=abc"),
            "https://oapi.dingtalk.com/***dbaf57d2"
        );
        assert!(masked("not a url").starts_with("***"));
        assert_ne!(
            masked("https://hooks.slack.com/services/T/B/one"),
            masked("https://hooks.slack.com/services/T/B/two")
        );
    }

    #[test]
    fn secrets() {
        use ChannelKind::*;
        assert_eq!(
            validate_secret(Webhook, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Ok(())
        );
        let b64 = |n| base64(&vec![7u8; n]);
        assert_eq!(
            validate_secret(Webhook, &format!("whsec_{}", b64(64))),
            Ok(())
        );
        assert!(validate_secret(Webhook, &format!("whsec_{}", b64(23))).is_err());
        assert!(validate_secret(Webhook, &format!("whsec_{}", b64(65))).is_err());
        assert!(validate_secret(Webhook, &b64(32)).is_err());
        assert!(validate_secret(Webhook, "whsec_not-base64-at-all-but-long-enough!").is_err());
        assert_eq!(validate_secret(Dingtalk, "SEC0123abc"), Ok(()));
        assert_eq!(validate_secret(Feishu, &"x".repeat(256)), Ok(()));
        assert!(validate_secret(Feishu, &"x".repeat(257)).is_err());
        assert!(validate_secret(Dingtalk, "").is_err());
        assert!(validate_secret(Dingtalk, "SEC 1").is_err());
        assert!(validate_secret(Dingtalk, "SEC\n1").is_err());
        for kind in [Slack, Discord, Wecom] {
            assert_eq!(
                validate_secret(kind, "anything"),
                Err("not used by this channel")
            );
        }
    }

    #[test]
    fn generated_webhook_secrets_are_valid_and_random() {
        let mut n = 0u8;
        let mut fill = |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                n = n.wrapping_add(37);
                *b = n;
            }
        };
        let a = generate_webhook_secret(&mut fill);
        let b = generate_webhook_secret(&mut fill);
        assert_ne!(a, b);
        assert_eq!(validate_secret(ChannelKind::Webhook, &a), Ok(()));
        assert_eq!(unbase64(&a["whsec_".len()..]).unwrap().len(), 32);
        assert_eq!(unbase64(&a["whsec_".len()..]).unwrap()[..2], [37, 74]);
    }
}
