//! Loading and validating policy documents. Every refusal names the source, the field path
//! and the problem, because a policy error at startup is read by a human under pressure.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Affinity, PodSecurityContext, SecurityContext, Toleration};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{API_VERSION, KIND, PROTECTED_NAMESPACES, Policy, PolicyDocument};
use crate::cel_rules::CompiledRules;
use crate::quantity::{self, Ceiling};
use crate::redact;
use crate::strict;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {source_name}: {}{message}", path_prefix(.path))]
pub struct PolicyError {
    pub source_name: String,
    /// Dotted field path (`spec.validate.maxResources.cpu`), empty for whole-document errors.
    pub path: String,
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Parses and validates one policy document (YAML or JSON).
pub fn parse_str(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
    let raw: Value = serde_saphyr::from_str(text).map_err(|err| PolicyError {
        source_name: source_name.to_owned(),
        path: String::new(),
        message: format!(
            "not a valid YAML/JSON document: {}",
            crate::redact::yaml_error(&err)
        ),
    })?;
    parse_value(raw, source_name)
}

/// Validates one policy document already parsed into JSON (a file's, or an object's that
/// the API server holds).
pub fn parse_value(raw: Value, source_name: &str) -> Result<Policy, PolicyError> {
    let fail = |path: &str, message: String| PolicyError {
        source_name: source_name.to_owned(),
        path: path.to_owned(),
        message,
    };
    if !raw.is_object() {
        return Err(fail(
            "",
            "expected a mapping with apiVersion, kind, metadata and spec".into(),
        ));
    }
    let document: PolicyDocument =
        redact::decode(&raw, "").map_err(|err| fail(&err.path, err.message))?;
    if document.api_version != API_VERSION {
        return Err(fail(
            "apiVersion",
            format!("must be {API_VERSION:?}, got {:?}", document.api_version),
        ));
    }
    if document.kind != KIND {
        return Err(fail(
            "kind",
            format!("must be {KIND:?}, got {:?}", document.kind),
        ));
    }
    check_dns_label("metadata.name", &document.metadata.name, 253)
        .map_err(|m| fail("metadata.name", m))?;
    check_namespaces(&document.spec.namespaces).map_err(|(path, m)| fail(&path, m))?;
    check_kubernetes_fields(&raw).map_err(|(path, m)| fail(&path, m))?;
    check_network(&raw).map_err(|(path, m)| fail(&path, m))?;
    check_egress(&document).map_err(|(path, m)| fail(&path, m))?;
    let ceilings = check_resources(&document).map_err(|(path, m)| fail(&path, m))?;
    check_runtime_class(&document).map_err(|(path, m)| fail(&path, m))?;
    check_bridge_image(&document).map_err(|(path, m)| fail(&path, m))?;
    check_namespace_modes(&document).map_err(|(path, m)| fail(&path, m))?;
    let rules = check_rules(&document).map_err(|(path, m)| fail(&path, m))?;
    let exception_expiry = check_exceptions(&document).map_err(|(path, m)| fail(&path, m))?;
    Ok(Policy {
        name: document.metadata.name,
        spec: document.spec,
        ceilings,
        exception_expiry,
        rules,
    })
}

type FieldError = (String, String);

fn check_dns_label(what: &str, value: &str, max_len: usize) -> Result<(), String> {
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let valid_ends = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if value.is_empty() || value.len() > max_len || !valid_chars || !valid_ends {
        return Err(format!(
            "{what} {value:?} is not a valid name (lowercase letters, digits, '-' and '.', at most {max_len} characters, starting and ending alphanumeric)"
        ));
    }
    Ok(())
}

fn check_namespaces(namespaces: &[String]) -> Result<(), FieldError> {
    if namespaces.is_empty() {
        return Err((
            "spec.namespaces".into(),
            "must list at least one namespace to enforce".into(),
        ));
    }
    for (index, namespace) in namespaces.iter().enumerate() {
        let path = format!("spec.namespaces[{index}]");
        if namespace.contains('.') {
            return Err((
                path,
                format!("namespace {namespace:?} must not contain '.'"),
            ));
        }
        check_dns_label("namespace", namespace, 63).map_err(|m| (path.clone(), m))?;
        if PROTECTED_NAMESPACES.contains(&namespace.as_str()) {
            return Err((
                path,
                format!(
                    "namespace {namespace:?} can never be enforced: a failing webhook there would lock out the control plane or mcpguard itself (protected: {})",
                    PROTECTED_NAMESPACES.join(", ")
                ),
            ));
        }
        if namespaces[..index].contains(namespace) {
            return Err((path, format!("namespace {namespace:?} is listed twice")));
        }
    }
    Ok(())
}

/// The k8s-typed parts of `spec.mutate` are held as raw JSON; check that each one is a valid
/// instance of its Kubernetes type and has no field that type does not know.
fn check_kubernetes_fields(raw: &Value) -> Result<(), FieldError> {
    let Some(mutate) = raw.pointer("/spec/mutate") else {
        return Ok(());
    };
    check_typed::<PodSecurityContext>(mutate, "podSecurityContext")?;
    check_typed::<SecurityContext>(mutate, "containerSecurityContext")?;
    check_typed::<Affinity>(mutate, "affinity")?;
    if let Some(Value::Array(tolerations)) = mutate.get("tolerations") {
        for (index, toleration) in tolerations.iter().enumerate() {
            let path = format!("spec.mutate.tolerations[{index}]");
            strict::check_known_fields::<Toleration>(toleration, &path)?;
        }
    }
    Ok(())
}

fn check_typed<T: DeserializeOwned + serde::Serialize>(
    mutate: &Value,
    field: &str,
) -> Result<(), FieldError> {
    match mutate.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(value) => strict::check_known_fields::<T>(value, &format!("spec.mutate.{field}")),
    }
}

