//! Which names a site answers to, and a `Host` (or SNI name) in the one
//! spelling they are compared in.

/// `host` as sites are matched on it: lower case, without a port or a
/// trailing dot (`Example.ORG.:443` is `example.org`; `[::1]:80` is `[::1]`).
pub(crate) fn normalise(host: &str) -> String {
    let without_port = if host.starts_with('[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// One entry of a site's `hosts`: a name, or `*.name` for every name under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Exact(String),
    /// `*.example.org`, kept as `.example.org`: any depth under it, not the
    /// name itself (as nginx and TLS wildcards have it).
    Under(String),
}

impl HostPattern {
    /// Reads one `hosts` entry; an error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<HostPattern, String> {
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = normalise(name);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':')
            });
        if !valid || name.contains('*') {
            return Err(format!(
                "\"{text}\" is not a host name (a name, or *.name for every name under it)"
            ));
        }
        Ok(match wildcard {
            true => HostPattern::Under(format!(".{name}")),
            false => HostPattern::Exact(name),
        })
    }

    /// Whether `host` (normalised) is one of its names.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Under(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Under(suffix) => write!(f, "*{suffix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_port_and_trailing_dot_do_not_matter() {
        assert_eq!(normalise("Example.ORG"), "example.org");
        assert_eq!(normalise("example.org:8443"), "example.org");
        assert_eq!(normalise("example.org."), "example.org");
        assert_eq!(normalise("example.org.:443"), "example.org");
        assert_eq!(normalise("[::1]:80"), "[::1]");
        assert_eq!(normalise("[::1]"), "[::1]");
    }

    #[test]
    fn wildcards_cover_names_under_them_only() {
        let under = HostPattern::parse("*.example.org").unwrap();
        assert!(under.matches("blog.example.org"));
        assert!(under.matches("a.b.example.org"));
        assert!(!under.matches("example.org"));
        assert!(!under.matches("badexample.org"));
        let exact = HostPattern::parse("Example.org.").unwrap();
        assert!(exact.matches("example.org"));
        assert!(!exact.matches("www.example.org"));
    }

    #[test]
    fn what_is_not_a_name_is_refused() {
        for bad in [
            "",
            "*.",
            "exa mple.org",
            "a.*.org",
            "*example.org",
            "ex/ample",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
