//! The reference library's own vectors (github.com/distribution/reference,
//! `normalize_test.go` and `reference_test.go`), ported to the normalised form the runtime
//! pulls, plus the matching rules built on them.

use super::*;

use InvalidReference::*;

const SHA256_F: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const SHA512_F: &str = "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const DBCC: &str = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

fn name(reference: &str) -> String {
    match ImageRef::parse(reference) {
        Ok(image) => image.name,
        Err(err) => panic!("{reference:?} is valid, got: {err}"),
    }
}

/// `(input, name, tag, digest)`.
fn assert_parses(cases: &[(&str, &str, Option<&str>, Option<&str>)]) {
    for (input, name, tag, digest) in cases {
        assert_eq!(
            ImageRef::parse(input),
            Ok(ImageRef {
                name: (*name).to_owned(),
                tag: tag.map(str::to_owned),
                digest: digest.map(str::to_owned),
            }),
            "{input:?}"
        );
    }
}

fn assert_errors(cases: &[(&str, InvalidReference)]) {
    for (input, expected) in cases {
        assert_eq!(ImageRef::parse(input), Err(*expected), "{input:?}");
    }
}

// ---- normalize_test.go ---------------------------------------------------------------------

#[test]
fn valid_reference_names() {
    // TestValidateReferenceName, validRepoNames: with the name each pulls.
    let cases = [
        ("docker/docker", "docker.io/docker/docker"),
        ("library/debian", "docker.io/library/debian"),
        ("debian", "docker.io/library/debian"),
        ("docker.io/docker/docker", "docker.io/docker/docker"),
        ("docker.io/library/debian", "docker.io/library/debian"),
        ("docker.io/debian", "docker.io/library/debian"),
        ("index.docker.io/docker/docker", "docker.io/docker/docker"),
        ("index.docker.io/library/debian", "docker.io/library/debian"),
        ("index.docker.io/debian", "docker.io/library/debian"),
        (
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/docker/docker",
        ),
        (
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/library/debian",
        ),
        ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian"),
        ("192.168.0.1", "docker.io/library/192.168.0.1"),
        ("192.168.0.1:80", "docker.io/library/192.168.0.1"),
        ("192.168.0.1:8/debian", "192.168.0.1:8/debian"),
        ("192.168.0.2:25000/debian", "192.168.0.2:25000/debian"),
        (
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        ),
        ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker"),
        (
            "[fc00::1]:5000/docker/docker",
            "[fc00::1]:5000/docker/docker",
        ),
        (
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        ),
        (
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        ),
        // A capital letter makes the first component a host.
        ("Docker/docker", "docker/docker"),
        ("DOCKER/docker", "docker/docker"),
    ];
    for (input, expected) in cases {
        assert_eq!(name(input), expected, "{input:?}");
    }
}

#[test]
fn invalid_reference_names() {
    // TestValidateReferenceName, invalidRepoNames.
    assert_errors(&[
        ("https://github.com/docker/docker", Format),
        ("docker/Docker", Uppercase),
        ("-docker", Format),
        ("-docker/docker", Format),
        ("-docker.io/docker/docker", Format),
        ("docker///docker", Format),
        ("docker.io/docker/Docker", Uppercase),
        ("docker.io/docker///docker", Format),
        ("[fc00::1]", Format),
        ("[fc00::1]:5000", Format),
        ("fc00::1:5000/debian", Format),
        ("[fe80::1%eth0]:5000/debian", Format),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", Format),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            HexIdentifier,
        ),
    ]);
}

#[test]
fn remote_names() {
    // TestValidateRemoteName.
    for valid in [
        "docker/docker",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ] {
        assert!(ImageRef::parse(valid).is_ok(), "{valid:?}");
    }
    let too_long = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker";
    assert_errors(&[
        ("docker/Docker", Uppercase),
        ("docker///docker", Format),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            HexIdentifier,
        ),
        ("-docker/docker", Format),
        ("docker-/docker", Format),
        ("-docker-/docker", Format),
        ("____/____", Format),
        ("_docker/_docker", Format),
        ("dock..er/docker", Format),
        ("dock_.er/docker", Format),
        ("dock-.er/docker", Format),
        ("docker/", Format),
        (too_long, PathTooLong),
    ]);
}

