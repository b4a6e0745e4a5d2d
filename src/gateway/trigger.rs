//! `autodeploy:gateway/trigger.evaluate`: the whole decision for one request, pure. The
//! same pipeline as the HTTP handler, with the app and the platform from `config`, the
//! body already in hand, and no de-duplication (the embedding host's job).

use std::borrow::Cow;

use super::deploy::PlatformConfig;
use super::pipeline::{self, Outcome, Steps};
use crate::error::Error;
use crate::model::{Headers, OutboundRequest};
use crate::state::app::App;
use crate::state::delivery::Delivery;

/// The decision, as the WIT `decision` variant carries it.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Pong,
    Ignore(String),
    Reject { status: u16, reason: String },
    Deploy(OutboundRequest),
}

/// `config`: `{"app": <the app as GET shows it, secrets included>, "platform_url",
/// "platform_token"}`.
struct Config<'b> {
    app: Option<App>,
    platform_url: Option<String>,
    platform_token: Option<String>,
    body: &'b [u8],
}

impl<'b> Config<'b> {
    fn parse(config: &str, body: &'b [u8]) -> Result<Config<'b>, String> {
        let v: serde_json::Value = crate::support::json::parse(config.as_bytes())
            .map_err(|e| crate::error::describe_json_error(&e))?;
        let app = v.get("app").ok_or("missing field `app`")?;
        let name = app
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or("missing field `app.name`")?;
        let string = |key: &str| v.get(key).and_then(|s| s.as_str()).map(String::from);
        Ok(Config {
            app: Some(App::from_stored(name, app).map_err(|e| e.reason())?),
            platform_url: string("platform_url"),
            platform_token: string("platform_token"),
            body,
        })
    }
}

impl<'b> Steps<'b> for Config<'b> {
    fn app(&mut self, name: &str) -> Result<Option<App>, Error> {
        Ok(self.app.take().filter(|app| app.name == name))
    }

    fn body(&mut self, limit: usize) -> Result<Cow<'b, [u8]>, Error> {
        if self.body.len() > limit {
            return Err(Error::PayloadTooLarge { limit });
        }
        Ok(Cow::Borrowed(self.body))
    }

    /// With no randomness at hand, an id from the time and the body.
    fn fresh_id(&mut self, body: &[u8], now_ms: u64) -> String {
        let mut seed = now_ms.to_le_bytes().to_vec();
        seed.extend_from_slice(body);
        crate::support::crypto::sha256_hex(&seed)[..32].to_string()
    }

    fn claim(&mut self, _: &App, _: &Delivery, _: u64) -> Result<bool, Error> {
        Ok(true)
    }

    fn platform(&self) -> Result<PlatformConfig, Error> {
        PlatformConfig::new(self.platform_url.as_deref(), self.platform_token.as_deref())
    }

    /// No delivery log to record an outcome in: the embedding host reports its own.
    fn status_url(&mut self, _: &App, _: &Delivery) -> Result<Option<String>, Error> {
        Ok(None)
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
    let mut config = match Config::parse(config, body) {
        Ok(c) => c,
        Err(why) => {
            return Decision::Reject {
                status: 500,
                reason: format!("invalid config: {why}"),
            }
        }
    };
    match pipeline::run(method, path, headers, now_ms, &mut config).result {
        Ok(Outcome::Pong) => Decision::Pong,
        Ok(Outcome::Ignored(why)) => Decision::Ignore(why),
        Ok(Outcome::Deploy(request)) => Decision::Deploy(request),
        // Never: the export claims nothing, so nothing is a duplicate.
        Ok(Outcome::Duplicate) => Decision::Ignore("this delivery was already deployed".into()),
        Err(e) => Decision::Reject {
            status: e.status(),
            reason: e.reason(),
        },
    }
}