fn check_resources(document: &PolicyDocument) -> Result<Vec<Ceiling>, FieldError> {
    let mut ceilings = Vec::new();
    for (resource, raw) in &document.spec.validate.max_resources {
        let path = format!("spec.validate.maxResources.{resource}");
        let value = quantity::parse_resource(raw).map_err(|m| (path, m))?;
        ceilings.push(Ceiling {
            resource: resource.clone(),
            raw: raw.clone(),
            value,
        });
    }
    let Some(defaults) = &document.spec.mutate.resources else {
        return Ok(ceilings);
    };
    for (section, values) in [
        ("requests", &defaults.requests),
        ("limits", &defaults.limits),
    ] {
        for (resource, raw) in values {
            let path = format!("spec.mutate.resources.{section}.{resource}");
            let value = quantity::parse_resource(raw).map_err(|m| (path.clone(), m))?;
            if let Some(ceiling) = ceilings.iter().find(|c| &c.resource == resource)
                && value > ceiling.value
            {
                return Err((
                    path,
                    format!(
                        "default {raw} is above validate.maxResources.{resource} ({}): every defaulted pod would be denied",
                        ceiling.raw
                    ),
                ));
            }
        }
    }
    for (resource, raw) in &defaults.requests {
        if let Some(limit) = defaults.limits.get(resource)
            && quantity::parse(raw).ok() > quantity::parse(limit).ok()
        {
            return Err((
                format!("spec.mutate.resources.requests.{resource}"),
                format!("default request {raw} is above the default limit {limit}"),
            ));
        }
    }
    Ok(ceilings)
}

fn check_runtime_class(document: &PolicyDocument) -> Result<(), FieldError> {
    let mutate = &document.spec.mutate;
    if let Some(name) = &mutate.runtime_class_name {
        check_dns_label("runtimeClassName", name, 253)
            .map_err(|m| ("spec.mutate.runtimeClassName".to_owned(), m))?;
    }
    if document.spec.validate.require_runtime_class && mutate.runtime_class_name.is_none() {
        return Err((
            "spec.validate.requireRuntimeClass".into(),
            "requires spec.mutate.runtimeClassName to name the RuntimeClass pods must use".into(),
        ));
    }
    Ok(())
}

/// The bridge image runs in every stdio server's pod with the server's credentials at hand:
/// it must be exactly the image reviewed, so a digest is required (a tag can be moved).
fn check_bridge_image(document: &PolicyDocument) -> Result<(), FieldError> {
    let Some(image) = &document.spec.mutate.bridge_image else {
        return Ok(());
    };
    let field = || "spec.mutate.bridgeImage".to_owned();
    let reference = crate::image_ref::ImageRef::parse(image)
        .map_err(|err| (field(), format!("not an image reference: {err}")))?;
    if reference.digest.is_none() {
        return Err((
            field(),
            "must be pinned by digest (image@sha256:…): the bridge runs next to every stdio server's credentials".into(),
        ));
    }
    Ok(())
}

fn check_namespace_modes(document: &PolicyDocument) -> Result<(), FieldError> {
    for namespace in document.spec.namespace_modes.keys() {
        if !document.spec.namespaces.contains(namespace) {
            return Err((
                format!("spec.namespaceModes.{namespace}"),
                format!("namespace {namespace:?} is not in spec.namespaces"),
            ));
        }
    }
    Ok(())
}

