//! The providers' shared readers, and every git fixture through its provider.

use std::path::Path;

use serde_json::{json, Value};

use super::testutil::headers;
use super::*;

/// The git providers' fixture folders under `tests/fixtures/`.
const PROVIDERS: [&str; 7] = [
    "github",
    "gitlab",
    "gitee",
    "gogs",
    "gitea",
    "forgejo",
    "bitbucket",
];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the table compares: the event as the fixtures' `.expected.json` spell it.
fn normalised(event: &GitEvent) -> Value {
    match event {
        GitEvent::Ping => json!({"event": "ping"}),
        GitEvent::Other(name) => json!({"event": format!("other:{name}")}),
        GitEvent::Push(p) => json!({
            "event": "push",
            "git_ref": p.git_ref,
            "deleted": p.deleted,
            "before": p.before,
            "web_url": p.web_url,
            "urls": p.urls,
            "head": p.head.as_ref().map(|c| json!({
                "id": c.id, "message": c.message, "author": c.author,
            })),
            "files": match &p.files {
                Files::NotRead => json!("not read"),
                Files::Listed(files) => json!(files),
                Files::Unknown(why) => json!({"unknown": why}),
            },
        }),
    }
}

/// Every `tests/fixtures/<provider>/<name>.json` of a git provider is a delivery as the
/// provider sends it, with its request headers in `<name>.headers.json` and the expected
/// result in `<name>.expected.json`: the provider detected, the delivery id, the
/// normalised event, and the `secret` the delivery was authenticated with.
///
/// Signature headers were computed over the exact bytes of `<name>.json` with python3:
/// hex ones (`X-Gogs-Signature`, `X-Gitea-Signature`, `X-Forgejo-Signature`, and after
/// `sha256=` `X-Hub-Signature-256`, Bitbucket's `X-Hub-Signature`) as
/// `hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()`, Gitee's token as
/// `base64.b64encode(hmac.new(key, f"{timestamp}\n{key}".encode(), hashlib.sha256)
/// .digest())`, checked at the `now_ms` of the expected file. GitLab's token, and Gitee's
/// in password mode, are the secret itself.
#[test]
fn every_fixture_detects_verifies_and_parses_as_expected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    for provider in PROVIDERS {
        let dir = root.join(provider);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".expected.json").map(String::from)
            })
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no fixtures for {provider}");
        for name in names {
            let what = format!("{provider}/{name}");
            let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
            let expected = read_json(&dir.join(format!("{name}.expected.json")));
            let pairs = read_json(&dir.join(format!("{name}.headers.json")));
            let h = Headers::new(
                pairs
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string())),
            );
            let secret = Secret::new(expected["secret"].as_str().unwrap());
            let now_ms = expected["now_ms"].as_u64().unwrap_or(0);

            let found = detect(&h).unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(found.provider().as_str(), expected["provider"], "{what}");
            assert_eq!(
                found
                    .delivery_id(&h)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                expected["delivery"],
                "{what}"
            );
            assert_eq!(found.verify(&h, &body, &secret, now_ms), Ok(()), "{what}");
            let wrong = Secret::new(format!("{}x", secret.expose()));
            assert!(found.verify(&h, &body, &wrong, now_ms).is_err(), "{what}");

            let event = found
                .parse(&h, &body, true)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            // Without path filters the files are not read, and nothing else differs.
            let mut without = found.parse(&h, &body, false).unwrap();
            if let (GitEvent::Push(with), GitEvent::Push(without)) = (&event, &mut without) {
                assert_eq!(without.files, Files::NotRead, "{what}");
                without.files = with.files.clone();
            }
            assert_eq!(without, event, "{what}");
            let mut want = expected.clone();
            let want = want.as_object_mut().unwrap();
            for key in ["secret", "now_ms", "provider", "delivery"] {
                want.remove(key);
            }
            assert_eq!(normalised(&event), Value::from(want.clone()), "{what}");
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} fixtures");
}

#[test]
fn detection_prefers_the_most_specific_header() {
    let provider = |pairs: &[(&str, &str)]| detect(&headers(pairs)).map(|p| p.provider());
    let all = [
        ("x-forgejo-event", "push"),
        ("x-gitea-event", "push"),
        ("x-gogs-event", "push"),
        ("x-gitee-event", "Push Hook"),
        ("x-github-event", "push"),
        ("x-gitlab-event", "Push Hook"),
        ("x-event-key", "repo:push"),
    ];
    let order = [
        Provider::Forgejo,
        Provider::Gitea,
        Provider::Gogs,
        Provider::Gitee,
        Provider::Github,
        Provider::Gitlab,
        Provider::Bitbucket,
    ];
    for (i, want) in order.into_iter().enumerate() {
        assert_eq!(provider(&all[i..]), Ok(want), "{:?}", &all[i..]);
    }
    let unknown = provider(&[("x-hub-signature-256", "sha256=00"), ("user-agent", "curl")]);
    assert_eq!(unknown, Err(Error::UnknownProvider(SUPPORTED)));
    for name in [
        "GitHub",
        "GitLab",
        "Gitee",
        "Gogs",
        "Gitea",
        "Forgejo",
        "Bitbucket",
    ] {
        assert!(SUPPORTED.contains(name), "{name}");
    }
}

