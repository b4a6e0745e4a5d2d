//! Image references, normalised so that `nginx`, `library/nginx` and
//! `docker.io/library/nginx:latest` compare equal.

/// The default registry host, and the names Docker Hub is also known by.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];

/// A normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `host/path` without tag or digest, lowercase, e.g. `docker.io/library/nginx`.
    pub repository: String,
    /// The tag; `latest` when the reference names none.
    pub tag: String,
    /// The digest after `@`, when the reference has one.
    pub digest: Option<String>,
}

/// Normalises an image reference the way Docker reads one:
///
/// - an `http://` or `https://` prefix is dropped (people paste URLs);
/// - `@<digest>` and `:<tag>` are split off (a `:` before the last `/` is a port);
/// - the first path segment is a registry host only when it contains `.` or `:` or is
///   `localhost`; otherwise the host is `docker.io`;
/// - `index.docker.io` and `registry-1.docker.io` are `docker.io`;
/// - a Docker Hub image without a namespace is an official image: `library/<name>`;
/// - host and path are lowercased (registries only allow lowercase paths), tags are not;
/// - a missing tag is `latest`.
pub fn normalize_image(reference: &str) -> ImageRef {
    let mut name = reference.trim();
    for scheme in ["https://", "http://"] {
        name = name.strip_prefix(scheme).unwrap_or(name);
    }
    let mut digest = None;
    if let Some(at) = name.bytes().position(|c| c == b'@') {
        digest = Some(name[at + 1..].to_string()).filter(|d| !d.is_empty());
        name = &name[..at];
    }
    // A `:` after the last `/` starts the tag; one before it is a port.
    let b = name.as_bytes();
    let last = b.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let mut tag = "";
    if let Some(colon) = b[last..].iter().position(|&c| c == b':') {
        tag = &name[last + colon + 1..];
        name = &name[..last + colon];
    }
    let name = name.trim_end_matches('/').to_ascii_lowercase();
    let (host, path) = match name.split_once('/') {
        Some((first, rest))
            if first == "localhost" || first.bytes().any(|c| c == b'.' || c == b':') =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name.as_str()),
    };
    let host = if DOCKER_HUB_ALIASES.contains(&host) {
        DOCKER_HUB
    } else {
        host
    };
    let library = if host == DOCKER_HUB && !path.contains('/') {
        "library/"
    } else {
        ""
    };
    ImageRef {
        repository: format!("{host}/{library}{path}"),
        tag: if tag.is_empty() { "latest" } else { tag }.to_string(),
        digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            // official images, with and without host, namespace and tag
            ("nginx", "docker.io/library/nginx", "latest", None),
            ("library/nginx", "docker.io/library/nginx", "latest", None),
            (
                "docker.io/library/nginx:latest",
                "docker.io/library/nginx",
                "latest",
                None,
            ),
            ("docker.io/nginx", "docker.io/library/nginx", "latest", None),
            (
                "index.docker.io/library/nginx",
                "docker.io/library/nginx",
                "latest",
                None,
            ),
            (
                "registry-1.docker.io/nginx:1.27",
                "docker.io/library/nginx",
                "1.27",
                None,
            ),
            (
                "nginx:1.27-alpine",
                "docker.io/library/nginx",
                "1.27-alpine",
                None,
            ),
            // user images on Docker Hub
            ("acme/shop", "docker.io/acme/shop", "latest", None),
            ("Acme/Shop:V1", "docker.io/acme/shop", "V1", None),
            // other registries: the first segment is a host when it has . or : or is localhost
            ("ghcr.io/acme/shop:v1", "ghcr.io/acme/shop", "v1", None),
            ("quay.io/acme/shop", "quay.io/acme/shop", "latest", None),
            (
                "harbor.example.com:8443/team/shop:2",
                "harbor.example.com:8443/team/shop",
                "2",
                None,
            ),
            ("localhost/shop", "localhost/shop", "latest", None),
            (
                "localhost:5000/shop:dev",
                "localhost:5000/shop",
                "dev",
                None,
            ),
            (
                "registry.cn-hangzhou.aliyuncs.com/ns/app",
                "registry.cn-hangzhou.aliyuncs.com/ns/app",
                "latest",
                None,
            ),
            // a namespace that looks like neither is on Docker Hub
            (
                "myregistry/team/shop",
                "docker.io/myregistry/team/shop",
                "latest",
                None,
            ),
            // digests are split off, with or without a tag
            (
                "ghcr.io/acme/shop@sha256:abc",
                "ghcr.io/acme/shop",
                "latest",
                Some("sha256:abc"),
            ),
            (
                "localhost:5000/shop:v2@sha256:abc",
                "localhost:5000/shop",
                "v2",
                Some("sha256:abc"),
            ),
            // pasted URLs and stray whitespace
            (
                "https://ghcr.io/acme/shop",
                "ghcr.io/acme/shop",
                "latest",
                None,
            ),
            ("  quay.io/acme/shop:v1 ", "quay.io/acme/shop", "v1", None),
        ];
        for (input, repository, tag, digest) in table {
            let got = normalize_image(input);
            assert_eq!(
                got,
                ImageRef {
                    repository: repository.to_string(),
                    tag: tag.to_string(),
                    digest: digest.map(String::from),
                },
                "{input}"
            );
        }
    }

    #[test]
    fn equivalent_spellings_are_one_repository() {
        let same = ["nginx", "library/nginx", "docker.io/library/nginx:latest"];
        for s in same {
            assert_eq!(normalize_image(s).repository, "docker.io/library/nginx");
        }
        assert_ne!(
            normalize_image("ghcr.io/acme/shop").repository,
            normalize_image("acme/shop").repository
        );
    }
}
