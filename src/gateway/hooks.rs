//! A webhook over HTTP: the decision pipeline with the app from the store, the body
//! read within its limit and the delivery claimed; then the one deploy call, the claim
//! finished or released, the delivery log and the answer.

use std::borrow::Cow;

use serde_json::json;

use super::deploy::{interpret_answer, DeployEvent, PlatformConfig};
use super::followup;
use super::outcome;
use super::pipeline::{self, Outcome, Steps};
use super::{
    read_limited, Host, ReadBody, Request, Response, DEPLOY_DEADLINE_MS, PLATFORM_TIMEOUT,
};
use crate::error::Error;
use crate::model::{OutboundRequest, Provider, Trigger};
use crate::state::app::{self, App};
use crate::state::delivery::{self, Claim, ClaimToken, Delivery};
use crate::state::log::{self, Entry, Ring};
use crate::state::Kv;

/// How a delivery ended: the platform's status for a deploy.
pub(super) type Ended = Result<Outcome<u16>, Error>;

/// The pipeline's steps for a request over HTTP.
struct Http<'a, 'r> {
    host: &'a dyn Host,
    req: &'a Request,
    read_body: ReadBody<'r>,
    /// Opened with the app; every later step has it.
    kv: Option<&'a dyn Kv>,
    /// The claim this attempt holds, to finish or release.
    claim: Option<ClaimToken>,
    /// The delivery log entry number a deploy took for its `status_url`.
    seq: Option<i64>,
}

impl<'a> Http<'a, '_> {
    fn kv(&self) -> &'a dyn Kv {
        self.kv.expect("the store was opened to load the app")
    }
}

impl Steps<'static> for Http<'_, '_> {
    fn app(&mut self, name: &str) -> Result<Option<App>, Error> {
        let kv = self.host.kv()?;
        self.kv = Some(kv);
        Ok(app::load(kv, name)?)
    }

    fn body(&mut self, limit: usize) -> Result<Cow<'static, [u8]>, Error> {
        read_limited(self.req, limit, &mut *self.read_body).map(Cow::Owned)
    }

    fn fresh_id(&mut self, _body: &[u8], _now_ms: u64) -> String {
        let mut fresh = [0u8; 16];
        self.host.fill_random(&mut fresh);
        crate::support::crypto::hex(&fresh)
    }

    /// Claims at the moment of claiming, not of the request's arrival: a body that was
    /// slow to arrive must not shorten the claim.
    fn claim(&mut self, app: &App, delivery: &Delivery, _arrived_ms: u64) -> Result<bool, Error> {
        match delivery::claim(self.kv(), &app.name, delivery, self.host.now_ms())? {
            Claim::Owned(token) => {
                self.claim = Some(token);
                Ok(true)
            }
            Claim::Duplicate => Ok(false),
            Claim::InProgress => Err(Error::InProgress),
        }
    }

    fn platform(&self) -> Result<PlatformConfig, Error> {
        PlatformConfig::new(
            self.host.var("platform_url").as_deref(),
            self.host.var("platform_token").as_deref(),
        )
    }

    fn status_url(&mut self, app: &App, delivery: &Delivery) -> Result<Option<String>, Error> {
        let (url, seq) = outcome::reserve(self.host, self.req, self.kv(), app, &delivery.id)?;
        self.seq = seq;
        Ok(url)
    }
}

/// Handles `POST /hooks/…`.
pub(super) fn handle(host: &dyn Host, req: &Request, read_body: ReadBody<'_>) -> Response {
    let started = host.now_ms();
    let mut http = Http {
        host,
        req,
        read_body,
        kv: None,
        claim: None,
        seq: None,
    };
    let eval = pipeline::run(&req.method, &req.path, &req.headers, started, &mut http);
    let Some(app) = eval.app else {
        // No app: nothing to call, nothing to log for it.
        let error = eval.result.err().unwrap_or(Error::NotFound);
        if let (Error::Store(detail), Some(name)) = (&error, eval.app_name) {
            host.log(&format!("app={name} store unavailable: {detail}"));
        }
        return answer(&Err(error), eval.app_name, None, None);
    };
    let kv = http.kv();
    let ended = eval.result.and_then(|outcome| {
        outcome.try_map(|call| {
            let waited_ms = host.now_ms().saturating_sub(started);
            if waited_ms > DEPLOY_DEADLINE_MS {
                return Err(Error::TooLate { waited_ms });
            }
            deploy(host, &app, &call)
        })
    });
    let delivery = eval.facts.delivery.as_ref();
    if let (Some(token), Some(delivery)) = (http.claim.take(), delivery) {
        end_claim(host, kv, &app.name, delivery, token, &ended);
    }
    let id = delivery.map(|d| d.id.as_str());
    // Anyone can post to a hook: refusals before authentication get their own bounded
    // list, so that a flood of them cannot push the real deliveries out of the log.
    let ring = if ended.is_err() && !eval.facts.authenticated {
        Ring::Rejected
    } else {
        Ring::Main
    };
    let log = DeliveryLog {
        host,
        kv,
        app: &app.name,
        trigger: eval.trigger.map_or("-", Trigger::as_str),
        started,
    };
    let provider = eval.facts.provider.map(Provider::as_str);
    let event = eval.facts.event.as_ref();
    let seq = log.write(provider, id, (ring, http.seq), &ended, event);
    let note = event.and_then(|e| e.note.as_deref());
    let mut response = answer(&ended, Some(&app.name), id, note);
    let ending = followup::Ending {
        trigger: log.trigger,
        provider,
        delivery: id,
        seq,
        note,
    };
    response.after = Some(followup::for_delivery(
        host, req, &app, &ended, event, ending,
    ))
    .filter(|f| !f.is_empty());
    response
}

