//! Where an MCP server may connect: its egress profile, and the address blocks the
//! `public` profile keeps out.
//!
//! `public` means the globally reachable internet. Its NetworkPolicy allows `0.0.0.0/0` and
//! `::/0` except every block that IANA's IPv4 and IPv6 Special-Purpose Address Registries mark
//! as not globally reachable (private, loopback, link-local and the cloud metadata endpoint,
//! shared CGNAT space, documentation, benchmarking, translation prefixes…), while the
//! globally reachable blocks nested inside those (`192.0.0.9/32`, `2001:4:112::/48`, …) stay
//! open. A few blocks are excluded beyond the registries, each for a stated reason
//! ([`EXCLUDED_ON_PURPOSE`]). `tests/egress_iana.rs` checks the result against the vendored
//! registries (`tests/fixtures/iana/`).

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much of the network an MCP server may reach, from least to most.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EgressProfile {
    /// Only the server's own `network.egressTo` peers; no DNS.
    None,
    /// DNS, the policy's `gatewayPeers` (an egress proxy) and the server's `egressTo` peers.
    DnsOnly,
    /// All of `dns-only`, and the globally reachable internet.
    #[default]
    Public,
}

impl EgressProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressProfile::None => "none",
            EgressProfile::DnsOnly => "dns-only",
            EgressProfile::Public => "public",
        }
    }
}

/// Blocks IANA's registries mark "Globally Reachable: False" (IPv4 and IPv6), as the
/// smallest list that covers them all: a block inside another listed one is left out
/// (`0.0.0.0/32` is in `0.0.0.0/8`, `255.255.255.255/32` in `240.0.0.0/4`, `2001:2::/48` in
/// `2001::/23`).
const NOT_GLOBALLY_REACHABLE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.2/32",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001:db8::/32",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
];

/// Blocks the registries mark "Globally Reachable: True" inside a block they mark False:
/// they stay open.
const GLOBALLY_REACHABLE_INSIDE: &[&str] = &[
    "192.0.0.9/32",
    "192.0.0.10/32",
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:20::/28",
    "2001:30::/28",
];

/// Excluded although the registries do not mark them "not globally reachable", and why.
pub const EXCLUDED_ON_PURPOSE: &[(&str, &str)] = &[
    (
        "224.0.0.0/4",
        "IPv4 multicast: not a destination an MCP server talks to (multicast registry)",
    ),
    ("ff00::/8", "IPv6 multicast, likewise"),
    (
        "64:ff9b::/96",
        "NAT64: globally reachable, but it reaches any IPv4 address, private ones included",
    ),
    (
        "fec0::/10",
        "deprecated site-local (RFC 3879): still routed inside some networks",
    ),
];

/// A CIDR block as the first address and the prefix length, both families in 128 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    v6: bool,
    start: u128,
    prefix: u8,
}

impl Block {
    fn parse(text: &str) -> Option<Block> {
        let (address, prefix) = text.split_once('/')?;
        let prefix: u8 = prefix.parse().ok()?;
        let (v6, start, bits) = match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (true, u128::from(v6), 128),
        };
        if prefix > bits || start & Self::host_mask(prefix, bits) != 0 {
            return None;
        }
        Some(Block { v6, start, prefix })
    }

    fn bits(self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// The host part of a prefix: the low `bits - prefix` bits set.
    fn host_mask(prefix: u8, bits: u8) -> u128 {
        match bits - prefix {
            128 => u128::MAX,
            host_bits => (1u128 << host_bits) - 1,
        }
    }

    fn last(self) -> u128 {
        self.start | Self::host_mask(self.prefix, self.bits())
    }

    fn contains(self, other: Block) -> bool {
        self.v6 == other.v6 && self.start <= other.start && other.last() <= self.last()
    }

    fn overlaps(self, other: Block) -> bool {
        self.v6 == other.v6 && self.start <= other.last() && other.start <= self.last()
    }

    /// The two halves of a block one bit longer.
    fn halves(self) -> [Block; 2] {
        let prefix = self.prefix + 1;
        let step = 1u128 << (self.bits() - prefix);
        [
            Block { prefix, ..self },
            Block {
                start: self.start + step,
                prefix,
                ..self
            },
        ]
    }

    /// `self` without `hole`, as the fewest blocks (a block is halved only where the hole
    /// cuts it).
    fn without(self, hole: Block) -> Vec<Block> {
        if !self.overlaps(hole) {
            vec![self]
        } else if hole.contains(self) {
            Vec::new()
        } else {
            self.halves()
                .into_iter()
                .flat_map(|half| half.without(hole))
                .collect()
        }
    }

    fn render(self) -> String {
        let address = if self.v6 {
            IpAddr::from(std::net::Ipv6Addr::from(self.start))
        } else {
            // The start of an IPv4 block fits 32 bits by construction (parse checks it).
            IpAddr::from(std::net::Ipv4Addr::from(self.start as u32))
        };
        format!("{address}/{}", self.prefix)
    }
}