#[test]
fn repository_info() {
    // TestParseRepositoryInfo: the familiar, full and ambiguous spellings of one repository
    // all name it; a capitalised first component is the host (lower-cased here, as DNS is).
    let cases: &[(&[&str], &str)] = &[
        (
            &["fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar"],
            "docker.io/fooo/bar",
        ),
        (
            &["ubuntu", "docker.io/library/ubuntu", "library/ubuntu"],
            "docker.io/library/ubuntu",
        ),
        (
            &["nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu"],
            "docker.io/nonlibrary/ubuntu",
        ),
        (
            &["other/library", "docker.io/other/library"],
            "docker.io/other/library",
        ),
        (
            &["127.0.0.1:8000/private/moonbase"],
            "127.0.0.1:8000/private/moonbase",
        ),
        (
            &["127.0.0.1:8000/privatebase"],
            "127.0.0.1:8000/privatebase",
        ),
        (
            &["example.com/private/moonbase"],
            "example.com/private/moonbase",
        ),
        (&["example.com/privatebase"], "example.com/privatebase"),
        (
            &["example.com:8000/private/moonbase"],
            "example.com:8000/private/moonbase",
        ),
        (
            &["example.com:8000/privatebasee"],
            "example.com:8000/privatebasee",
        ),
        (
            &[
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
            ],
            "docker.io/library/ubuntu-12.04-base",
        ),
        (
            &["foo", "docker.io/library/foo", "docker.io/foo"],
            "docker.io/library/foo",
        ),
        (
            &["library/foo/bar", "docker.io/library/foo/bar"],
            "docker.io/library/foo/bar",
        ),
        (
            &["store/foo/bar", "docker.io/store/foo/bar"],
            "docker.io/store/foo/bar",
        ),
        (&["Foo/bar"], "foo/bar"),
        (&["FOO/bar"], "foo/bar"),
    ];
    for (spellings, expected) in cases {
        for spelling in *spellings {
            assert_eq!(name(spelling), *expected, "{spelling:?}");
        }
    }
}

#[test]
fn reference_with_tag_and_digest() {
    // TestParseReferenceWithTagAndDigest.
    let digest = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    assert_parses(&[(
        &format!("busybox:latest@{digest}"),
        "docker.io/library/busybox",
        Some("latest"),
        Some(digest),
    )]);
    // TestInvalidReferenceComponents.
    assert_errors(&[("-foo", Format)]);
}

#[test]
fn any_reference_that_names_an_image() {
    // TestParseAnyReference, the named cases (the kubelet parses an image as a name, so an
    // image ID is refused rather than read as a digest).
    let digest = format!("sha256:{DBCC}");
    assert_parses(&[
        ("redis", "docker.io/library/redis", None, None),
        (
            "redis:latest",
            "docker.io/library/redis",
            Some("latest"),
            None,
        ),
        (
            "docker.io/library/redis:latest",
            "docker.io/library/redis",
            Some("latest"),
            None,
        ),
        (
            &format!("redis@{digest}"),
            "docker.io/library/redis",
            None,
            Some(&digest),
        ),
        (
            &format!("docker.io/library/redis@{digest}"),
            "docker.io/library/redis",
            None,
            Some(&digest),
        ),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp", None, None),
        (
            "dmcgowan/myapp:latest",
            "docker.io/dmcgowan/myapp",
            Some("latest"),
            None,
        ),
        (
            "docker.io/mcgowan/myapp:latest",
            "docker.io/mcgowan/myapp",
            Some("latest"),
            None,
        ),
        (
            &format!("dmcgowan/myapp@{digest}"),
            "docker.io/dmcgowan/myapp",
            None,
            Some(&digest),
        ),
        (
            &DBCC[..63],
            &format!("docker.io/library/{}", &DBCC[..63]),
            None,
            None,
        ),
        ("dbcc1", "docker.io/library/dbcc1", None, None),
        // As a name, `sha256:<hex>` is the image `sha256` with a 64-character tag.
        (&digest, "docker.io/library/sha256", Some(DBCC), None),
    ]);
    assert_errors(&[(DBCC, HexIdentifier)]);
}

