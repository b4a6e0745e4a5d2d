//! Small shared vocabulary: triggers, providers, headers, requests.

/// Which of an app's three triggers a delivery came through, or `Manual`: a deploy the
/// admin API asked for ("Deploy now", "Redeploy"), which has no switch or secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Git,
    Image,
    Api,
    Manual,
}

impl Trigger {
    /// The triggers an app switches on and off (`Manual` is not one).
    pub const ALL: [Trigger; 3] = [Trigger::Git, Trigger::Image, Trigger::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Git => "git",
            Trigger::Image => "image",
            Trigger::Api => "api",
            Trigger::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Who sent a delivery, as named in the deploy call and the delivery log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Github,
    Gitlab,
    Gitee,
    Gogs,
    Gitea,
    Forgejo,
    Bitbucket,
    Dockerhub,
    Harbor,
    Quay,
    Ghcr,
    Acr,
    Api,
    /// The admin API ("Deploy now", "Redeploy").
    Manual,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitee => "gitee",
            Provider::Gogs => "gogs",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
            Provider::Bitbucket => "bitbucket",
            Provider::Dockerhub => "dockerhub",
            Provider::Harbor => "harbor",
            Provider::Quay => "quay",
            Provider::Ghcr => "ghcr",
            Provider::Acr => "acr",
            Provider::Api => "api",
            Provider::Manual => "manual",
        }
    }
}

/// Request headers with lowercase names, in arrival order.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Headers(
            pairs
                .into_iter()
                .map(|(mut name, value)| {
                    name.make_ascii_lowercase();
                    (name, value)
                })
                .collect(),
        )
    }

    /// The first value of `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty, trimmed value of `name`.
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.get("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }
}

/// One HTTP request to send to the deploy platform. Its headers and body may carry
/// secrets, so `Debug` shows only the method and URL.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutboundRequest({} {})", self.method, self.url)
    }
}
