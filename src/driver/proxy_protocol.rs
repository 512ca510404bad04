//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer sends before the client's bytes to say who the client is.
//!
//! Behind a load balancer every connection comes from the balancer; with
//! `--proxy-protocol` the balancer names the client in a header first:
//!
//! ```text
//! PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n        (version 1, text)
//! \r\n\r\n\0\r\nQUIT\n \x21 \x11 \0\x0c <addresses, ports>  (version 2, binary)
//! ```
//!
//! That address is then the client's for everything that asks: the access
//! log, the password gate's hold-offs, the status page's loopback rule. Only
//! peers in `--trusted-proxy` may send one (anyone else could claim to be
//! anyone): others are closed at once, and so is a trusted peer whose first
//! bytes are not a valid header. The header comes before TLS.
//!
//! [`parse`] is the whole protocol, sans I/O. The drivers take exactly the
//! header's bytes off the socket and leave the rest to the session: the loop
//! peeks without consuming ([`take_without_blocking`]), a blocking thread reads
//! a byte at a time until the header says it is complete ([`take_blocking`]).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 header, `\r\n` included (the specification's bound).
const V1_MAX: usize = 107;
/// Version 2's signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2's fixed part: the signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The longest version 2 header accepted: addresses and a generous room for
/// the TLVs cloud balancers add (AWS and Google send well under a hundred
/// bytes of them).
const V2_MAX: usize = V2_FIXED + 2048;
/// What one peek takes: enough for any version 1 header and most version 2.
const PEEK: usize = 536;

/// What the bytes so far are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The start of a header: more bytes are needed.
    Incomplete,
    /// A header of `length` bytes, naming `client` (`None`: the balancer's
    /// own connection, a health check, or an address family that is not IP).
    Complete {
        length: usize,
        client: Option<SocketAddr>,
    },
    /// Not a PROXY header: the connection is closed.
    Invalid(&'static str),
}

/// Reads a PROXY header from the start of `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    if starts_like(bytes, b"PROXY ") {
        return parse_v1(bytes);
    }
    if starts_like(bytes, V2_SIGNATURE) {
        return parse_v2(bytes);
    }
    Parsed::Invalid("no PROXY header")
}

/// Whether `bytes` and `prefix` agree as far as both go.
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.iter().zip(prefix).all(|(a, b)| a == b)
}

fn parse_v1(bytes: &[u8]) -> Parsed {
    let window = bytes.get(..bytes.len().min(V1_MAX)).unwrap_or_default();
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        return match bytes.len() >= V1_MAX {
            true => Parsed::Invalid("PROXY line too long"),
            false => Parsed::Incomplete,
        };
    };
    let Some(line) = bytes.get(..end).and_then(|l| std::str::from_utf8(l).ok()) else {
        return Parsed::Invalid("PROXY line is not text");
    };
    let fields: Vec<&str> = line.split(' ').collect();
    let client = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            _destination,
            port,
            _,
        ] => {
            let Ok(ip) = source.parse::<IpAddr>() else {
                return Parsed::Invalid("PROXY line: a bad source address");
            };
            if ip.is_ipv4() != (*family == "TCP4") {
                return Parsed::Invalid("PROXY line: the address is not of its family");
            }
            let Some(port) = decimal_port(port) else {
                return Parsed::Invalid("PROXY line: a bad source port");
            };
            Some(SocketAddr::new(ip, port))
        }
        _ => return Parsed::Invalid("PROXY line: not TCP4, TCP6 or UNKNOWN with its fields"),
    };
    Parsed::Complete {
        length: end + 2,
        client,
    }
}

/// A port as version 1 writes it: 1 to 5 digits, no sign, at most 65535.
fn decimal_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

