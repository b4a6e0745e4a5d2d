//! The calls beyond the deploy call: notifications to the app's channels and commit
//! statuses on its forge (`git.report`).
//!
//! They are decided with the answer but made after it has gone out (the host runs
//! [`run`] once the response is sent), so a slow or failing chat service never delays
//! or changes what the provider is told. Each call is bounded by [`CALL_TIMEOUT`]; how
//! each went is written into the delivery's log entry (`notices`) and failures into the
//! operator's log, without the URL (chat services keep their credentials in it).
//!
//! Only origins the host lets the component call are ever called ([`allowed`]): the
//! deploy platform, the SaaS chat and forge APIs Spin's manifest lists, and the
//! self-hosted origins named by the `notify_origin` and `git_origin` variables. Nothing
//! is ever called at an origin a webhook payload brought.

use std::time::Duration;

use serde_json::{json, Value};

use super::deploy::DeployEvent;
use super::hooks::Ended;
use super::pipeline::Outcome;
use super::{Host, Request};
use crate::error::Error;
use crate::model::OutboundRequest;
use crate::notify::{channels, statuses, ChannelKind, Event, Message, State};
use crate::state::app::App;
use crate::state::log;

/// The longest a notification or status call may take, answer included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The SaaS origins the component may call beyond the platform: chat services and forge
/// APIs. `spin.toml` lists the same (a test holds them equal).
pub const SAAS_ORIGINS: [&str; 12] = [
    "https://hooks.slack.com",
    "https://discord.com",
    "https://discordapp.com",
    "https://oapi.dingtalk.com",
    "https://qyapi.weixin.qq.com",
    "https://open.feishu.cn",
    "https://open.larksuite.com",
    "https://api.github.com",
    "https://gitlab.com",
    "https://api.bitbucket.org",
    "https://codeberg.org",
    "https://gitea.com",
];

/// The variables that name one self-hosted origin each; `spin.toml` gives them a
/// placeholder default that names no host.
pub const ORIGIN_VARIABLES: [&str; 2] = ["notify_origin", "git_origin"];

/// The default of [`ORIGIN_VARIABLES`] in `spin.toml` (Spin refuses an empty entry).
pub const UNSET_ORIGIN: &str = "https://unset.invalid";

/// `scheme://host[:port]` of an absolute URL, host lowercased, the scheme's default
/// port dropped.
pub fn origin(url: &str) -> Option<String> {
    let origin = channels::origin(url)?;
    Some(
        origin
            .strip_suffix(":443")
            .filter(|o| o.starts_with("https://"))
            .or_else(|| {
                origin
                    .strip_suffix(":80")
                    .filter(|o| o.starts_with("http://"))
            })
            .unwrap_or(&origin)
            .to_string(),
    )
}

/// May the component call `url`? Its origin must be the platform's, a listed SaaS
/// origin, or the value of one of the [`ORIGIN_VARIABLES`].
pub fn allowed(host: &dyn Host, url: &str) -> bool {
    let Some(wanted) = origin(url) else {
        return false;
    };
    if wanted == UNSET_ORIGIN {
        return false;
    }
    SAAS_ORIGINS.contains(&wanted.as_str())
        || ORIGIN_VARIABLES
            .iter()
            .chain(&["platform_url"])
            .filter_map(|name| host.var(name))
            .any(|value| origin(value.trim()).as_deref() == Some(wanted.as_str()))
}

/// Refuses (400, naming the field) an app whose channels or commit statuses would call
/// an origin the host does not allow.
pub fn check_origins(host: &dyn Host, app: &App) -> Result<(), Error> {
    let why = |origin: Option<String>, variable: &str| {
        format!(
            "{} is not an origin the gateway may call: use a service's own URL, or set the \
             {variable} variable to it (and list it in spin.toml's allowed_outbound_hosts)",
            origin.unwrap_or_else(|| "this URL".into())
        )
    };
    for (i, channel) in app.notify.iter().enumerate() {
        let url = channel.url.expose();
        if !allowed(host, url) {
            return Err(Error::field(
                format!("notify[{i}].url"),
                why(origin(url), "notify_origin"),
            ));
        }
    }
    if let Some(report) = &app.git.report {
        let target = statuses::target(report.forge, &app.git.repo)
            .map_err(|why| Error::field("git.repo", why))?;
        if !allowed(host, &target.origin) {
            return Err(Error::field(
                "git.report",
                why(Some(target.origin.clone()), "git_origin"),
            ));
        }
    }
    Ok(())
}

