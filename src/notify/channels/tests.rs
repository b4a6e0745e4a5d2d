//! Each service's exact request (known-answer signatures included), escaping, answers,
//! and the checks of URLs and secrets.

use super::*;
use crate::notify::CommitInfo;
use crate::support::secret::Secret;
use serde_json::json;

const NOW_MS: u64 = 1_700_000_000_123;

fn message() -> Message {
    Message {
        event: Some(Event::Succeeded),
        app: "shop".into(),
        trigger: "git".into(),
        provider: Some("github".into()),
        delivery: Some("d-1".into()),
        repository: Some("acme/shop".into()),
        branch: Some("main".into()),
        tag: None,
        commit: Some(CommitInfo {
            id: "0123456789abcdef".into(),
            message: "Fix the cart\n\nThe long story.".into(),
            author: "Alice".into(),
        }),
        image: None,
        result: "succeeded".into(),
        reason: "The platform reported success.".into(),
        duration_ms: Some(65_000),
        url: Some("https://paas.example/deploys/7?a=1&b=2".into()),
        console_url: Some("https://gw.example/console/#/deliveries/d-1".into()),
        test: false,
    }
}

const TEXT: &str = "✅ shop: deploy succeeded\n\
    Trigger: git (github)\n\
    Repository: acme/shop\n\
    Branch: main\n\
    Commit: 0123456 Fix the cart (Alice)\n\
    Result: succeeded\n\
    Reason: The platform reported success.\n\
    Duration: 1 min 5 s\n\
    Platform: https://paas.example/deploys/7?a=1&b=2\n\
    Console: https://gw.example/console/#/deliveries/d-1";

fn channel(kind: ChannelKind, url: &str, secret: Option<&str>) -> Channel {
    Channel {
        kind,
        url: Secret::new(url),
        secret: secret.map(Secret::new),
        events: Event::ALL.to_vec(),
    }
}

fn send(kind: ChannelKind, url: &str, secret: Option<&str>, msg: &Message) -> OutboundRequest {
    request(&channel(kind, url, secret), msg, NOW_MS, "msg_1")
}

fn body(req: &OutboundRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn evil() -> Message {
    let mut msg = message();
    msg.commit.as_mut().unwrap().message =
        "<!channel> *bold* @everyone [x](http://evil) <@&123> & co".into();
    msg
}

#[test]
fn renders_a_title_and_the_present_fields() {
    let (title, lines) = render(&message());
    let mut text = title;
    for (label, value) in lines {
        text.push_str(&format!("\n{label}: {value}"));
    }
    assert_eq!(text, TEXT);

    let msg = Message {
        event: Some(Event::Requested),
        app: "api".into(),
        trigger: "image".into(),
        image: Some("acme/api:1.2".into()),
        duration_ms: Some(42_400),
        ..Message::default()
    };
    let expected = vec![
        ("Trigger", "image".to_string()),
        ("Image", "acme/api:1.2".to_string()),
        ("Duration", "42 s".to_string()),
    ];
    assert_eq!(
        render(&msg),
        ("🚀 api: deploy requested".to_string(), expected)
    );
}

#[test]
fn titles_say_what_happened() {
    let title = |event, test| {
        let msg = Message {
            event,
            test,
            app: "shop".into(),
            result: "queued".into(),
            ..Message::default()
        };
        render(&msg).0
    };
    assert_eq!(
        title(Some(Event::Refused), false),
        "❌ shop: deploy refused"
    );
    assert_eq!(title(Some(Event::Failed), false), "❌ shop: deploy failed");
    assert_eq!(
        title(Some(Event::Succeeded), false),
        "✅ shop: deploy succeeded"
    );
    assert_eq!(title(None, false), "🔔 shop: queued");
    assert_eq!(
        title(Some(Event::Failed), true),
        "🔔 shop: test message from autodeploy"
    );
}

#[test]
fn long_texts_are_cut_and_kept_on_one_line() {
    let mut msg = message();
    msg.commit.as_mut().unwrap().message = format!("{}\nsecond line", "é".repeat(300));
    msg.reason = "r".repeat(600);
    msg.branch = Some("main\nResult: forged\u{2028}x".into());
    let (_, lines) = render(&msg);
    let get = |l| {
        lines
            .iter()
            .find(|(label, _)| *label == l)
            .unwrap()
            .1
            .clone()
    };
    let commit = get("Commit");
    assert!(commit.starts_with("0123456 éé"));
    assert!(commit.ends_with("é… (Alice)"), "{commit}");
    assert!(commit.len() <= 8 + 200 + 8, "{}", commit.len());
    assert_eq!(get("Reason"), format!("{}…", "r".repeat(497)));
    assert_eq!(get("Branch"), "main Result: forged x");
}

#[test]
fn durations_read_naturally() {
    assert_eq!(duration(350), "350 ms");
    assert_eq!(duration(42_999), "42 s");
    assert_eq!(duration(65_000), "1 min 5 s");
    assert_eq!(duration(3_725_000), "1 h 2 min");
}

#[test]
fn links_that_are_not_plain_urls_are_left_out() {
    let mut msg = message();
    for bad in [
        "javascript:alert(1)",
        "https://gw.example/a<b",
        "https://gw.example/a>b",
        "https://gw.example/a b",
        "https://gw.example/é",
        "ftp://gw.example/",
    ] {
        msg.url = Some(bad.into());
        msg.console_url = Some(bad.into());
        let (_, lines) = render(&msg);
        assert!(lines.iter().all(|(l, _)| !LINKS.contains(l)), "{lines:?}");
    }
    msg.url = Some(format!("http://gw.example/{}", "a".repeat(2048 - 18)));
    assert_eq!(render(&msg).1.last().unwrap().0, "Platform");
    msg.url = Some(format!("http://gw.example/{}", "a".repeat(2049 - 18)));
    assert!(render(&msg).1.iter().all(|(l, _)| !LINKS.contains(l)));
}

#[test]
fn standard_webhooks_known_answer() {
    // The test vector of the Standard Webhooks reference libraries.
    assert_eq!(
        standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .as_deref(),
        Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );
    assert_eq!(
        standard_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, b""),
        None
    );
    assert_eq!(standard_signature("whsec_not base64", "m", 1, b""), None);
}

