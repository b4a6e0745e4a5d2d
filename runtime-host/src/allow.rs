//! Spin's `allowed_outbound_hosts`: which origins the component may call.
//!
//! Each entry is `scheme://host[:port]`, as in Spin
//! (`crates/outbound-networking-config/src/allowed_hosts.rs`, `AllowedHostConfig`):
//!
//! - scheme: `http`, `https`, `*` (any), or another alphabetic scheme (`redis`,
//!   `postgres`…: accepted so that any manifest Spin loads loads here; they never match an
//!   HTTP request). Compared without regard to case.
//! - host: a name (`example.com`, compared without regard to case), an IP address
//!   (`127.0.0.1`, `[::1]`), a CIDR block (`10.0.0.0/8`), `*` (any host), `*.suffix`
//!   (any name under `suffix`, not `suffix` itself), or `self` / `self.alt` (Spin's
//!   requests to the app itself: accepted, never matched here, as this host makes no such
//!   requests).
//! - port: a number, a range `8000..9000` (end excluded, as in Spin), `*` (any), or absent:
//!   the scheme's default (`http` 80, `https` 443, and Spin's `postgres`, `mysql`, `redis`,
//!   `mqtt` defaults). With scheme `*` the port is required (`*://example.com:443`), as
//!   Spin requires it: `*` has no default port.
//! - one trailing `/` is fine; a path, a query, a fragment or userinfo is an error.
//!
//! `*://*:*` allows everything. `insecure:allow-all` alone is refused, as Spin refuses it.
//!
//! Entries may hold templates `{{ name }}`, resolved from the host's variables when the
//! list is built ([`AllowList::parse`]): a variable with no value is an error. As in Spin,
//! a templated entry that resolves to nothing (the empty string, `http://` or `https://`:
//! an optional endpoint left empty) is skipped.
//!
//! A request is allowed when one entry matches its scheme, host and port (the request's
//! explicit port, else its scheme's default).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use anyhow::{bail, Context as _};
use url::Host;

use crate::vars::{validate_name, Variables, ENV_PREFIX};

/// The parsed `allowed_outbound_hosts` of a component: the origins it may call.
///
/// [`AllowList::any`] (what a host without a manifest uses) allows every origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowedHost>,
}

impl Default for AllowList {
    /// Every origin: [`AllowList::any`].
    fn default() -> Self {
        Self::any()
    }
}

impl AllowList {
    /// Every origin (`*://*:*`): a host with no manifest and no list.
    pub fn any() -> Self {
        Self {
            entries: vec![AllowedHost::parse("*://*:*").expect("a valid entry")],
        }
    }

    /// No origin at all (a component with no `allowed_outbound_hosts`).
    pub fn none() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Parse `allowed_outbound_hosts` entries, resolving `{{ name }}` templates from
    /// `vars`. Fails on the first entry that is invalid, or whose variable has no value.
    pub fn parse<S: AsRef<str>>(entries: &[S], vars: &Variables) -> anyhow::Result<Self> {
        if let [only] = entries {
            if only.as_ref().trim() == "insecure:allow-all" {
                bail!(
                    "allowed_outbound_hosts: \"insecure:allow-all\" is not allowed: use \
                     \"*://*:*\" to allow all outbound traffic"
                );
            }
        }
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref();
            let context = || {
                let entry = redact_userinfo(entry);
                format!("allowed_outbound_hosts entry {entry:?}")
            };
            let resolved = match resolve_template(entry, vars).with_context(context)? {
                Resolved::Literal => entry.to_string(),
                Resolved::Templated(value) => {
                    // An empty variable: an optional endpoint left out (as Spin does).
                    if matches!(value.trim(), "" | "http://" | "https://") {
                        continue;
                    }
                    value
                }
            };
            let host = AllowedHost::parse(&resolved).with_context(|| {
                if resolved == entry {
                    context()
                } else {
                    let resolved = redact_userinfo(&resolved);
                    format!("{} (resolved to {resolved:?})", context())
                }
            })?;
            parsed.push(host);
        }
        Ok(Self { entries: parsed })
    }

    /// The entries, as resolved.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// Whether a request to `uri` is allowed: its scheme, host and port (explicit, else
    /// the scheme's default) match one entry. A URI with no scheme or host is not.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = uri.port_u16().or_else(|| default_port(&scheme));
        self.entries.iter().any(|e| e.allows(&scheme, &host, port))
    }
}