/// Where a call goes and how its answer is read.
enum Check {
    Channel(ChannelKind),
    Status,
}

struct Call {
    /// `slack#1`, `git.report`: names the call in the log without its URL.
    to: String,
    event: &'static str,
    check: Check,
    request: OutboundRequest,
}

/// The calls to make once the answer has gone out, and the log entry to record them in.
#[derive(Default)]
pub struct Followup {
    app: String,
    delivery: Option<String>,
    seq: Option<i64>,
    calls: Vec<Call>,
}

/// Requests carry credentials: `Debug` names only where they go.
impl std::fmt::Debug for Followup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to: Vec<&str> = self.calls.iter().map(|c| c.to.as_str()).collect();
        write!(f, "Followup({} {to:?})", self.app)
    }
}

impl Followup {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// The app's page in the console, its row for `delivery` picked out when there is one.
pub fn console_url(base: &str, app: &str, delivery: Option<&str>) -> String {
    let mut url = format!("{base}{}#/apps/{app}", super::console::CONSOLE_PATH);
    if let Some(id) = delivery {
        url.push_str("/deliveries/");
        // Delivery ids are any printable text: everything but unreserved characters
        // percent-encoded (the console decodes it).
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
    }
    url
}

/// What a delivery that just ended tells: `requested` for a deploy the platform
/// accepted, `refused` for one it refused or failed, or one the app's status gated.
fn delivery_event(ended: &Ended) -> Option<Event> {
    match ended {
        Ok(Outcome::Deploy(_)) => Some(Event::Requested),
        Err(Error::Platform { .. } | Error::PlatformConflict { .. })
        | Err(Error::StatusNotDeployable(_)) => Some(Event::Refused),
        _ => None,
    }
}

/// What a delivery's calls need to know of it.
pub struct Ending<'a> {
    pub trigger: &'static str,
    pub provider: Option<&'a str>,
    pub delivery: Option<&'a str>,
    /// The delivery log entry number.
    pub seq: Option<i64>,
    /// The rule a deploy could not check, said in its reason.
    pub note: Option<&'a str>,
}

/// The calls a delivery that just ended makes (none when nothing is to be told).
pub fn for_delivery(
    host: &dyn Host,
    req: &Request,
    app: &App,
    ended: &Ended,
    event: Option<&DeployEvent>,
    ending: Ending<'_>,
) -> Followup {
    let Some(what) = delivery_event(ended) else {
        return Followup::default();
    };
    if app.notify.is_empty() && app.git.report.is_none() {
        return Followup::default();
    }
    let mut message = message(host, req, app, what, event, ending.delivery);
    message.trigger = ending.trigger.into();
    message.provider = ending.provider.map(String::from);
    // Built only when someone is to be told: a delivery's hot path formats nothing more.
    message.result = super::hooks::result(ended).into();
    message.reason = super::hooks::reason(ended, ending.note);
    build(host, app, ending.seq, &message)
}

/// The calls a final outcome the platform reported makes: `entry` is the delivery's log
/// entry with its outcome written.
pub fn for_outcome(host: &dyn Host, req: &Request, app: &App, seq: i64, entry: &Value) -> Followup {
    let outcome = &entry["outcome"];
    let what = match outcome["state"].as_str() {
        Some("succeeded") => Event::Succeeded,
        Some("failed") => Event::Failed,
        _ => return Followup::default(),
    };
    if app.notify.is_empty() && app.git.report.is_none() {
        return Followup::default();
    }
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    let kept = DeployEvent::manual_from_kept(&entry["event"], String::new(), 0);
    let id = entry["id"].as_str();
    let mut message = message(host, req, app, what, Some(&kept), id);
    message.trigger = text(&entry["trigger"]).unwrap_or_default();
    message.provider = text(&entry["provider"]);
    message.result = what.as_str().into();
    message.reason = text(&outcome["description"])
        .unwrap_or_else(|| format!("the platform reported that the deploy {}", what.as_str()));
    message.duration_ms = match (
        parse_rfc3339(entry["at"].as_str().unwrap_or_default()),
        parse_rfc3339(outcome["at"].as_str().unwrap_or_default()),
    ) {
        (Some(from), Some(to)) => Some(to.saturating_sub(from)),
        _ => None,
    };
    message.url = text(&outcome["url"]);
    build(host, app, Some(seq), &message)
}

