//! `autodeploy:gateway/trigger.evaluate`: the whole decision for one request, pure.

use crate::app::App;
use crate::deploy::{build_request, PlatformConfig};
use crate::error::Error;
use crate::hook::{self, HookKind, Verdict};
use crate::model::{Headers, OutboundRequest};

/// The decision the WIT `decision` variant carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Pong,
    Ignore(String),
    Reject { status: u16, reason: String },
    Deploy(OutboundRequest),
}

struct Config {
    app: App,
    platform_url: Option<String>,
    platform_token: Option<String>,
}

impl Config {
    fn parse(config: &str) -> Result<Config, String> {
        let v: serde_json::Value = crate::json::parse(config.as_bytes())
            .map_err(|e| crate::error::describe_json_error(&e))?;
        let app = v.get("app").ok_or("missing field `app`")?;
        let name = app
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or("missing field `app.name`")?;
        let string = |key: &str| v.get(key).and_then(|s| s.as_str()).map(String::from);
        Ok(Config {
            app: App::from_stored(name, app).map_err(|e| e.error)?,
            platform_url: string("platform_url"),
            platform_token: string("platform_token"),
        })
    }
}

fn reject(e: Error) -> Decision {
    Decision::Reject {
        status: e.status(),
        reason: e.reason(),
    }
}

/// Evaluates `body` sent to `method path` with `headers` against `config` at `now_ms`.
pub fn evaluate(
    config: &str,
    method: &str,
    path: &str,
    headers: &Headers,
    body: &[u8],
    now_ms: u64,
) -> Decision {
    let config = match Config::parse(config) {
        Ok(c) => c,
        Err(why) => {
            return Decision::Reject {
                status: 500,
                reason: format!("invalid config: {why}"),
            }
        }
    };
    let app = &config.app;
    if method != "POST" {
        return reject(Error::MethodNotAllowed);
    }
    let route = match hook::parse_route(path) {
        Some(route) if route.app == app.name => route,
        _ => return reject(Error::NotFound),
    };
    if let HookKind::Image { token } = route.kind {
        if !app.image.token.matches(token.as_bytes()) {
            return reject(Error::NotFound);
        }
    }
    let limit = route.kind.body_limit();
    if body.len() > limit {
        return reject(Error::PayloadTooLarge { limit });
    }
    let mut seed = now_ms.to_le_bytes().to_vec();
    seed.extend_from_slice(body);
    let fresh_id = crate::crypto::sha256_hex(&seed)[..32].to_string();
    let eval = hook::evaluate_hook(app, &route.kind, headers, body, now_ms, &fresh_id);
    match eval.verdict {
        Err(e) => reject(e),
        Ok(Verdict::Pong) => Decision::Pong,
        Ok(Verdict::Ignore(why)) => Decision::Ignore(why),
        Ok(Verdict::Deploy(event)) => {
            if let Err(e) = hook::status_gate(app) {
                return reject(e);
            }
            match PlatformConfig::new(
                config.platform_url.as_deref(),
                config.platform_token.as_deref(),
            ) {
                Ok(platform) => Decision::Deploy(build_request(app, &platform, &event)),
                Err(e) => reject(e),
            }
        }
    }
}