fn parse_v2(bytes: &[u8]) -> Parsed {
    let Some(fixed) = bytes.get(..V2_FIXED) else {
        return Parsed::Incomplete;
    };
    let (version_command, family, length) = match fixed {
        [.., vc, fam, high, low] => (*vc, *fam, usize::from(u16::from_be_bytes([*high, *low]))),
        _ => return Parsed::Incomplete,
    };
    if version_command >> 4 != 2 {
        return Parsed::Invalid("PROXY version 2 header of another version");
    }
    let total = V2_FIXED + length;
    if total > V2_MAX {
        return Parsed::Invalid("PROXY version 2 header too long");
    }
    let Some(body) = bytes.get(V2_FIXED..total) else {
        return Parsed::Incomplete;
    };
    let client = match (version_command & 0x0f, family) {
        // LOCAL: the balancer speaking for itself (a health check).
        (0x0, _) => None,
        // PROXY over TCP/IPv4.
        (0x1, 0x11) => match body {
            [a, b, c, d, _, _, _, _, high, low, ..] => Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
                u16::from_be_bytes([*high, *low]),
            )),
            _ => return Parsed::Invalid("PROXY version 2 addresses cut short"),
        },
        // PROXY over TCP/IPv6.
        (0x1, 0x21) => match (body.get(..16), body.get(32..34)) {
            (Some(source), Some([high, low])) => {
                let mut octets = [0u8; 16];
                octets.iter_mut().zip(source).for_each(|(o, s)| *o = *s);
                Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(octets)),
                    u16::from_be_bytes([*high, *low]),
                ))
            }
            _ => return Parsed::Invalid("PROXY version 2 addresses cut short"),
        },
        // Unspecified, UDP or Unix: the connection is still the balancer's.
        (0x1, _) => None,
        _ => return Parsed::Invalid("PROXY version 2 header with an unknown command"),
    };
    Parsed::Complete {
        length: total,
        client,
    }
}

/// How taking a header from a non-blocking socket went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Not all of it has arrived: wait until the socket is readable again.
    Waiting,
    /// The header is off the socket; the client it names, if any.
    Done(Option<SocketAddr>),
    /// No valid header: close the connection.
    Refused(&'static str),
}

/// Takes the header off `socket` if it has all arrived, consuming nothing
/// else: it is peeked at, and exactly its length read. Errors are the
/// socket's (`WouldBlock` among them).
pub(crate) fn take_without_blocking(socket: &mut mio::net::TcpStream) -> io::Result<Taken> {
    let mut buffer = [0u8; PEEK];
    let seen = socket.peek(&mut buffer)?;
    let mut parsed = parse(buffer.get(..seen).unwrap_or_default());
    let mut large = Vec::new();
    if parsed == Parsed::Incomplete && seen == PEEK {
        // A version 2 header longer than one peek: look at all of it.
        large.resize(V2_MAX, 0);
        let seen = socket.peek(&mut large)?;
        parsed = parse(large.get(..seen).unwrap_or_default());
    }
    match parsed {
        Parsed::Incomplete if seen == 0 => Ok(Taken::Refused("closed before its PROXY header")),
        Parsed::Incomplete => Ok(Taken::Waiting),
        Parsed::Invalid(why) => Ok(Taken::Refused(why)),
        Parsed::Complete { length, client } => {
            let mut header = vec![0u8; length];
            socket.read_exact(&mut header)?;
            Ok(Taken::Done(client))
        }
    }
}