/// What a message about `event` says of what was (or would have been) deployed.
fn message(
    host: &dyn Host,
    req: &Request,
    app: &App,
    what: Event,
    event: Option<&DeployEvent>,
    delivery: Option<&str>,
) -> Message {
    let base = super::public_base(host, req);
    Message {
        event: Some(what),
        app: app.name.clone(),
        delivery: delivery.map(String::from),
        repository: event.and_then(|e| e.repository.clone()),
        branch: event.and_then(|e| e.branch.clone()),
        tag: event.and_then(|e| e.tag.clone()),
        commit: event.and_then(|e| e.commit.clone()),
        image: event
            .and_then(|e| e.image.as_ref())
            .map(|i| format!("{}:{}", i.repository, i.tag)),
        console_url: Some(console_url(&base, &app.name, delivery)),
        ..Message::default()
    }
}

/// The calls `message` makes: one per channel that hears its event, and the commit
/// status when `git.report` is set and the delivery names a commit.
fn build(host: &dyn Host, app: &App, seq: Option<i64>, message: &Message) -> Followup {
    let what = message.event.expect("a delivery's message has an event");
    let mut calls = Vec::new();
    for (i, channel) in app.notify.iter().enumerate() {
        if channel.events.contains(&what) {
            calls.push(Call {
                to: format!("{}#{i}", channel.kind.as_str()),
                event: what.as_str(),
                check: Check::Channel(channel.kind),
                request: channels::request(channel, message, host.now_ms(), &message_id(host)),
            });
        }
    }
    let sha = message.commit.as_ref().map(|c| c.id.as_str());
    if let (Some(report), Some(sha)) = (&app.git.report, sha.filter(|s| statuses::valid_sha(s))) {
        if let Ok(target) = statuses::target(report.forge, &app.git.repo) {
            let state = match what {
                Event::Requested => State::Pending,
                Event::Succeeded => State::Success,
                Event::Refused | Event::Failed => State::Failure,
            };
            let description = match what {
                Event::Requested => "deploy requested".to_string(),
                _ => crate::support::text::cut(&message.reason, 140).to_string(),
            };
            let target_url = message.url.as_deref().or(message.console_url.as_deref());
            calls.push(Call {
                to: "git.report".into(),
                event: what.as_str(),
                check: Check::Status,
                request: statuses::request(
                    &target,
                    &report.token,
                    sha,
                    state,
                    &format!("autodeploy/{}", app.name),
                    &description,
                    target_url,
                ),
            });
        }
    }
    Followup {
        app: app.name.clone(),
        delivery: message.delivery.clone(),
        seq,
        calls,
    }
}

/// A Standard Webhooks message id: new for every message.
fn message_id(host: &dyn Host) -> String {
    let mut id = [0u8; 12];
    host.fill_random(&mut id);
    format!("msg_{}", crate::support::crypto::hex(&id))
}

/// Sends one call (if its origin is allowed) and reads its answer.
fn send(host: &dyn Host, call: &Call) -> Result<(), String> {
    if !allowed(host, &call.request.url) {
        return Err("its origin is not one the gateway may call".into());
    }
    let (status, body) = host
        .send(&call.request, CALL_TIMEOUT)
        .map_err(|why| crate::support::text::cut(&why, 200).to_string())?;
    match call.check {
        Check::Channel(kind) => channels::check_answer(kind, status, &body),
        Check::Status => statuses::check_answer(status, &body),
    }
}

