//! Writes the load test's inputs into DIR: `push.json` (deploys), `other-branch.json`
//! (valid, ignored), `app.json` (the admin `PUT` body), and `env` (shell assignments:
//! the secret and the signatures), so every server is sent exactly the same bytes.

use autodeploy_bench as b;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: inputs DIR"));
    std::fs::create_dir_all(&dir)?;
    let push = b::github_push();
    let other = b::github_push_other_branch();
    std::fs::write(dir.join("push.json"), &push)?;
    std::fs::write(dir.join("other-branch.json"), &other)?;
    std::fs::write(dir.join("app.json"), b::app_json().to_string())?;
    let env = format!(
        "SECRET='{}'\nSIG_PUSH='{}'\nSIG_OTHER='{}'\nSIG_BAD='{}'\nPUSH_BYTES={}\n",
        b::GIT_SECRET,
        b::sign(b::GIT_SECRET, &push),
        b::sign(b::GIT_SECRET, &other),
        b::sign("not-the-secret", &push),
        push.len(),
    );
    std::fs::write(dir.join("env"), env)
}
