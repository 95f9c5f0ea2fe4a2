//! Pod-level `spec.resources` (beta, on by default since Kubernetes 1.34), as the API server
//! reads it: its defaulting of the pod's requests, its consistency rules against the
//! containers', and what that leaves for the policy's container defaults.
//!
//! The API server refuses a pod whose containers' aggregate requests exceed the pod's
//! requests, or one of whose containers has a limit above the pod's limit
//! (`validatePodResourceConsistency`). Container defaults filled without regard to the pod's
//! budget turn an admitted pod into a 422 from the API server, and a Deployment into a
//! ReplicaSet that can never create a pod. So under pod-level resources, a default is filled
//! only where it fits ([`Budget`]).
//!
//! Sums must be exact: `kube_quantity` compares through `f32` scale factors and its decimal
//! arithmetic panics on overflow, which hostile input can reach. Quantities are read here
//! into whole nano-units (`i128`, checked), rounded up as the API server rounds a quantity
//! finer than a nano; anything unreadable or too large counts as unbounded.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use serde_json::{Map, Value};

/// A non-negative quantity in nano-units (`1` is `1000000000`, `1Mi` is `1048576000000000`).
/// [`Nanos::UNBOUNDED`] stands for a quantity that cannot be read or is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(i128);

impl Nanos {
    pub(crate) const ZERO: Nanos = Nanos(0);
    pub(crate) const UNBOUNDED: Nanos = Nanos(i128::MAX);

    /// A Kubernetes quantity (`500m`, `1.5Gi`, `2e3`); [`Nanos::UNBOUNDED`] when it does not
    /// parse, is negative, or does not fit.
    pub(crate) fn parse(raw: &str) -> Nanos {
        parse_nanos(raw).unwrap_or(Nanos::UNBOUNDED)
    }

    fn saturating_add(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(other.0))
    }

    fn saturating_sub(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(other.0).max(0))
    }

    /// The quantity as the API server could have written it: binary suffixes for a
    /// `binary` resource (memory, hugepages) where exact, else decimal.
    pub(crate) fn to_quantity(self, binary: bool) -> String {
        const NANOS_PER_UNIT: i128 = 1_000_000_000;
        let nanos = self.0;
        if nanos % NANOS_PER_UNIT != 0 {
            return if nanos % 1_000_000 == 0 {
                format!("{}m", nanos / 1_000_000)
            } else {
                format!("{nanos}n")
            };
        }
        let units = nanos / NANOS_PER_UNIT;
        if binary && units > 0 {
            for (suffix, power) in [
                ("Ei", 6),
                ("Pi", 5),
                ("Ti", 4),
                ("Gi", 3),
                ("Mi", 2),
                ("Ki", 1),
            ] {
                let step = 1024_i128.pow(power);
                if units % step == 0 {
                    return format!("{}{suffix}", units / step);
                }
            }
        }
        units.to_string()
    }
}

fn parse_nanos(raw: &str) -> Option<Nanos> {
    let unsigned = raw.strip_prefix('+').unwrap_or(raw);
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    // value = mantissa * 10^-fraction_digits * base^power, in nanos (10^9 per unit).
    let (binary_power, decimal_exponent) = match suffix {
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let unsigned_digits = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned_digits.is_empty() || !unsigned_digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (0, digits.parse::<i32>().ok()?)
        }
    };
    let scaled = mantissa.checked_mul(1024_i128.checked_pow(binary_power)?)?;
    let shift = decimal_exponent
        .checked_add(9)?
        .checked_sub(fraction_digits)?;
    let nanos = if shift >= 0 {
        scaled.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)?
    } else {
        // Finer than a nano: rounded up, as the API server rounds it.
        let divisor = 10_i128.checked_pow(shift.unsigned_abs());
        match divisor {
            Some(divisor) => scaled / divisor + i128::from(scaled % divisor != 0),
            None => i128::from(scaled != 0),
        }
    };
    Some(Nanos(nanos))
}

/// The resources a pod may set at pod level (`IsSupportedPodLevelResource`).
pub(crate) fn is_pod_level_resource(resource: &str) -> bool {
    matches!(resource, "cpu" | "memory") || resource.starts_with("hugepages-")
}

