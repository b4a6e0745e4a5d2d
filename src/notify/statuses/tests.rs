//! Each forge's exact request, the reading of `git.repo`, and the answers.

use super::*;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn api(forge: Forge, repo: &str) -> (String, String) {
    let t = target(forge, repo).unwrap_or_else(|e| panic!("{repo}: {e}"));
    assert_eq!(t.forge, forge);
    (t.origin, t.api)
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn body(r: &OutboundRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn forge_named_accepts_five_and_explains_the_others() {
    let named = [
        ("github", Forge::Github),
        ("gitlab", Forge::Gitlab),
        ("gitea", Forge::Gitea),
        ("forgejo", Forge::Forgejo),
        ("bitbucket", Forge::Bitbucket),
    ];
    for (name, forge) in named {
        assert_eq!(forge_named(name), Ok(forge));
    }
    assert_eq!(forge_named("gogs"), Err("Gogs has no commit status API"));
    assert_eq!(forge_named("gitee"), Err("Gitee has no commit status API"));
    for other in ["", "GitHub", "gitlab.com", "dockerhub"] {
        assert_eq!(
            forge_named(other),
            Err("must be one of github, gitlab, gitea, forgejo, bitbucket")
        );
    }
}

#[test]
fn guess_forge_knows_the_public_hosts_only() {
    let known = [
        ("https://github.com/acme/shop", Forge::Github),
        ("git@github.com:acme/shop.git", Forge::Github),
        ("https://GitLab.com/group/sub/shop", Forge::Gitlab),
        ("https://x@bitbucket.org/acme/shop.git", Forge::Bitbucket),
        ("https://codeberg.org/acme/shop", Forge::Forgejo),
        ("ssh://git@gitea.com/acme/shop.git", Forge::Gitea),
    ];
    for (repo, forge) in known {
        assert_eq!(guess_forge(repo), Some(Ok(forge)), "{repo}");
    }
    let gitee = guess_forge("https://gitee.com/acme/shop");
    assert_eq!(gitee, Some(Err("Gitee has no commit status API")));
    for unknown in [
        "https://git.example.com/acme/shop",
        "https://github.com.evil.example/acme/shop",
        "https://api.github.com/acme/shop",
        "",
        "not a url",
    ] {
        assert_eq!(guess_forge(unknown), None, "{unknown}");
    }
}

#[test]
fn target_reads_every_form_of_repo_url() {
    let github = "https://api.github.com/repos/acme/shop";
    for repo in [
        "https://github.com/acme/shop",
        "https://github.com/acme/shop/",
        "https://github.com/acme/shop.git",
        "http://github.com/acme/shop",
        " https://GitHub.com/acme/shop ",
        "https://token@github.com/acme/shop.git",
        "git@github.com:acme/shop.git",
        "github.com:acme/shop",
        "ssh://git@github.com/acme/shop.git",
        "ssh://git@github.com:22/acme/shop.git",
    ] {
        let got = api(Forge::Github, repo);
        assert_eq!(
            got,
            ("https://api.github.com".into(), github.into()),
            "{repo}"
        );
    }
    let gitea = |o: &str| (o.to_string(), format!("{o}/api/v1/repos/acme/shop"));
    let cases = [
        (
            "https://git.example.com/acme/shop",
            gitea("https://git.example.com"),
        ),
        (
            "http://git.example.com:3000/acme/shop.git",
            gitea("http://git.example.com:3000"),
        ),
        (
            "ssh://git@git.example.com:2222/acme/shop.git",
            gitea("https://git.example.com"),
        ),
        (
            "git@git.example.com:acme/shop.git",
            gitea("https://git.example.com"),
        ),
        (
            "git@git.example.com:/acme/shop.git",
            gitea("https://git.example.com"),
        ),
    ];
    for (repo, want) in cases {
        assert_eq!(api(Forge::Gitea, repo), want, "{repo}");
    }
}

#[test]
fn target_follows_each_forge_api_layout() {
    let ghes = api(Forge::Github, "https://ghe.acme.example:8443/acme/shop");
    let want = "https://ghe.acme.example:8443/api/v3/repos/acme/shop";
    assert_eq!(ghes, ("https://ghe.acme.example:8443".into(), want.into()));

    let gitlab = api(
        Forge::Gitlab,
        "https://gitlab.example.com/group/sub/shop.git",
    );
    let want = "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop";
    assert_eq!(gitlab, ("https://gitlab.example.com".into(), want.into()));
    let gitlab = api(Forge::Gitlab, "git@gitlab.com:acme/my-shop.v2.git");
    let want = "https://gitlab.com/api/v4/projects/acme%2Fmy-shop.v2";
    assert_eq!(gitlab, ("https://gitlab.com".into(), want.into()));

    let forgejo = api(Forge::Forgejo, "https://example.com/git/acme/shop");
    let want = "https://example.com/git/api/v1/repos/acme/shop";
    assert_eq!(forgejo, ("https://example.com".into(), want.into()));

    let bitbucket = api(Forge::Bitbucket, "git@bitbucket.org:acme/shop.git");
    let want = "https://api.bitbucket.org/2.0/repositories/acme/shop";
    assert_eq!(bitbucket, ("https://api.bitbucket.org".into(), want.into()));
}

#[test]
fn target_refuses_what_it_cannot_read() {
    let refused = [
        (Forge::Github, "", "git.report needs git.repo"),
        (Forge::Github, "  ", "git.report needs git.repo"),
        (
            Forge::Gitea,
            "https://git.example.com/acme/shop?x=1",
            "git.repo must not have a query or a fragment",
        ),
        (
            Forge::Gitea,
            "https://git.example.com/acme/shop#readme",
            "git.repo must not have a query or a fragment",
        ),
        (
            Forge::Gitea,
            "https://me:hunter2@git.example.com/acme/shop",
            "git.repo must not hold a password",
        ),
        (
            Forge::Gitea,
            "ssh://git:pw@git.example.com/acme/shop",
            "git.repo must not hold a password",
        ),
        (Forge::Gitea, "ftp://git.example.com/acme/shop", NOT_A_URL),
        (Forge::Gitea, "/srv/git/shop.git", NOT_A_URL),
        (Forge::Gitea, "./a:b/c", NOT_A_URL),
        (
            Forge::Gitea,
            "https:///acme/shop",
            "git.repo has no valid host",
        ),
        (
            Forge::Gitea,
            "https://git.example.com:x/acme/shop",
            "git.repo has no valid host",
        ),
        (
            Forge::Gitea,
            "https://git.example.com:+80/acme/shop",
            "git.repo has no valid host",
        ),
        (
            Forge::Gitea,
            "https://git.example.com:70000/acme/shop",
            "git.repo has no valid host",
        ),
        (
            Forge::Gitea,
            "https://git_example.com/acme/shop",
            "git.repo has no valid host",
        ),
        (
            Forge::Gitea,
            "https://git.example.com",
            "git.repo must name a repository: host/owner/repo",
        ),
        (
            Forge::Gitea,
            "https://git.example.com/shop.git/",
            "git.repo must name a repository: host/owner/repo",
        ),
        (
            Forge::Gitea,
            "git@git.example.com:shop",
            "git.repo must name a repository: host/owner/repo",
        ),
        (
            Forge::Gitea,
            "https://git.example.com/acme/../shop",
            "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
        ),
        (
            Forge::Gitea,
            "https://git.example.com/acme//shop",
            "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
        ),
        (
            Forge::Gitea,
            "https://git.example.com/acme/sh%2Fop",
            "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
        ),
        (
            Forge::Github,
            "https://github.com/acme/shop/tree/main",
            "a GitHub repository URL is https://github.com/owner/repo",
        ),
        (
            Forge::Github,
            "https://ghe.example.com/x/acme/shop",
            "a GitHub repository URL is https://host/owner/repo",
        ),
        (
            Forge::Bitbucket,
            "https://bitbucket.org/acme/shop/src",
            "a Bitbucket repository URL is https://bitbucket.org/workspace/repo",
        ),
        (
            Forge::Bitbucket,
            "https://bitbucket.acme.example/scm/acme/shop.git",
            "Bitbucket statuses need a bitbucket.org repository (Bitbucket Cloud)",
        ),
    ];
    for (forge, repo, why) in refused {
        assert_eq!(target(forge, repo), Err(why), "{repo}");
    }
}

#[test]
fn github_request() {
    let t = target(Forge::Github, "https://github.com/acme/shop").unwrap();
    let token = Secret::new("ghp_secret");
    let link = Some("https://deploy.example/d/1");
    let r = request(
        &t,
        &token,
        SHA,
        State::Pending,
        "autodeploy/shop",
        "Deploy requested",
        link,
    );
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.url,
        format!("https://api.github.com/repos/acme/shop/statuses/{SHA}")
    );
    let want = headers(&[
        ("content-type", "application/json"),
        ("authorization", "Bearer ghp_secret"),
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
        ("user-agent", "autodeploy"),
    ]);
    assert_eq!(r.headers, want);
    let want = json!({"state": "pending", "target_url": "https://deploy.example/d/1",
        "description": "Deploy requested", "context": "autodeploy/shop"});
    assert_eq!(body(&r), want);
    for (state, name) in [(State::Success, "success"), (State::Failure, "failure")] {
        let r = request(&t, &token, SHA, state, "c", "d", None);
        assert_eq!(
            body(&r),
            json!({"state": name, "description": "d", "context": "c"})
        );
    }
}

#[test]
fn gitlab_request() {
    let t = target(Forge::Gitlab, "https://gitlab.example.com/group/sub/shop").unwrap();
    let token = Secret::new("glpat-secret");
    let link = Some("https://deploy.example/d/1");
    let r = request(
        &t,
        &token,
        SHA,
        State::Failure,
        "autodeploy",
        "Deploy failed",
        link,
    );
    assert_eq!(r.method, "POST");
    let want = "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop/statuses/";
    assert_eq!(r.url, format!("{want}{SHA}"));
    let want = headers(&[
        ("content-type", "application/json"),
        ("private-token", "glpat-secret"),
    ]);
    assert_eq!(r.headers, want);
    let want = json!({"state": "failed", "name": "autodeploy",
        "target_url": "https://deploy.example/d/1", "description": "Deploy failed"});
    assert_eq!(body(&r), want);
    for (state, name) in [(State::Pending, "pending"), (State::Success, "success")] {
        let r = request(&t, &token, SHA, state, "c", "d", None);
        assert_eq!(
            body(&r),
            json!({"state": name, "name": "c", "description": "d"})
        );
    }
}

#[test]
fn gitea_and_forgejo_request() {
    for forge in [Forge::Gitea, Forge::Forgejo] {
        let t = target(forge, "https://git.example.com/acme/shop").unwrap();
        let token = Secret::new("tea-secret");
        let link = Some("https://deploy.example/d/1");
        let r = request(
            &t,
            &token,
            SHA,
            State::Success,
            "autodeploy",
            "Deployed",
            link,
        );
        assert_eq!(r.method, "POST");
        let want = "https://git.example.com/api/v1/repos/acme/shop/statuses/";
        assert_eq!(r.url, format!("{want}{SHA}"));
        let want = headers(&[
            ("content-type", "application/json"),
            ("authorization", "token tea-secret"),
        ]);
        assert_eq!(r.headers, want);
        let want = json!({"state": "success", "target_url": "https://deploy.example/d/1",
            "description": "Deployed", "context": "autodeploy"});
        assert_eq!(body(&r), want);
        for (state, name) in [(State::Pending, "pending"), (State::Failure, "failure")] {
            let r = request(&t, &token, SHA, state, "c", "d", None);
            assert_eq!(
                body(&r),
                json!({"state": name, "description": "d", "context": "c"})
            );
        }
    }
}

#[test]
fn bitbucket_request() {
    let t = target(Forge::Bitbucket, "https://bitbucket.org/acme/shop").unwrap();
    let token = Secret::new("bb-secret");
    let link = Some("https://deploy.example/d/1");
    let r = request(
        &t,
        &token,
        SHA,
        State::Pending,
        "autodeploy",
        "Deploying",
        link,
    );
    assert_eq!(r.method, "POST");
    let want = "https://api.bitbucket.org/2.0/repositories/acme/shop/commit/";
    assert_eq!(r.url, format!("{want}{SHA}/statuses/build"));
    let want = headers(&[
        ("content-type", "application/json"),
        ("authorization", "Bearer bb-secret"),
    ]);
    assert_eq!(r.headers, want);
    let want = json!({"key": "autodeploy", "state": "INPROGRESS", "name": "autodeploy",
        "url": "https://deploy.example/d/1", "description": "Deploying"});
    assert_eq!(body(&r), want);
    for (state, name) in [(State::Success, "SUCCESSFUL"), (State::Failure, "FAILED")] {
        let r = request(&t, &token, SHA, state, "c", "d", None);
        let want = json!({"key": "c", "state": name, "name": "c", "description": "d"});
        assert_eq!(body(&r), want);
    }
    // a key is at most 40 characters; the name stays whole
    let long = "autodeploy/production-eu-west/shop-frontend";
    let r = request(&t, &token, SHA, State::Success, long, "d", link);
    assert_eq!(body(&r)["key"], "autodeploy/production-eu-west/shop-front");
    assert_eq!(body(&r)["name"], long);
    let exactly_40 = &long[..40];
    let r = request(&t, &token, SHA, State::Success, exactly_40, "d", link);
    assert_eq!(body(&r)["key"], exactly_40);
}

#[test]
fn descriptions_are_cut_to_140_characters() {
    let t = target(Forge::Gitea, "https://git.example.com/acme/shop").unwrap();
    let token = Secret::new("t");
    let long = "é".repeat(150);
    let r = request(&t, &token, SHA, State::Success, "c", &long, None);
    assert_eq!(body(&r)["description"], "é".repeat(140));
    let fits = "é".repeat(140);
    let r = request(&t, &token, SHA, State::Success, "c", &fits, None);
    assert_eq!(body(&r)["description"], fits);
}

#[test]
fn valid_sha_is_7_to_64_hex_digits() {
    for yes in ["0123456", SHA, "ABCDEF0", &"a".repeat(64)] {
        assert!(valid_sha(yes), "{yes}");
    }
    for no in [
        "",
        "012345",
        "012345g",
        "../../x",
        &"a".repeat(65),
        "0123456 ",
    ] {
        assert!(!valid_sha(no), "{no}");
    }
}

#[test]
fn check_answer_reads_the_forge_message() {
    assert_eq!(check_answer(201, b"{}"), Ok(()));
    assert_eq!(check_answer(200, b""), Ok(()));
    assert_eq!(check_answer(299, b"not json"), Ok(()));
    let refused = [
        (
            404,
            &br#"{"message":"Not Found","documentation_url":"x"}"#[..],
            "HTTP 404: Not Found",
        ),
        (
            401,
            br#"{"message":"401 Unauthorized"}"#,
            "HTTP 401: 401 Unauthorized",
        ),
        (
            400,
            br#"{"message":{"state":["is invalid"]}}"#,
            r#"HTTP 400: {"state":["is invalid"]}"#,
        ),
        (
            400,
            br#"{"error":"state does not have a valid value"}"#,
            "HTTP 400: state does not have a valid value",
        ),
        (
            400,
            br#"{"type":"error","error":{"message":"url: required"}}"#,
            "HTTP 400: url: required",
        ),
        (
            403,
            br#"{"message":" line one\nline two "}"#,
            "HTTP 403: line one line two",
        ),
        (502, b"<html>Bad Gateway</html>", "HTTP 502"),
        (500, br#"{"message":""}"#, "HTTP 500"),
        (400, br#"{"message":" ","error":"bad"}"#, "HTTP 400: bad"),
        (422, br#"{"message":42}"#, "HTTP 422"),
        (304, b"", "HTTP 304"),
        (199, b"", "HTTP 199"),
    ];
    for (status, answer, want) in refused {
        assert_eq!(
            check_answer(status, answer),
            Err(want.to_string()),
            "{want}"
        );
    }
    let long = format!(r#"{{"message":"{}"}}"#, "é".repeat(300));
    assert_eq!(
        check_answer(500, long.as_bytes()),
        Err(format!("HTTP 500: {}", "é".repeat(200)))
    );
}
