//! The `autodeploy:gateway/trigger` export: the pure decision, in WIT types.

use crate::gateway::trigger::{evaluate, Decision as Core};
use crate::model::Headers;

mod bindings {
    wit_bindgen::generate!({
        world: "trigger-export",
        path: "wit",
    });
}

use bindings::exports::autodeploy::gateway::trigger::{
    Decision, Guest, InboundRequest, OutboundRequest as WitOutbound, Rejection,
};

struct Trigger;

impl Guest for Trigger {
    fn evaluate(config: String, request: InboundRequest, now_ms: u64) -> Decision {
        let headers = Headers::new(request.headers);
        match evaluate(
            &config,
            &request.method,
            &request.path,
            &headers,
            &request.body,
            now_ms,
        ) {
            Core::Pong => Decision::Pong,
            Core::Ignore(why) => Decision::Ignore(why),
            Core::Reject { status, reason } => Decision::Reject(Rejection { status, reason }),
            Core::Deploy(r) => Decision::Deploy(WitOutbound {
                method: r.method,
                url: r.url,
                headers: r.headers,
                body: r.body,
            }),
        }
    }
}

bindings::export!(Trigger with_types_in bindings);