/// The list as `spin.toml` would write it: `["https://a.example", "http://b:8080"]`.
impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{:?}", entry.original)?;
        }
        f.write_str("]")
    }
}

/// The origin of `uri`, for logs: `scheme://host[:port]`, without userinfo, path or query
/// (they can carry secrets).
pub fn origin(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("?");
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// `entry` with what lies between `://` (or its start) and its last `@` shown as `***`:
/// error messages must not show a password written there.
fn redact_userinfo(entry: &str) -> String {
    let Some(at) = entry.rfind('@') else {
        return entry.to_string();
    };
    let start = entry.find("://").map_or(0, |i| i + 3).min(at);
    format!("{}***{}", &entry[..start], &entry[at..])
}

/// One `allowed_outbound_hosts` entry, parsed (its templates resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    /// The entry as written (templates resolved), trimmed.
    original: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemeRule {
    Any,
    /// Lowercase.
    Is(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    Any,
    /// `*.example.com`: names ending in `.example.com` (kept with the leading dot).
    Subdomain(String),
    /// `self` / `self.alt`: Spin's requests to the app itself; never matched here.
    ToSelf,
    Literal(Host),
    Cidr(ipnet::IpNet),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortRule {
    Any,
    Port(u16),
    /// Spin's `start..end`: `end` excluded.
    Range(Range<u16>),
}

impl AllowedHost {
    /// Parse one entry (no templates: see [`AllowList::parse`]).
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let original = entry.trim();
        // Messages show the entry with any userinfo (a password?) hidden.
        let shown = redact_userinfo(original);
        let Some((scheme, rest)) = original.split_once("://") else {
            if matches!(original, "*" | ":" | "" | "?") {
                bail!(
                    "{shown:?} is not an allowed outbound host: write \
                     <scheme>://<host>[:<port>], with `*` wildcards allowed for each \
                     (\"*://*:*\" allows everything)"
                );
            }
            bail!("{shown:?} has no scheme (e.g. \"https://\" or \"*://\")");
        };
        let scheme = SchemeRule::parse(scheme)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            bail!("{shown:?} has userinfo (`user@`): only scheme, host and port are allowed");
        }
        if rest.contains(['?', '#']) {
            bail!("{shown:?} has a query or fragment: only scheme, host and port are allowed");
        }
        // The whole rest as a host first: an IPv6 CIDR block (`2001:db8::/32`) has colons.
        let (host, port) = match HostRule::parse(rest) {
            Ok(host) => (host, None),
            Err(whole) => match rest.rsplit_once(':') {
                Some((host, port)) => {
                    if port.contains('/') {
                        bail!("{shown:?} has a path: only scheme, host and port are allowed");
                    }
                    let host = HostRule::parse(host)
                        .with_context(|| format!("invalid allowed host {host:?}"))?;
                    (host, Some(port))
                }
                None => return Err(whole.context(format!("invalid allowed host {rest:?}"))),
            },
        };
        let port = match port {
            None | Some("") => {
                let SchemeRule::Is(scheme) = &scheme else {
                    bail!(
                        "{shown:?} has no port, and scheme `*` has no default port: \
                         give one (`:443`) or `:*`"
                    );
                };
                match default_port(scheme) {
                    Some(port) => PortRule::Port(port),
                    None => bail!(
                        "{shown:?} has no port, and scheme {scheme:?} has no known \
                         default port"
                    ),
                }
            }
            Some(port) => {
                PortRule::parse(port).with_context(|| format!("invalid allowed port {port:?}"))?
            }
        };
        Ok(Self {
            original: original.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// Whether a request with this (lowercase) scheme, host and port (explicit, else the
    /// scheme's default) matches.
    fn allows(&self, scheme: &str, host: &Host, port: Option<u16>) -> bool {
        let scheme_ok = match &self.scheme {
            SchemeRule::Any => true,
            SchemeRule::Is(s) => s == scheme,
        };
        let host_ok = match (&self.host, host) {
            (HostRule::Any, _) => true,
            (HostRule::Subdomain(suffix), Host::Domain(name)) => name.ends_with(suffix.as_str()),
            (HostRule::Literal(literal), host) => literal == host,
            (HostRule::Cidr(net), Host::Ipv4(ip)) => net.contains(&std::net::IpAddr::V4(*ip)),
            (HostRule::Cidr(net), Host::Ipv6(ip)) => net.contains(&std::net::IpAddr::V6(*ip)),
            (HostRule::Subdomain(_) | HostRule::Cidr(_) | HostRule::ToSelf, _) => false,
        };
        let port_ok = match (&self.port, port) {
            (PortRule::Any, _) => true,
            (PortRule::Port(p), Some(port)) => *p == port,
            (PortRule::Range(r), Some(port)) => r.contains(&port),
            (_, None) => false,
        };
        scheme_ok && host_ok && port_ok
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl SchemeRule {
    fn parse(scheme: &str) -> anyhow::Result<Self> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        if scheme.starts_with('{') {
            bail!("invalid allowed scheme {scheme:?}: scheme lists are not supported");
        }
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            bail!("invalid allowed scheme {scheme:?}: only letters, or `*`");
        }
        Ok(Self::Is(scheme.to_ascii_lowercase()))
    }
}

impl HostRule {
    fn parse(host: &str) -> anyhow::Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            bail!("host lists are not supported");
        }
        if host.contains('/') {
            return match ipnet::IpNet::from_str(host) {
                Ok(net) => Ok(Self::Cidr(net.trunc())),
                Err(_) => bail!("must not include a path"),
            };
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as the first label (`*.example.com`)");
            }
            return match Host::parse(domain) {
                Ok(Host::Domain(domain)) => Ok(Self::Subdomain(format!(".{domain}"))),
                Ok(_) => bail!("a wildcard's suffix must be a domain name, not an address"),
                Err(e) => bail!("invalid wildcard host \"*.{domain}\": {e}"),
            };
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as the first label (`*.example.com`) or alone");
        }
        Host::parse(host)
            .map(Self::Literal)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

impl PortRule {
    fn parse(port: &str) -> anyhow::Result<Self> {
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let start = start
                .parse()
                .with_context(|| format!("port range {port:?}: {start:?} is not a port"))?;
            let end = end
                .parse()
                .with_context(|| format!("port range {port:?}: {end:?} is not a port"))?;
            return Ok(Self::Range(start..end));
        }
        Ok(Self::Port(port.parse().with_context(|| {
            format!("{port:?} is not a port number")
        })?))
    }
}

/// The scheme's well-known port, as Spin knows them.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        _ => None,
    }
}

