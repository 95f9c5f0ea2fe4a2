//! Container image references, parsed by the grammar the container runtime uses (the
//! `distribution/reference` library that containerd, CRI-O and the kubelet share) and
//! normalised the way it normalises them, so that registry rules match what is really
//! pulled: `mcp/fetch` is `docker.io/mcp/fetch`, `nginx` is `docker.io/library/nginx`,
//! `Evil/x` comes from a host called `Evil` (a first component with a capital letter is a
//! registry host, as one with `.` or `:`, or `localhost`), and `docker.io/mcp` never
//! matches `docker.io/mcpevil`.
//!
//! What the grammar rejects is an error naming why, in the library's words, so a rule can
//! deny it by name instead of guessing where it would be pulled from.
//!
//! Hand-written rather than taken from a crate: `oci-spec`'s `distribution::Reference` (the
//! lightest candidate; `oci-client` re-exports it and brings reqwest) splits `Evil/x` onto
//! Docker Hub, rejects bracketed IPv6 hosts and accepts upper-case hex digests, the three
//! places this module must follow the runtime. The grammar is small and linear: one pass
//! over the bytes, no regular expression, no backtracking, whatever the input.

use std::fmt;

/// Docker Hub's canonical host.
pub const DOCKER_HUB: &str = "docker.io";
/// The host the grammar folds into [`DOCKER_HUB`] (only written exactly so).
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Docker Hub's registry endpoint: the same images, so a rule on `docker.io` covers it.
const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Docker Hub's namespace of official images: `nginx` is `library/nginx`.
const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
/// The longest repository path (without the host) the grammar accepts.
pub const MAX_PATH_LEN: usize = 255;
/// The longest tag: a word character then up to 127 of `[A-Za-z0-9_.-]`.
const MAX_TAG_LEN: usize = 128;
/// Images longer than this are cut when quoted in a message; no valid reference is near it.
const MAX_SHOWN_LEN: usize = 1024;

/// A valid image reference, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host and repository path, without tag or digest:
    /// `docker.io/library/nginx`. The host is lower-cased (host names are not
    /// case-sensitive) and Docker Hub's aliases are folded into `docker.io`, so rules compare
    /// it as a string.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a string is not an image reference. The messages are the reference library's (and
/// so the kubelet's `InvalidImageName` reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReference {
    Empty,
    Format,
    Uppercase,
    PathTooLong,
    HexIdentifier,
    DigestFormat,
    DigestLength,
    DigestUnsupported,
}

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidReference::Empty => "repository name must have at least one component",
            InvalidReference::Format => "invalid reference format",
            InvalidReference::Uppercase => "repository name must be lowercase",
            InvalidReference::PathTooLong => "repository name must not be more than 255 characters",
            InvalidReference::HexIdentifier => {
                "repository name cannot be a 64-character hexadecimal string"
            }
            InvalidReference::DigestFormat => "invalid checksum digest format",
            InvalidReference::DigestLength => "invalid checksum digest length",
            InvalidReference::DigestUnsupported => "unsupported digest algorithm",
        })
    }
}

impl std::error::Error for InvalidReference {}

