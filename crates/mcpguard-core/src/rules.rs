//! MCP rules beyond the Pod Security Standards: the policy's `validate` section.
//! Check IDs are the policy field names, so an admin reading a denial knows what to change.

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, ResourceRequirements};

use crate::image_ref::{self, ImageRef, normalise_prefix};
use crate::policy::Policy;
use crate::quantity;
use crate::violation::{Violation, containers_phrase};

pub const ALLOWED_REGISTRIES: &str = "allowedRegistries";
pub const REQUIRE_RUNTIME_CLASS: &str = "requireRuntimeClass";
pub const MAX_RESOURCES: &str = "maxResources";
pub const FORBID_SECRET_LITERALS: &str = "forbidSecretLiterals";

pub const ALL_RULE_IDS: &[&str] = &[
    ALLOWED_REGISTRIES,
    REQUIRE_RUNTIME_CLASS,
    MAX_RESOURCES,
    FORBID_SECRET_LITERALS,
];

/// A container of any of the three kinds, as the rules see it, with the PodSpec list it is
/// in and its index there, which is where its fields are reported.
struct ContainerView<'a> {
    list: &'static str,
    index: usize,
    name: &'a str,
    image: Option<&'a str>,
    env: Option<&'a Vec<EnvVar>>,
    resources: Option<&'a ResourceRequirements>,
}

impl ContainerView<'_> {
    /// `containers[1].image` for `image`: the path of a field, relative to the PodSpec.
    fn path(&self, field: &str) -> String {
        format!("{}[{}].{field}", self.list, self.index)
    }
}

/// The container of `list` at `index`.
fn placed<'a>(list: &'static str) -> impl Fn((usize, &'a Container)) -> ContainerView<'a> {
    move |(index, c)| ContainerView {
        list,
        index,
        name: &c.name,
        image: c.image.as_deref(),
        env: c.env.as_ref(),
        resources: c.resources.as_ref(),
    }
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(placed("initContainers"));
    let regular = spec.containers.iter().enumerate().map(placed("containers"));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, c)| ContainerView {
            list: "ephemeralContainers",
            index,
            name: &c.name,
            image: c.image.as_deref(),
            env: c.env.as_ref(),
            resources: c.resources.as_ref(),
        });
    init.chain(regular).chain(ephemeral)
}

pub fn evaluate(policy: &Policy, spec: &PodSpec) -> Vec<Violation> {
    let validate = &policy.spec.validate;
    let mut violations = Vec::new();
    if !validate.allowed_registries.is_empty() {
        violations.extend(check_registries(&validate.allowed_registries, spec));
    }
    if validate.require_runtime_class
        && let Some(required) = &policy.spec.mutate.runtime_class_name
    {
        violations.extend(check_runtime_class(required, spec));
    }
    if !policy.ceilings.is_empty() {
        violations.extend(check_ceilings(policy, spec));
    }
    if validate.forbid_secret_literals {
        violations.extend(check_secret_literals(spec));
    }
    violations
}

/// Images the reference grammar refuses are denied by name first (the runtime cannot pull
/// them, and guessing their registry would let `Foo/Bar` pass as Docker Hub); the valid
/// ones must sit under an allowed prefix.
fn check_registries(allowed: &[String], spec: &PodSpec) -> Vec<Violation> {
    let prefixes: Vec<String> = allowed.iter().map(|p| normalise_prefix(p)).collect();
    let mut invalid = Vec::new();
    let mut invalid_fields = Vec::new();
    let mut names = Vec::new();
    let mut images = Vec::new();
    let mut fields = Vec::new();
    for container in containers(spec) {
        let image = container.image.unwrap_or("");
        match ImageRef::parse(image) {
            Err(why) => {
                invalid.push(format!(
                    "container {:?} image {} is not a valid reference: {why}",
                    container.name,
                    image_ref::quoted(image)
                ));
                invalid_fields.push(container.path("image"));
            }
            Ok(parsed) if !prefixes.iter().any(|p| parsed.is_under(p)) => {
                names.push(container.name);
                images.push(image_ref::quoted(image));
                fields.push(container.path("image"));
            }
            Ok(_) => {}
        }
    }
    let mut violations = Vec::new();
    if !invalid.is_empty() {
        violations.push(Violation {
            check: ALLOWED_REGISTRIES.into(),
            reason: "invalid image reference".into(),
            detail: invalid.join("; "),
            fields: invalid_fields,
        });
    }
    if !names.is_empty() {
        violations.push(Violation {
            check: ALLOWED_REGISTRIES.into(),
            reason: "image registry not allowed".into(),
            detail: format!(
                "{} must use images from {}; got {}",
                containers_phrase(&names),
                allowed.join(", "),
                images.join(", ")
            ),
            fields,
        });
    }
    violations
}