#[test]
fn webhook_request() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let req = send(
        ChannelKind::Webhook,
        "https://hooks.example/in",
        Some(secret),
        &message(),
    );
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://hooks.example/in");
    let key = unbase64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let mut signed = b"msg_1.1700000000.".to_vec();
    signed.extend_from_slice(&req.body);
    let signature = format!("v1,{}", base64(&hmac_sha256(&key, &signed)));
    assert_eq!(
        req.headers,
        headers(&[
            ("content-type", "application/json"),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", &signature),
        ])
    );
    assert_eq!(
        body(&req),
        json!({
            "type": "deploy.succeeded",
            "timestamp": "2023-11-14T22:13:20.123Z",
            "data": {
                "app": "shop",
                "trigger": "git",
                "provider": "github",
                "delivery": "d-1",
                "repository": "acme/shop",
                "branch": "main",
                "tag": null,
                "commit": {
                    "id": "0123456789abcdef",
                    "message": "Fix the cart\n\nThe long story.",
                    "author": "Alice",
                },
                "image": null,
                "result": "succeeded",
                "reason": "The platform reported success.",
                "duration_ms": 65000,
                "url": "https://paas.example/deploys/7?a=1&b=2",
                "console_url": "https://gw.example/console/#/deliveries/d-1",
            },
        })
    );
}

#[test]
fn webhook_test_messages_and_events_have_their_type() {
    let kind = |msg: &Message| {
        let req = send(ChannelKind::Webhook, "https://h.example/", None, msg);
        assert!(req.headers.iter().all(|(n, _)| n != "webhook-signature"));
        body(&req)["type"].clone()
    };
    let mut msg = message();
    msg.event = Some(Event::Refused);
    assert_eq!(kind(&msg), "deploy.refused");
    msg.test = true;
    assert_eq!(kind(&msg), "test");
    msg.test = false;
    msg.event = None;
    assert_eq!(kind(&msg), "deploy");
}

#[test]
fn slack_request() {
    let url = "https://hooks.slack.com/services/T0/B0/XXXX";
    let req = send(ChannelKind::Slack, url, None, &message());
    assert_eq!(req.url, url);
    assert_eq!(
        req.headers,
        headers(&[("content-type", "application/json")])
    );
    let text = TEXT.replace("a=1&b=2", "a=1&amp;b=2");
    assert_eq!(body(&req), json!({"text": text, "mrkdwn": false}));
}

#[test]
fn slack_gets_payload_text_inert() {
    let req = send(
        ChannelKind::Slack,
        "https://hooks.slack.com/x",
        None,
        &evil(),
    );
    let text = body(&req)["text"].as_str().unwrap().to_string();
    assert!(text.contains(
        "Commit: 0123456 &lt;!channel&gt; *bold* @everyone [x](http://evil) &lt;@&amp;123&gt; &amp; co (Alice)"
    ), "{text}");
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert_eq!(body(&req)["mrkdwn"], false);
}

