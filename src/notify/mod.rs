//! Telling people what happened: chat and webhook notifications (`channels`) and commit
//! statuses on the forge (`statuses`). Both are plain request builders: what to send,
//! and how to read the answer. When and whether to send is the gateway's business.

pub mod channels;
pub mod statuses;

/// Something that happened to a delivery, which a channel may choose to hear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The platform accepted the deploy call.
    Requested,
    /// The deploy did not happen: the platform refused or failed the call (502), or the
    /// app's status did not allow it (409).
    Refused,
    /// The platform reported that the deploy succeeded.
    Succeeded,
    /// The platform reported that the deploy failed.
    Failed,
}

impl Event {
    pub const ALL: [Event; 4] = [
        Event::Requested,
        Event::Refused,
        Event::Succeeded,
        Event::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Requested => "requested",
            Event::Refused => "refused",
            Event::Succeeded => "succeeded",
            Event::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A commit, as a message shows it: its full id (a message shows its first 7
/// characters), its whole message (a message shows its first line), its author.
pub use crate::providers::Commit as CommitInfo;

/// Everything a notification says about one delivery. Every text in it may come from a
/// webhook payload: the channels render it as text, never as markup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub event: Option<Event>,
    pub app: String,
    /// `git`, `image`, `api` or `manual`.
    pub trigger: String,
    /// `github`, `dockerhub`, …
    pub provider: Option<String>,
    pub delivery: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit: Option<CommitInfo>,
    /// The pushed image, `repository:tag`.
    pub image: Option<String>,
    /// One word: `deployed`, `failed`, `rejected`, `succeeded`…
    pub result: String,
    /// One sentence: why.
    pub reason: String,
    /// From the delivery's arrival to the platform's final report, when known.
    pub duration_ms: Option<u64>,
    /// The platform's page for this deploy, when it reported one.
    pub url: Option<String>,
    /// The delivery in the console, when the gateway's public URL is known.
    pub console_url: Option<String>,
    /// `true` for a "send a test message" action.
    pub test: bool,
}

/// The services a notification channel can post to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// JSON to any URL, signed the Standard Webhooks way.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord webhook.
    Discord,
    /// A DingTalk custom robot (optionally with its signing secret).
    Dingtalk,
    /// A WeCom (企业微信) group robot.
    Wecom,
    /// A Feishu / Lark custom bot (optionally with its signing secret).
    Feishu,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::Dingtalk,
        ChannelKind::Wecom,
        ChannelKind::Feishu,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Feishu => "feishu",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One notification channel of an app.
#[derive(Clone, Debug)]
pub struct Channel {
    pub kind: ChannelKind,
    /// The URL to post to. Chat services put their credential in it (Slack's path,
    /// DingTalk's `access_token`): a secret.
    pub url: crate::support::secret::Secret,
    /// The signing secret: `whsec_<base64>` for `webhook` (required); DingTalk's `SEC…`
    /// and Feishu's secret (optional); unused by the others.
    pub secret: Option<crate::support::secret::Secret>,
    /// The events it hears.
    pub events: Vec<Event>,
}

/// The forges whose commit-status APIs `git.report` posts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    Github,
    Gitlab,
    Gitea,
    Forgejo,
    Bitbucket,
}

impl Forge {
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitlab => "gitlab",
            Forge::Gitea => "gitea",
            Forge::Forgejo => "forgejo",
            Forge::Bitbucket => "bitbucket",
        }
    }
}

/// A commit status's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
}