fn check_runtime_class(required: &str, spec: &PodSpec) -> Option<Violation> {
    let actual = spec.runtime_class_name.as_deref();
    if actual == Some(required) {
        return None;
    }
    let got = match actual {
        Some(actual) => format!("; got {actual:?}"),
        None => String::new(),
    };
    Some(Violation {
        check: REQUIRE_RUNTIME_CLASS.into(),
        reason: format!("runtimeClassName != {required:?}"),
        detail: format!("pod must set spec.runtimeClassName={required:?}{got}"),
        fields: vec!["runtimeClassName".to_owned()],
    })
}

fn check_ceilings(policy: &Policy, spec: &PodSpec) -> Option<Violation> {
    let mut problems = Vec::new();
    let mut fields = Vec::new();
    // `field` is where the resources are (`containers[0].resources`); the section over the
    // ceiling is named, not the resource, whose name may hold dots (`nvidia.com/gpu`).
    let mut judge = |subject: &str, field: String, resources: Option<&ResourceRequirements>| {
        let Some(resources) = resources else { return };
        for (section, values) in [
            ("requests", &resources.requests),
            ("limits", &resources.limits),
        ] {
            let Some(values) = values else { continue };
            for ceiling in &policy.ceilings {
                let Some(value) = values.get(&ceiling.resource) else {
                    continue;
                };
                let within = quantity::parse(&value.0).is_ok_and(|q| q <= ceiling.value);
                if !within {
                    problems.push(format!(
                        "{subject} {section} {}={} above the ceiling {}",
                        ceiling.resource, value.0, ceiling.raw
                    ));
                    let section_field = format!("{field}.{section}");
                    if !fields.contains(&section_field) {
                        fields.push(section_field);
                    }
                }
            }
        }
    };
    judge("pod", "resources".to_owned(), spec.resources.as_ref());
    for container in containers(spec) {
        judge(
            &format!("container {:?}", container.name),
            container.path("resources"),
            container.resources,
        );
    }
    if problems.is_empty() {
        return None;
    }
    Some(Violation {
        check: MAX_RESOURCES.into(),
        reason: "resources above policy ceiling".into(),
        detail: problems.join(", "),
        fields,
    })
}

fn check_secret_literals(spec: &PodSpec) -> Option<Violation> {
    let mut findings = Vec::new();
    let mut fields = Vec::new();
    for container in containers(spec) {
        let literal_secrets: Vec<String> = container
            .env
            .iter()
            .flat_map(|env| env.iter())
            .enumerate()
            .filter_map(|(index, var)| {
                literal_secret_reason(var).map(|reason| {
                    fields.push(container.path(&format!("env[{index}].value")));
                    format!("{} ({reason})", var.name)
                })
            })
            .collect();
        if !literal_secrets.is_empty() {
            findings.push(format!(
                "container {:?} sets {} as literal value{}",
                container.name,
                literal_secrets.join(", "),
                if literal_secrets.len() == 1 { "" } else { "s" }
            ));
        }
    }
    if findings.is_empty() {
        return None;
    }
    Some(Violation {
        check: FORBID_SECRET_LITERALS.into(),
        reason: "secret literal in env".into(),
        detail: format!("{}; use valueFrom.secretKeyRef", findings.join(", ")),
        fields,
    })
}

