//! The admin API (contract §4): apps, trigger switches, secret rotation, status and the
//! delivery log. JSON in and out; every route needs `Authorization: Bearer <admin_token>`.

use serde_json::json;

use crate::app::{valid_app_name, AdminError, App};
use crate::deliverylog;
use crate::model::Trigger;
use crate::service::{load_app, public_base, read_limited, Host, ReadBody, Request, Response};
use crate::store::{app_key, Kv};

const BODY_LIMIT: usize = 64 * 1024;

pub fn handle(host: &dyn Host, req: &Request, path: &str, read_body: ReadBody<'_>) -> Response {
    let started = host.now_ms();
    let response = match route(host, req, path, read_body) {
        Ok(response) => response,
        Err(e) => Response::json(e.status, &e.to_json()),
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
) -> Result<Response, AdminError> {
    authorize(host, req)?;
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let method = req.method.as_str();
    let not_allowed = || AdminError::new(405, format!("method {method} not allowed on {path}"));
    let kv = || host.kv().map_err(|e| store_error(host, e));

    match parts.as_slice() {
        ["apps"] => match method {
            "GET" => list(host, req, kv()?),
            _ => Err(not_allowed()),
        },
        ["apps", name, rest @ ..] => {
            if !valid_app_name(name) {
                return Err(AdminError::field(
                    "name",
                    "must match [a-z0-9][a-z0-9-]{0,62}",
                ));
            }
            let kv = kv()?;
            match (rest, method) {
                ([], "PUT") => {
                    let body = read_limited(req, BODY_LIMIT, read_body).map_err(body_error)?;
                    put(host, req, kv, name, &body)
                }
                ([], "GET") => {
                    let app = existing(host, kv, name)?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                ([], "DELETE") => {
                    existing(host, kv, name)?;
                    kv.delete(&app_key(name))
                        .map_err(|e| store_error(host, e))?;
                    deliverylog::clear(kv, name).map_err(|e| store_error(host, e))?;
                    Ok(Response::empty(204))
                }
                (["status"], "PUT") => {
                    let body = read_limited(req, BODY_LIMIT, read_body).map_err(body_error)?;
                    let mut app = existing(host, kv, name)?;
                    app.status = parse_status(&body)?;
                    save(host, kv, &app)?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                (["deliveries"], "GET") => {
                    existing(host, kv, name)?;
                    let entries = deliverylog::read(kv, name).map_err(|e| store_error(host, e))?;
                    let entries: Vec<_> = entries.iter().map(|e| e.to_json()).collect();
                    Ok(Response::json(200, &json!({"deliveries": entries})))
                }
                (["triggers", trigger, action], "POST") => {
                    let trigger = Trigger::parse(trigger)
                        .ok_or_else(|| AdminError::field("trigger", "must be git, image or api"))?;
                    let mut app = existing(host, kv, name)?;
                    match *action {
                        "enable" => app.set_enabled(trigger, true)?,
                        "disable" => app.set_enabled(trigger, false)?,
                        "rotate" => app.rotate(trigger, &mut |buf| host.fill_random(buf)),
                        _ => {
                            return Err(AdminError::new(
                                404,
                                "unknown action: use enable, disable or rotate",
                            ))
                        }
                    }
                    save(host, kv, &app)?;
                    Ok(Response::json(200, &app.view(&public_base(host, req))))
                }
                ([], _) | (["status"], _) | (["deliveries"], _) | (["triggers", _, _], _) => {
                    Err(not_allowed())
                }
                _ => Err(AdminError::new(404, "not found")),
            }
        }
        _ => Err(AdminError::new(404, "not found")),
    }
}

fn authorize(host: &dyn Host, req: &Request) -> Result<(), AdminError> {
    let expected = host.var("admin_token").filter(|t| !t.is_empty());
    let Some(expected) = expected else {
        host.log("admin API refused: the admin_token variable is not set");
        return Err(AdminError::new(401, "unauthorized"));
    };
    let given = req.headers.bearer().unwrap_or_default();
    if crate::secret::Secret::new(expected).matches(given.as_bytes()) {
        Ok(())
    } else {
        Err(AdminError::new(
            401,
            "unauthorized: send Authorization: Bearer <admin_token>",
        ))
    }
}

fn store_error(host: &dyn Host, e: crate::store::StoreError) -> AdminError {
    host.log(&format!("admin store error: {}", e.0));
    AdminError::new(503, "the key-value store is unavailable")
}

fn body_error(e: crate::error::Error) -> AdminError {
    AdminError::new(e.status(), e.reason())
}

fn existing(host: &dyn Host, kv: &dyn Kv, name: &str) -> Result<App, AdminError> {
    load_app(kv, name)
        .map_err(|e| store_error(host, e))?
        .ok_or_else(|| AdminError::new(404, format!("app {name} not found")))
}

fn save(host: &dyn Host, kv: &dyn Kv, app: &App) -> Result<(), AdminError> {
    let bytes = serde_json::to_vec(&app.to_json()).expect("apps serialise");
    kv.set(&app_key(&app.name), &bytes)
        .map_err(|e| store_error(host, e))
}

fn put(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    name: &str,
    body: &[u8],
) -> Result<Response, AdminError> {
    let old = load_app(kv, name).map_err(|e| store_error(host, e))?;
    let app = App::from_put(name, body, old.as_ref(), &mut |buf| host.fill_random(buf))?;
    save(host, kv, &app)?;
    let status = if old.is_some() { 200 } else { 201 };
    Ok(Response::json(status, &app.view(&public_base(host, req))))
}

fn list(host: &dyn Host, req: &Request, kv: &dyn Kv) -> Result<Response, AdminError> {
    let mut names: Vec<String> = kv
        .keys()
        .map_err(|e| store_error(host, e))?
        .into_iter()
        .filter_map(|k| k.strip_prefix("app/").map(String::from))
        .collect();
    names.sort();
    let base = public_base(host, req);
    let mut apps = Vec::with_capacity(names.len());
    for name in names {
        if let Some(app) = load_app(kv, &name).map_err(|e| store_error(host, e))? {
            apps.push(app.view(&base));
        }
    }
    Ok(Response::json(200, &json!({"apps": apps})))
}

fn parse_status(body: &[u8]) -> Result<String, AdminError> {
    let value: serde_json::Value = crate::json::parse(body).map_err(|e| {
        AdminError::new(
            400,
            format!("body: {}", crate::error::describe_json_error(&e)),
        )
    })?;
    let obj = value
        .as_object()
        .ok_or_else(|| AdminError::new(400, "body: expected a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "status") {
        return Err(AdminError::field(k.clone(), "unknown field"));
    }
    match obj.get("status").and_then(|s| s.as_str()) {
        Some(s) if !s.trim().is_empty() && s.len() <= 64 && !s.chars().any(char::is_control) => {
            Ok(s.to_string())
        }
        _ => Err(AdminError::field(
            "status",
            "required: a non-empty string such as \"running\"",
        )),
    }
}
