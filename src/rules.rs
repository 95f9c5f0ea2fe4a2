//! MCP rules beyond the Pod Security Standards: the policy's `validate` section.
//! Check IDs are the policy field names, so an admin reading a denial knows what to change.

use k8s_openapi::api::core::v1::{EnvVar, PodSpec, ResourceRequirements};

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

/// A container of any of the three kinds, as the rules see it.
struct ContainerView<'a> {
    name: &'a str,
    image: Option<&'a str>,
    env: Option<&'a Vec<EnvVar>>,
    resources: Option<&'a ResourceRequirements>,
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    let regular = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            env: c.env.as_ref(),
            resources: c.resources.as_ref(),
        });
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            env: c.env.as_ref(),
            resources: c.resources.as_ref(),
        });
    regular.chain(ephemeral)
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
    let mut names = Vec::new();
    let mut images = Vec::new();
    for container in containers(spec) {
        let image = container.image.unwrap_or("");
        match ImageRef::parse(image) {
            Err(why) => invalid.push(format!(
                "container {:?} image {} is not a valid reference: {why}",
                container.name,
                image_ref::quoted(image)
            )),
            Ok(parsed) if !prefixes.iter().any(|p| parsed.is_under(p)) => {
                names.push(container.name);
                images.push(image_ref::quoted(image));
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
    })
}

fn check_ceilings(policy: &Policy, spec: &PodSpec) -> Option<Violation> {
    let mut problems = Vec::new();
    let mut judge = |subject: &str, resources: Option<&ResourceRequirements>| {
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
                }
            }
        }
    };
    judge("pod", spec.resources.as_ref());
    for container in containers(spec) {
        judge(
            &format!("container {:?}", container.name),
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
    })
}

fn check_secret_literals(spec: &PodSpec) -> Option<Violation> {
    let mut findings = Vec::new();
    for container in containers(spec) {
        let literal_secrets: Vec<&str> = container
            .env
            .iter()
            .flat_map(|env| env.iter())
            .filter(|var| is_literal_secret(var))
            .map(|var| var.name.as_str())
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
    })
}

fn is_literal_secret(var: &EnvVar) -> bool {
    let Some(value) = var.value.as_deref() else {
        return false;
    };
    let only_a_reference =
        value.starts_with("$(") && value.ends_with(')') && value.matches("$(").count() == 1;
    !value.is_empty() && !only_a_reference && looks_like_credential(&var.name)
}

/// Names whose last word marks a credential (`GITHUB_TOKEN`, `OPENAI_API_KEY`,
/// `DB_PASSWORD`), without flagging MCP's everyday `MAX_TOKENS` or `KEY_PREFIX`.
pub fn looks_like_credential(name: &str) -> bool {
    const LAST_WORDS: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PWD",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PAT",
    ];
    const LAST_PAIRS: &[(&str, &str)] = &[
        ("API", "KEY"),
        ("ACCESS", "KEY"),
        ("PRIVATE", "KEY"),
        ("SECRET", "KEY"),
        ("AUTH", "KEY"),
        ("CLIENT", "SECRET"),
        ("SIGNING", "KEY"),
        ("ENCRYPTION", "KEY"),
    ];
    // The last two words, compared ignoring ASCII case: no copy of the name (this runs for
    // every env var of every container).
    let mut words = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .rev();
    let Some(last) = words.next() else {
        return false;
    };
    let before = words.next();
    let is = |word: &str, wanted: &str| word.eq_ignore_ascii_case(wanted);
    // `PWD` alone is the shell's working directory, not a password.
    if before.is_none() && is(last, "PWD") {
        return false;
    }
    if LAST_WORDS.iter().any(|word| is(last, word)) {
        return true;
    }
    before.is_some_and(|before| {
        LAST_PAIRS
            .iter()
            .any(|(first, second)| is(before, first) && is(last, second))
    })
}
#[cfg(test)]
mod tests;
