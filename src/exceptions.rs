//! Exceptions: reviewed waivers of named checks. Matching uses only what the request and
//! the pod's identity say (namespace, name, service account, images, the requesting user),
//! never labels or annotations, which the pod's author controls. Expiry is judged against
//! the `now` passed in.

use serde_json::Value;
use time::OffsetDateTime;

use crate::image_ref::{ImageRef, normalise_prefix};
use crate::policy::{Exception, Policy};
use crate::violation::Violation;

const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Who is asking, for what: everything an exception may match on besides images.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub namespace: &'a str,
    /// The object's name (a pod's, or a workload's for its template); `generateName` if unnamed.
    pub name: &'a str,
    pub service_account: &'a str,
    pub username: &'a str,
    pub groups: &'a [String],
}

/// One exception that waived something in this decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiver {
    pub exception: String,
    pub checks: Vec<String>,
    /// The containers it covered; empty when it covers the whole pod.
    pub containers: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// What remains after the waivers.
    pub violations: Vec<Violation>,
    pub waivers: Vec<Waiver>,
    /// Exceptions that would have matched but have expired, with their expiry as written.
    pub expired: Vec<(String, String)>,
}

/// Applies the policy's exceptions to `violations` of `pod`. `judge` re-evaluates a pod
/// (with some containers removed) when an exception covers only some containers.
pub fn apply(
    policy: &Policy,
    pod: &Value,
    subject: Subject<'_>,
    violations: Vec<Violation>,
    now: OffsetDateTime,
    judge: &dyn Fn(&Value) -> Result<Vec<Violation>, String>,
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    if violations.is_empty() || policy.spec.exceptions.is_empty() {
        outcome.violations = violations;
        return Ok(outcome);
    }
    let mut active = Vec::new();
    for (exception, expiry) in policy.spec.exceptions.iter().zip(&policy.exception_expiry) {
        if !matches_subject(exception, subject) {
            continue;
        }
        // An expired exception is worth a word only where it would have waived something.
        let relevant = violations
            .iter()
            .any(|v| exception.checks.contains(&v.check))
            && !matching_containers(exception, pod).is_empty();
        match expiry {
            Some(expires) if *expires <= now && !relevant => {}
            Some(expires) if *expires <= now => outcome.expired.push((
                exception.name.clone(),
                exception.expires.clone().unwrap_or_default(),
            )),
            _ => active.push(exception),
        }
    }
    for violation in violations {
        let covering: Vec<&&Exception> = active
            .iter()
            .filter(|e| e.checks.contains(&violation.check))
            .collect();
        if covering.is_empty() {
            outcome.violations.push(violation);
            continue;
        }
        if let Some(whole) = covering.iter().find(|e| e.match_.images.is_empty()) {
            record(&mut outcome.waivers, &whole.name, &violation.check, &[]);
            continue;
        }
        // Only some containers are covered: judge the pod without them.
        let mut covered: Vec<(String, String)> = Vec::new();
        for exception in &covering {
            for name in matching_containers(exception, pod) {
                covered.push((exception.name.clone(), name));
            }
        }
        if covered.is_empty() {
            outcome.violations.push(violation);
            continue;
        }
        let names: Vec<&str> = covered.iter().map(|(_, c)| c.as_str()).collect();
        let remaining = judge(&without_containers(pod, &names))?
            .into_iter()
            .find(|v| v.check == violation.check);
        // Only containers the violation named, and the judgement without them no longer
        // names, were waived: an exception matching a compliant container, or a pod-level
        // problem, waives nothing and must not claim to. A finding that names no container
        // (a CEL rule's) and is gone without the covered ones was waived by all of them.
        let names_none = covered
            .iter()
            .all(|(_, c)| !violation.detail.contains(&format!("{c:?}")));
        let waived = |container: &str| {
            let quoted = format!("{container:?}");
            if names_none {
                return remaining.is_none();
            }
            violation.detail.contains(&quoted)
                && remaining
                    .as_ref()
                    .is_none_or(|r| !r.detail.contains(&quoted))
        };
        for exception in &covering {
            let containers: Vec<&str> = covered
                .iter()
                .filter(|(e, c)| *e == exception.name && waived(c))
                .map(|(_, c)| c.as_str())
                .collect();
            if !containers.is_empty() {
                record(
                    &mut outcome.waivers,
                    &exception.name,
                    &violation.check,
                    &containers,
                );
            }
        }
        if let Some(remaining) = remaining {
            outcome.violations.push(remaining);
        }
    }
    Ok(outcome)
}

fn record(waivers: &mut Vec<Waiver>, exception: &str, check: &str, containers: &[&str]) {
    let position = waivers.iter().position(|w| w.exception == exception);
    let waiver = match position {
        Some(index) => &mut waivers[index],
        None => {
            waivers.push(Waiver {
                exception: exception.to_owned(),
                checks: Vec::new(),
                containers: Vec::new(),
            });
            let last = waivers.len() - 1;
            &mut waivers[last]
        }
    };
    if !waiver.checks.iter().any(|c| c == check) {
        waiver.checks.push(check.to_owned());
    }
    for container in containers {
        if !waiver.containers.iter().any(|c| c == container) {
            waiver.containers.push((*container).to_owned());
        }
    }
}

