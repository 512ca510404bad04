//! Address ranges in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a single
//! address): who may see the status page, which peers may speak the PROXY
//! protocol, who may connect at all (`--allow`, `--deny`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, its host bits cleared.
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range. An IPv4 address seen through an IPv6
    /// socket (`::ffff:10.1.2.3`) counts as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                mask(u128::from(ip.to_bits()), 32, self.prefix) == u128::from(network.to_bits())
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                mask(ip.to_bits(), 128, self.prefix) == network.to_bits()
            }
            _ => false,
        }
    }

    /// How many leading bits it fixes: the longer, the narrower the range.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

/// `bits` with all but the top `prefix` of its `width` bits cleared.
fn mask(bits: u128, width: u8, prefix: u8) -> u128 {
    match width.saturating_sub(prefix) {
        host if host >= 128 => 0,
        host => bits >> host << host,
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `192.168.0.0/16`, `fd00::/8`, or one address (`10.0.0.7`, `::1`).
    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an address or a range (try 10.0.0.0/8 or fd00::/8)");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let written: IpAddr = address.parse().map_err(|_| bad())?;
        let width = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(digits) => digits
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        // `::ffff:10.0.0.0/104` is `10.0.0.0/8`, as addresses are compared.
        let ip = written.to_canonical();
        let prefix = match (written.is_ipv6(), ip.is_ipv4()) {
            (true, true) => prefix.checked_sub(96).ok_or_else(bad)?,
            _ => prefix,
        };
        let network = match ip {
            IpAddr::V4(v4) => {
                let bits = mask(u128::from(v4.to_bits()), 32, prefix);
                IpAddr::V4(u32::try_from(bits).map_err(|_| bad())?.into())
            }
            IpAddr::V6(v6) => IpAddr::V6(mask(v6.to_bits(), 128, prefix).into()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_hold_what_their_prefix_says() {
        let private = cidr("10.0.0.0/8");
        assert!(private.contains(ip("10.255.1.2")));
        assert!(!private.contains(ip("11.0.0.1")));
        let host = cidr("192.168.1.7");
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let everyone = cidr("0.0.0.0/0");
        assert!(everyone.contains(ip("203.0.113.9")));
        assert!(
            !everyone.contains(ip("2001:db8::1")),
            "IPv4 ranges hold IPv4 only"
        );
        let v6 = cidr("fd00::/8");
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(cidr("::/0").contains(ip("::1")));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.1.1.1")));
        assert_eq!(cidr("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
        assert!(
            "::ffff:10.0.0.0/64".parse::<Cidr>().is_err(),
            "wider than IPv4"
        );
    }

    #[test]
    fn host_bits_are_cleared_and_shown() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "/8",
            "x",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
