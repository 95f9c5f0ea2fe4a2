//! Pod Security Standards: a port of the checks in Kubernetes'
//! `pod-security-admission/policy` package, versioned as PSA versions them.
//!
//! Each check lives in its own `check_*.rs` file and declares its level and
//! the policy version at which each of its variants starts. This module
//! resolves them for a (level, version) pair the way PSA's `checkRegistry`
//! does: the newest variant not newer than the version, restricted checks
//! replacing the baseline checks they override, baseline checks first.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

mod check_allow_privilege_escalation;
mod check_app_armor_profile;
mod check_capabilities_baseline;
mod check_capabilities_restricted;
mod check_host_namespaces;
mod check_host_path_volumes;
mod check_host_ports;
mod check_host_probes_and_host_lifecycle;
mod check_privileged;
mod check_proc_mount;
mod check_proc_mount_restricted;
mod check_restricted_volumes;
mod check_run_as_non_root;
mod check_run_as_user;
mod check_se_linux_options;
mod check_seccomp_profile_baseline;
mod check_seccomp_profile_restricted;
mod check_sysctls;
mod check_windows_host_process;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
mod util;

use util::Violation;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(format!(
                "invalid Pod Security Standards level {s:?}: must be one of \"privileged\", \"baseline\", \"restricted\""
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// The newest policy version at which a PSA check changes: v1.37, where `sysctls` allows
/// two more (PSA's head). PSA judges `latest`, and any version newer than this, by the
/// checks in force here.
pub const NEWEST_KNOWN_MINOR: u32 = 37;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// v1.N
    Minor(u32),
    Latest,
}

impl Version {
    /// `latest` or any `v1.N`, as PSA's `ParseVersion` takes them: a minor newer than the
    /// newest checks is accepted, and judged by them.
    pub fn parse(s: &str) -> Result<Version, String> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let malformed = || {
            format!("invalid Pod Security Standards version {s:?}: must be \"latest\" or \"v1.N\"")
        };
        let digits = s.strip_prefix("v1.").ok_or_else(malformed)?;
        // Same shape as PSA's `^v1\.(0|[1-9][0-9]*)$`: no sign, no leading zero.
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return Err(malformed());
        }
        digits
            .parse::<u32>()
            .map(Version::Minor)
            .map_err(|_| malformed())
    }

    /// The version a cluster whose API server is `v1.{cluster_minor}` judges this one by: its
    /// PSA knows no check newer than its own release, so `latest` and any newer pin mean
    /// the cluster's minor (PSA's registry clamps to its newest version, and the API
    /// server's emulated version lowers that). Without this, a 1.34 cluster's `latest`
    /// would admit sysctls its kubelets refuse.
    pub fn for_cluster(self, cluster_minor: u32) -> Version {
        match self {
            Version::Minor(minor) => Version::Minor(minor.min(cluster_minor)),
            Version::Latest => Version::Minor(cluster_minor),
        }
    }

    /// The policy version PSA actually evaluates: anything newer than the
    /// newest registered variant behaves like it, as in `EvaluatePod`.
    fn effective_minor(self) -> u32 {
        match self {
            Version::Minor(m) => m.min(NEWEST_KNOWN_MINOR),
            Version::Latest => NEWEST_KNOWN_MINOR,
        }
    }
}

/// The minor of a Kubernetes version as the API server's `/version` reports it (`minor`:
/// `"34"`, or `"34+"` on some managed clusters) or as a user writes it (`1.34`, `v1.34`,
/// `v1.34.2`, `v1.34.2-gke.100`). Only Kubernetes 1.x exists.
pub fn parse_kubernetes_minor(text: &str) -> Result<u32, String> {
    let invalid = || {
        format!(
            "invalid Kubernetes version {text:?}: expected a minor (\"34\") or \"1.34\" (\"v1.34.2\")"
        )
    };
    let trimmed = text.trim();
    let minor = match trimmed
        .strip_prefix('v')
        .unwrap_or(trimmed)
        .strip_prefix("1.")
    {
        Some(rest) => rest.split(['.', '-', '+']).next().unwrap_or(""),
        None => trimmed.strip_suffix('+').unwrap_or(trimmed),
    };
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    minor.parse::<u32>().map_err(|_| invalid())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Minor(m) => write!(f, "v1.{m}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Version::Minor(a), Version::Minor(b)) => a.cmp(b),
            (Version::Minor(_), Version::Latest) => Ordering::Less,
            (Version::Latest, Version::Minor(_)) => Ordering::Greater,
            (Version::Latest, Version::Latest) => Ordering::Equal,
        }
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `latest` or `v1.N`, as a PSA `enforce-version` label takes it.
impl schemars::JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(latest|v1\\.(0|[1-9][0-9]*))$",
        })
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub check_id: &'static str,
    pub forbidden_reason: String,
    pub forbidden_detail: String,
    /// The offending fields, relative to the PodSpec (`containers[0].securityContext.privileged`).
    pub fields: Vec<String>,
}

