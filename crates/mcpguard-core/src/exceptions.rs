//! Exceptions: reviewed waivers of named checks. Matching uses only what the request and
//! the pod's identity say (namespace, name, service account, images, the requesting user),
//! never labels or annotations, which the pod's author controls. Expiry is judged against
//! the `now` passed in.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde_json::Value;

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
    now: Timestamp,
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
    // The pod judged without some containers, once per set of exceptions that cover them:
    // the same image-scoped exception usually covers several checks.
    let mut judgements: Vec<(Vec<&str>, Vec<Violation>)> = Vec::new();
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
        let covered = CoveredContainers::of(&covering, pod);
        if covered.names.is_empty() {
            outcome.violations.push(violation);
            continue;
        }
        let key: Vec<&str> = covering.iter().map(|e| e.name.as_str()).collect();
        let judged = match judgements.iter().position(|(k, _)| *k == key) {
            Some(index) => &judgements[index].1,
            None => {
                let names: HashSet<&str> = covered.names.iter().map(String::as_str).collect();
                judgements.push((key, judge(&without_containers(pod, &names))?));
                &judgements[judgements.len() - 1].1
            }
        };
        let mut remaining = judged.iter().find(|v| v.check == violation.check).cloned();
        if let Some(remaining) = &mut remaining {
            renumber_containers(&mut remaining.fields, pod, &covered.names);
        }
        // Only containers the violation named, and the judgement without them no longer
        // names, were waived: an exception matching a compliant container, or a pod-level
        // problem, waives nothing and must not claim to. A finding that names no container
        // (a CEL rule's) and is gone without the covered ones was waived by all of them.
        let named = covered.named_in(&violation.detail)?;
        let still_named = match &remaining {
            Some(remaining) => Some(covered.named_in(&remaining.detail)?),
            None => None,
        };
        let names_none = !named.contains(&true);
        let waived = |index: usize| {
            if names_none {
                return remaining.is_none();
            }
            named[index] && still_named.as_ref().is_none_or(|still| !still[index])
        };
        for (exception, indices) in covering.iter().zip(&covered.by_exception) {
            let containers: Vec<&str> = indices
                .iter()
                .filter(|index| waived(**index))
                .map(|index| covered.names[*index].as_str())
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

/// The containers some image-scoped exceptions cover: each name once, and for each
/// exception (in the order given) the indices of the names it covers.
struct CoveredContainers {
    names: Vec<String>,
    by_exception: Vec<Vec<usize>>,
}

impl CoveredContainers {
    fn of(exceptions: &[&&Exception], pod: &Value) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut names = Vec::new();
        let by_exception = exceptions
            .iter()
            .map(|exception| {
                matching_containers(exception, pod)
                    .into_iter()
                    .map(|name| {
                        *index.entry(name).or_insert_with_key(|name| {
                            names.push(name.clone());
                            names.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        CoveredContainers {
            names,
            by_exception,
        }
    }

    /// Which of the names `detail` mentions, quoted as the checks quote them
    /// (`container "a"`), by one pass over `detail` for all the names at once: testing
    /// each name in turn made a pod of n containers cost n scans of an n-name detail.
    fn named_in(&self, detail: &str) -> Result<Vec<bool>, String> {
        let quoted = self.names.iter().map(|name| format!("{name:?}"));
        let searcher = aho_corasick::AhoCorasick::new(quoted)
            .map_err(|e| format!("cannot match {} container names: {e}", self.names.len()))?;
        let mut named = vec![false; self.names.len()];
        tally(detail.len());
        for found in searcher.find_overlapping_iter(detail) {
            named[found.pattern().as_usize()] = true;
        }
        Ok(named)
    }
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
    let mut known: HashSet<String> = waiver.containers.iter().cloned().collect();
    tally(waiver.containers.len() + containers.len());
    for container in containers {
        if known.insert((*container).to_owned()) {
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

/// Loud warnings for exceptions that trust the pod's author: each one that waives a Pod
/// Security check and matches only on what whoever writes the pod chooses. A pod's name, its
/// service account and an image named by tag or prefix are all picked by the author, so
/// anyone who may create pods in a covered namespace can match such an exception and get the
/// waiver. The requesting user and groups cannot be picked, and neither can an image pinned
/// by digest (its content is fixed), so an exception with one of those is quiet. One warning
/// per exception, naming it and the fields it matches on.
pub fn trust_warnings(policy: &Policy) -> Vec<String> {
    let pss_checks = crate::pss::all_check_ids();
    policy
        .spec
        .exceptions
        .iter()
        .filter_map(|exception| {
            let waived: Vec<&str> = exception
                .checks
                .iter()
                .map(String::as_str)
                .filter(|check| pss_checks.contains(check))
                .collect();
            if waived.is_empty() {
                return None;
            }
            let criteria = &exception.match_;
            let pinned_images = !criteria.images.is_empty()
                && criteria.images.iter().all(|image| image.contains('@'));
            if !criteria.users.is_empty() || !criteria.groups.is_empty() || pinned_images {
                return None;
            }
            let mut chosen: Vec<&str> = Vec::new();
            if !criteria.names.is_empty() {
                chosen.push("match.names");
            }
            if !criteria.images.is_empty() {
                chosen.push("match.images by tag");
            }
            if !criteria.service_accounts.is_empty() {
                chosen.push("match.serviceAccounts");
            }
            let matched_on = if chosen.is_empty() {
                "on its namespaces alone".to_owned()
            } else {
                format!("on author-chosen fields only ({})", chosen.join(", "))
            };
            // Short enough for a kubectl warning (the API server cuts them at 256
            // characters) with a check or two and a usual name.
            Some(format!(
                "exception {:?} waives Pod Security check{} {} {matched_on}: any pod author in \
                 its namespaces can match it; add match.users/groups or pin match.images by digest",
                exception.name,
                if waived.len() == 1 { "" } else { "s" },
                waived.join(", "),
            ))
        })
        .collect()
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

/// `fields` of a judgement of `pod` without the containers named `removed`, renumbered to
/// `pod`'s own indices: `spec.containers[0]` of the pod without its first container is
/// `spec.containers[1]` of the pod.
fn renumber_containers(fields: &mut [String], pod: &Value, removed: &[String]) {
    for list in CONTAINER_LISTS {
        let prefix = format!("spec.{list}[");
        if !fields.iter().any(|field| field.starts_with(&prefix)) {
            continue;
        }
        let kept: Vec<usize> = pod
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| {
                !c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| removed.iter().any(|r| r == n))
            })
            .map(|(index, _)| index)
            .collect();
        for field in fields.iter_mut() {
            let Some(rest) = field.strip_prefix(&prefix) else {
                continue;
            };
            let Some((number, tail)) = rest.split_once(']') else {
                continue;
            };
            let original = number
                .parse::<usize>()
                .ok()
                .and_then(|index| kept.get(index));
            if let Some(original) = original {
                *field = format!("{prefix}{original}]{tail}");
            }
        }
    }
}

fn without_containers(pod: &Value, names: &HashSet<&str>) -> Value {
    let mut filtered = pod.clone();
    for list in CONTAINER_LISTS {
        if let Some(Value::Array(containers)) = filtered.pointer_mut(&format!("/spec/{list}")) {
            tally(containers.len());
            containers.retain(|c| {
                !c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.contains(&n))
            });
        }
    }
    filtered
}

// Counts units of work (bytes of detail searched, container names compared) in tests, so
// that a test can tell linear from quadratic without timing anything.
#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[inline]
fn tally(units: usize) {
    #[cfg(test)]
    WORK.with(|work| work.set(work.get() + units));
    #[cfg(not(test))]
    let _ = units;
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

    /// A policy with one exception that waives `checks` and matches on `criteria` (a YAML
    /// flow mapping).
    fn policy_with_exception(checks: &str, criteria: &str) -> Policy {
        crate::policy::parse_str(
            &format!(
                "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: t}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
  exceptions:
    - name: browsers
      reason: SEC-1
      match: {criteria}
      checks: {checks}
"
            ),
            "t.yaml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_exception_matching_only_on_author_chosen_fields_is_warned_about_by_name_and_field() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases: [(&str, &str); 5] = [
            (
                "{names: [playwright-*]}",
                "on author-chosen fields only (match.names)",
            ),
            (
                "{serviceAccounts: [browser]}",
                "on author-chosen fields only (match.serviceAccounts)",
            ),
            (
                "{images: [mcr.microsoft.com/playwright]}",
                "on author-chosen fields only (match.images by tag)",
            ),
            (
                "{names: [web], images: [ghcr.io/acme/web:1.0, 'ghcr.io/acme/x@DIGEST']}",
                "on author-chosen fields only (match.names, match.images by tag)",
            ),
            ("{namespaces: [mcp]}", "on its namespaces alone"),
        ];
        for (criteria, matched_on) in cases {
            let criteria = criteria.replace("DIGEST", &digest);
            let policy =
                policy_with_exception("[capabilities_restricted, runAsNonRoot]", &criteria);
            assert_eq!(
                trust_warnings(&policy),
                vec![format!(
                    "exception \"browsers\" waives Pod Security checks capabilities_restricted, runAsNonRoot {matched_on}: any pod author in its namespaces can match it; add match.users/groups or pin match.images by digest"
                )],
                "{criteria}"
            );
        }
    }

    #[test]
    fn an_exception_that_needs_something_the_author_cannot_choose_is_quiet() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for criteria in [
            "{names: [playwright-*], users: [ci-bot]}".to_owned(),
            "{serviceAccounts: [browser], groups: [platform-admins]}".to_owned(),
            format!("{{images: ['mcr.microsoft.com/playwright@{digest}']}}"),
            format!("{{names: [web], images: ['ghcr.io/acme/web@{digest}']}}"),
        ] {
            let policy = policy_with_exception("[capabilities_restricted]", &criteria);
            assert_eq!(trust_warnings(&policy), Vec::<String>::new(), "{criteria}");
        }
    }

    #[test]
    fn an_exception_waiving_only_mcp_rules_is_quiet() {
        let policy = policy_with_exception("[allowedRegistries]", "{names: [playwright-*]}");
        assert_eq!(trust_warnings(&policy), Vec::<String>::new());
        // One Pod Security check among MCP rules is enough to warn, and only it is named.
        let mixed =
            policy_with_exception("[allowedRegistries, privileged]", "{names: [playwright-*]}");
        assert_eq!(
            trust_warnings(&mixed),
            vec!["exception \"browsers\" waives Pod Security check privileged on author-chosen fields only (match.names): any pod author in its namespaces can match it; add match.users/groups or pin match.images by digest".to_owned()]
        );
    }

    /// A policy whose one exception waives `capabilities_restricted` for Playwright images.
    fn policy_waiving_playwright() -> Policy {
        crate::policy::parse_str(
            "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: p}
spec:
  namespaces: [mcp]
  podSecurity: {level: restricted, version: latest}
  exceptions:
    - name: browsers
      reason: SEC-1
      match: {images: [mcr.microsoft.com/playwright]}
      checks: [capabilities_restricted]
",
            "t.yaml",
        )
        .expect("policy loads")
    }

    /// What the capabilities check says of these containers, as the PSS checks word it.
    fn capabilities_violation(names: &[String]) -> Option<Violation> {
        if names.is_empty() {
            return None;
        }
        let quoted: Vec<&str> = names.iter().map(String::as_str).collect();
        Some(Violation {
            check: "capabilities_restricted".into(),
            reason: "unrestricted capabilities".into(),
            detail: format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                crate::violation::containers_phrase(&quoted)
            ),
            fields: Vec::new(),
        })
    }

    #[test]
    fn fields_of_a_judgement_without_some_containers_are_renumbered_to_the_pod() {
        let pod = serde_json::json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "browser"}, {"name": "app"}, {"name": "other"}],
        }});
        let mut fields = vec![
            "spec.containers[0].securityContext".to_owned(),
            "spec.containers[1].image".to_owned(),
            "spec.initContainers[0].image".to_owned(),
            "spec.hostNetwork".to_owned(),
        ];
        renumber_containers(&mut fields, &pod, &["browser".to_owned()]);
        assert_eq!(
            fields,
            [
                "spec.containers[1].securityContext",
                "spec.containers[2].image",
                "spec.initContainers[0].image",
                "spec.hostNetwork",
            ]
        );
    }

    fn container_names(pod: &Value) -> Vec<String> {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// Waives the violation of a pod of `count` Playwright containers plus one other; returns
    /// the outcome and the work it took.
    fn waive_browsers(count: usize) -> (Outcome, usize) {
        let policy = policy_waiving_playwright();
        let mut containers: Vec<Value> = (0..count)
            .map(|i| serde_json::json!({"name": format!("browser-{i}"), "image": "mcr.microsoft.com/playwright:v1"}))
            .collect();
        containers.push(serde_json::json!({"name": "app", "image": "ghcr.io/x/app:1"}));
        let pod = serde_json::json!({"spec": {"containers": containers}});
        let judge = |pod: &Value| {
            Ok(capabilities_violation(&container_names(pod))
                .into_iter()
                .collect())
        };
        let violations = judge(&pod).expect("judged");
        let subject = Subject {
            namespace: "mcp",
            name: "p",
            service_account: "default",
            username: "admin",
            groups: &[],
        };
        WORK.with(|work| work.set(0));
        let outcome = apply(
            &policy,
            &pod,
            subject,
            violations,
            Timestamp::UNIX_EPOCH,
            &judge,
        )
        .expect("applies");
        (outcome, WORK.with(std::cell::Cell::get))
    }

    #[test]
    fn an_image_exception_waives_exactly_its_containers_and_leaves_the_rest() {
        let (outcome, _) = waive_browsers(2);
        assert_eq!(
            outcome,
            Outcome {
                violations: capabilities_violation(&["app".to_owned()])
                    .into_iter()
                    .collect(),
                waivers: vec![Waiver {
                    exception: "browsers".into(),
                    checks: vec!["capabilities_restricted".into()],
                    containers: vec!["browser-0".into(), "browser-1".into()],
                }],
                expired: Vec::new(),
            }
        );
    }

    /// 2k/5k/10k containers took 0.34/1.66/5.65 s when every covered container was looked
    /// up by a scan of a detail naming all of them. Work, not time: twice the containers
    /// must cost about twice the work (4× when quadratic).
    #[test]
    fn an_image_exception_over_10000_containers_costs_work_linear_in_them() {
        let (outcome, small) = waive_browsers(5_000);
        assert_eq!(outcome.waivers[0].containers.len(), 5_000);
        let (outcome, large) = waive_browsers(10_000);
        assert_eq!(outcome.waivers[0].containers.len(), 10_000);
        assert_eq!(
            outcome.violations,
            capabilities_violation(&["app".to_owned()])
                .into_iter()
                .collect::<Vec<_>>()
        );
        let ratio = large as f64 / small as f64;
        assert!(
            ratio < 2.2,
            "work grew {ratio:.2}× for 2× the containers ({small} → {large})"
        );
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