#[test]
fn discord_request() {
    let url = "https://discord.com/api/webhooks/1/abc";
    let req = send(ChannelKind::Discord, url, None, &message());
    assert_eq!(req.url, url);
    assert_eq!(
        req.headers,
        headers(&[("content-type", "application/json")])
    );
    let content = TEXT
        .replace("(github)", "\\(github\\)")
        .replace("(Alice)", "\\(Alice\\)");
    assert_eq!(
        body(&req),
        json!({"content": content, "allowed_mentions": {"parse": []}})
    );
}

#[test]
fn discord_gets_payload_text_inert() {
    let req = send(
        ChannelKind::Discord,
        "https://discord.com/api/webhooks/1/a",
        None,
        &evil(),
    );
    let body = body(&req);
    let content = body["content"].as_str().unwrap();
    assert!(content.contains(
        r"Commit: 0123456 \<!channel\> \*bold\* \@everyone \[x\]\(http://evil\) \<\@&123\> & co \(Alice\)"
    ), "{content}");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    assert_eq!(discord_escape(r"\_~`|>#"), r"\\\_\~\`\|\>\#");
}

#[test]
fn discord_content_fits_in_2000_characters() {
    let mut msg = message();
    msg.reason = "字".repeat(500);
    msg.repository = Some("*".repeat(200));
    msg.branch = Some("_".repeat(200));
    msg.tag = Some("~".repeat(200));
    msg.image = Some("#".repeat(200));
    msg.result = "|".repeat(100);
    let req = send(
        ChannelKind::Discord,
        "https://discord.com/api/webhooks/1/a",
        None,
        &msg,
    );
    let content = body(&req)["content"].as_str().unwrap().to_string();
    assert_eq!(content.chars().count(), 2000);
    assert!(content.ends_with('…'));
    assert_eq!(cut_chars("é".repeat(2000), 2000), "é".repeat(2000));
    assert_eq!(
        cut_chars("é".repeat(2001), 2000),
        format!("{}…", "é".repeat(1999))
    );
    let short = send(ChannelKind::Discord, "https://d.example/", None, &message());
    assert!(!body(&short)["content"].as_str().unwrap().ends_with('…'));
}

#[test]
fn dingtalk_request_unsigned() {
    let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
    let req = send(ChannelKind::Dingtalk, url, None, &message());
    assert_eq!(req.url, url);
    assert_eq!(send(ChannelKind::Dingtalk, url, Some(""), &message()), req);
    assert_eq!(
        req.headers,
        headers(&[("content-type", "application/json; charset=utf-8")])
    );
    assert_eq!(
        body(&req),
        json!({"msgtype": "text", "text": {"content": TEXT}})
    );
}

#[test]
fn dingtalk_signature_known_answer() {
    // python3 -c 'import hmac,hashlib,base64,urllib.parse; s="SECtestsecret0123";
    //   t="1700000000123"; print(urllib.parse.quote_plus(base64.b64encode(hmac.new(
    //   s.encode(), (t+"\n"+s).encode(), hashlib.sha256).digest())))'
    let sign = "6iCTNpdpt8CwpBWNdf2JU%2BGG8qdXWHGRP2jd%2B7e9xFI%3D";
    let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
    let req = send(
        ChannelKind::Dingtalk,
        url,
        Some("SECtestsecret0123"),
        &message(),
    );
    assert_eq!(
        req.url,
        format!("{url}&timestamp=1700000000123&sign={sign}")
    );
    assert_eq!(
        body(&req),
        json!({"msgtype": "text", "text": {"content": TEXT}})
    );
    let req = send(
        ChannelKind::Dingtalk,
        "https://d.example/x=y",
        Some("SECtestsecret0123"),
        &message(),
    );
    assert_eq!(
        req.url,
        format!("https://d.example/x=y?timestamp=1700000000123&sign={sign}")
    );
}

#[test]
fn wecom_request() {
    let url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k";
    let req = send(ChannelKind::Wecom, url, None, &message());
    assert_eq!(req.url, url);
    assert_eq!(
        req.headers,
        headers(&[("content-type", "application/json; charset=utf-8")])
    );
    assert_eq!(
        body(&req),
        json!({"msgtype": "text", "text": {"content": TEXT}})
    );
}