#[test]
fn normalized_split_hostname() {
    // TestNormalizedSplitHostname.
    for (input, expected) in [
        ("test.com/foo", "test.com/foo"),
        ("test_com/foo", "docker.io/test_com/foo"),
        ("docker/migrator", "docker.io/docker/migrator"),
        ("test.com:8080/foo", "test.com:8080/foo"),
        ("test-com:8080/foo", "test-com:8080/foo"),
        ("foo", "docker.io/library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com/foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
        ("docker.io/foo", "docker.io/library/foo"),
        ("docker.io/library/foo", "docker.io/library/foo"),
        ("docker.io/library/foo/bar", "docker.io/library/foo/bar"),
    ] {
        assert_eq!(name(input), expected, "{input:?}");
    }
}

// ---- reference_test.go ---------------------------------------------------------------------

#[test]
fn reference_parse() {
    // TestReferenceParse, the valid inputs, normalised.
    let long_path = format!("{}a", "a/".repeat(127));
    let long_name = format!("docker.io/{long_path}");
    let max_path = "a".repeat(255);
    assert_parses(&[
        ("test_com", "docker.io/library/test_com", None, None),
        (
            "test.com:tag",
            "docker.io/library/test.com",
            Some("tag"),
            None,
        ),
        (
            "test.com:5000",
            "docker.io/library/test.com",
            Some("5000"),
            None,
        ),
        ("test.com/repo:tag", "test.com/repo", Some("tag"), None),
        ("test:5000/repo", "test:5000/repo", None, None),
        ("test:5000/repo:tag", "test:5000/repo", Some("tag"), None),
        (
            &format!("test:5000/repo@{SHA256_F}"),
            "test:5000/repo",
            None,
            Some(SHA256_F),
        ),
        (
            &format!("test:5000/repo:tag@{SHA256_F}"),
            "test:5000/repo",
            Some("tag"),
            Some(SHA256_F),
        ),
        (
            "lowercase:Uppercase",
            "docker.io/library/lowercase",
            Some("Uppercase"),
            None,
        ),
        (
            &format!("{long_path}:tag-puts-this-over-max"),
            &long_name,
            Some("tag-puts-this-over-max"),
            None,
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux",
            "sub-dom1.foo.com/bar/baz/quux",
            None,
            None,
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com/bar/baz/quux",
            Some("some-long-tag"),
            None,
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app",
            Some("test.example.com"),
            None,
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage",
            Some("xn--n3h.com"),
            None,
        ),
        (
            &format!("xn--7o8h.com/myimage:xn--7o8h.com@{SHA512_F}"),
            "xn--7o8h.com/myimage",
            Some("xn--7o8h.com"),
            Some(SHA512_F),
        ),
        (
            "foo_bar.com:8080",
            "docker.io/library/foo_bar.com",
            Some("8080"),
            None,
        ),
        (
            "foo/foo_bar.com:8080",
            "docker.io/foo/foo_bar.com",
            Some("8080"),
            None,
        ),
        ("192.168.1.1", "docker.io/library/192.168.1.1", None, None),
        (
            "192.168.1.1:tag",
            "docker.io/library/192.168.1.1",
            Some("tag"),
            None,
        ),
        (
            "192.168.1.1:5000",
            "docker.io/library/192.168.1.1",
            Some("5000"),
            None,
        ),
        ("192.168.1.1/repo", "192.168.1.1/repo", None, None),
        ("192.168.1.1:5000/repo", "192.168.1.1:5000/repo", None, None),
        (
            "192.168.1.1:5000/repo:5050",
            "192.168.1.1:5000/repo",
            Some("5050"),
            None,
        ),
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo", None, None),
        (
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
            "[2001:db8:1:2:3:4:5:6]/repo",
            Some("tag"),
            None,
        ),
        (
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000/repo",
            None,
            None,
        ),
        (
            "[2001:db8::1]:5000/repo:tag",
            "[2001:db8::1]:5000/repo",
            Some("tag"),
            None,
        ),
        (
            &format!("[2001:db8::1]:5000/repo@{SHA256_F}"),
            "[2001:db8::1]:5000/repo",
            None,
            Some(SHA256_F),
        ),
        (
            &format!("[2001:db8::1]:5000/repo:tag@{SHA256_F}"),
            "[2001:db8::1]:5000/repo",
            Some("tag"),
            Some(SHA256_F),
        ),
        (
            "[2001:db8::]:5000/repo",
            "[2001:db8::]:5000/repo",
            None,
            None,
        ),
        ("[::1]:5000/repo", "[::1]:5000/repo", None, None),
        (
            &format!("example.com/{max_path}:tag"),
            &format!("example.com/{max_path}"),
            Some("tag"),
            None,
        ),
    ]);
}

#[test]
fn reference_parse_errors() {
    // TestReferenceParse, the invalid inputs, with the library's errors.
    assert_errors(&[
        ("", Empty),
        (":justtag", Format),
        (&format!("@{SHA256_F}"), Format),
        (
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            DigestLength,
        ),
        (
            "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            DigestUnsupported,
        ),
        ("Uppercase:tag", Uppercase),
        ("test:5000/Uppercase/lowercase:tag", Uppercase),
        (&format!("{}a:tag", "a/".repeat(128)), PathTooLong),
        (&format!("domain/{}:tag", "a".repeat(256)), PathTooLong),
        ("aa/asdf$$^/aa", Format),
        ("[2001:db8::1]", Format),
        ("[2001:db8::1]:5000", Format),
        ("[2001:db8::1]:tag", Format),
        ("[fe80::1%eth0]:5000/repo", Format),
        ("[fe80::1%@invalidzone]:5000/repo", Format),
    ]);
}

#[test]
fn digests_must_be_registered_exact_and_lower_case() {
    let upper = SHA256_F.replace('f', "F");
    assert_errors(&[
        // The go-digest rules the reference library applies after its grammar.
        (&format!("repo@{upper}"), DigestFormat),
        (
            &format!("repo:1@{}", SHA256_F.replace("sha256", "SHA256")),
            DigestFormat,
        ),
        (&format!("repo@{SHA256_F}f"), DigestLength),
        (&format!("repo@sha384:{}", "f".repeat(64)), DigestLength),
        // Under the grammar's 32 hex digits, or not hex: not a digest at all.
        ("repo@sha256:abc", Format),
        (&format!("repo@sha256:{}", "g".repeat(64)), Format),
        (&format!("repo@{SHA256_F}@{SHA256_F}"), Format),
    ]);
    let sha384 = format!("sha384:{}", "0".repeat(96));
    assert_parses(&[(
        &format!("repo@{sha384}"),
        "docker.io/library/repo",
        None,
        Some(&sha384),
    )]);
}

// ---- hosts ---------------------------------------------------------------------------------

#[test]
fn a_capitalised_first_component_is_a_host_not_docker_hub() {
    assert_parses(&[
        ("Evil/x:1", "evil/x", Some("1"), None),
        ("Mcp/fetch", "mcp/fetch", None, None),
        (
            "GHCR.io/github/github-mcp-server",
            "ghcr.io/github/github-mcp-server",
            None,
            None,
        ),
    ]);
    // Only the first component: a capital anywhere in the path is refused.
    assert_errors(&[("Foo/Bar", Uppercase), ("mcp/Fetch", Uppercase)]);
}

#[test]
fn a_first_component_that_is_a_path_but_no_host_name_is_still_its_host() {
    // `a_b.c` has a `.` so it is split off as the host; no host name has `_`, but the
    // grammar reads the whole name as a path, and the runtime pulls from `a_b.c`.
    assert_parses(&[("a_b.c/x:1", "a_b.c/x", Some("1"), None)]);
    assert_errors(&[("a_b.c/X", Uppercase), ("-a.c/x", Format)]);
}

#[test]
fn docker_hub_aliases_fold_into_docker_io() {
    assert_eq!(
        name("index.docker.io/mcp/fetch:latest"),
        "docker.io/mcp/fetch"
    );
    assert_eq!(
        name("registry-1.docker.io/mcp/fetch"),
        "docker.io/mcp/fetch"
    );
    assert_eq!(name("docker.io/nginx"), "docker.io/library/nginx");
}

#[test]
fn registries_with_ports_keep_the_port_and_the_tag_is_split_after_it() {
    let digest = SHA256_F;
    assert_parses(&[
        (
            &format!("localhost:5000/tools/mcp:v1@{digest}"),
            "localhost:5000/tools/mcp",
            Some("v1"),
            Some(digest),
        ),
        ("localhost/tools/mcp", "localhost/tools/mcp", None, None),
        ("registry.local:5000/x", "registry.local:5000/x", None, None),
    ]);
}

#[test]
fn tags_are_words_of_at_most_128_characters() {
    let longest = format!("a{}", "-".repeat(127));
    assert_parses(&[(
        &format!("x:{longest}"),
        "docker.io/library/x",
        Some(&longest),
        None,
    )]);
    assert_errors(&[
        (&format!("x:{longest}-"), Format),
        ("x:-a", Format),
        ("x:.a", Format),
        ("x:a/b", Format),
        ("x:", Format),
    ]);
}

// ---- matching ------------------------------------------------------------------------------

#[test]
fn prefixes_match_only_at_path_boundaries() {
    let image = ImageRef::parse("docker.io/mcp/fetch:1").expect("valid");
    assert!(image.is_under(&normalise_prefix("docker.io/mcp")));
    assert!(image.is_under(&normalise_prefix("mcp")));
    assert!(image.is_under(&normalise_prefix("docker.io")));
    assert!(image.is_under(&normalise_prefix("index.docker.io/mcp/")));
    let under = |image: &str, prefix: &str| {
        ImageRef::parse(image)
            .expect("valid")
            .is_under(&normalise_prefix(prefix))
    };
    assert!(!under("mcpevil/fetch", "docker.io/mcp"));
    assert!(!under("ghcr.io.evil.com/x", "ghcr.io"));
    assert!(under("GHCR.io/github/github-mcp-server", "ghcr.io/"));
    assert!(under("nginx", "docker.io/library"));
}

#[test]
fn a_capitalised_host_never_matches_docker_hub() {
    let under = |image: &str, prefix: &str| {
        ImageRef::parse(image)
            .expect("valid")
            .is_under(&normalise_prefix(prefix))
    };
    for prefix in ["docker.io", "docker.io/mcp", "mcp", "docker.io/evil"] {
        assert!(!under("Evil/x:1", prefix), "Evil/x:1 under {prefix}");
        assert!(!under("Mcp/fetch", prefix), "Mcp/fetch under {prefix}");
    }
    // A rule names such a host the same way an image does.
    assert_eq!(normalise_prefix("Evil"), "evil");
    assert!(under("Evil/x:1", "Evil"));
    assert!(under("Evil/x:1", "Evil/x"));
    assert!(
        !under("Evil/x:1", "evil/x"),
        "the rule `evil/x` is Docker Hub's"
    );
    assert!(
        !under("evil/x:1", "Evil"),
        "lower-case `evil/x` is on Docker Hub"
    );
}

#[test]
fn prefixes_normalise_like_images() {
    for (prefix, expected) in [
        ("ghcr.io", "ghcr.io"),
        ("ghcr.io/", "ghcr.io"),
        ("GHCR.IO/github", "ghcr.io/github"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io/mcp", "docker.io/mcp"),
        ("mcp", "docker.io/mcp"),
        ("mcp/fetch", "docker.io/mcp/fetch"),
        ("localhost", "localhost"),
        ("localhost:5000/tools", "localhost:5000/tools"),
    ] {
        assert_eq!(normalise_prefix(prefix), expected, "{prefix:?}");
    }
}

#[test]
fn long_images_are_quoted_cut() {
    assert_eq!(quoted("mcp/fetch"), "\"mcp/fetch\"");
    let long = "é".repeat(600);
    let shown = quoted(&long);
    assert_eq!(shown, format!("{:?}...", "é".repeat(512)));
}
