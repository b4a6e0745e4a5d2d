//! The admin API: authorization, apps, switches, rotation, status, errors.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, ADMIN_TOKEN};
use super::{push, shop, sign, GITHUB_SECRET};

fn error(status: u16, error: &str, field: Option<&str>) -> (u16, Value) {
    (status, json!({"error": error, "field": field}))
}

fn call(host: &FakeHost, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let answer = host.admin(method, path, body);
    (answer.status(), answer.json())
}

#[test]
fn every_route_needs_the_admin_token() {
    let host = FakeHost::default();
    let none = host.request("GET", "/api/apps", &[], b"");
    let wrong = host.request("GET", "/api/apps", &[("authorization", "Bearer nope")], b"");
    let unauthorized = error(
        401,
        "unauthorized: send Authorization: Bearer <admin_token>",
        None,
    );
    assert_eq!((none.status(), none.json()), unauthorized);
    assert_eq!((wrong.status(), wrong.json()), unauthorized);
    for (method, path) in [
        ("PUT", "/api/apps/shop"),
        ("DELETE", "/api/apps/shop"),
        ("POST", "/api/apps/shop/triggers/git/rotate"),
        ("GET", "/api/apps/shop/deliveries"),
    ] {
        assert_eq!(host.request(method, path, &[], b"{}").status(), 401);
    }
    assert_eq!(call(&host, "GET", "/api/apps", &Value::Null).0, 200);

    // No admin_token at all: nobody gets in, and the operator is told why.
    host.unset_var("admin_token");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let unset = host.request("GET", "/api/apps", &[("authorization", &bearer)], b"");
    assert_eq!(
        (unset.status(), unset.json()),
        error(401, "unauthorized", None)
    );
    assert!(host
        .log_text()
        .contains("admin API refused: the admin_token variable is not set"));
}

#[test]
fn apps_are_created_replaced_listed_and_deleted() {
    let host = FakeHost::default();
    let created = shop(&host);
    assert_eq!(created["name"], "shop");
    assert_eq!(created["git"]["secret"], GITHUB_SECRET);
    assert_eq!(
        created["hooks"],
        json!({"git": "https://hooks.example.com/hooks/shop/git",
               "image": format!("https://hooks.example.com/hooks/shop/image/{}",
                                created["image"]["token"].as_str().unwrap()),
               "api": "https://hooks.example.com/hooks/shop/api"})
    );
    let token = created["image"]["token"].as_str().unwrap();
    assert!(token.len() >= 32, "generated: {token}");
    assert_eq!(created["status"], "running");
    assert_eq!(
        created["deploy"]["allowed_statuses"],
        json!(["running", "abnormal"])
    );

    // Replacing keeps the secrets the body leaves out.
    let (status, replaced) = call(
        &host,
        "PUT",
        "/api/apps/shop",
        &json!({"git": {"enabled": true, "branch": "release"},
                "deploy": {"target": "generic", "path": "/deploy"}}),
    );
    assert_eq!(status, 200);
    assert_eq!(replaced["git"]["secret"], GITHUB_SECRET);
    assert_eq!(replaced["image"]["token"], created["image"]["token"]);
    assert_eq!(replaced["git"]["branch"], "release");

    host.set_var("public_url", "https://edge.example.org/");
    let mut names = Vec::new();
    for name in ["web", "api-2", "shop"] {
        let body = json!({"deploy": {"target": "generic", "path": "/deploy"}});
        let (status, app) = call(&host, "PUT", &format!("/api/apps/{name}"), &body);
        assert!(status == 200 || status == 201);
        names.push(app["name"].clone());
    }
    let (status, list) = call(&host, "GET", "/api/apps", &Value::Null);
    assert_eq!(status, 200);
    let listed: Vec<&Value> = list["apps"].as_array().unwrap().iter().collect();
    let listed_names: Vec<&Value> = listed.iter().map(|a| &a["name"]).collect();
    assert_eq!(
        listed_names,
        [&json!("api-2"), &json!("shop"), &json!("web")]
    );
    assert_eq!(
        listed[0]["hooks"]["git"],
        "https://edge.example.org/hooks/api-2/git"
    );

    push(&host, "d-1");
    let answer = host.admin("DELETE", "/api/apps/shop", &Value::Null);
    assert_eq!((answer.status(), answer.text()), (204, String::new()));
    assert_eq!(
        call(&host, "GET", "/api/apps/shop", &Value::Null),
        error(404, "app shop not found", None)
    );
    assert_eq!(
        call(&host, "DELETE", "/api/apps/shop", &Value::Null),
        error(404, "app shop not found", None)
    );
    let keys: Vec<String> = host.kv.map.lock().unwrap().keys().cloned().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("log/shop/") || k == "app/shop"),
        "{keys:?}"
    );
}