/// Why the literal value of `var` is taken for a secret, in words that never quote the
/// value: by its shape (a known token format, a URL with a password) first, as the more
/// telling reason, else by the variable's name.
fn literal_secret_reason(var: &EnvVar) -> Option<&'static str> {
    let value = var.value.as_deref()?;
    if value.trim().is_empty() || is_only_a_reference(value) {
        return None;
    }
    if let Some(shape) = secret_shape(value) {
        return Some(shape);
    }
    if is_file_path(value) {
        // `TLS_KEY=/etc/tls/tls.key`, `GOOGLE_APPLICATION_CREDENTIALS=/var/secrets/key.json`:
        // the value says where the credential is mounted, which is the advice itself.
        return None;
    }
    looks_like_credential(&var.name).then_some("the name marks a credential")
}

/// An absolute file path, as a credential's location is written: at least two segments of
/// path characters, none long, with a file extension at the end or a well-known top
/// directory. Base64 secrets also use `/`, so `+` and `=` are not path characters here, and a
/// value that also has a token shape was flagged before this is asked.
fn is_file_path(value: &str) -> bool {
    const TOP_DIRECTORIES: &[&str] = &[
        "etc",
        "var",
        "run",
        "secrets",
        "certs",
        "tmp",
        "home",
        "opt",
        "mnt",
        "data",
        "config",
        "app",
        "usr",
        "srv",
        "workspace",
    ];
    const MAX_SEGMENT_CHARS: usize = 64;
    let Some(rest) = value.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let well_formed = segments.len() >= 2
        && segments.iter().all(|segment| {
            !segment.is_empty()
                && segment.len() <= MAX_SEGMENT_CHARS
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if !well_formed {
        return false;
    }
    let has_extension = segments
        .last()
        .and_then(|last| last.rsplit_once('.'))
        .is_some_and(|(stem, extension)| !stem.is_empty() && (1..=5).contains(&extension.len()));
    has_extension || TOP_DIRECTORIES.contains(&segments[0])
}

/// `$(OTHER_VAR)`: Kubernetes expands it from another variable, which may come from a Secret.
fn is_only_a_reference(value: &str) -> bool {
    value
        .strip_prefix("$(")
        .and_then(|rest| rest.strip_suffix(')'))
        .is_some_and(|inner| !inner.contains(['$', '(', ')']))
}

/// Token formats whose prefix and length say "credential" whatever the variable is called.
/// Each reason names the format, never a part of the value. The `regex` crate matches in
/// time linear in the value, so a hostile value cannot stall a review.
const SECRET_SHAPES: &[(&str, &str)] = &[
    (
        r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{30,}",
        "the value looks like a GitHub token",
    ),
    (
        r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}",
        "the value looks like a GitHub fine-grained personal access token",
    ),
    (
        r"(?-u:\b)glpat-[A-Za-z0-9_-]{20,}",
        "the value looks like a GitLab personal access token",
    ),
    (
        r"(?-u:\b)(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}",
        "the value looks like a Slack token",
    ),
    (
        r"(?-u:\b)sk-[A-Za-z0-9_-]{20,}",
        "the value looks like an OpenAI-style secret API key",
    ),
    (
        r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
        "the value looks like an AWS access key ID",
    ),
    // The whole value is the header: a scheme word and one token68 credential.
    (
        r"(?i-u)^\s*bearer\s+[A-Za-z0-9._~+/-]{8,}=*\s*$",
        "the value is an HTTP Bearer credential",
    ),
    (
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        "the value contains a PEM private key",
    ),
];

fn secret_shape(value: &str) -> Option<&'static str> {
    static SHAPES: std::sync::LazyLock<regex::RegexSet> = std::sync::LazyLock::new(|| {
        regex::RegexSet::new(SECRET_SHAPES.iter().map(|(pattern, _)| pattern))
            .expect("the secret shapes are valid patterns")
    });
    if let Some(index) = SHAPES.matches(value).iter().next() {
        return Some(SECRET_SHAPES[index].1);
    }
    has_url_password(value).then_some("the value is a URL with a password")
}