/// Makes the calls, in order, then records how each went in the delivery's log entry.
pub fn run(host: &dyn Host, followup: Followup) {
    if followup.calls.is_empty() {
        return;
    }
    let (app, delivery) = (&followup.app, followup.delivery.as_deref().unwrap_or("-"));
    let mut notices = Vec::with_capacity(followup.calls.len());
    for call in &followup.calls {
        let sent = send(host, call);
        match &sent {
            Ok(()) => host.log(&format!(
                "notice app={app} delivery={delivery} to={} event={} ok",
                call.to, call.event
            )),
            Err(why) => host.log(&format!(
                "notice app={app} delivery={delivery} to={} event={} failed: {why}",
                call.to, call.event
            )),
        }
        notices.push(json!({
            "to": call.to, "event": call.event, "ok": sent.is_ok(),
            "error": sent.err(), "at": crate::support::time::rfc3339(host.now_ms()),
        }));
    }
    let Some(seq) = followup.seq else {
        return;
    };
    let Ok(kv) = host.kv() else {
        return;
    };
    let add = |entry: &mut Value| match entry["notices"].as_array_mut() {
        Some(list) => list.extend(notices.iter().cloned()),
        None => entry["notices"] = Value::Array(notices.clone()),
    };
    if let Err(e) = log::amend(kv, app, seq, &add) {
        host.log(&format!(
            "app={app} delivery={delivery} notices not recorded: {}",
            e.0
        ));
    }
}

/// Sends a test message to channel `index` of `app` now (the admin is waiting for it):
/// `Ok` when the service took it, else why not.
pub fn send_test(host: &dyn Host, base: &str, app: &App, index: usize) -> Result<(), String> {
    let channel = &app.notify[index];
    let message = Message {
        event: None,
        app: app.name.clone(),
        trigger: "manual".into(),
        result: "test".into(),
        reason: "a test message from autodeploy: this channel works".into(),
        console_url: Some(console_url(base, &app.name, None)),
        test: true,
        ..Message::default()
    };
    let call = Call {
        to: format!("{}#{index}", channel.kind.as_str()),
        event: "test",
        check: Check::Channel(channel.kind),
        request: channels::request(channel, &message, host.now_ms(), &message_id(host)),
    };
    let sent = send(host, &call);
    host.log(&format!(
        "notice app={} to={} event=test {}",
        app.name,
        call.to,
        match &sent {
            Ok(()) => "ok".to_string(),
            Err(why) => format!("failed: {why}"),
        }
    ));
    sent
}

/// Unix milliseconds of an RFC 3339 UTC time as [`rfc3339`](crate::support::time::rfc3339)
/// writes it (`2026-11-25T09:30:00.123Z`).
fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_times_it_writes() {
        for ms in [0, 951_782_400_123, 1_795_599_000_000, 4_102_444_799_999] {
            let text = crate::support::time::rfc3339(ms);
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339("2026-11-25T09:30:00Z"), None);
        assert_eq!(parse_rfc3339(""), None);
    }

    /// The component's list is Spin's: every origin it may call is in `spin.toml`, and
    /// `spin.toml` lists nothing the component does not know of.
    #[test]
    fn the_allow_list_is_spin_toml_s() {
        let manifest = include_str!("../../spin.toml");
        let start = manifest.find("allowed_outbound_hosts = [").unwrap();
        let list = &manifest[start..];
        let list = &list[..list.find(']').unwrap()];
        let entries: Vec<&str> = list
            .lines()
            .skip(1)
            .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
            .filter(|l| !l.is_empty())
            .collect();
        let mut expected: Vec<String> = vec!["{{ platform_url }}".into()];
        expected.extend(ORIGIN_VARIABLES.iter().map(|v| format!("{{{{ {v} }}}}")));
        expected.extend(SAAS_ORIGINS.iter().map(|o| o.to_string()));
        assert_eq!(entries, expected);
        for variable in ORIGIN_VARIABLES {
            assert!(
                manifest.contains(&format!("{variable} = {{ default = \"{UNSET_ORIGIN}\" }}")),
                "{variable}"
            );
            assert!(manifest.contains(&format!("{variable} = \"{{{{ {variable} }}}}\"")));
        }
    }

    #[test]
    fn console_links_name_the_delivery_percent_encoded() {
        assert_eq!(
            console_url("https://h.example", "shop", Some("a b/#é-1.x_~")),
            "https://h.example/console/#/apps/shop/deliveries/a%20b%2F%23%C3%A9-1.x_~"
        );
        assert_eq!(
            console_url("https://h.example", "shop", None),
            "https://h.example/console/#/apps/shop"
        );
    }

    #[test]
    fn origins_drop_default_ports_and_case() {
        assert_eq!(
            origin("https://Hooks.Slack.com:443/services/x").as_deref(),
            Some("https://hooks.slack.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:80/x").as_deref(),
            Some("http://127.0.0.1")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://chat.example.com:80/x").as_deref(),
            Some("https://chat.example.com:80")
        );
    }
}
