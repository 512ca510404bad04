//! Who may connect at all: `--allow CIDR` and `--deny CIDR`.
//!
//! Of the ranges that hold an address, the longest prefix decides, as a
//! routing table does (and as nginx's `geo` does; its `allow`/`deny` take the
//! first match instead, which makes order matter). A tie between an allow and
//! a deny of the same range is a deny. An address no range holds is let in,
//! unless some `--allow` was given: a list of allowed ranges is a list of who
//! may come, and the denials carve exceptions out of it.
//!
//! ```text
//! --deny 203.0.113.0/24                       everyone but 203.0.113.*
//! --allow 10.0.0.0/8                          only 10.*
//! --allow 10.0.0.0/8 --deny 10.9.0.0/16       10.*, but not 10.9.*
//! --deny 0.0.0.0/0 --allow 192.0.2.7          only 192.0.2.7 (an allow is given: IPv6 too is out)
//! --deny 203.0.113.5 --allow ::/0 --allow 0.0.0.0/0    everyone but 203.0.113.5
//! ```

use std::net::IpAddr;

use crate::cidr::Cidr;

/// The `--allow` and `--deny` ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRules {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

impl AccessRules {
    pub fn new(allow: Vec<Cidr>, deny: Vec<Cidr>) -> AccessRules {
        AccessRules { allow, deny }
    }

    /// Whether there is any rule at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `client` may connect.
    pub fn admits(&self, client: IpAddr) -> bool {
        let longest = |ranges: &[Cidr]| {
            ranges
                .iter()
                .filter(|range| range.contains(client))
                .map(|range| range.prefix())
                .max()
        };
        match (longest(&self.allow), longest(&self.deny)) {
            (Some(allowed), Some(denied)) => allowed > denied,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => self.allow.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AccessRules {
        let parse = |list: &[&str]| list.iter().map(|c| c.parse().unwrap()).collect();
        AccessRules::new(parse(allow), parse(deny))
    }

    fn admits(rules: &AccessRules, ip: &str) -> bool {
        rules.admits(ip.parse().unwrap())
    }

    #[test]
    fn without_rules_everyone_comes() {
        let none = rules(&[], &[]);
        assert!(none.is_empty());
        assert!(admits(&none, "203.0.113.9"));
        assert!(admits(&none, "2001:db8::1"));
    }

    #[test]
    fn denials_alone_keep_out_what_they_name() {
        let r = rules(&[], &["203.0.113.0/24", "2001:db8::/32"]);
        assert!(!admits(&r, "203.0.113.9"));
        assert!(!admits(&r, "2001:db8::1"));
        assert!(admits(&r, "203.0.114.1"));
        assert!(admits(&r, "::1"));
    }

    #[test]
    fn an_allow_list_lets_in_only_what_it_names() {
        let r = rules(&["10.0.0.0/8"], &[]);
        assert!(admits(&r, "10.1.2.3"));
        assert!(!admits(&r, "192.0.2.1"));
        assert!(!admits(&r, "::1"), "IPv6 is not in an IPv4 range");
    }

    #[test]
    fn the_longest_prefix_wins_either_way() {
        let carved = rules(&["10.0.0.0/8"], &["10.9.0.0/16"]);
        assert!(admits(&carved, "10.1.0.1"));
        assert!(!admits(&carved, "10.9.0.1"));
        let pinhole = rules(&["192.0.2.7"], &["0.0.0.0/0"]);
        assert!(admits(&pinhole, "192.0.2.7"));
        assert!(!admits(&pinhole, "192.0.2.8"));
        assert!(
            !admits(&pinhole, "2001:db8::1"),
            "no range holds it, and an allow was given"
        );
        let nested = rules(&["10.9.1.0/24"], &["10.9.0.0/16"]);
        assert!(admits(&nested, "10.9.1.5"), "allowed inside the denial");
        assert!(!admits(&nested, "10.9.2.5"));
    }

    #[test]
    fn a_tie_is_a_denial_and_mapped_addresses_are_ipv4() {
        let tie = rules(&["10.0.0.0/8"], &["10.0.0.0/8"]);
        assert!(!admits(&tie, "10.0.0.1"));
        let r = rules(&[], &["127.0.0.2"]);
        assert!(!admits(&r, "::ffff:127.0.0.2"));
    }
}