enum Resolved {
    /// No template: the entry as written.
    Literal,
    /// The entry with its templates replaced by their variables' values.
    Templated(String),
}

/// Replace each `{{ name }}` of `entry` with the value of variable `name` (Spin's
/// template syntax: the name is trimmed; an unmatched `{{` is an error).
fn resolve_template(entry: &str, vars: &Variables) -> anyhow::Result<Resolved> {
    if !entry.contains("{{") {
        return Ok(Resolved::Literal);
    }
    let mut out = String::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some((name, after)) = rest[open + 2..].split_once("}}") else {
            bail!("unmatched `{{{{` in template");
        };
        let name = name.trim();
        validate_name(name).map_err(|e| anyhow::anyhow!("invalid variable name: {e}"))?;
        match vars.get(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => bail!(
                "variable {name} has no value (set it with --var {name}=… or {ENV_PREFIX}{}, \
                 or give it a default in the manifest's [variables])",
                name.to_ascii_uppercase()
            ),
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(Resolved::Templated(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries, &Variables::new())
            .unwrap_or_else(|e| panic!("{entries:?}: {e:#}"))
    }

    fn allows(list: &AllowList, url: &str) -> bool {
        list.allows(&url.parse::<http::Uri>().unwrap())
    }

    #[track_caller]
    fn check(entries: &[&str], allowed: &[&str], denied: &[&str]) {
        let l = list(entries);
        for url in allowed {
            assert!(allows(&l, url), "{entries:?} should allow {url}");
        }
        for url in denied {
            assert!(!allows(&l, url), "{entries:?} should deny {url}");
        }
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        check(
            &["https://console.example.com"],
            &[
                "https://console.example.com/v1/apps/shop/deploy?x=1",
                "https://console.example.com:443/",
                "https://CONSOLE.Example.com/",
            ],
            &[
                "http://console.example.com/",
                "https://console.example.com:8443/",
                "http://console.example.com:443/",
                "https://example.com/",
                "https://api.console.example.com/",
                "https://console.example.com.evil.test/",
            ],
        );
        check(
            &["http://127.0.0.1"],
            &["http://127.0.0.1/", "http://127.0.0.1:80/x"],
            &[
                "http://127.0.0.1:3001/",
                "https://127.0.0.1/",
                "http://127.0.0.2/",
            ],
        );
        // A trailing slash is fine.
        check(&["https://my.api.com/"], &["https://my.api.com/"], &[]);
    }

    #[test]
    fn explicit_ports_and_ranges() {
        check(
            &["http://127.0.0.1:3001"],
            &["http://127.0.0.1:3001/v1/apps/shop/deploy"],
            &[
                "http://127.0.0.1/",
                "http://127.0.0.1:3002/",
                "http://localhost:3001/",
            ],
        );
        check(
            &["http://localhost:*"],
            &[
                "http://localhost/",
                "http://localhost:1/",
                "http://LOCALHOST:65535/",
            ],
            &["https://localhost/"],
        );
        check(
            &["http://example.com:8000..8002"],
            &["http://example.com:8000/", "http://example.com:8001/"],
            &["http://example.com:8002/", "http://example.com/"],
        );
    }

    #[test]
    fn wildcards() {
        // Everything.
        check(
            &["*://*:*"],
            &[
                "http://example.com/",
                "https://10.1.2.3:8443/",
                "http://[::1]:3000/",
            ],
            &[],
        );
        // Any scheme, but then the port is needed.
        check(
            &["*://example.com:443"],
            &["https://example.com/", "http://example.com:443/"],
            &["http://example.com/", "https://other.com/"],
        );
        // Any host of a scheme, on its default port.
        check(
            &["https://*"],
            &["https://a.example/", "https://127.0.0.1/"],
            &["http://a.example/", "https://a.example:8443/"],
        );
        // Subdomains, at any depth, but not the domain itself.
        check(
            &["https://*.Example.com", "http://*.example2.com:8383"],
            &[
                "https://a.example.com/",
                "https://a.b.example.com/x",
                "http://x.example2.com:8383/",
            ],
            &[
                "https://example.com/",
                "https://myexample.com/",
                "http://a.example.com/",
                "http://x.example2.com/",
                "http://example2.com:8383/",
            ],
        );
    }

    #[test]
    fn addresses_and_blocks() {
        check(
            &[
                "http://[::1]:3000",
                "https://10.0.0.0/8",
                "*://127.0.0.1/24:63551",
            ],
            &[
                "http://[::1]:3000/",
                "https://10.20.30.40/",
                "http://127.0.0.99:63551/",
                "https://127.0.0.1:63551/",
            ],
            &[
                "http://[::2]:3000/",
                "http://[::1]/",
                "https://11.0.0.1/",
                "https://ten.example/",
                "http://127.0.1.1:63551/",
            ],
        );
        check(
            &["http://2001:db8::/32", "http://[::1]"],
            &["http://[2001:db8:abcd::1]/", "http://[::1]/"],
            &["http://[2001:db9::1]/"],
        );
        // `self` parses (Spin's requests to the app itself) and matches nothing here.
        check(&["http://self", "https://self.alt"], &[], &["http://self/"]);
    }

    #[test]
    fn other_schemes_parse_and_never_match_http() {
        check(
            &[
                "redis://cache.example.com",
                "postgres://db.example.com:6543",
            ],
            &[],
            &["http://cache.example.com:6379/", "https://db.example.com/"],
        );
    }

    #[test]
    fn an_empty_list_denies_everything_and_any_allows_everything() {
        let none = AllowList::parse::<&str>(&[], &Variables::new()).unwrap();
        assert_eq!(none, AllowList::none());
        assert!(!allows(&none, "https://example.com/"));
        assert!(allows(&AllowList::any(), "https://example.com:1234/x"));
        assert!(allows(&AllowList::default(), "http://127.0.0.1:3001/"));
        // A URI with no scheme or no host is never allowed.
        assert!(!allows(&list(&["*://*:*"]), "/relative"));
    }

    #[test]
    fn invalid_entries_are_refused() {
        for bad in [
            "example.com",
            "example.com:8080",
            "*",
            "",
            "insecure:allow-all",
            "https://example.com/path",
            "https://example.com:8080/path",
            "https://example.com//",
            "https://example.com/?x=1",
            "https://example.com?x=1",
            "https://example.com#top",
            "https://user:pass@example.com",
            "https://user@example.com:443",
            "*://example.com",
            "*://*",
            "ftp://example.com",
            "h2c://example.com",
            "{http,https}://example.com",
            "https://{a,b}.example.com",
            "https://example.com:notaport",
            "https://example.com:99999",
            "https://example.com:8080..70000",
            "https://example.com:80:90",
            "https://*example.com",
            "https://a.*.example.com",
            "https://*.127.0.0.1",
            "https://*.",
            "https://exa mple.com",
            "https://exa[mple.com",
            "https://[::1",
            "https://10.0.0.0/8/x",
            "https://",
        ] {
            assert!(
                AllowList::parse(&[bad], &Variables::new()).is_err(),
                "{bad:?} should be refused"
            );
        }
        // The error names the entry.
        let err = AllowList::parse(&["https://example.com/deploy"], &Variables::new()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("https://example.com/deploy"), "{msg}");
        assert!(msg.contains("path"), "{msg}");
        // Userinfo is refused as such, and its password never shown.
        for entry in [
            "https://user:s3cret@example.com",
            "user:s3cret@example.com:443",
        ] {
            let err = AllowList::parse(&[entry], &Variables::new()).unwrap_err();
            let msg = format!("{err:#}");
            assert!(!msg.contains("s3cret"), "{msg}");
            assert!(msg.contains("***@example.com"), "{msg}");
        }
        let msg = format!(
            "{:#}",
            AllowList::parse(&["https://user:s3cret@example.com"], &Variables::new()).unwrap_err()
        );
        assert!(msg.contains("userinfo"), "{msg}");
        let mut vars = Variables::new();
        vars.set("platform_url", "https://u:s3cret@example.com/");
        let msg = format!(
            "{:#}",
            AllowList::parse(&["{{ platform_url }}"], &vars).unwrap_err()
        );
        assert!(!msg.contains("s3cret") && msg.contains("userinfo"), "{msg}");
        let err = AllowList::parse(&["*://example.com"], &Variables::new()).unwrap_err();
        assert!(format!("{err:#}").contains("port"), "{err:#}");
    }

    #[test]
    fn templates_resolve_from_variables() {
        let mut vars = Variables::new();
        vars.set("platform_url", "http://127.0.0.1:3001");
        vars.set("api_host", "api.example.com");
        vars.set("api_port", "8443");
        vars.set("optional_url", "");
        vars.set("bad_url", "https://example.com/deploy");
        let l = AllowList::parse(
            &[
                "{{ platform_url }}",
                "https://{{api_host}}:{{ api_port }}/",
                "{{ optional_url }}",
                "https://{{ optional_url }}",
            ],
            &vars,
        )
        .unwrap();
        // The empty ones are skipped (an optional endpoint left out), as in Spin.
        assert_eq!(l.entries().len(), 2, "{l}");
        assert_eq!(
            l.to_string(),
            r#"["http://127.0.0.1:3001", "https://api.example.com:8443/"]"#
        );
        assert!(allows(&l, "http://127.0.0.1:3001/v1/apps/shop/deploy"));
        assert!(allows(&l, "https://api.example.com:8443/"));
        assert!(!allows(&l, "http://127.0.0.1/"));
        assert!(!allows(&l, "https://api.example.com/"));

        // A variable with no value is an error naming it.
        let err = AllowList::parse(&["{{ status_url }}"], &vars).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("status_url") && msg.contains("no value"),
            "{msg}"
        );
        // So are a bad name, an unmatched `{{`, and a value that is not an origin.
        assert!(AllowList::parse(&["{{ Platform_URL }}"], &vars).is_err());
        assert!(AllowList::parse(&["{{ platform_url"], &vars).is_err());
        let err = AllowList::parse(&["{{ bad_url }}"], &vars).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("{{ bad_url }}") && msg.contains("path"),
            "{msg}"
        );
    }

    #[test]
    fn origins_leave_out_userinfo_path_and_query() {
        let uri: http::Uri = "https://u:s3cret@console.example.com:8443/v1/t0ken?key=s3cret"
            .parse()
            .unwrap();
        assert_eq!(origin(&uri), "https://console.example.com:8443");
        let uri: http::Uri = "http://[::1]/x".parse().unwrap();
        assert_eq!(origin(&uri), "http://[::1]");
    }
}
