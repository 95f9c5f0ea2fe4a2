//! The note format and its reader together: what `format` writes, `parse` gives back, for
//! plain, awkward and hostile text; other shapes are refused.

use super::*;

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn note(
    policy: &str,
    verdict: Verdict,
    object: &str,
    user: &str,
    checks: &[&str],
) -> ViolationNote {
    ViolationNote {
        policy: policy.to_owned(),
        verdict,
        operation: "CREATE".to_owned(),
        resource: "pods".to_owned(),
        object: object.to_owned(),
        user: user.to_owned(),
        checks: owned(checks),
    }
}

#[test]
fn the_format_is_the_documented_one() {
    let denied = note(
        "mcp-restricted",
        Verdict::Denied,
        "web-1",
        "system:serviceaccount:mcp:deployer",
        &["runAsNonRoot", "allowedRegistries"],
    );
    assert_eq!(
        denied.format(),
        "policy \"mcp-restricted\" denied CREATE of pods \"web-1\" by system:serviceaccount:mcp:deployer: runAsNonRoot, allowedRegistries"
    );
    let admitted = ViolationNote {
        operation: "UPDATE".to_owned(),
        resource: "deployments".to_owned(),
        ..note("p", Verdict::Admitted, "web", "bob", &["privileged"])
    };
    assert_eq!(
        admitted.format(),
        "policy \"p\" admitted UPDATE of deployments \"web\" by bob: privileged"
    );
    assert_eq!(Verdict::Denied.action(), "Denied");
    assert_eq!(Verdict::Admitted.action(), "Admitted");
}

#[test]
fn what_format_writes_parse_gives_back() {
    let shapes = [
        note("p", Verdict::Denied, "web-1", "bob", &["runAsNonRoot"]),
        note(
            "p",
            Verdict::Admitted,
            "web-7d4b9c-",
            "unknown user",
            &["a", "b", "c"],
        ),
        // No checks at all.
        note("p", Verdict::Denied, "web", "bob", &[]),
        // A user with ": " (and one ending in ':'): the checks are after the last ": ".
        note(
            "p",
            Verdict::Denied,
            "web",
            "oidc: alice@example.com",
            &["hostPorts"],
        ),
        note("p", Verdict::Denied, "web", "alice:", &[]),
        // Names that try to look like the note's own words and quotes.
        note(
            "odd \"policy\": by x",
            Verdict::Admitted,
            "\" by mallory: privileged",
            "bob by eve",
            &["privileged"],
        ),
        note(
            "p\" denied CREATE of pods \"q",
            Verdict::Denied,
            "a\\\"b",
            " by : , ",
            &["x"],
        ),
        // Escapes, control characters, quotes of both kinds, non-ASCII, an empty name.
        note(
            "tab\there\nnew\rline\0nul\u{7}bell\u{202e}rtl 'single' é 日本",
            Verdict::Denied,
            "",
            "ü\u{1b}[31m",
            &["seccompProfile_restricted", "capabilities_restricted"],
        ),
        // A user name that ends like an unverified-owner mention.
        note(
            "p",
            Verdict::Denied,
            "web",
            "x [unverified owner: y]",
            &["c"],
        ),
    ];
    for written in shapes {
        let text = written.format();
        assert!(text.len() <= MAX_NOTE_BYTES, "{text}");
        assert_eq!(
            ViolationNote::parse(&text),
            Some(written.clone()),
            "{text:?}"
        );
        // An unverified-owner mention after it changes nothing.
        let mentioned = with_unverified_owner(&text, "ReplicaSet", "web \"]");
        assert_eq!(
            ViolationNote::parse(&mentioned),
            Some(written),
            "{mentioned:?}"
        );
    }
}

#[test]
fn a_cut_note_keeps_the_checks_that_fit() {
    let checks: Vec<String> = (0..120).map(|i| format!("check{i}")).collect();
    let refs: Vec<&str> = checks.iter().map(String::as_str).collect();
    let text = note("p", Verdict::Denied, "web-1", "bob", &refs).format();
    assert_eq!(text.len(), MAX_NOTE_BYTES);
    assert!(text.ends_with("..."), "{text}");
    let parsed = ViolationNote::parse(&text).expect("parses");
    assert_eq!(parsed.user, "bob");
    assert_eq!(
        parsed.checks[..3],
        owned(&["check0", "check1", "check2"])[..]
    );
    assert!(parsed.checks.last().is_some_and(|c| c.ends_with("...")));
    assert!(parsed.checks.len() < 120);
}

#[test]
fn the_mention_names_the_claim_and_always_fits() {
    assert_eq!(
        with_unverified_owner("n", "ReplicaSet", "web"),
        "n [unverified owner: ReplicaSet \"web\"]"
    );
    let long = "n".repeat(MAX_NOTE_BYTES);
    let mentioned = with_unverified_owner(&long, "ReplicaSet", "web");
    assert_eq!(mentioned.len(), MAX_NOTE_BYTES);
    assert!(mentioned.ends_with("... [unverified owner: ReplicaSet \"web\"]"));
}

#[test]
fn a_mutation_note_is_not_read_as_a_violation() {
    let text = mutation_note("p", "pods", "web", "bob", "runAsNonRoot");
    assert_eq!(
        text,
        "policy \"p\" mutated pods \"web\" for bob: set runAsNonRoot"
    );
    assert_eq!(ViolationNote::parse(&text), None);
    let long = mutation_note("p", "pods", "web", "bob", &"f, ".repeat(1000));
    assert_eq!(long.len(), MAX_NOTE_BYTES);
}

#[test]
fn other_shapes_are_refused() {
    for other in [
        "",
        "policy \"p\" mutated pods \"web\" for bob: set runAsNonRoot",
        "policy \"unterminated denied",
        "Back-off restarting failed container",
        // Each part missing or malformed in turn.
        "policy p denied CREATE of pods \"web\" by bob: c",
        "policy \"p\" refused CREATE of pods \"web\" by bob: c",
        "policy \"p\" denied  of pods \"web\" by bob: c",
        "policy \"p\" denied CREATE NOW of pods \"web\" by bob: c",
        "policy \"p\" denied CREATE of  \"web\" by bob: c",
        "policy \"p\" denied CREATE of pods web by bob: c",
        "policy \"p\" denied CREATE of pods \"web\" for bob: c",
        "policy \"p\" denied CREATE of pods \"web\" by bob",
        // Escapes that name no character, or never end.
        "policy \"\\u{110000}\" denied CREATE of pods \"web\" by bob: c",
        "policy \"\\u{zz}\" denied CREATE of pods \"web\" by bob: c",
        "policy \"\\u(41)\" denied CREATE of pods \"web\" by bob: c",
        "policy \"\\u{41",
        "policy \"\\",
    ] {
        assert_eq!(ViolationNote::parse(other), None, "{other:?}");
    }
}

#[test]
fn split_debug_string_unescapes() {
    let quoted = format!("{:?} rest", "a\"b\\c\nd\u{7}é");
    assert_eq!(
        split_debug_string(&quoted),
        Some(("a\"b\\c\nd\u{7}é".to_owned(), " rest"))
    );
}