#[test]
fn wecom_content_fits_in_2048_bytes() {
    let mut msg = message();
    msg.reason = "字".repeat(166);
    msg.repository = Some("字".repeat(66));
    msg.branch = Some("字".repeat(66));
    msg.tag = Some("字".repeat(66));
    msg.image = Some("字".repeat(66));
    msg.url = Some(format!("https://p.example/{}", "a".repeat(600)));
    let req = send(ChannelKind::Wecom, "https://w.example/", None, &msg);
    let content = body(&req)["text"]["content"].as_str().unwrap().to_string();
    assert!(
        content.len() <= 2048 && content.len() > 2040,
        "{}",
        content.len()
    );
    assert!(content.ends_with('…'));
}

#[test]
fn feishu_request() {
    let url = "https://open.feishu.cn/open-apis/bot/v2/hook/xyz";
    let req = send(ChannelKind::Feishu, url, None, &message());
    assert_eq!(req.url, url);
    assert_eq!(
        req.headers,
        headers(&[("content-type", "application/json; charset=utf-8")])
    );
    assert_eq!(
        body(&req),
        json!({"msg_type": "text", "content": {"text": TEXT}})
    );
}

#[test]
fn feishu_signature_known_answer() {
    // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
    //   b"1700000000\nfstestsecret", b"", hashlib.sha256).digest()))'
    let url = "https://open.feishu.cn/open-apis/bot/v2/hook/xyz";
    let req = request(
        &channel(ChannelKind::Feishu, url, Some("fstestsecret")),
        &message(),
        1_700_000_000_999,
        "msg_1",
    );
    assert_eq!(req.url, url);
    assert_eq!(
        body(&req),
        json!({
            "msg_type": "text",
            "content": {"text": TEXT},
            "timestamp": "1700000000",
            "sign": "Cya5daaPm3koJ9K0NInXTMGHY0q+Qc6+O+Q4QHdkADo=",
        })
    );
}

