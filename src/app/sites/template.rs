//! The placeholders of `redirect` and `try-files`: a template is read once,
//! when the configuration is, into pieces, and filled per request without
//! parsing anything again.

/// What a request fills a template with.
pub(crate) struct Values<'a> {
    /// The request-target as sent: path and query.
    pub(crate) uri: &'a str,
    /// The path in its one spelling (decoded, dot segments gone, encoded again).
    pub(crate) path: &'a str,
    /// The query, without its `?`; empty when there is none.
    pub(crate) query: &'a str,
    /// The host the request named, normalised.
    pub(crate) host: &'a str,
    /// What the rule's `/*` matched.
    pub(crate) rest: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Uri,
    Path,
    Query,
    Host,
    Rest,
}

/// A string with placeholders, read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    source: String,
}

impl Template {
    /// Reads `text`; an unknown placeholder or a stray brace is an error.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                pieces.push(Piece::Text(rest.to_owned()));
                break;
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open..];
            let close = match after.strip_prefix('{').and_then(|a| a.find('}')) {
                Some(close) => close + 1,
                None => return Err(format!("\"{text}\": a brace that opens no placeholder")),
            };
            pieces.push(match &after[1..close] {
                "uri" => Piece::Uri,
                "path" => Piece::Path,
                "query" => Piece::Query,
                "host" => Piece::Host,
                "rest" => Piece::Rest,
                other => {
                    return Err(format!(
                        "\"{text}\": no placeholder {{{other}}} (there are {{uri}}, {{path}}, \
                         {{query}}, {{host}} and {{rest}})"
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        Ok(Template {
            pieces,
            source: text.to_owned(),
        })
    }

    /// The template filled in.
    pub(crate) fn fill(&self, values: &Values<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + values.uri.len());
        for piece in &self.pieces {
            out.push_str(match piece {
                Piece::Text(text) => text,
                Piece::Uri => values.uri,
                Piece::Path => values.path,
                Piece::Query => values.query,
                Piece::Host => values.host,
                Piece::Rest => values.rest,
            });
        }
        out
    }

    /// As written in the configuration.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            uri: "/a%20b/c?x=1",
            path: "/a%20b/c",
            query: "x=1",
            host: "example.org",
            rest: "c",
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let t = Template::parse("https://{host}{uri}").unwrap();
        assert_eq!(t.fill(&values()), "https://example.org/a%20b/c?x=1");
        let t = Template::parse("/new/{rest}?{query}&p={path}").unwrap();
        assert_eq!(t.fill(&values()), "/new/c?x=1&p=/a%20b/c");
        let t = Template::parse("/plain").unwrap();
        assert_eq!(t.fill(&values()), "/plain");
    }

    #[test]
    fn unknown_placeholders_and_stray_braces_are_refused() {
        for bad in ["/{nope}", "/{path", "/path}", "{}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