fn check_exceptions(document: &PolicyDocument) -> Result<Vec<Option<Timestamp>>, FieldError> {
    let known_checks: Vec<&str> = builtin_check_ids()
        .into_iter()
        .chain(document.spec.validate.rules.iter().map(|r| r.name.as_str()))
        .collect();
    let mut expiry = Vec::new();
    for (index, exception) in document.spec.exceptions.iter().enumerate() {
        let path = |field: &str| format!("spec.exceptions[{index}].{field}");
        check_dns_label("exception name", &exception.name, 63).map_err(|m| (path("name"), m))?;
        if document.spec.exceptions[..index]
            .iter()
            .any(|e| e.name == exception.name)
        {
            return Err((
                path("name"),
                format!("exception {:?} is defined twice", exception.name),
            ));
        }
        if exception.reason.trim().is_empty() {
            return Err((
                path("reason"),
                "must say why the exception was granted".into(),
            ));
        }
        if exception.checks.is_empty() {
            return Err((
                path("checks"),
                "must name at least one check to waive".into(),
            ));
        }
        for (check_index, check) in exception.checks.iter().enumerate() {
            if !known_checks.contains(&check.as_str()) {
                return Err((
                    format!("spec.exceptions[{index}].checks[{check_index}]"),
                    format!(
                        "unknown check {check:?} (known: {})",
                        known_checks.join(", ")
                    ),
                ));
            }
        }
        for (ns_index, namespace) in exception.match_.namespaces.iter().enumerate() {
            if !document.spec.namespaces.contains(namespace) {
                return Err((
                    format!("spec.exceptions[{index}].match.namespaces[{ns_index}]"),
                    format!("namespace {namespace:?} is not in spec.namespaces"),
                ));
            }
        }
        let expires = match &exception.expires {
            None => None,
            Some(raw) => Some(parse_expiry(raw).ok_or_else(|| {
                (
                    path("expires"),
                    format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
                )
            })?),
        };
        expiry.push(expires);
    }
    Ok(expiry)
}

/// The check IDs mcpguard defines itself; custom rules may not take them.
fn builtin_check_ids() -> Vec<&'static str> {
    crate::pss::all_check_ids()
        .iter()
        .chain(crate::rules::ALL_RULE_IDS)
        .copied()
        .collect()
}

/// `spec.validate.rules`: names that are unique DNS labels and not built-in check IDs, then
/// every expression compiled.
fn check_rules(document: &PolicyDocument) -> Result<CompiledRules, FieldError> {
    let validate = &document.spec.validate;
    let builtin = builtin_check_ids();
    for (index, rule) in validate.rules.iter().enumerate() {
        let path = |field: &str| format!("spec.validate.rules[{index}].{field}");
        if rule.name.contains('.') {
            return Err((
                path("name"),
                format!("rule name {:?} must not contain '.'", rule.name),
            ));
        }
        check_dns_label("rule name", &rule.name, 63).map_err(|m| (path("name"), m))?;
        if builtin.contains(&rule.name.as_str()) {
            return Err((
                path("name"),
                format!(
                    "rule name {:?} is a built-in check ID; choose another name",
                    rule.name
                ),
            ));
        }
        if validate.rules[..index].iter().any(|r| r.name == rule.name) {
            return Err((
                path("name"),
                format!("rule {:?} is defined twice", rule.name),
            ));
        }
        if let Some(message) = &rule.message
            && (message.trim().is_empty() || message.contains('\n'))
        {
            return Err((path("message"), "must be a non-empty single line".into()));
        }
    }
    if validate.cost_limit == 0 {
        return Err((
            "spec.validate.costLimit".into(),
            "must be at least 1".into(),
        ));
    }
    CompiledRules::compile(
        &validate.rules,
        validate.params.as_ref(),
        validate.cost_limit,
    )
    .map_err(|err| (err.path("spec.validate.rules"), err.problem))
}

/// A date is valid through the end of that day (UTC); a time is exact.
fn parse_expiry(raw: &str) -> Option<Timestamp> {
    if let Some(at) = crate::rfc3339::parse(raw) {
        return Some(at);
    }
    let date = crate::rfc3339::parse_date(raw)?;
    let end = date
        .tomorrow()
        .ok()?
        .to_datetime(jiff::civil::Time::midnight());
    // The first and last days jiff keeps whole in UTC start past its range: they end at its
    // first and last instants (still before and after any `now`).
    let clamped = if date.year() > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    };
    Some(jiff::tz::Offset::UTC.to_timestamp(end).unwrap_or(clamped))
}

/// Network peers are Kubernetes `NetworkPolicyPeer`s, held as raw JSON to be rendered.
fn check_egress(document: &PolicyDocument) -> Result<(), FieldError> {
    let network = &document.spec.network;
    if network.default_egress > network.max_egress {
        return Err((
            "spec.network.defaultEgress".into(),
            format!(
                "{} is more than spec.network.maxEgress ({}): a server that names no profile would be refused",
                network.default_egress.as_str(),
                network.max_egress.as_str()
            ),
        ));
    }
    Ok(())
}

fn check_network(raw: &Value) -> Result<(), FieldError> {
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    let Some(network) = raw.pointer("/spec/network") else {
        return Ok(());
    };
    for field in ["dnsPeers", "gatewayPeers", "allowedExtraPeers"] {
        if let Some(Value::Array(peers)) = network.get(field) {
            for (index, peer) in peers.iter().enumerate() {
                strict::check_known_fields::<NetworkPolicyPeer>(
                    peer,
                    &format!("spec.network.{field}[{index}]"),
                )?;
            }
        }
    }
    if let Some(Value::Array(namespaces)) = network.get("clientNamespaces") {
        for (index, namespace) in namespaces.iter().enumerate() {
            let name = namespace.as_str().unwrap_or("");
            check_dns_label("namespace", name, 63)
                .map_err(|m| (format!("spec.network.clientNamespaces[{index}]"), m))?;
        }
    }
    Ok(())
}
