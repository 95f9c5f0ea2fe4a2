//! The `public` egress profile against IANA's Special-Purpose Address Registries, vendored
//! in tests/fixtures/iana/ (they cannot be fetched at test time): every block a registry
//! marks not globally reachable is excluded whole, and every block it marks globally
//! reachable is open whole, except the few excluded on purpose, each with its reason
//! (`mcpguard_core::egress::EXCLUDED_ON_PURPOSE`).

use mcpguard_core::egress::{EXCLUDED_ON_PURPOSE, public_except, uncovered};

const IPV4: &str = include_str!("fixtures/iana/ipv4-special-registry.csv");
const IPV6: &str = include_str!("fixtures/iana/ipv6-special-registry.csv");

/// (block, name, globally reachable: Some(true/false), None for N/A).
fn rows(csv: &str) -> Vec<(String, String, Option<bool>)> {
    csv.lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("Address Block,"))
        .map(|line| {
            let block = line.split(',').next().expect("a block").to_owned();
            let reachable = match line.rsplit(',').next().expect("a last column") {
                "True" => Some(true),
                "False" => Some(false),
                "N/A" => None,
                other => panic!("unexpected Globally Reachable value {other:?} in {line}"),
            };
            let name = line[block.len() + 1..]
                .split(',')
                .next()
                .unwrap_or("")
                .to_owned();
            (block, name, reachable)
        })
        .collect()
}

fn check(csv: &str, ipv6: bool) -> usize {
    let except = public_except(ipv6);
    let rows = rows(csv);
    assert!(rows.len() > 20, "the vendored registry was read");
    // The registries' footnote: a more specific block may say otherwise than the block it
    // lies in (192.0.0.9/32 is globally reachable inside 192.0.0.0/24, which is not).
    let globally_reachable: Vec<String> = rows
        .iter()
        .filter(|(_, _, reachable)| *reachable == Some(true))
        .map(|(block, _, _)| block.clone())
        .collect();
    for (block, name, reachable) in &rows {
        let open = uncovered(block, &except).expect("the block parses");
        match reachable {
            Some(false) => {
                let nested_open: Vec<String> =
                    except.iter().chain(&globally_reachable).cloned().collect();
                assert_eq!(
                    uncovered(block, &nested_open),
                    Some(Vec::new()),
                    "{block} ({name}) is not globally reachable, yet open beyond the globally \
                     reachable blocks inside it: {open:?}"
                );
            }
            Some(true) if EXCLUDED_ON_PURPOSE.iter().any(|(b, _)| b == block) => assert_eq!(
                open,
                Vec::<String>::new(),
                "{block} ({name}) is excluded on purpose"
            ),
            Some(true) => assert_eq!(
                open,
                vec![block.clone()],
                "{block} ({name}) is globally reachable, yet excluded in part"
            ),
            None => {}
        }
    }
    rows.len()
}

#[test]
fn ipv4_blocks_follow_the_registry() {
    assert_eq!(check(IPV4, false), 26);
}

#[test]
fn ipv6_blocks_follow_the_registry() {
    assert_eq!(check(IPV6, true), 25);
}

/// Beyond the registries: the blocks excluded on purpose are excluded, each named with a
/// reason, and an ordinary public address stays open.
#[test]
fn the_extra_exclusions_hold_and_the_internet_stays_open() {
    for (block, reason) in EXCLUDED_ON_PURPOSE {
        let except = public_except(block.contains(':'));
        assert_eq!(
            uncovered(block, &except),
            Some(Vec::new()),
            "{block}: {reason}"
        );
        assert!(!reason.is_empty());
    }
    for (block, ipv6) in [
        ("8.8.8.0/24", false),
        ("1.1.1.1/32", false),
        ("2606:4700::/32", true),
        ("2a00::/12", true),
    ] {
        assert_eq!(
            uncovered(block, &public_except(ipv6)),
            Some(vec![block.to_owned()]),
            "{block}"
        );
    }
}

/// The checker can fail: a list without 10.0.0.0/8 leaves a not globally reachable block
/// open, and a list with 192.0.0.0/24 whole closes two globally reachable anycast addresses.
#[test]
fn a_wrong_except_list_is_caught() {
    let mut missing = public_except(false);
    missing.retain(|b| b != "10.0.0.0/8");
    assert_eq!(
        uncovered("10.0.0.0/8", &missing),
        Some(vec!["10.0.0.0/8".to_owned()])
    );
    let mut whole = public_except(false);
    whole.push("192.0.0.0/24".to_owned());
    assert_eq!(uncovered("192.0.0.9/32", &whole), Some(Vec::new()));
}