#[test]
fn bad_input_is_a_400_that_names_its_field() {
    let host = FakeHost::default();
    let put = |body: Value| call(&host, "PUT", "/api/apps/shop", &body);
    let deploy = json!({"target": "generic", "path": "/deploy"});
    assert_eq!(
        put(json!({"git": {"branch": "a..b"}, "deploy": deploy})),
        error(
            400,
            "git.branch: must be a valid git branch name, e.g. \"main\" or \"release/1.x\", \
             or a glob such as \"release/*\"",
            Some("git.branch")
        )
    );
    assert_eq!(
        put(json!({"git": {"colour": "blue"}, "deploy": deploy})),
        error(400, "git.colour: unknown field", Some("git.colour"))
    );
    assert_eq!(
        put(json!({"git": {}})),
        error(400, "deploy: required", Some("deploy"))
    );
    assert_eq!(
        put(json!({"image": {"enabled": true}, "deploy": deploy})),
        error(
            400,
            "image.repository: required when the image trigger is enabled",
            Some("image.repository")
        )
    );
    assert_eq!(
        put(json!({"image": {"tag_pattern": "v(1"}, "deploy": deploy})),
        error(
            400,
            "image.tag_pattern: invalid regular expression",
            Some("image.tag_pattern")
        )
    );
    assert_eq!(
        call(&host, "PUT", "/api/apps/Shop!", &json!({"deploy": deploy})),
        error(
            400,
            "name: must match [a-z0-9][a-z0-9-]{0,62}",
            Some("name")
        )
    );
    // A broken body is described, never echoed (it may hold a secret).
    let broken = host.request(
        "PUT",
        "/api/apps/shop",
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        br#"{"git": {"secret": "s3cr3t-typed-here"#,
    );
    assert_eq!(broken.status(), 400);
    assert!(!broken.text().contains("s3cr3t"), "{}", broken.text());
    assert_eq!(broken.json()["field"], Value::Null);
    let huge = json!({"deploy": deploy, "status": "x".repeat(70 * 1024)});
    assert_eq!(put(huge).0, 413);
    assert_eq!(
        call(&host, "GET", "/api/apps", &Value::Null).1["apps"],
        json!([])
    );
}

#[test]
fn switches_rotation_and_status_take_effect_at_once() {
    let host = FakeHost::default();
    shop(&host);
    let (status, app) = call(
        &host,
        "POST",
        "/api/apps/shop/triggers/git/disable",
        &Value::Null,
    );
    assert_eq!((status, &app["git"]["enabled"]), (200, &json!(false)));
    assert_eq!(push(&host, "d-1").result(), (403, "rejected".into()));
    call(
        &host,
        "POST",
        "/api/apps/shop/triggers/git/enable",
        &Value::Null,
    );

    let (_, rotated) = call(
        &host,
        "POST",
        "/api/apps/shop/triggers/git/rotate",
        &Value::Null,
    );
    let fresh = rotated["git"]["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, GITHUB_SECRET);
    assert_eq!(
        push(&host, "d-1").result(),
        (401, "rejected".into()),
        "old secret"
    );
    let body = super::fixture("github/push.json");
    let signature = sign(&fresh, &body);
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-github-delivery", "d-1"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let answer = host.request("POST", "/hooks/shop/git", &headers, &body);
    assert_eq!(answer.result(), (202, "deployed".into()), "new secret");

    assert_eq!(
        call(
            &host,
            "POST",
            "/api/apps/shop/triggers/image/enable",
            &Value::Null
        ),
        error(
            400,
            "image.repository: required when the image trigger is enabled",
            Some("image.repository")
        )
    );
    assert_eq!(
        call(
            &host,
            "POST",
            "/api/apps/shop/triggers/git/explode",
            &Value::Null
        ),
        error(404, "unknown action: use enable, disable or rotate", None)
    );
    assert_eq!(
        call(
            &host,
            "POST",
            "/api/apps/shop/triggers/svn/enable",
            &Value::Null
        ),
        error(400, "trigger: must be git, image or api", Some("trigger"))
    );

    let (status, app) = call(
        &host,
        "PUT",
        "/api/apps/shop/status",
        &json!({"status": "closed"}),
    );
    assert_eq!((status, &app["status"]), (200, &json!("closed")));
    assert_eq!(
        call(
            &host,
            "PUT",
            "/api/apps/shop/status",
            &json!({"state": "x"})
        ),
        error(400, "state: unknown field", Some("state"))
    );
    assert_eq!(
        call(
            &host,
            "PUT",
            "/api/apps/shop/status",
            &json!({"status": ""})
        ),
        error(
            400,
            "status: required: a non-empty string such as \"running\"",
            Some("status")
        )
    );
    // A status the app record could not be read back with is refused, not stored.
    let spaced = json!({"status": "foo bar"});
    assert_eq!(
        call(&host, "PUT", "/api/apps/shop/status", &spaced),
        error(
            400,
            "status: must be a non-empty word such as \"running\"",
            Some("status")
        )
    );
    assert_eq!(call(&host, "GET", "/api/apps/shop", &Value::Null).0, 200);
}

#[test]
fn unknown_routes_methods_and_a_failing_store() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(
        call(&host, "POST", "/api/apps", &Value::Null),
        error(405, "method POST not allowed on /api/apps", None)
    );
    assert_eq!(
        call(&host, "PATCH", "/api/apps/shop", &Value::Null),
        error(405, "method PATCH not allowed on /api/apps/shop", None)
    );
    assert_eq!(
        call(&host, "GET", "/api/things", &Value::Null),
        error(404, "not found", None)
    );
    assert_eq!(
        call(&host, "GET", "/api/apps/shop/other", &Value::Null),
        error(404, "not found", None)
    );
    host.break_store(true);
    assert_eq!(
        call(&host, "GET", "/api/apps/shop", &Value::Null),
        error(503, "the key-value store is unavailable", None)
    );
    assert!(host
        .log_text()
        .contains("admin store error: injected failure"));
}
