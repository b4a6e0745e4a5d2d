//! The admin API: apps, trigger switches, secret rotation, status, the delivery log, and
//! deploys it asks for ("Deploy now", "Redeploy": `manual.rs`).
//! JSON in and out; every route needs `Authorization: Bearer <admin_token>`. Errors
//! answer `{"error", "field"}` with the status [`Error`] maps them to.

use serde_json::json;

use super::{followup, manual, public_base, read_limited, Host, ReadBody, Request, Response};
use crate::error::Error;
use crate::model::Trigger;
use crate::state::app::{self, valid_app_name, App};
use crate::state::delivery::ring;
use crate::state::log::{self, Ring};
use crate::state::Kv;

const BODY_LIMIT: usize = 64 * 1024;

pub fn handle(host: &dyn Host, req: &Request, path: &str, read_body: ReadBody<'_>) -> Response {
    let started = host.now_ms();
    let response = match route(host, req, path, read_body) {
        Ok(response) => response,
        Err(e) => {
            if let Error::Store(detail) = &e {
                host.log(&format!("admin store error: {detail}"));
            }
            Response::json(e.status(), &e.to_admin_json())
        }
    };
    host.log(&format!(
        "admin method={} path={} status={} duration_ms={}",
        req.method,
        path,
        response.status,
        host.now_ms().saturating_sub(started)
    ));
    response
}