/// `scheme://user:password@host`, anywhere in the value, with a password that is not just a
/// `$(VAR)` reference. Each authority ends at the next `/`, so the scan is linear (hand-written:
/// a regex would need a look-ahead to exempt the reference).
fn has_url_password(value: &str) -> bool {
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        if let Some((userinfo, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = userinfo.split_once(':')
            && !password.is_empty()
            && !is_only_a_reference(password)
        {
            return true;
        }
        rest = &after[end..];
    }
    false
}

/// Names whose last word marks a credential, in any case style: `GITHUB_TOKEN`,
/// `githubToken`, `db-pass`, `OPENAI_KEY`, `SLACK_BOT_TOKEN2`, `API_TOKEN_VALUE`. Not flagged:
/// MCP's everyday counts (`MAX_TOKENS`, `maxToken`), names of paths and files
/// (`PASSWORD_FILE`, `SSH_KEY_PATH`), identifiers and public halves (`AWS_ACCESS_KEY_ID`,
/// `PUBLIC_KEY`) and keys that are not secrets (`PARTITION_KEY`, `CACHE_KEY`).
pub fn looks_like_credential(name: &str) -> bool {
    const LAST_WORDS: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "PASSPHRASE",
        "APIKEY",
        "AUTHTOKEN",
        "ACCESSTOKEN",
        "SECRETKEY",
        "PRIVATEKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "PAT",
        "BEARER",
    ];
    // `*_KEY` is a credential unless the word before it says what kind of non-secret key.
    const NON_SECRET_KEYS: &[&str] = &[
        "PUBLIC",
        "PUB",
        "PARTITION",
        "SORT",
        "PRIMARY",
        "FOREIGN",
        "ROUTING",
        "CACHE",
        "LOOKUP",
        "HASH",
        "RANGE",
        "SHARD",
        "IDEMPOTENCY",
        "DEDUP",
        "GROUP",
        "LABEL",
        "ANNOTATION",
        "OBJECT",
        "MAP",
    ];
    const AUTH_PAIRS: &[&str] = &["BASIC", "PROXY"];
    // Words that make a name a count or a limit (`MAX_TOKEN`), not a credential.
    const QUANTITIES: &[&str] = &["MAX", "MIN", "NUM"];
    let is = |word: &str, wanted: &str| word.eq_ignore_ascii_case(wanted);
    let mut words = name_words(name);
    // `SLACK_BOT_TOKEN2`, `API_TOKEN_VALUE`: a number or "value" at the end names which
    // or what of the credential, so the word before decides.
    while words
        .last()
        .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()) || is(w, "VALUE"))
    {
        words.pop();
    }
    if words
        .iter()
        .any(|word| QUANTITIES.iter().any(|q| is(word, q)))
    {
        return false;
    }
    let (last, before) = match words.as_slice() {
        [] => return false,
        [last] => (*last, None),
        [.., before, last] => (*last, Some(*before)),
    };
    // `PWD` alone is the shell's working directory, not a password.
    if before.is_none() && is(last, "PWD") {
        return false;
    }
    if LAST_WORDS.iter().any(|word| is(last, word)) {
        return true;
    }
    let Some(before) = before else {
        return false;
    };
    (is(last, "KEY") && !NON_SECRET_KEYS.iter().any(|word| is(before, word)))
        || (is(last, "AUTH") && AUTH_PAIRS.iter().any(|word| is(before, word)))
}

/// The words of a variable name across case styles: split at every character that is not a
/// letter or digit, between a lower-case letter and an upper-case one (`githubToken`),
/// before the last capital of an acronym that starts a word (`HTTPServer`), and between
/// letters and digits (`TOKEN2`).
fn name_words(name: &str) -> Vec<&str> {
    let mut words = Vec::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let bytes = part.as_bytes();
        let mut start = 0;
        for index in 1..bytes.len() {
            let (previous, current) = (bytes[index - 1], bytes[index]);
            let next_is_lower = bytes.get(index + 1).is_some_and(u8::is_ascii_lowercase);
            let boundary = (previous.is_ascii_lowercase() && current.is_ascii_uppercase())
                || (previous.is_ascii_uppercase() && current.is_ascii_uppercase() && next_is_lower)
                || (previous.is_ascii_digit() != current.is_ascii_digit());
            if boundary {
                words.push(&part[start..index]);
                start = index;
            }
        }
        if start < part.len() {
            words.push(&part[start..]);
        }
    }
    words
}
#[cfg(test)]
mod tests;
