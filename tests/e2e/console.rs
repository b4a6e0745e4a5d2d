//! The console in a real browser (Debian's chromium, driven through chromedriver, which
//! `make test` starts: `scripts/with-browser.sh`): sign in, create an app, turn git on,
//! copy its URL and secret from the page, push with them, watch the delivery arrive,
//! rotate, deploy now, redeploy, set the git rules (branch pattern, tags, paths), see a
//! platform's outcome report, switch language, and a delivery whose branch and message
//! carry HTML that must stay text.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const ENV: &str = "AUTODEPLOY_TEST_WEBDRIVER";
/// Longest wait for the page to show something (it refreshes deliveries every 5 s).
const PATIENCE: Duration = Duration::from_secs(20);

fn webdriver() -> String {
    std::env::var(ENV).unwrap_or_else(|_| {
        panic!(
            "{ENV} is not set: the console tests need a browser. Run them through `make test` \
             (or `scripts/with-browser.sh cargo test …`), which starts chromedriver; skip \
             them with `cargo test -- --skip console`"
        )
    })
}

async fn browser() -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--window-size=1200,900", "--lang=en-US"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&webdriver())
        .await
        .expect("chromedriver answers")
}

/// Polls `check` until it answers `Some`, for at most [`PATIENCE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's visible text.
async fn page_text(c: &Client) -> String {
    c.execute("return document.body.innerText", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_text(c: &Client, needle: &str) {
    until(&format!("the text {needle:?}"), || async {
        page_text(c).await.contains(needle).then_some(())
    })
    .await;
}

async fn fill(c: &Client, css: &str, text: &str) {
    let input = c
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks the button with this text inside the element at `css`.
async fn click_button(c: &Client, css: &str, label: &str) {
    let xpath = format!(
        "{}//button[normalize-space(.)='{label}']",
        css_to_xpath(css)
    );
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?} in {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The few selectors used with [`click_button`], as XPath.
fn css_to_xpath(css: &str) -> String {
    for tag in ["section", "form"] {
        if let Some(label) = css
            .strip_prefix(&format!("{tag}[aria-label='"))
            .and_then(|s| s.strip_suffix("']"))
        {
            return format!("//{tag}[@aria-label='{label}']");
        }
    }
    String::new()
}

/// POSTs a signed GitHub push to `url` over HTTP, as GitHub would; answers the status.
async fn post_push(url: &str, secret: &str, delivery: &str, body: &[u8]) -> u16 {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let addr: SocketAddr = authority.parse().unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sign(secret, body),
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_end_to_end() {
    let gw = Gateway::new();
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    server.spawn();
    let c = browser().await;

    // `/` leads to the console; a wrong token is refused, the right one signs in.
    c.goto(&format!("{base}/")).await.unwrap();
    fill(&c, "#f-token", "not-the-token").await;
    click(&c, "button[type=submit]").await;
    wait_text(&c, "That token is not this gateway's admin token.").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/console/"));
    fill(&c, "#f-token", ADMIN_TOKEN).await;
    click(&c, "button[type=submit]").await;
    wait_text(&c, "Create an app").await;
    let stored: Value = c
        .execute(
            "return [sessionStorage.length, localStorage.getItem('autodeploy.token')]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        stored,
        json!([1, null]),
        "the token is kept in this tab only"
    );

    // Create an app; its page opens.
    fill(&c, "#f-name", "shop").await;
    fill(&c, "#f-deploy-path", "/v1/apps/shop/deploy").await;
    click(&c, "form.card button[type=submit]").await;
    wait_text(&c, "Deploys while the status is one of").await;

    // Turn git on with its switch.
    let git = "section[aria-label='Git pushes']";
    click(&c, &format!("{git} button[role=switch]")).await;
    until("the git switch on", || async {
        let s = c
            .find(Locator::Css(&format!("{git} button[role=switch]")))
            .await
            .ok()?;
        (s.attr("aria-checked").await.ok()?? == "true").then_some(())
    })
    .await;

    // The URL and the secret, read off the page.
    let url = c
        .find(Locator::Css(&format!("{git} code.url")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(url, format!("{base}/hooks/shop/git"));
    click_button(&c, git, "Reveal").await;
    let secret = c
        .find(Locator::Css(&format!("{git} code.secret")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.len() >= 16 && !secret.contains('•'), "{secret}");

    // A push signed with them deploys, and shows up in the deliveries table.
    let push = push_for("browser-1");
    assert_eq!(post_push(&url, &secret, "browser-1", &push).await, 202);
    wait_text(&c, "browser-1").await;
    let deployed = c
        .find_all(Locator::Css("span.badge.deployed"))
        .await
        .unwrap();
    assert!(!deployed.is_empty());
    assert_eq!(gw.calls(), 1);

    // Rotate (confirmed): the old secret answers 401 at once.
    click_button(&c, git, "Rotate").await;
    c.accept_alert().await.unwrap();
    until("a rotated secret", || async {
        let app = gw.admin("GET", "/api/apps/shop", None).await.1;
        (app["git"]["secret"] != json!(secret)).then_some(())
    })
    .await;
    assert_eq!(
        post_push(&url, &secret, "browser-2", &push_for("browser-2")).await,
        401
    );
    let (_, app) = gw.admin("GET", "/api/apps/shop", None).await;
    let new_secret = app["git"]["secret"].as_str().unwrap().to_string();

    // Deploy now, then Redeploy of the push: both manual deliveries.
    click_button(&c, "", "Deploy now").await;
    until("a manual delivery", || async {
        let text = page_text(&c).await;
        (text.matches("manual").count() >= 2).then_some(())
    })
    .await;
    click_button(&c, "", "Redeploy").await;
    until("three deploy calls", || async {
        (gw.calls() == 3).then_some(())
    })
    .await;

    // A push whose branch and message carry HTML: shown as text, nothing runs.
    let hostile = fixture_with("github/push.json", |p| {
        p["ref"] = json!("refs/heads/<img src=x onerror=window.__xss=1>");
        p["head_commit"]["message"] =
            json!("\"><img src=y onerror=window.__xss=2> <script>window.__xss=3</script> @deploy");
        p["before"] = json!("7".repeat(40));
    });
    assert_eq!(
        post_push(&url, &new_secret, "browser-xss", &hostile).await,
        200
    );
    wait_text(&c, "<img src=x onerror=window.__xss=1>").await;
    let ran: Value = c
        .execute("return [window.__xss === undefined, document.querySelectorAll('main img, main script').length]", vec![])
        .await
        .unwrap();
    assert_eq!(ran, json!([true, 0]), "nothing a delivery brings runs");

    // The git rules, set in the trigger's form: a branch pattern, release tags, and
    // path filters (one pattern per line); a bad pattern is shown next to its field.
    fill(&c, "#f-git-tags", "v[0-9").await;
    click_button(&c, git, "Save").await;
    wait_text(&c, "has a [ without its ]").await;
    fill(&c, "#f-git-branch", "{main,release/*}").await;
    fill(&c, "#f-git-tags", "v*").await;
    fill(&c, "#f-git-paths-include", "services/api\nCargo.lock").await;
    fill(&c, "#f-git-paths-exclude", "**/*.md").await;
    click_button(&c, git, "Save").await;
    let git_section = until("the rules saved", || async {
        let app = gw.admin("GET", "/api/apps/shop", None).await.1;
        (app["git"]["tags"] == json!("v*")).then(|| app["git"].clone())
    })
    .await;
    assert_eq!(git_section["branch"], "{main,release/*}");
    assert_eq!(
        git_section["paths"],
        json!({"include": ["services/api", "Cargo.lock"], "exclude": ["**/*.md"]})
    );
    // A push that changed only src/checkout.rs is ignored, and the page says why; a new
    // branch that lists no commits deploys unchecked, and the page says so; a tag deploys.
    let calls = gw.calls();
    let push = push_for("browser-paths");
    assert_eq!(
        post_push(&url, &new_secret, "browser-paths", &push).await,
        200
    );
    wait_text(&c, "the 1 changed file does not match git.paths").await;
    let created = fixture("github/push-created.json");
    assert_eq!(
        post_push(&url, &new_secret, "browser-created", &created).await,
        202
    );
    wait_text(&c, "git.paths not checked: the push lists no commits").await;
    let tag = fixture("github/push-tag.json");
    assert_eq!(post_push(&url, &new_secret, "browser-tag", &tag).await, 202);
    wait_text(&c, "browser-tag").await;
    assert_eq!(gw.calls(), calls + 2);

    // The platform reports the tag's deploy through its status URL: the outcome shows,
    // its link is the platform's page, and its description stays text.
    let sent = gw.platform.requests().last().unwrap().json();
    let status_url = sent["status_url"].as_str().unwrap().to_string();
    let report = json!({"state": "succeeded", "url": "https://platform.example/builds/9",
                        "description": "<img src=z onerror=window.__xss=4> built"});
    let path = &status_url[status_url.find("/hooks/").unwrap()..];
    let (status, answer) = gw
        .call(
            "POST",
            path,
            &[("content-type", "application/json")],
            report.to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    wait_text(&c, "<img src=z onerror=window.__xss=4> built").await;
    let shown: Value = c
        .execute(
            "const a = document.querySelector('td.outcome a'); \
             return [a && a.href, document.querySelector('td.outcome .badge').textContent, \
                     window.__xss === undefined, document.querySelectorAll('main img').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        shown,
        json!(["https://platform.example/builds/9", "succeeded", true, 0])
    );

    // Chinese, and back.
    click(&c, "#lang").await;
    wait_text(&c, "立即部署").await;
    click(&c, "#lang").await;
    wait_text(&c, "Deploy now").await;

    // The app list shows each app's newest delivery, from the list's own answer.
    c.goto(&format!("{base}/console/#/")).await.unwrap();
    let newest = until("the newest delivery in the list", || async {
        let badge = c.find(Locator::Css("tbody tr td span.badge")).await.ok()?;
        badge.text().await.ok()
    })
    .await;
    assert_eq!(newest, "deployed");

    // Sign out forgets the token.
    click(&c, "#signout").await;
    wait_text(&c, "Admin token").await;
    let left: Value = c
        .execute("return sessionStorage.length", vec![])
        .await
        .unwrap();
    assert_eq!(left, json!(0));
    c.close().await.unwrap();
}

/// Notifications in the console: add a channel (its URL never on the page once saved),
/// send it a test message, see a field error for an origin the gateway may not call,
/// turn on commit statuses (the token never on the page), see a delivery's notices,
/// remove the channel.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_notifications() {
    const SLACK: &str = "https://hooks.slack.com/services/T0001/B0001/console-slack-secret";
    const TOKEN: &str = "ghp_console-report-token-secret";
    let gw = Gateway::new();
    let app = gw
        .create_app(
            "shop",
            json!({"git": {"enabled": true, "repo": "https://github.com/acme/shop"},
                   "deploy": {"target": "generic", "path": "/deploy"}}),
        )
        .await;
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    server.spawn();
    let c = browser().await;
    c.goto(&format!("{base}/console/")).await.unwrap();
    fill(&c, "#f-token", ADMIN_TOKEN).await;
    click(&c, "button[type=submit]").await;
    wait_text(&c, "Create an app").await;
    c.goto(&format!("{base}/console/#/apps/shop"))
        .await
        .unwrap();
    wait_text(&c, "No channels").await;

    // A Slack channel: saved, then shown masked.
    fill(&c, "#f-notify-0--url", SLACK).await;
    click_button(&c, "", "Add a channel").await;
    wait_text(&c, "https://hooks.slack.com/***").await;
    let html = || async {
        c.execute("return document.documentElement.outerHTML", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(!html().await.contains("console-slack-secret"));

    // Its test message goes to the stored URL.
    click_button(&c, "", "Send a test message").await;
    wait_text(&c, "sent: the service took the test message").await;
    let sent = gw.platform.requests();
    assert_eq!(sent.last().unwrap().uri, SLACK);

    // A webhook at an origin the gateway may not call: the field says so.
    c.execute(
        "const s = document.querySelector('#f-notify-1--type'); s.value = 'webhook';",
        vec![],
    )
    .await
    .unwrap();
    fill(&c, "#f-notify-1--url", "https://hooks.acme.dev/x").await;
    click_button(&c, "", "Add a channel").await;
    wait_text(&c, "is not an origin the gateway may call").await;

    // Commit statuses, with a token that never comes back to the page.
    fill(&c, "#f-git-report-token", TOKEN).await;
    click_button(&c, "form[aria-label='Commit statuses']", "Save").await;
    wait_text(&c, "On: each deploy is marked on its commit (github)").await;
    assert!(!html().await.contains("console-report-token"));

    // A push: the delivery shows how its notices went.
    let secret = git_secret(&app);
    let url = format!("{base}/hooks/shop/git");
    assert_eq!(
        post_push(&url, &secret, "notify-1", &push_for("notify-1")).await,
        202
    );
    wait_text(&c, "✓ slack#0 deploy requested").await;
    wait_text(&c, "✓ git.report deploy requested").await;

    // The message's console link opens the app with that delivery picked out.
    let told = gw
        .platform
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.uri == SLACK && r.text().contains("deploy requested"))
        .expect("the Slack message of the push");
    let text = told.json()["text"].as_str().unwrap().to_string();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Console: "))
        .unwrap_or_else(|| panic!("no console link in {text}"));
    assert_eq!(
        link,
        format!("{base}/console/#/apps/shop/deliveries/notify-1")
    );
    c.goto(&format!("{base}/console/#/")).await.unwrap();
    wait_text(&c, "Last delivery").await;
    c.goto(link).await.unwrap();
    let picked = until("the delivery picked out", || async {
        let row = c.find(Locator::Css("tr.picked td.id")).await.ok()?;
        row.text().await.ok()
    })
    .await;
    assert_eq!(picked, "notify-1");

    // Removed (confirmed), the channel is gone from the app.
    click_button(&c, "", "Remove").await;
    c.accept_alert().await.unwrap();
    wait_text(&c, "No channels").await;
    let (_, stored) = gw.admin("GET", "/api/apps/shop", None).await;
    assert_eq!(stored["notify"], json!([]));
    assert_eq!(stored["git"]["report"]["token"], "***", "the token is kept");
    c.close().await.unwrap();
}