/// The API server's default requests of a pod that sets limits may be above what its
/// containers request (requests may be overcommitted); hugepages may not.
fn overcommits(resource: &str) -> bool {
    !resource.starts_with("hugepages-")
}

/// Where a container runs in the pod's life, for the aggregate of its resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Init,
    /// An init container with `restartPolicy: Always`: it keeps running beside the others.
    Sidecar,
    Regular,
}

/// One container's requests and limits, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub requests: BTreeMap<String, Nanos>,
    pub limits: BTreeMap<String, Nanos>,
}

/// A pod's resources: its own (`spec.resources`), and its containers' in pod order (init
/// containers first), ephemeral containers left out as the API server leaves them out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PodResources {
    pub pod: Amounts,
    pub containers: Vec<(Role, Amounts)>,
}

impl PodResources {
    pub(crate) fn of_json(spec: &Map<String, Value>) -> PodResources {
        fn amounts(resources: Option<&Value>) -> Amounts {
            let section = |name: &str| {
                resources
                    .and_then(|r| r.get(name))
                    .and_then(Value::as_object)
                    .map(|values| {
                        values
                            .iter()
                            .map(|(resource, value)| {
                                let nanos = value.as_str().map_or(Nanos::UNBOUNDED, Nanos::parse);
                                (resource.clone(), nanos)
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Amounts {
                requests: section("requests"),
                limits: section("limits"),
            }
        }
        let list = |key: &str| {
            spec.get(key)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let init = list("initContainers").iter().map(|container| {
            let sidecar = container.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            let role = if sidecar { Role::Sidecar } else { Role::Init };
            (role, amounts(container.get("resources")))
        });
        let regular = list("containers")
            .iter()
            .map(|container| (Role::Regular, amounts(container.get("resources"))));
        PodResources {
            pod: amounts(spec.get("resources")),
            containers: init.chain(regular).collect(),
        }
    }

    pub(crate) fn of_typed(spec: &PodSpec) -> PodResources {
        fn amounts(resources: Option<&ResourceRequirements>) -> Amounts {
            let section = |values: Option<
                &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >| {
                values
                    .into_iter()
                    .flatten()
                    .map(|(resource, quantity)| (resource.clone(), Nanos::parse(&quantity.0)))
                    .collect()
            };
            Amounts {
                requests: section(resources.and_then(|r| r.requests.as_ref())),
                limits: section(resources.and_then(|r| r.limits.as_ref())),
            }
        }
        let init = spec.init_containers.iter().flatten().map(|container| {
            let sidecar = container.restart_policy.as_deref() == Some("Always");
            let role = if sidecar { Role::Sidecar } else { Role::Init };
            (role, amounts(container.resources.as_ref()))
        });
        let regular = spec
            .containers
            .iter()
            .map(|container| (Role::Regular, amounts(container.resources.as_ref())));
        PodResources {
            pod: amounts(spec.resources.as_ref()),
            containers: init.chain(regular).collect(),
        }
    }

    /// What the pod's containers need at once, per resource (`AggregateContainerRequests`,
    /// the sidecar KEP's formula): the regular containers and sidecars together, or the
    /// busiest init step (an init container plus the sidecars started before it).
    pub(crate) fn aggregate(
        &self,
        section: fn(&Amounts) -> &BTreeMap<String, Nanos>,
    ) -> BTreeMap<String, Nanos> {
        let mut running = BTreeMap::new();
        let mut sidecars: BTreeMap<String, Nanos> = BTreeMap::new();
        let mut init_peak: BTreeMap<String, Nanos> = BTreeMap::new();
        for (role, amounts) in &self.containers {
            let values = section(amounts);
            match role {
                Role::Regular => add_into(&mut running, values),
                Role::Sidecar => {
                    add_into(&mut running, values);
                    add_into(&mut sidecars, values);
                    max_into(&mut init_peak, &sidecars);
                }
                Role::Init => {
                    let mut step = sidecars.clone();
                    add_into(&mut step, values);
                    max_into(&mut init_peak, &step);
                }
            }
        }
        max_into(&mut running, &init_peak);
        running
    }

    /// The pod-level requests the API server fills in for a pod that sets pod-level limits
    /// (`defaultPodRequests`): the containers' aggregate where they request the resource (not
    /// for hugepages), else the pod's limit. Only resources the pod does not request yet.
    pub(crate) fn default_pod_requests(&self) -> Vec<(String, Nanos)> {
        if self.pod.limits.is_empty() {
            return Vec::new();
        }
        let aggregate = self.aggregate(|a| &a.requests);
        let mut defaults: BTreeMap<String, Nanos> = BTreeMap::new();
        for (resource, total) in &aggregate {
            if is_pod_level_resource(resource)
                && overcommits(resource)
                && !self.pod.requests.contains_key(resource)
            {
                defaults.insert(resource.clone(), *total);
            }
        }
        for (resource, limit) in &self.pod.limits {
            if is_pod_level_resource(resource) && !self.pod.requests.contains_key(resource) {
                defaults.entry(resource.clone()).or_insert(*limit);
            }
        }
        defaults.into_iter().collect()
    }
}

impl PodResources {
    /// [`PodResources::default_pod_requests`] as the text to write: a default taken from the
    /// pod's limit keeps that limit's spelling (`raw_limit`); an aggregate is written
    /// out. An unreadable value is left out (the API server refuses such a pod anyway).
    pub(crate) fn default_pod_request_texts<'l>(
        &self,
        raw_limit: impl Fn(&str) -> Option<&'l str>,
    ) -> Vec<(String, String)> {
        self.default_pod_requests()
            .into_iter()
            .filter(|(_, value)| *value != Nanos::UNBOUNDED)
            .map(|(resource, value)| {
                let text = raw_limit(&resource)
                    .filter(|raw| Nanos::parse(raw) == value)
                    .map_or_else(|| value.to_quantity(resource != "cpu"), str::to_owned);
                (resource, text)
            })
            .collect()
    }
}

fn add_into(total: &mut BTreeMap<String, Nanos>, values: &BTreeMap<String, Nanos>) {
    for (resource, value) in values {
        let entry = total.entry(resource.clone()).or_insert(Nanos::ZERO);
        *entry = entry.saturating_add(*value);
    }
}

fn max_into(peak: &mut BTreeMap<String, Nanos>, values: &BTreeMap<String, Nanos>) {
    for (resource, value) in values {
        let entry = peak.entry(resource.clone()).or_insert(Nanos::ZERO);
        *entry = (*entry).max(*value);
    }
}

/// The API server's rules between a pod's own resources and its containers'
/// (`validatePodResourceConsistency`, and the pod's requests within its limits), as the
/// messages it would answer with. Empty: the pod is consistent. The hardening tests hold
/// every mutation they make to it (`harden/tests.rs`).
#[cfg(test)]
pub(crate) fn consistency_errors(spec: &PodSpec) -> Vec<String> {
    let resources = PodResources::of_typed(spec);
    let mut errors = Vec::new();
    let pod = &resources.pod;
    for (resource, request) in &pod.requests {
        if let Some(limit) = pod.limits.get(resource)
            && request > limit
        {
            errors.push(format!(
                "spec.resources.requests[{resource}]: must be less than or equal to {resource} limit"
            ));
        }
    }
    let requests = resources.aggregate(|a| &a.requests);
    for (resource, request) in &pod.requests {
        if let Some(total) = requests.get(resource)
            && is_pod_level_resource(resource)
            && total > request
        {
            errors.push(format!(
                "spec.resources.requests[{resource}]: must be greater than or equal to aggregate container requests of {}",
                total.to_quantity(resource != "cpu")
            ));
        }
    }
    let limits = resources.aggregate(|a| &a.limits);
    for (resource, limit) in &pod.limits {
        if let Some(total) = limits.get(resource)
            && resource.starts_with("hugepages-")
            && total > limit
        {
            errors.push(format!(
                "spec.resources.limits[{resource}]: must be greater than or equal to aggregate container limits of {}",
                total.to_quantity(true)
            ));
        }
    }
    for (index, (role, amounts)) in resources.containers.iter().enumerate() {
        if *role != Role::Regular {
            continue;
        }
        let container = index - spec.init_containers.as_ref().map_or(0, Vec::len);
        for (resource, limit) in &amounts.limits {
            if let Some(pod_limit) = pod.limits.get(resource)
                && limit > pod_limit
            {
                errors.push(format!(
                    "spec.containers[{container}].resources.limits[{resource}]: must be less than or equal to pod limits of {}",
                    pod_limit.to_quantity(resource != "cpu")
                ));
            }
        }
    }
    errors
}

/// What pod-level resources leave for the policy's container defaults. A default request
/// (or a default limit on a container without a request, which the API server copies into
/// the request) is filled only within what the pod's requests leave; a default limit only
/// up to the pod's limit (and for hugepages, only within what the pod's limit leaves).
///
/// Conservative: filling `q` into one container raises the aggregate by at most `q` (the
/// sidecar formula only adds and takes maxima), so what is filled never breaks the rules,
/// though an init container's default may be left out where it would have fitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    requests_left: BTreeMap<String, Nanos>,
    limits: BTreeMap<String, Nanos>,
    hugepage_limits_left: BTreeMap<String, Nanos>,
}

impl Budget {
    /// The budget of a pod whose own resources are already defaulted; empty (everything
    /// fits) without pod-level resources.
    pub(crate) fn of(resources: &PodResources) -> Budget {
        let pod = &resources.pod;
        if pod.requests.is_empty() && pod.limits.is_empty() {
            return Budget::default();
        }
        let requested = resources.aggregate(|a| &a.requests);
        let limited = resources.aggregate(|a| &a.limits);
        let left = |total: &BTreeMap<String, Nanos>, resource: &str, budget: Nanos| {
            budget.saturating_sub(total.get(resource).copied().unwrap_or(Nanos::ZERO))
        };
        Budget {
            requests_left: pod
                .requests
                .iter()
                .filter(|(resource, _)| is_pod_level_resource(resource))
                .map(|(resource, request)| (resource.clone(), left(&requested, resource, *request)))
                .collect(),
            limits: pod
                .limits
                .iter()
                .filter(|(resource, _)| is_pod_level_resource(resource))
                .map(|(resource, limit)| (resource.clone(), *limit))
                .collect(),
            hugepage_limits_left: pod
                .limits
                .iter()
                .filter(|(resource, _)| resource.starts_with("hugepages-"))
                .map(|(resource, limit)| (resource.clone(), left(&limited, resource, *limit)))
                .collect(),
        }
    }

    /// Whether a container request of `quantity` for `resource` fits; if so it is taken.
    pub(crate) fn take_request(&mut self, resource: &str, quantity: &str) -> bool {
        take(&mut self.requests_left, resource, Nanos::parse(quantity))
    }

    /// Whether a container limit of `quantity` for `resource` fits, on a container that
    /// requests the resource already (`requested`) or not (then the API server copies the
    /// limit into its request); if so it is taken.
    pub(crate) fn take_limit(&mut self, resource: &str, quantity: &str, requested: bool) -> bool {
        let value = Nanos::parse(quantity);
        let under_pod_limit = self
            .limits
            .get(resource)
            .is_none_or(|limit| value <= *limit);
        let hugepages_fit = self
            .hugepage_limits_left
            .get(resource)
            .is_none_or(|left| value <= *left);
        let request_fits = requested
            || self
                .requests_left
                .get(resource)
                .is_none_or(|left| value <= *left);
        if !(under_pod_limit && hugepages_fit && request_fits) {
            return false;
        }
        take(&mut self.hugepage_limits_left, resource, value);
        if !requested {
            take(&mut self.requests_left, resource, value);
        }
        true
    }
}

/// Takes `value` from `left[resource]` if it fits (or the resource has no budget).
fn take(left: &mut BTreeMap<String, Nanos>, resource: &str, value: Nanos) -> bool {
    match left.get_mut(resource) {
        None => true,
        Some(remaining) if value <= *remaining => {
            *remaining = remaining.saturating_sub(value);
            true
        }
        Some(_) => false,
    }
}

#[cfg(test)]
#[path = "pod_resources_tests.rs"]
mod tests;
