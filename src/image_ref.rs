//! Container image references, normalised the way the container runtime resolves them, so
//! that registry rules match what is really pulled: `mcp/fetch` is `docker.io/mcp/fetch`,
//! `nginx` is `docker.io/library/nginx`, and `docker.io/mcp` never matches `docker.io/mcpevil`.

const DOCKER_HUB: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry and repository, without tag or digest: `docker.io/library/nginx`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> ImageRef {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (rest, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => (
                &rest[..last_slash + colon],
                Some(rest[last_slash + colon + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        ImageRef {
            name: normalise_repository(rest, true),
            tag,
            digest,
        }
    }

    /// Whether this image lives under `prefix` (already normalised with [`normalise_prefix`]),
    /// matched at a path boundary.
    pub fn is_under(&self, prefix: &str) -> bool {
        self.name == prefix
            || (self.name.starts_with(prefix)
                && self.name.as_bytes().get(prefix.len()) == Some(&b'/'))
    }
}

/// Normalises a registry rule (`ghcr.io`, `docker.io/mcp`, `mcp`) to compare with
/// [`ImageRef::name`].
pub fn normalise_prefix(prefix: &str) -> String {
    normalise_repository(prefix.trim_end_matches('/'), false)
}

fn normalise_repository(repository: &str, add_library: bool) -> String {
    let (first, remainder) = match repository.split_once('/') {
        Some((first, remainder)) => (first, Some(remainder)),
        None => (repository, None),
    };
    let first_is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match (first_is_registry, remainder) {
        (true, remainder) => {
            let registry = match first.to_ascii_lowercase().as_str() {
                "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
                other => other.to_owned(),
            };
            match remainder {
                Some(path) if registry == DOCKER_HUB && add_library && !path.contains('/') => {
                    format!("{registry}/library/{path}")
                }
                Some(path) => format!("{registry}/{path}"),
                None => registry,
            }
        }
        (false, None) if add_library => format!("{DOCKER_HUB}/library/{repository}"),
        (false, _) => format!("{DOCKER_HUB}/{repository}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(reference: &str) -> String {
        ImageRef::parse(reference).name
    }

    #[test]
    fn docker_hub_short_names_are_expanded() {
        assert_eq!(name("nginx"), "docker.io/library/nginx");
        assert_eq!(name("nginx:1.27"), "docker.io/library/nginx");
        assert_eq!(name("mcp/fetch"), "docker.io/mcp/fetch");
        assert_eq!(
            name("index.docker.io/mcp/fetch:latest"),
            "docker.io/mcp/fetch"
        );
        assert_eq!(name("docker.io/nginx"), "docker.io/library/nginx");
    }

    #[test]
    fn registries_with_ports_keep_the_port_and_tag_is_split_after_it() {
        let image = ImageRef::parse("localhost:5000/tools/mcp:v1@sha256:abc");
        assert_eq!(image.name, "localhost:5000/tools/mcp");
        assert_eq!(image.tag.as_deref(), Some("v1"));
        assert_eq!(image.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(name("registry.local:5000/x"), "registry.local:5000/x");
    }

    #[test]
    fn prefixes_match_only_at_path_boundaries() {
        let image = ImageRef::parse("docker.io/mcp/fetch:1");
        assert!(image.is_under(&normalise_prefix("docker.io/mcp")));
        assert!(image.is_under(&normalise_prefix("mcp")));
        assert!(image.is_under(&normalise_prefix("docker.io")));
        assert!(!ImageRef::parse("mcpevil/fetch").is_under(&normalise_prefix("docker.io/mcp")));
        assert!(!ImageRef::parse("ghcr.io.evil.com/x").is_under(&normalise_prefix("ghcr.io")));
        assert!(
            ImageRef::parse("GHCR.io/github/github-mcp-server")
                .is_under(&normalise_prefix("ghcr.io/"))
        );
    }
}