fn route(
    host: &dyn Host,
    req: &Request,
    path: &str,
    read_body: ReadBody<'_>,
) -> Result<Response, Error> {
    authorize(host, req)?;
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let method = req.method.as_str();
    let not_allowed = || Error::MethodNotAllowedOn {
        method: method.into(),
        path: path.into(),
    };

    match parts.as_slice() {
        ["apps"] => match method {
            "GET" => list(host, req, host.kv()?),
            _ => Err(not_allowed()),
        },
        ["apps", name, rest @ ..] => {
            if !valid_app_name(name) {
                return Err(Error::field("name", "must match [a-z0-9][a-z0-9-]{0,62}"));
            }
            let kv = host.kv()?;
            match (rest, method) {
                ([], "PUT") => {
                    let body = read_limited(req, BODY_LIMIT, read_body)?;
                    put(host, req, kv, name, &body)
                }
                ([], "GET") => {
                    let app = existing(kv, name)?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                ([], "DELETE") => {
                    existing(kv, name)?;
                    // Everything the app's deliveries left, then the app itself.
                    ring::clear(kv, name)?;
                    log::clear(kv, name)?;
                    app::delete(kv, name)?;
                    Ok(Response::empty(204))
                }
                (["status"], "PUT") => {
                    let body = read_limited(req, BODY_LIMIT, read_body)?;
                    let status = parse_status(&body)?;
                    let app = update(kv, name, &mut |app| app.set_status(status.clone()))?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                (["deliveries"], "GET") => {
                    existing(kv, name)?;
                    let list = |ring| -> Result<Vec<_>, Error> {
                        let entries = log::read(kv, name, ring)?;
                        Ok(entries.iter().map(|e| e.to_json()).collect())
                    };
                    // `rejected`: refused before authentication, kept apart (see log.rs)
                    let answer = json!({"deliveries": list(log::Ring::Main)?,
                                        "rejected": list(log::Ring::Rejected)?});
                    Ok(Response::json(200, &answer))
                }
                (["deploy"], "POST") => {
                    let started = host.now_ms();
                    let app = existing(kv, name)?;
                    let body = read_limited(req, BODY_LIMIT, read_body)?;
                    manual::deploy_now(host, req, kv, &app, &body, started)
                }
                (["deliveries", id, "redeploy"], "POST") => {
                    let started = host.now_ms();
                    let app = existing(kv, name)?;
                    manual::redeploy(host, req, kv, &app, id, started)
                }
                (["notify", index, "test"], "POST") => {
                    let app = existing(kv, name)?;
                    let index = index
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i < app.notify.len())
                        .ok_or(Error::NotFound)?;
                    let to = format!("{}#{index}", app.notify[index].kind.as_str());
                    let base = public_base(host, req);
                    Ok(match followup::send_test(host, &base, &app, index) {
                        Ok(()) => Response::json(
                            200,
                            &json!({"result": "sent", "to": to,
                                    "reason": "the service took the test message"}),
                        ),
                        Err(why) => Response::json(
                            502,
                            &json!({"result": "failed", "to": to, "reason": why}),
                        ),
                    })
                }
                (["triggers", trigger, action], "POST") => {
                    let trigger = Trigger::parse(trigger)
                        .ok_or_else(|| Error::field("trigger", "must be git, image or api"))?;
                    if !matches!(*action, "enable" | "disable" | "rotate") {
                        return Err(Error::UnknownAction);
                    }
                    let app = update(kv, name, &mut |app| match *action {
                        "enable" => app.set_enabled(trigger, true),
                        "disable" => app.set_enabled(trigger, false),
                        _ => {
                            app.rotate(trigger, &mut |buf| host.fill_random(buf));
                            Ok(())
                        }
                    })?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                ([], _)
                | (["status"], _)
                | (["deliveries"], _)
                | (["deploy"], _)
                | (["deliveries", _, "redeploy"], _)
                | (["notify", _, "test"], _)
                | (["triggers", _, _], _) => Err(not_allowed()),
                _ => Err(Error::NotFound),
            }
        }
        _ => Err(Error::NotFound),
    }
}

fn authorize(host: &dyn Host, req: &Request) -> Result<(), Error> {
    let expected = host.var("admin_token").filter(|t| !t.is_empty());
    let Some(expected) = expected else {
        host.log("admin API refused: the admin_token variable is not set");
        return Err(Error::Unauthorized("unauthorized"));
    };
    let given = req.headers.bearer().unwrap_or_default();
    if crate::support::secret::Secret::new(expected).matches(given.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Unauthorized(
            "unauthorized: send Authorization: Bearer <admin_token>",
        ))
    }
}

fn existing(kv: &dyn Kv, name: &str) -> Result<App, Error> {
    app::load(kv, name)?.ok_or_else(|| Error::AppNotFound(name.into()))
}

/// Changes an existing app atomically (see [`app::update`]).
fn update(
    kv: &dyn Kv,
    name: &str,
    change: &mut dyn FnMut(&mut App) -> Result<(), Error>,
) -> Result<App, Error> {
    app::update(kv, name, change)?.ok_or_else(|| Error::AppNotFound(name.into()))
}

fn put(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    name: &str,
    body: &[u8],
) -> Result<Response, Error> {
    let (app, created) = app::create_or_replace(kv, name, &mut |old| {
        let app = App::from_put(name, body, old, &mut |buf| host.fill_random(buf))?;
        // A channel or forge the host would refuse to call is refused now, not at the
        // first deploy.
        followup::check_origins(host, &app)?;
        Ok(app)
    })?;
    let status = if created { 201 } else { 200 };
    Ok(Response::json(status, &app.view(&public_base(host, req))))
}

/// `GET /api/apps?limit=&after=`: a page of apps in name order, each with its newest
/// delivery, and the `next` page's `after` (`null` on the last page).
fn list(host: &dyn Host, req: &Request, kv: &dyn Kv) -> Result<Response, Error> {
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let (mut limit, mut after) = (app::PAGE_DEFAULT, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=app::PAGE_MAX).contains(n))
                    .ok_or_else(|| {
                        Error::field("limit", format!("must be 1 to {}", app::PAGE_MAX))
                    })?
            }
            "after" => after = Some(value.into_owned()),
            _ => {} // e.g. a cache-buster
        }
    }
    let page = app::page(kv, after.as_deref(), limit)?;
    let base = public_base(host, req);
    let mut apps = Vec::with_capacity(page.apps.len());
    for app in &page.apps {
        let mut view = app.view(&base);
        view["last_delivery"] = log::newest(kv, &app.name, Ring::Main)?
            .map_or(serde_json::Value::Null, |e| e.to_json());
        apps.push(view);
    }
    Ok(Response::json(
        200,
        &json!({"apps": apps, "next": page.next}),
    ))
}

fn parse_status(body: &[u8]) -> Result<String, Error> {
    let value: serde_json::Value = crate::support::json::parse(body)
        .map_err(|e| Error::invalid(format!("body: {}", crate::error::describe_json_error(&e))))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid("body: expected a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "status") {
        return Err(Error::field(k.clone(), "unknown field"));
    }
    match obj.get("status").and_then(|s| s.as_str()) {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        _ => Err(Error::field(
            "status",
            "required: a non-empty string such as \"running\"",
        )),
    }
}