type CheckFn = fn(&ObjectMeta, &PodSpec) -> Option<Violation>;

/// One revision of a check, in force from `v1.min_minor` until the next one.
pub(crate) struct Variant {
    pub min_minor: u32,
    pub run: CheckFn,
    /// Baseline check IDs this (restricted) variant replaces.
    pub overrides: &'static [&'static str],
}

pub(crate) struct Check {
    pub id: &'static str,
    pub level: Level,
    /// Strictly increasing `min_minor`.
    pub variants: &'static [Variant],
}

/// PSA sorts baseline IDs, then restricted IDs, and evaluates in that order;
/// this table is kept in that order (a test asserts it).
static CHECKS: &[&Check] = &[
    &check_app_armor_profile::CHECK,
    &check_capabilities_baseline::CHECK,
    &check_host_namespaces::CHECK,
    &check_host_path_volumes::CHECK,
    &check_host_ports::CHECK,
    &check_host_probes_and_host_lifecycle::CHECK,
    &check_privileged::CHECK,
    &check_proc_mount::CHECK,
    &check_se_linux_options::CHECK,
    &check_seccomp_profile_baseline::CHECK,
    &check_sysctls::CHECK,
    &check_windows_host_process::CHECK,
    &check_allow_privilege_escalation::CHECK,
    &check_capabilities_restricted::CHECK,
    &check_proc_mount_restricted::CHECK,
    &check_restricted_volumes::CHECK,
    &check_run_as_non_root::CHECK,
    &check_run_as_user::CHECK,
    &check_seccomp_profile_restricted::CHECK,
];

static ALL_CHECK_IDS: [&str; 19] = [
    "appArmorProfile",
    "capabilities_baseline",
    "hostNamespaces",
    "hostPathVolumes",
    "hostPorts",
    "hostProbesAndHostLifecycle",
    "privileged",
    "procMount",
    "seLinuxOptions",
    "seccompProfile_baseline",
    "sysctls",
    "windowsHostProcess",
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "procMount_restricted",
    "restrictedVolumes",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
];

type Resolved = Vec<(&'static str, CheckFn)>;

/// Per-(level, version) check lists, built once so that evaluating a pod
/// only walks a slice.
fn resolved(level: Level, version: Version) -> &'static [(&'static str, CheckFn)] {
    const PER_LEVEL: usize = NEWEST_KNOWN_MINOR as usize + 1;
    static TABLE: OnceLock<Vec<Resolved>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let levels = [Level::Baseline, Level::Restricted];
        levels
            .iter()
            .flat_map(|&l| (0..=NEWEST_KNOWN_MINOR).map(move |m| resolve(l, m)))
            .collect()
    });
    let row = match level {
        Level::Privileged => return &[],
        Level::Baseline => 0,
        Level::Restricted => 1,
    };
    let index = row * PER_LEVEL + version.effective_minor() as usize;
    table.get(index).map(Vec::as_slice).unwrap_or_default()
}

fn variant_at(check: &Check, minor: u32) -> Option<&'static Variant> {
    let variants: &'static [Variant] = check.variants;
    variants.iter().rev().find(|v| v.min_minor <= minor)
}

fn resolve(level: Level, minor: u32) -> Resolved {
    let in_level = |c: &&&Check| c.level <= level;
    let overridden: Vec<&str> = CHECKS
        .iter()
        .filter(in_level)
        .filter_map(|c| variant_at(c, minor))
        .flat_map(|v| v.overrides.iter().copied())
        .collect();
    CHECKS
        .iter()
        .filter(in_level)
        .filter(|c| !overridden.contains(&c.id))
        .filter_map(|c| variant_at(c, minor).map(|v| (c.id, v.run)))
        .collect()
}

/// All failing checks for the pod at (level, version), in PSA's order.
/// Empty means the pod complies.
pub fn evaluate(
    level: Level,
    version: Version,
    metadata: &ObjectMeta,
    spec: &PodSpec,
) -> Vec<CheckResult> {
    resolved(level, version)
        .iter()
        .filter_map(|(id, run)| {
            run(metadata, spec).map(|v| CheckResult {
                check_id: id,
                forbidden_reason: v.reason,
                forbidden_detail: v.detail,
                fields: v.fields,
            })
        })
        .collect()
}

/// Every check ID that exists at any level and version.
pub fn all_check_ids() -> &'static [&'static str] {
    &ALL_CHECK_IDS
}

/// The check IDs that apply at (level, version), after overrides.
pub fn check_ids_for(level: Level, version: Version) -> Vec<&'static str> {
    resolved(level, version).iter().map(|(id, _)| *id).collect()
}
