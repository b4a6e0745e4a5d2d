//! The decision pipeline: the order of checks for one hook request, written once and
//! shared by the HTTP handler (`hooks`) and the pure `trigger.evaluate` export.
//!
//! method (405) → route and app (404) → image token (404) → body size (413) → content
//! type (415) → authentication (401) → trigger enabled (403) → payload (400) → rules
//! (`pong`, `ignored`) → the delivery's claim (`duplicate`, 409 `in_progress`) → app
//! status (409) → the deploy call to make (with its `status_url`, which takes the
//! delivery's log entry number).
//!
//! What differs between the two callers is behind [`Steps`]: where the app comes from,
//! how the body is read, how an id-less API delivery is named, whether deliveries are
//! claimed, and where the platform's address comes from.

use std::borrow::Cow;

use super::checks;
use super::deploy::{build_request, DeployEvent, PlatformConfig};
use super::route::{parse_route, HookKind};
use super::rules::status_gate;
use crate::error::Error;
use crate::model::{Headers, OutboundRequest, Provider, Trigger};
use crate::state::app::App;
use crate::state::delivery::Delivery;

/// What a delivery comes to. `D` is what a deploy carries: the event to send
/// ([`DeployEvent`](super::deploy::DeployEvent)) while checking, the call to make
/// ([`OutboundRequest`]) once decided, the platform's HTTP status once made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<D> {
    /// A ping or test delivery.
    Pong,
    /// A valid event the rules filter out, and why.
    Ignored(String),
    /// The delivery was deployed before.
    Duplicate,
    Deploy(D),
}

impl<D> Outcome<D> {
    /// Turns the deploy's payload into the next stage's; the other outcomes stay.
    pub fn try_map<E>(self, f: impl FnOnce(D) -> Result<E, Error>) -> Result<Outcome<E>, Error> {
        Ok(match self {
            Outcome::Pong => Outcome::Pong,
            Outcome::Ignored(why) => Outcome::Ignored(why),
            Outcome::Duplicate => Outcome::Duplicate,
            Outcome::Deploy(d) => Outcome::Deploy(f(d)?),
        })
    }
}

/// What the checks learn about a delivery as they go, kept for the answer and the log
/// however far the request got.
#[derive(Debug, Default)]
pub struct Facts {
    pub provider: Option<Provider>,
    pub delivery: Option<Delivery>,
    /// The signature, token or secret was verified: a refusal before that goes to the
    /// delivery log's list of unauthenticated rejections.
    pub authenticated: bool,
    /// The event to deploy, once the checks decided on a deploy (the log keeps it for a
    /// redeploy).
    pub event: Option<DeployEvent>,
}

/// One request through the pipeline.
#[derive(Debug)]
pub struct Evaluation<'p> {
    /// The app name in the route and the trigger, once the route is known.
    pub app_name: Option<&'p str>,
    pub trigger: Option<Trigger>,
    /// The app, once found.
    pub app: Option<App>,
    pub facts: Facts,
    pub result: Result<Outcome<OutboundRequest>, Error>,
}

/// The parts of the pipeline that differ between the HTTP handler and the export.
pub trait Steps<'b> {
    /// The app `name` (`None`: no such app, a 404).
    fn app(&mut self, name: &str) -> Result<Option<App>, Error>;
    /// The body, at most `limit` bytes (more: a 413).
    fn body(&mut self, limit: usize) -> Result<Cow<'b, [u8]>, Error>;
    /// A new id for an API delivery without an `Idempotency-Key`.
    fn fresh_id(&mut self, body: &[u8], now_ms: u64) -> String;
    /// Claims the delivery for this attempt: `false` when it was deployed before.
    fn claim(&mut self, app: &App, delivery: &Delivery, now_ms: u64) -> Result<bool, Error>;
    /// Where deploy calls go.
    fn platform(&self) -> Result<PlatformConfig, Error>;
    /// The `status_url` the platform reports the outcome to (taking the delivery's log
    /// entry number), when there is a log to record it in.
    fn status_url(&mut self, app: &App, delivery: &Delivery) -> Result<Option<String>, Error>;
}

/// Runs one hook request through every check, in order.
pub fn run<'p, 'b>(
    method: &str,
    path: &'p str,
    headers: &Headers,
    now_ms: u64,
    steps: &mut dyn Steps<'b>,
) -> Evaluation<'p> {
    let mut eval = Evaluation {
        app_name: None,
        trigger: None,
        app: None,
        facts: Facts::default(),
        result: Err(Error::NotFound),
    };
    eval.result = decide(method, path, headers, now_ms, steps, &mut eval);
    eval
}

fn decide<'p, 'b>(
    method: &str,
    path: &'p str,
    headers: &Headers,
    now_ms: u64,
    steps: &mut dyn Steps<'b>,
    eval: &mut Evaluation<'p>,
) -> Result<Outcome<OutboundRequest>, Error> {
    if method != "POST" {
        return Err(Error::MethodNotAllowed);
    }
    let route = parse_route(path).ok_or(Error::NotFound)?;
    eval.app_name = Some(route.app);
    eval.trigger = Some(route.kind.trigger());
    let app = steps.app(route.app)?.ok_or(Error::NotFound)?;
    let app = &*eval.app.insert(app);
    if let HookKind::Image { token } = route.kind {
        if !app.image.token.matches(token.as_bytes()) {
            return Err(Error::NotFound);
        }
    }
    let body = steps.body(route.kind.body_limit())?;
    let mut fresh_id = || steps.fresh_id(&body, now_ms);
    let checked = checks::check(
        app,
        &route.kind,
        headers,
        &body,
        now_ms,
        &mut eval.facts,
        &mut fresh_id,
    )?;
    let event = match checked {
        Outcome::Deploy(event) => event,
        Outcome::Pong => return Ok(Outcome::Pong),
        Outcome::Ignored(why) => return Ok(Outcome::Ignored(why)),
        Outcome::Duplicate => return Ok(Outcome::Duplicate),
    };
    let delivery = eval
        .facts
        .delivery
        .as_ref()
        .expect("a deploy has a delivery");
    if !steps.claim(app, delivery, now_ms)? {
        return Ok(Outcome::Duplicate);
    }
    if let Err(gated) = status_gate(app) {
        // What would have been deployed, for the notifications of the refusal.
        eval.facts.event = Some(event);
        return Err(gated);
    }
    let platform = steps.platform()?;
    let mut event = event;
    event.status_url = steps.status_url(app, delivery)?;
    let call = build_request(app, &platform, &event);
    eval.facts.event = Some(event);
    Ok(Outcome::Deploy(call))
}