#[test]
fn github_style_pushes_without_a_head_commit() {
    // a new branch at an existing commit: no commit listed, the ref still moved
    let p = json!({"ref": "refs/heads/x", "before": "0000", "after": "abc", "commits": []});
    let push = github_style_push(&p, &[], "push").unwrap();
    assert!(!push.deleted);
    assert_eq!(push.head.unwrap().id, "abc");
    // the commit `after` names, wherever `commits` lists it
    let p = json!({"ref": "refs/heads/x", "after": "b", "head_commit": null, "commits": [
        {"id": "a", "message": "older @deploy", "author": {"name": "A"}},
        {"id": "b", "message": "newer", "author": {"name": "B"}}]});
    let head = github_style_push(&p, &[], "push").unwrap().head.unwrap();
    assert_eq!(
        (head.message.as_str(), head.author.as_str()),
        ("newer", "B")
    );
    let p = json!({"ref": "refs/heads/x", "after": "0000000000000000000000000000000000000000",
                   "head_commit": {"id": "abc"}});
    let push = github_style_push(&p, &[], "push").unwrap();
    assert!(push.deleted && push.head.is_none());
    assert!(github_style_push(&json!({}), &[], "push").is_err());
}

#[test]
fn a_push_without_an_always_sent_member_is_malformed_not_a_deletion() {
    let full = json!({"ref": "refs/heads/main", "after": "abc", "head_commit": null});
    assert!(github_style_push(&full, &["head_commit"], "push").is_ok());
    for (member, why) in [
        ("ref", "ref"),
        ("after", "after"),
        ("head_commit", "head_commit"),
    ] {
        let mut p = full.clone();
        p.as_object_mut().unwrap().remove(member);
        assert_eq!(
            github_style_push(&p, &["head_commit"], "GitHub push"),
            Err(Error::BadPayload(format!("GitHub push without {why}"))),
            "{member}"
        );
    }
    for after in [json!(""), json!(null), json!(1)] {
        let p = json!({"ref": "refs/heads/main", "after": after, "head_commit": null});
        assert!(github_style_push(&p, &[], "push").is_err(), "{after}");
    }
}

/// The reference for [`parse_push`]: the full parse, then every member not in `keep`
/// removed at every depth.
fn pruned_by_hand(v: &mut Value, keep: &[&str]) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| keep.contains(&k.as_str()));
            m.values_mut().for_each(|v| pruned_by_hand(v, keep));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| pruned_by_hand(v, keep)),
        _ => {}
    }
}

#[test]
fn the_pruned_parse_equals_the_full_parse_minus_unread_members() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for dir in PROVIDERS {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".expected.json") || name.ends_with(".headers.json") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let mut want = read_json(&path);
            pruned_by_hand(&mut want, GITHUB_STYLE_KEYS);
            let got = parse_push(&body, "push", GITHUB_STYLE_KEYS).unwrap();
            assert_eq!(got, want, "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

/// Each way a payload can fail to show every changed file, as `docs/http-api.md`'s table
/// promises, on synthetic payloads; and the files, each once, when it shows them all.
#[test]
fn changed_files_know_when_the_list_is_cut() {
    let commit = |files: &[&str]| json!({"id": "c", "added": [], "modified": files, "removed": []});
    let listing = |max_commits, max_files| Listing {
        name: "P",
        total: Some("total"),
        cut_flag: Some("cut"),
        max_commits,
        max_files,
    };
    let unknown = |p: Value, l: &Listing| match changed_files(&p, l) {
        Files::Unknown(why) => why,
        other => panic!("{p}: {other:?}"),
    };
    let all = listing(None, None);
    assert_eq!(
        changed_files(
            &json!({"commits": [commit(&["b", "a"]),
                                {"id": "d", "added": ["c"], "modified": ["a"], "removed": ["b"]}],
                    "total": 2, "cut": false}),
            &all
        ),
        Files::Listed(vec!["a".into(), "b".into(), "c".into()])
    );
    let cases = [
        (json!({"commits": []}), &all, "the push lists no commits"),
        (json!({}), &all, "P sent no commit list"),
        (
            json!({"commits": [commit(&["a"])], "total": 35}),
            &all,
            "P listed 1 of the push's 35 commits",
        ),
        (
            json!({"commits": [commit(&["a"])], "cut": true}),
            &all,
            "P listed only 1 of the push's commits",
        ),
        (
            json!({"commits": [{"id": "c", "added": null, "modified": [], "removed": []}]}),
            &all,
            "P did not list a commit's files",
        ),
    ];
    for (payload, l, why) in cases {
        let got = unknown(payload.clone(), l);
        assert!(got.starts_with(why), "{payload}: {got}");
    }
    let five = listing(Some(5), None);
    let commits: Vec<Value> = (0..5).map(|_| commit(&["a"])).collect();
    assert_eq!(
        unknown(json!({"commits": commits}), &five),
        "P lists at most 5 commits of a push, and listed 5"
    );
    let three = listing(None, Some(3));
    assert_eq!(
        unknown(json!({"commits": [commit(&["a", "b", "c"])]}), &three),
        "P lists at most 3 files of a commit, and listed 3"
    );
    let many: Vec<String> = (0..=MAX_FILES).map(|i| format!("f{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        unknown(json!({"commits": [commit(&many)]}), &all),
        format!("the push changed more than {MAX_FILES} files")
    );
}