/// Reads the header off a blocking `socket`, a byte at a time so that not
/// one byte after it is taken (its read timeout bounds the wait). `Ok(None)`:
/// a header naming no client.
pub(crate) fn take_blocking(socket: &mut impl Read) -> io::Result<Option<SocketAddr>> {
    let mut header = Vec::with_capacity(V1_MAX);
    loop {
        match parse(&header) {
            Parsed::Complete { client, .. } => return Ok(client),
            Parsed::Invalid(why) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            Parsed::Incomplete => {}
        }
        // Once version 2's length is known, the rest in one read.
        let wanted = match header.get(..V2_FIXED) {
            Some([.., high, low]) if header.starts_with(V2_SIGNATURE) => {
                let total = V2_FIXED + usize::from(u16::from_be_bytes([*high, *low]));
                total.saturating_sub(header.len()).max(1)
            }
            _ => 1,
        };
        let start = header.len();
        header.resize(start + wanted, 0);
        let Some(room) = header.get_mut(start..) else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        socket.read_exact(room)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.push(0x20 | command);
        header.push(family);
        header.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        header.extend_from_slice(body);
        header
    }

    fn client(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn version_1_names_the_client() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(line),
            Parsed::Complete {
                length: 44,
                client: client("203.0.113.7:51234")
            }
        );
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 1 443\r\n";
        assert_eq!(
            parse(line),
            Parsed::Complete {
                length: line.len(),
                client: client("[2001:db8::7]:1")
            }
        );
        let unknown = b"PROXY UNKNOWN whatever follows\r\n";
        assert_eq!(
            parse(unknown),
            Parsed::Complete {
                length: unknown.len(),
                client: None
            }
        );
    }

    #[test]
    fn version_1_is_incomplete_until_its_line_ends_and_refused_if_bad() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
        for cut in 0..line.len() - 1 {
            assert_eq!(parse(&line[..cut]), Parsed::Incomplete, "{cut}");
        }
        let bad: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",
            b"PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n",
            b"PROXY TCP6 203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.777 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 2\r\n",
            b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 \xff 192.0.2.1 1 2\r\n",
            b"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
        ];
        for line in bad {
            assert!(
                matches!(parse(line), Parsed::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let endless = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
        assert_eq!(parse(&endless), Parsed::Invalid("PROXY line too long"));
    }

    #[test]
    fn version_2_names_the_client() {
        let ipv4 = [203, 0, 113, 7, 192, 0, 2, 1, 0xc8, 0x22, 0x01, 0xbb];
        let header = v2(1, 0x11, &ipv4);
        assert_eq!(
            parse(&[header.as_slice(), b"GET /"].concat()),
            Parsed::Complete {
                length: 28,
                client: client("203.0.113.7:51234")
            }
        );
        let mut ipv6 = vec![0u8; 36];
        ipv6[..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        ipv6[32..34].copy_from_slice(&443u16.to_be_bytes());
        // With a TLV after the addresses, which is skipped.
        ipv6.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        assert_eq!(
            parse(&v2(1, 0x21, &ipv6)),
            Parsed::Complete {
                length: 16 + 40,
                client: client("[2001:db8::7]:443")
            }
        );
        let local = v2(0, 0x00, &[]);
        assert_eq!(
            parse(&local),
            Parsed::Complete {
                length: 16,
                client: None
            },
            "a health check"
        );
        let unix = v2(1, 0x31, &[0u8; 216]);
        assert_eq!(
            parse(&unix),
            Parsed::Complete {
                length: 232,
                client: None
            }
        );
    }

    #[test]
    fn version_2_is_incomplete_until_its_length_and_refused_if_bad() {
        let header = v2(1, 0x11, &[203, 0, 113, 7, 192, 0, 2, 1, 0, 1, 0, 2]);
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), Parsed::Incomplete, "{cut}");
        }
        let mut wrong_version = header.clone();
        wrong_version[12] = 0x11;
        assert!(matches!(parse(&wrong_version), Parsed::Invalid(_)));
        let mut wrong_command = header.clone();
        wrong_command[12] = 0x2f;
        assert!(matches!(parse(&wrong_command), Parsed::Invalid(_)));
        assert!(matches!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            Parsed::Invalid(_)
        ));
        let mut huge = header;
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            parse(&huge),
            Parsed::Invalid("PROXY version 2 header too long")
        );
    }

    #[test]
    fn a_blocking_read_takes_the_header_and_not_a_byte_more() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\nGET /";
        let mut reader = &line[..];
        assert_eq!(
            take_blocking(&mut reader).unwrap(),
            client("203.0.113.7:51234")
        );
        assert_eq!(reader, b"GET /");
        let header = v2(1, 0x11, &[203, 0, 113, 7, 192, 0, 2, 1, 0, 1, 0, 2]);
        let stream = [header.as_slice(), b"rest"].concat();
        let mut reader = stream.as_slice();
        assert_eq!(take_blocking(&mut reader).unwrap(), client("203.0.113.7:1"));
        assert_eq!(reader, b"rest");
        let mut garbage = &b"GET / HTTP/1.1\r\n"[..];
        assert!(take_blocking(&mut garbage).is_err());
        let mut cut = &b"PROXY TCP4 203.0"[..];
        assert!(take_blocking(&mut cut).is_err(), "the end of the stream");
    }

    proptest::proptest! {
        /// Any bytes: no panic; a complete header was incomplete at every
        /// shorter prefix, and a blocking read takes exactly its length.
        #[test]
        fn any_bytes_parse_consistently(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            v2_start in proptest::prelude::any::<bool>(),
        ) {
            let bytes = match v2_start {
                true => [V2_SIGNATURE.as_slice(), &bytes].concat(),
                false => [b"PROXY ".as_slice(), &bytes].concat(),
            };
            if let Parsed::Complete { length, .. } = parse(&bytes) {
                for cut in 0..length {
                    proptest::prop_assert_eq!(parse(&bytes[..cut]), Parsed::Incomplete);
                }
                let mut reader = bytes.as_slice();
                proptest::prop_assert!(take_blocking(&mut reader).is_ok());
                proptest::prop_assert_eq!(reader.len(), bytes.len() - length);
            } else {
                let mut reader = bytes.as_slice();
                proptest::prop_assert!(take_blocking(&mut reader).is_err());
            }
        }
    }
}