/// The one deploy call: `Ok` with the platform's status when it accepted the deploy.
pub(super) fn deploy(host: &dyn Host, app: &App, call: &OutboundRequest) -> Result<u16, Error> {
    let (status, body) = host
        .send(call, PLATFORM_TIMEOUT)
        .map_err(|why| Error::Platform { why, status: None })?;
    interpret_answer(&app.deploy.target, status, &body)?;
    Ok(status)
}

/// After a deploy, the delivery is recorded as done; after anything else, the claim is
/// released so that a retry may deploy.
pub(super) fn end_claim(
    host: &dyn Host,
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    token: ClaimToken,
    ended: &Ended,
) {
    if let Ok(Outcome::Deploy(_)) = ended {
        if let Err(e) = delivery::finish(kv, app, delivery, host.now_ms(), token) {
            // The deploy happened: answering 2xx is right, and the platform got the
            // Idempotency-Key should the provider retry anyway.
            host.log(&format!(
                "app={app} delivery={} deployed, but {}",
                delivery.id, e.0
            ));
        }
    } else if let Err(e) = delivery::release(kv, token) {
        host.log(&format!(
            "app={app} delivery={} claim not released: {}",
            delivery.id, e.0
        ));
    }
}

fn status(ended: &Ended) -> u16 {
    match ended {
        Ok(Outcome::Deploy(_)) => 202,
        Ok(_) => 200,
        Err(e) => e.status(),
    }
}

pub(super) fn result(ended: &Ended) -> &'static str {
    match ended {
        Ok(Outcome::Deploy(_)) => "deployed",
        Ok(Outcome::Pong) => "pong",
        Ok(Outcome::Ignored(_)) => "ignored",
        Ok(Outcome::Duplicate) => "duplicate",
        Err(e) => e.result(),
    }
}

/// The reason said for `ended`; a deploy's adds `note`, the rule it could not check.
pub(super) fn reason(ended: &Ended, note: Option<&str>) -> String {
    match ended {
        Ok(Outcome::Deploy(status)) => match note {
            None => format!("the platform accepted the deploy (HTTP {status})"),
            Some(note) => format!("the platform accepted the deploy (HTTP {status}); {note}"),
        },
        Ok(Outcome::Pong) => "pong".into(),
        Ok(Outcome::Ignored(why)) => why.clone(),
        Ok(Outcome::Duplicate) => "this delivery was already deployed".into(),
        Err(e) => e.reason(),
    }
}

fn platform_status(ended: &Ended) -> Option<u16> {
    match ended {
        Ok(Outcome::Deploy(status)) => Some(*status),
        Ok(_) => None,
        Err(e) => e.platform_status(),
    }
}

/// The answer: `{"result", "reason", "app", "delivery"}`. A 404 names no app: an
/// unknown app and a wrong image token look the same. `note`: see [`reason`].
pub(super) fn answer(
    ended: &Ended,
    app: Option<&str>,
    delivery: Option<&str>,
    note: Option<&str>,
) -> Response {
    let app = match ended {
        Err(Error::NotFound | Error::MethodNotAllowed) => None,
        _ => app,
    };
    let mut response = Response::json(
        status(ended),
        &json!({"result": result(ended), "reason": reason(ended, note), "app": app,
                "delivery": delivery}),
    );
    if let Err(Error::MethodNotAllowed) = ended {
        response.headers.push(("allow".into(), "POST".into()));
    }
    response
}

/// Where a delivery to a known app is recorded: the delivery log and the operator's log.
pub(super) struct DeliveryLog<'a> {
    pub(super) host: &'a dyn Host,
    pub(super) kv: &'a dyn Kv,
    pub(super) app: &'a str,
    pub(super) trigger: &'static str,
    pub(super) started: u64,
}

impl DeliveryLog<'_> {
    /// Writes the operator's line and the delivery log's entry (as the entry number the
    /// deploy took for its `status_url`, if it did); a deployed delivery's entry keeps
    /// what was deployed (`event`), for a redeploy. Answers the number of the main log
    /// entry written.
    pub(super) fn write(
        &self,
        provider: Option<&str>,
        id: Option<&str>,
        (ring, seq): (Ring, Option<i64>),
        ended: &Ended,
        event: Option<&DeployEvent>,
    ) -> Option<i64> {
        let (host, app, trigger) = (self.host, self.app, self.trigger);
        let note = event.and_then(|e| e.note.as_deref());
        let detail = match ended {
            Err(error) => error.detail(),
            Ok(_) => reason(ended, note),
        };
        host.log(&format!(
            "delivery app={app} trigger={trigger} provider={} id={} result={} status={} \
             platform_status={} duration_ms={} reason={detail:?}",
            provider.unwrap_or("-"),
            id.unwrap_or("-"),
            result(ended),
            status(ended),
            platform_status(ended).map_or("-".to_string(), |s| s.to_string()),
            host.now_ms().saturating_sub(self.started),
        ));
        let entry = Entry {
            id: id.map(String::from),
            at: crate::support::time::rfc3339(self.started),
            trigger: trigger.into(),
            provider: provider.map(String::from),
            result: result(ended).into(),
            reason: reason(ended, note),
            platform_status: platform_status(ended),
            event: match ended {
                Ok(Outcome::Deploy(_)) => event.map(DeployEvent::kept),
                _ => None,
            },
            outcome: None,
            notices: None,
        };
        let written = match seq.filter(|_| ring == Ring::Main) {
            Some(seq) => log::write_at(self.kv, app, ring, seq, entry).map(|()| seq),
            None => log::append(self.kv, app, ring, entry),
        };
        match written {
            Ok(seq) => (ring == Ring::Main).then_some(seq),
            Err(e) => {
                host.log(&format!("app={app} delivery log not written: {}", e.0));
                None
            }
        }
    }
}