fn blocks(list: &[&str]) -> Vec<Block> {
    // The lists are constants of this module; a typo is caught by this module's tests.
    list.iter().filter_map(|text| Block::parse(text)).collect()
}

/// The `except` list of the `public` profile's `0.0.0.0/0` (IPv4) or `::/0` (IPv6) block:
/// the not globally reachable blocks, minus the globally reachable ones inside them, plus
/// the blocks excluded on purpose, in address order.
pub fn public_except(ipv6: bool) -> Vec<String> {
    let holes = blocks(GLOBALLY_REACHABLE_INSIDE);
    let mut excluded: Vec<Block> = blocks(NOT_GLOBALLY_REACHABLE)
        .into_iter()
        .chain(blocks(
            &EXCLUDED_ON_PURPOSE
                .iter()
                .map(|(block, _)| *block)
                .collect::<Vec<_>>(),
        ))
        .filter(|block| block.v6 == ipv6)
        .flat_map(|block| {
            holes.iter().fold(vec![block], |pieces, hole| {
                pieces
                    .into_iter()
                    .flat_map(|piece| piece.without(*hole))
                    .collect()
            })
        })
        .collect();
    excluded.sort();
    excluded.into_iter().map(Block::render).collect()
}

/// Whether an address (`a.b.c.d` or an IPv6 literal) falls in one of `blocks` (CIDR text).
/// For tests and the CLI: checks a block list the way a NetworkPolicy applies it.
pub fn covered_by(address: &str, blocks_text: &[String]) -> bool {
    let Some(address) = Block::parse(&format!(
        "{address}/{}",
        if address.contains(':') { 128 } else { 32 }
    )) else {
        return false;
    };
    blocks_text
        .iter()
        .filter_map(|text| Block::parse(text))
        .any(|block| block.contains(address))
}

