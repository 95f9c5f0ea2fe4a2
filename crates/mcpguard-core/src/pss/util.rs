//! Helpers shared by the checks: a uniform view over the three container
//! lists, and the message helpers PSA uses (`pluralize`, `joinQuote`, `%q`).

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSpec, Probe, SecurityContext,
};

/// A failing check's message, before the registry attaches the check ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub reason: String,
    pub detail: String,
    /// The offending fields, as paths relative to the PodSpec (`hostNetwork`,
    /// `containers[1].securityContext.privileged`); a field that fails by being unset is
    /// named where it would be. A path starting `metadata.` is the pod's metadata (a
    /// PodSpec has no such field).
    pub fields: Vec<String>,
}

impl Violation {
    pub(crate) fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Violation {
            reason: reason.into(),
            detail: detail.into(),
            fields: Vec::new(),
        }
    }

    pub(crate) fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }
}

/// The fields PSA reads from a container. `EphemeralContainer` is a distinct
/// type in k8s-openapi (Go casts it to `Container`), so both are borrowed into
/// this view.
#[derive(Clone, Copy)]
pub(crate) struct ContainerView<'a> {
    /// The PodSpec list the container is in (`initContainers`, `containers`,
    /// `ephemeralContainers`) and its index there: where its fields are reported.
    pub list: &'static str,
    pub index: usize,
    pub name: &'a str,
    pub security_context: Option<&'a SecurityContext>,
    pub ports: &'a [ContainerPort],
    pub liveness_probe: Option<&'a Probe>,
    pub readiness_probe: Option<&'a Probe>,
    pub startup_probe: Option<&'a Probe>,
    pub lifecycle: Option<&'a Lifecycle>,
}

impl<'a> From<&'a Container> for ContainerView<'a> {
    fn from(c: &'a Container) -> Self {
        ContainerView {
            list: "",
            index: 0,
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

impl<'a> From<&'a EphemeralContainer> for ContainerView<'a> {
    fn from(c: &'a EphemeralContainer) -> Self {
        ContainerView {
            list: "",
            index: 0,
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

impl ContainerView<'_> {
    /// The path of one of the container's fields relative to the PodSpec:
    /// `containers[1].securityContext.privileged` for `securityContext.privileged`.
    pub(crate) fn path(&self, field: &str) -> String {
        format!("{}[{}].{field}", self.list, self.index)
    }
}

/// The container of `list` at `index`, placed so that its fields can be named.
fn placed<'a, C>(list: &'static str) -> impl Fn((usize, &'a C)) -> ContainerView<'a>
where
    &'a C: Into<ContainerView<'a>>,
    C: 'a,
{
    move |(index, container)| ContainerView {
        list,
        index,
        ..container.into()
    }
}

/// Every container in PSA's visiting order (init, regular, ephemeral); that
/// order is what shows up in the messages.
pub(crate) fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();
    init.iter()
        .enumerate()
        .map(placed("initContainers"))
        .chain(spec.containers.iter().enumerate().map(placed("containers")))
        .chain(
            ephemeral
                .iter()
                .enumerate()
                .map(placed("ephemeralContainers")),
        )
}

pub(crate) fn pluralize(
    singular: &'static str,
    plural: &'static str,
    count: usize,
) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `"a", "b"`; empty input gives an empty string, as in PSA.
pub(crate) fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(item.as_ref());
        out.push('"');
    }
    out
}

pub(crate) fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>, sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item.as_ref());
    }
    out
}

/// `container "a"` / `containers "a", "b"`: the subject of most details.
pub(crate) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Go's `%q` (strconv.Quote), so annotation values render byte-for-byte as
/// PSA renders them, rather than with Rust's `{:?}` escaping.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` without Unicode tables: controls,
/// separators other than ASCII space, the common format characters, private
/// use and noncharacters are unprintable. Unassigned code points are treated
/// as printable (Go would escape them).
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(
        u,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format || private_use || nonchar)
}

/// PSA's `relaxPolicyForUserNamespacePod`: only an explicit `hostUsers: false`
/// puts the pod in a user namespace.
pub(crate) fn in_user_namespace(spec: &PodSpec) -> bool {
    spec.host_users == Some(false)
}

/// `spec.os.name == "windows"`, compared exactly as PSA does.
pub(crate) fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_quote_matches_psa() {
        assert_eq!(join_quote(Vec::<&str>::new()), "");
        assert_eq!(join_quote(["a"]), r#""a""#);
        assert_eq!(join_quote(["a", "b"]), r#""a", "b""#);
    }

    #[test]
    fn containers_phrase_pluralises() {
        assert_eq!(containers_phrase(&["a"]), r#"container "a""#);
        assert_eq!(containers_phrase(&["a", "b"]), r#"containers "a", "b""#);
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote("unconfined"), r#""unconfined""#);
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\n\t\x07\x0b"), r#""\n\t\a\v""#);
        assert_eq!(go_quote("\x1b\x7f"), r#""\x1b\x7f""#);
        assert_eq!(go_quote("héllo ✓"), "\"héllo ✓\"");
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{feff}"),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{10fffd}"), r#""\U0010fffd""#);
    }

    #[test]
    fn visits_init_then_regular_then_ephemeral() {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "c1"}, {"name": "c2"}],
            "ephemeralContainers": [{"name": "e"}],
        }))
        .unwrap();
        let names: Vec<&str> = containers(&spec).map(|c| c.name).collect();
        assert_eq!(names, ["i", "c1", "c2", "e"]);
        let paths: Vec<String> = containers(&spec).map(|c| c.path("image")).collect();
        assert_eq!(
            paths,
            [
                "initContainers[0].image",
                "containers[0].image",
                "containers[1].image",
                "ephemeralContainers[0].image"
            ]
        );
    }
}