fn matches_subject(exception: &Exception, subject: Subject<'_>) -> bool {
    let criteria = &exception.match_;
    let any_or_empty = |list: &[String], test: &dyn Fn(&str) -> bool| {
        list.is_empty() || list.iter().any(|v| test(v))
    };
    any_or_empty(&criteria.namespaces, &|ns| ns == subject.namespace)
        && any_or_empty(&criteria.names, &|pattern| {
            glob_match(pattern, subject.name)
        })
        && any_or_empty(&criteria.service_accounts, &|sa| {
            sa == subject.service_account
        })
        && any_or_empty(&criteria.users, &|user| user == subject.username)
        && any_or_empty(&criteria.groups, &|group| {
            subject.groups.iter().any(|g| g == group)
        })
}

/// The containers of `pod` whose image the exception names (all of them when it names none).
fn matching_containers(exception: &Exception, pod: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for list in CONTAINER_LISTS {
        let Some(containers) = pod
            .get("spec")
            .and_then(|spec| spec.get(list))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for container in containers {
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            let matches = exception.match_.images.is_empty()
                || exception
                    .match_
                    .images
                    .iter()
                    .any(|rule| image_matches(rule, image));
            if matches && let Some(name) = container.get("name").and_then(Value::as_str) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// `repo@sha256:...` matches that exact repository and digest; anything else is a prefix at
/// path boundaries on the normalised reference. Rule and image are read by the same grammar
/// as the registry rule's, so an image the runtime would pull from another host (`Mcp/x` is
/// on host `mcp`) never matches a Docker Hub rule, and an invalid one matches nothing.
pub fn image_matches(rule: &str, image: &str) -> bool {
    let Ok(parsed) = ImageRef::parse(image) else {
        return false;
    };
    if rule.contains('@') {
        return ImageRef::parse(rule).is_ok_and(|pinned| {
            pinned.digest.is_some() && pinned.name == parsed.name && pinned.digest == parsed.digest
        });
    }
    parsed.is_under(&normalise_prefix(rule))
}

fn without_containers(pod: &Value, names: &[&str]) -> Value {
    let mut filtered = pod.clone();
    for list in CONTAINER_LISTS {
        if let Some(Value::Array(containers)) = filtered.pointer_mut(&format!("/spec/{list}")) {
            containers.retain(|c| {
                !c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.contains(&n))
            });
        }
    }
    filtered
}

/// `*` matches any run of characters, `?` any one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let (mut star, mut resume) = (None, 0);
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some(p);
                resume = t;
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some(star_at) => {
                    p = star_at + 1;
                    resume += 1;
                    t = resume;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("playwright-*", "playwright-7d4b9-x2"));
        assert!(glob_match("playwright-*", "playwright-"));
        assert!(!glob_match("playwright-*", "my-playwright-1"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("web", "web"));
        assert!(!glob_match("web", "web-1"));
        assert!(glob_match("*-browser-*", "team-browser-1"));
    }

    #[test]
    fn images_match_by_prefix_or_exact_digest() {
        let abc = format!("sha256:{}", "a".repeat(64));
        let def = format!("sha256:{}", "d".repeat(64));
        assert!(image_matches(
            "mcr.microsoft.com/playwright",
            "mcr.microsoft.com/playwright:v1.49.0-noble"
        ));
        assert!(!image_matches(
            "mcr.microsoft.com/playwright",
            "mcr.microsoft.com/playwrightx:1"
        ));
        assert!(image_matches(
            &format!("mcp/fetch@{abc}"),
            &format!("docker.io/mcp/fetch@{abc}")
        ));
        assert!(image_matches(
            &format!("mcp/fetch@{abc}"),
            &format!("index.docker.io/mcp/fetch:1.0@{abc}")
        ));
        assert!(!image_matches(
            &format!("mcp/fetch@{abc}"),
            &format!("mcp/fetch@{def}")
        ));
        assert!(!image_matches(
            &format!("mcp/fetch@{abc}"),
            &format!("mcp/other@{abc}")
        ));
        assert!(!image_matches(
            &format!("mcp/fetch@{abc}"),
            "mcp/fetch:latest"
        ));
    }

    #[test]
    fn images_are_read_by_the_reference_grammar() {
        let abc = format!("sha256:{}", "a".repeat(64));
        // `Mcp/fetch` is pulled from a host called `Mcp`, not from Docker Hub's `mcp/`.
        assert!(image_matches("mcp", "mcp/fetch:1"));
        assert!(!image_matches("mcp", "Mcp/fetch:1"));
        assert!(!image_matches("docker.io", "Mcp/fetch:1"));
        assert!(!image_matches(
            &format!("mcp/fetch@{abc}"),
            &format!("Mcp/fetch@{abc}")
        ));
        // What the grammar refuses matches nothing, not even a catch-all registry.
        assert!(!image_matches("docker.io", "mcp/Fetch"));
        assert!(!image_matches("docker.io", ""));
        assert!(!image_matches(
            "mcp/fetch@sha256:abc",
            "mcp/fetch@sha256:abc"
        ));
        // A pinned rule must carry a valid digest; a bare `@` pins nothing.
        assert!(!image_matches("mcp/fetch@", "mcp/fetch"));
    }
}