impl ImageRef {
    /// Parses `reference` as the runtime does (`ParseNormalizedNamed`): the host is split
    /// off first, then the rest must be a lower-case repository path with an optional tag
    /// and digest.
    pub fn parse(reference: &str) -> Result<ImageRef, InvalidReference> {
        if reference.is_empty() {
            return Err(InvalidReference::Empty);
        }
        if is_hex_identifier(reference) {
            return Err(InvalidReference::HexIdentifier);
        }
        let split = split_host(reference);
        let (rest, digest) = match split.remainder.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (split.remainder, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };
        // The library judges case on everything before the first `:`, digest included.
        let before_colon = split.remainder.split(':').next().unwrap_or("");
        if has_uppercase(before_colon) {
            return Err(InvalidReference::Uppercase);
        }
        // A first component taken for a host that is no host name but is a valid path
        // component (`a_b.c/x`) still parses: the grammar reads the whole name as a path,
        // and the runtime then pulls from the host before the first `/`.
        let host_is_name = is_host(split.host);
        let host_is_path = !host_is_name && is_path_component(split.host);
        if !(host_is_name || host_is_path)
            || !is_path(path)
            || !tag.is_none_or(is_tag)
            || !digest.is_none_or(is_digest_shape)
        {
            return Err(InvalidReference::Format);
        }
        let path_len = match (split.official, host_is_path) {
            (true, _) => OFFICIAL_REPOSITORY_PREFIX.len() + path.len(),
            (false, true) => split.host.len() + 1 + path.len(),
            (false, false) => path.len(),
        };
        if path_len > MAX_PATH_LEN {
            return Err(InvalidReference::PathTooLong);
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        let official = if split.official {
            OFFICIAL_REPOSITORY_PREFIX
        } else {
            ""
        };
        Ok(ImageRef {
            name: format!("{}/{official}{path}", canonical_host(split.host)),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
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
/// [`ImageRef::name`]: its first component is a host by the same test as an image's (even
/// when it is the only one, so `ghcr.io` is the registry and `mcp` a Docker Hub namespace).
pub fn normalise_prefix(prefix: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let (first, rest) = match prefix.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (prefix, None),
    };
    if !looks_like_host(first) {
        return format!("{DOCKER_HUB}/{prefix}");
    }
    let host = canonical_host(first);
    match rest {
        Some(rest) => format!("{host}/{rest}"),
        None => host,
    }
}

/// `image` quoted for a message, cut if absurdly long so a hostile image cannot swell it.
pub fn quoted(image: &str) -> String {
    if image.len() <= MAX_SHOWN_LEN {
        return format!("{image:?}");
    }
    let mut end = MAX_SHOWN_LEN;
    while !image.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &image[..end])
}

struct HostSplit<'a> {
    host: &'a str,
    /// Docker Hub's one-component names live under `library/`.
    official: bool,
    remainder: &'a str,
}

/// The library's `splitDockerDomain`: the first component is a host when it has a `.` or
/// `:`, is `localhost`, or has a capital letter (repository paths are lower-case, so it
/// cannot be one); otherwise the image is on Docker Hub.
fn split_host(reference: &str) -> HostSplit<'_> {
    fn on_docker_hub(remainder: &str) -> HostSplit<'_> {
        HostSplit {
            host: DOCKER_HUB,
            official: !remainder.contains('/'),
            remainder,
        }
    }
    let Some((first, rest)) = reference.split_once('/') else {
        return on_docker_hub(reference);
    };
    if first == LEGACY_DOCKER_HUB {
        return on_docker_hub(rest);
    }
    if !looks_like_host(first) {
        return on_docker_hub(reference);
    }
    HostSplit {
        host: first,
        official: first == DOCKER_HUB && !rest.contains('/'),
        remainder: rest,
    }
}

fn looks_like_host(component: &str) -> bool {
    component == "localhost" || component.contains(['.', ':']) || has_uppercase(component)
}

fn has_uppercase(text: &str) -> bool {
    text.chars().any(char::is_uppercase)
}

/// Lower-cased, with Docker Hub's other names folded into `docker.io`.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        LEGACY_DOCKER_HUB | DOCKER_HUB_REGISTRY => DOCKER_HUB.to_owned(),
        _ => host,
    }
}

/// `[a-f0-9]{64}`: an image ID, which the grammar refuses as a name.
fn is_hex_identifier(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host [":" port]`, host a DNS-like name (components of letters, digits and inner `-`)
/// or a bracketed IPv6 address (hex digits and `:` only: no zone, no embedded IPv4).
fn is_host(domain: &str) -> bool {
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, port)) => (
                !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                port,
            ),
            None => return false,
        },
        None => {
            let (host, port) = domain.split_at(domain.find(':').unwrap_or(domain.len()));
            (host.split('.').all(is_host_component), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_host_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `component ("/" component)*`.
fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

/// Runs of `[a-z0-9]` joined by one separator each: `.`, `_`, `__`, or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut at = 0;
    while at < bytes.len() {
        if alnum(&bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && !alnum(&bytes[at]) {
            at += 1;
        }
        let separator = &bytes[start..at];
        let valid =
            matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|b| *b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    bytes.len() <= MAX_TAG_LEN
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// The reference grammar's digest: `algorithm ":" hex{32,}`, the algorithm components of
/// `[A-Za-z][A-Za-z0-9]*` joined by one of `-_+.`.
fn is_digest_shape(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let component_ok = |component: &str| {
        let bytes = component.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    };
    encoded.len() >= 32
        && encoded.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(component_ok)
}

/// What the digest library then requires of a digest the grammar accepted: a registered
/// algorithm (`sha256`, `sha384`, `sha512`), its exact length, lower-case hex.
fn check_digest(digest: &str) -> Result<(), InvalidReference> {
    let (algorithm, encoded) = digest.split_once(':').unwrap_or((digest, ""));
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => {
            // An unknown algorithm in the digest library's own syntax is "unsupported";
            // one outside it (capitals) is malformed.
            let lower_case_syntax = other.split(['.', '+', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            return Err(if lower_case_syntax {
                InvalidReference::DigestUnsupported
            } else {
                InvalidReference::DigestFormat
            });
        }
    };
    if encoded.len() != hex_len {
        return Err(InvalidReference::DigestLength);
    }
    if !encoded
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(InvalidReference::DigestFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