/// The parts of `block` (CIDR text) that none of `list` covers, as CIDR text: `[]` when the
/// list covers it all, `[block]` when it covers none of it. `None` if a block does not parse.
/// For checking an except list against a registry, the way a NetworkPolicy applies it.
pub fn uncovered(block: &str, list: &[String]) -> Option<Vec<String>> {
    let block = Block::parse(block)?;
    let holes: Vec<Block> = list
        .iter()
        .map(|text| Block::parse(text))
        .collect::<Option<_>>()?;
    let left = holes.iter().fold(vec![block], |pieces, hole| {
        pieces
            .into_iter()
            .flat_map(|piece| piece.without(*hole))
            .collect()
    });
    Some(left.into_iter().map(Block::render).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_block_parses() {
        for list in [NOT_GLOBALLY_REACHABLE, GLOBALLY_REACHABLE_INSIDE] {
            for block in list {
                assert!(Block::parse(block).is_some(), "{block}");
            }
        }
        for (block, _) in EXCLUDED_ON_PURPOSE {
            assert!(Block::parse(block).is_some(), "{block}");
        }
    }

    #[test]
    fn a_block_with_host_bits_or_a_long_prefix_does_not_parse() {
        assert_eq!(Block::parse("10.0.0.1/8"), None);
        assert_eq!(Block::parse("10.0.0.0/33"), None);
        assert_eq!(Block::parse("::1/129"), None);
        assert_eq!(Block::parse("10.0.0.0"), None);
    }

    /// 192.0.0.0/24 is carved around the two anycast addresses 192.0.0.9 and 192.0.0.10.
    #[test]
    fn the_ipv4_except_list_is_exact() {
        assert_eq!(
            public_except(false),
            [
                "0.0.0.0/8",
                "10.0.0.0/8",
                "100.64.0.0/10",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "172.16.0.0/12",
                "192.0.0.0/29",
                "192.0.0.8/32",
                "192.0.0.11/32",
                "192.0.0.12/30",
                "192.0.0.16/28",
                "192.0.0.32/27",
                "192.0.0.64/26",
                "192.0.0.128/25",
                "192.0.2.0/24",
                "192.88.99.2/32",
                "192.168.0.0/16",
                "198.18.0.0/15",
                "198.51.100.0/24",
                "203.0.113.0/24",
                "224.0.0.0/4",
                "240.0.0.0/4",
            ]
        );
    }

    #[test]
    fn the_ipv6_except_list_is_exact_outside_the_carved_ietf_block() {
        let except = public_except(true);
        let outside: Vec<&str> = except
            .iter()
            .map(String::as_str)
            .filter(|b| !b.starts_with("2001:") || b.starts_with("2001:db8:"))
            .collect();
        assert_eq!(
            outside,
            [
                "::/128",
                "::1/128",
                // ::ffff:0:0/96, written as Go's netip (and so the API server) writes it.
                "::ffff:0.0.0.0/96",
                "64:ff9b::/96",
                "64:ff9b:1::/48",
                "100::/64",
                "100:0:0:1::/64",
                "2001:db8::/32",
                "3fff::/20",
                "5f00::/16",
                "fc00::/7",
                "fe80::/10",
                "fec0::/10",
                "ff00::/8",
            ]
        );
        // 2001::/23 is carved into the fewest blocks around the seven open ones: every
        // block lies inside it and none touches an open one.
        let ietf = Block::parse("2001::/23").expect("block");
        let carved: Vec<Block> = except
            .iter()
            .filter(|b| b.starts_with("2001:") && !b.starts_with("2001:db8:"))
            .filter_map(|b| Block::parse(b))
            .collect();
        assert!(carved.iter().all(|b| ietf.contains(*b)));
        for open in blocks(GLOBALLY_REACHABLE_INSIDE)
            .into_iter()
            .filter(|b| b.v6)
        {
            assert!(
                !carved.iter().any(|b| b.overlaps(open)),
                "{}",
                open.render()
            );
        }
        let covered: u128 = carved.iter().map(|b| b.last() - b.start + 1).sum();
        let open: u128 = blocks(GLOBALLY_REACHABLE_INSIDE)
            .into_iter()
            .filter(|b| b.v6)
            .map(|b| b.last() - b.start + 1)
            .sum();
        assert_eq!(covered + open, ietf.last() - ietf.start + 1);
        // The fewest blocks: no two of them are the halves of one block.
        for pair in carved.windows(2) {
            let parent = Block {
                prefix: pair[0].prefix - 1,
                start: pair[0].start & !Block::host_mask(pair[0].prefix - 1, 128),
                ..pair[0]
            };
            assert_ne!(parent.halves().to_vec(), pair.to_vec(), "mergeable");
        }
    }

    #[test]
    fn addresses_fall_in_or_out_of_the_except_lists() {
        let v4 = public_except(false);
        let v6 = public_except(true);
        for inside in ["169.254.169.254", "10.1.2.3", "0.0.0.0", "255.255.255.255"] {
            assert!(covered_by(inside, &v4), "{inside}");
        }
        for outside in ["192.0.0.9", "192.0.0.10", "8.8.8.8", "1.1.1.1"] {
            assert!(!covered_by(outside, &v4), "{outside}");
        }
        for inside in [
            "::1",
            "fd00::1",
            "fec0::1",
            "2001:2::1",
            "64:ff9b::a00:1",
            "2001::1",
        ] {
            assert!(covered_by(inside, &v6), "{inside}");
        }
        for outside in [
            "2001:4:112::1",
            "2001:1::1",
            "2001:20::1",
            "2606:4700:4700::1111",
        ] {
            assert!(!covered_by(outside, &v6), "{outside}");
        }
    }

    #[test]
    fn profiles_are_ordered_from_least_to_most() {
        assert!(EgressProfile::None < EgressProfile::DnsOnly);
        assert!(EgressProfile::DnsOnly < EgressProfile::Public);
        assert_eq!(EgressProfile::default(), EgressProfile::Public);
        assert_eq!(
            serde_json::to_value(EgressProfile::DnsOnly).expect("serialises"),
            "dns-only"
        );
    }
}