#[test]
fn answers() {
    use ChannelKind::*;
    let ok = |kind, status, body: &str| check_answer(kind, status, body.as_bytes());
    assert_eq!(ok(Webhook, 204, ""), Ok(()));
    assert_eq!(ok(Webhook, 500, "secret page"), Err("HTTP 500".into()));
    assert_eq!(ok(Slack, 200, "ok"), Ok(()));
    assert_eq!(
        ok(Slack, 403, "invalid_token"),
        Err("HTTP 403: invalid_token".into())
    );
    assert_eq!(
        ok(Slack, 404, "<html>https://x/T0/B0</html>"),
        Err("HTTP 404".into())
    );
    assert_eq!(ok(Discord, 204, ""), Ok(()));
    assert_eq!(
        ok(
            Discord,
            404,
            r#"{"message": "Unknown Webhook", "code": 10015}"#
        ),
        Err("HTTP 404: Unknown Webhook".into())
    );
    assert_eq!(ok(Dingtalk, 200, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
    assert_eq!(
        ok(
            Dingtalk,
            200,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#
        ),
        Err("DingTalk errcode 310000: sign not match".into())
    );
    assert_eq!(
        ok(Dingtalk, 200, "<html>"),
        Err("DingTalk: unexpected answer".into())
    );
    assert_eq!(ok(Dingtalk, 502, ""), Err("HTTP 502".into()));
    assert_eq!(ok(Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
    assert_eq!(
        ok(
            Wecom,
            200,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
        ),
        Err("WeCom errcode 93000: invalid webhook url".into())
    );
    assert_eq!(
        ok(Feishu, 200, r#"{"code":0,"data":{},"msg":"success"}"#),
        Ok(())
    );
    assert_eq!(
        ok(
            Feishu,
            200,
            r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#
        ),
        Ok(())
    );
    assert_eq!(
        ok(Feishu, 200, r#"{"code":19021,"msg":"sign match fail"}"#),
        Err("Feishu code 19021: sign match fail".into())
    );
    assert_eq!(
        ok(
            Feishu,
            200,
            r#"{"StatusCode":9499,"StatusMessage":"Bad Request"}"#
        ),
        Err("Feishu code 9499: Bad Request".into())
    );
    let long = format!(r#"{{"errcode":1,"errmsg":"{}\nx"}}"#, "e".repeat(300));
    let err = ok(Wecom, 200, &long).unwrap_err();
    assert!(err.len() < 230 && !err.contains('\n'), "{err}");
}

#[test]
fn urls() {
    use ChannelKind::*;
    assert_eq!(
        validate_url(Slack, "https://hooks.slack.com/services/T/B/X"),
        Ok(())
    );
    assert_eq!(validate_url(Webhook, "http://10.0.0.2:8080/in?x=1"), Ok(()));
    assert_eq!(validate_url(Webhook, "HTTPS://[::1]:8443/in"), Ok(()));
    assert_eq!(
        validate_url(Webhook, "ftp://h.example/"),
        Err("must start with https:// or http://")
    );
    for bad in [
        "ftp://h.example/",
        "hooks.slack.com/x",
        "https://h.example/a b",
        "https://h.example/\n",
        "https://h.example/é",
        "https://h.example/#x",
        "https://user:pw@h.example/",
        "https://h.example@evil.example/",
        "https:///path",
        "https://h.example:0/",
        "https://h.example:99999/",
        "https://h.example:/",
        "https://h_x.example/",
        "https://h.example\\@evil/",
        "https://[::1/",
    ] {
        assert!(validate_url(Webhook, bad).is_err(), "{bad}");
    }
    assert_eq!(
        validate_url(Webhook, &format!("https://h.example/{}", "a".repeat(2031))),
        Err("is longer than 2048 characters")
    );
    assert_eq!(
        validate_url(Webhook, &format!("https://h.example/{}", "a".repeat(2030))),
        Ok(())
    );
    assert_eq!(
        validate_url(Webhook, "https://u@h/"),
        Err("must not hold a user name or password (@)")
    );
    assert_eq!(validate_url(Webhook, "https://h/?to=a@b"), Ok(()));
}

#[test]
fn origins_and_masks() {
    assert_eq!(
        origin("HTTPS://Hooks.Slack.COM./services/T/B/X").as_deref(),
        Some("https://hooks.slack.com")
    );
    assert_eq!(
        origin("https://h.example:443/x").as_deref(),
        Some("https://h.example")
    );
    assert_eq!(
        origin("http://h.example:80").as_deref(),
        Some("http://h.example")
    );
    assert_eq!(
        origin("http://h.example:443?x").as_deref(),
        Some("http://h.example:443")
    );
    assert_eq!(
        origin("http://[FE80::1]:8080/").as_deref(),
        Some("http://[fe80::1]:8080")
    );
    assert_eq!(origin("https://a@h.example/"), None);
    assert_eq!(origin("mailto:x@y"), None);
    assert_eq!(origin("http://[evil.example]/"), None);
    // python3 -c 'import hashlib; print(hashlib.sha256(b"https://oapi.dingtalk.com/robot/send?access_token=abc").hexdigest()[:8])'
    assert_eq!(
        masked("https://oapi.dingtalk.com/robot/send?access_token=abc"),
        "https://oapi.dingtalk.com/***dbaf57d2"
    );
    assert!(masked("not a url").starts_with("***"));
    assert_ne!(
        masked("https://hooks.slack.com/services/T/B/one"),
        masked("https://hooks.slack.com/services/T/B/two")
    );
}

#[test]
fn secrets() {
    use ChannelKind::*;
    assert_eq!(
        validate_secret(Webhook, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        Ok(())
    );
    let b64 = |n| base64(&vec![7u8; n]);
    assert_eq!(
        validate_secret(Webhook, &format!("whsec_{}", b64(64))),
        Ok(())
    );
    assert!(validate_secret(Webhook, &format!("whsec_{}", b64(23))).is_err());
    assert!(validate_secret(Webhook, &format!("whsec_{}", b64(65))).is_err());
    assert!(validate_secret(Webhook, &b64(32)).is_err());
    assert!(validate_secret(Webhook, "whsec_not-base64-at-all-but-long-enough!").is_err());
    assert_eq!(validate_secret(Dingtalk, "SEC0123abc"), Ok(()));
    assert_eq!(validate_secret(Feishu, &"x".repeat(256)), Ok(()));
    assert!(validate_secret(Feishu, &"x".repeat(257)).is_err());
    assert!(validate_secret(Dingtalk, "").is_err());
    assert!(validate_secret(Dingtalk, "SEC 1").is_err());
    assert!(validate_secret(Dingtalk, "SEC\n1").is_err());
    for kind in [Slack, Discord, Wecom] {
        assert_eq!(
            validate_secret(kind, "anything"),
            Err("not used by this channel")
        );
    }
}

#[test]
fn generated_webhook_secrets_are_valid_and_random() {
    let mut n = 0u8;
    let mut fill = |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            n = n.wrapping_add(37);
            *b = n;
        }
    };
    let a = generate_webhook_secret(&mut fill);
    let b = generate_webhook_secret(&mut fill);
    assert_ne!(a, b);
    assert_eq!(validate_secret(ChannelKind::Webhook, &a), Ok(()));
    assert_eq!(unbase64(&a["whsec_".len()..]).unwrap().len(), 32);
    assert_eq!(unbase64(&a["whsec_".len()..]).unwrap()[..2], [37, 74]);
}
