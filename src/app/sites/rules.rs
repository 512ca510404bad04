//! A site's rules: which paths they match, and what every matching rule
//! says together. Rules are compiled once per load; per request, each is one
//! string comparison, and what matched is merged without parsing anything.
//!
//! Every rule whose pattern matches applies, in the order written, and a
//! later one overrides an earlier one key by key: `headers` merge by name (a
//! header set to `""` is removed), any other key is replaced whole.

use std::sync::Arc;

use super::cors::Cors;
use super::template::Template;
use crate::app::Gate;
use crate::app::url;
use crate::http::StatusCode;

/// A rule as the configuration writes it, before it is checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuleSpec {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) redirect: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) try_files: Option<Vec<String>>,
    pub(crate) auth: Option<Arc<Gate>>,
    pub(crate) listing: Option<bool>,
    pub(crate) compress: Option<bool>,
    pub(crate) hidden: Option<bool>,
    pub(crate) cors_origins: Option<Vec<String>>,
}

/// Which paths a rule is for: exactly one, or every path under a prefix
/// (`/assets/*`), both in the one spelling paths are compared in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Under(String),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let (prefix, under) = match text.strip_suffix("/*") {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        if !text.starts_with('/') || prefix.contains('*') {
            return Err(format!(
                "path \"{text}\": an exact path (/about) or a prefix ending in /* (/assets/*)"
            ));
        }
        // Written as people write paths (decoded: `/café/*`); compared in the
        // spelling requests are normalised to.
        let mut normal = String::new();
        for segment in prefix.split('/').filter(|s| !s.is_empty() && *s != ".") {
            if segment == ".." {
                return Err(format!("path \"{text}\": no .. in a pattern"));
            }
            normal.push('/');
            normal.push_str(&url::encode_segment(segment.as_bytes()));
        }
        if under || text.ends_with('/') || normal.is_empty() {
            normal.push('/');
        }
        Ok(match under {
            true => Pattern::Under(normal),
            false => Pattern::Exact(normal),
        })
    }

    /// What of `path` the pattern's `/*` matched, if it matches.
    fn matched<'p>(&self, path: &'p str) -> Option<&'p str> {
        match self {
            Pattern::Exact(exact) => (path == exact).then_some(""),
            Pattern::Under(prefix) => path.strip_prefix(prefix.as_str()),
        }
    }
}

/// A redirect's target and status.
#[derive(Clone, Debug)]
pub(crate) struct Redirect {
    pub(crate) to: Template,
    pub(crate) status: StatusCode,
}

/// The last candidate of `try-files` may be `=404` (or any code): answer
/// with that status when no candidate exists.
#[derive(Clone, Debug)]
pub(crate) enum Candidate {
    Path(Template),
    Status(StatusCode),
}

#[derive(Clone, Debug)]
struct Rule {
    source: String,
    pattern: Pattern,
    headers: Vec<(String, String)>,
    redirect: Option<Redirect>,
    try_files: Option<Vec<Candidate>>,
    auth: Option<Arc<Gate>>,
    listing: Option<bool>,
    compress: Option<bool>,
    hidden: Option<bool>,
    cors: Option<Cors>,
}

/// Header fields the connection writes itself, which no rule may set.
const CONNECTION_FIELDS: [&str; 5] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "keep-alive",
];

impl Rule {
    fn compile(spec: RuleSpec) -> Result<Rule, String> {
        let pattern = Pattern::parse(&spec.path)?;
        for (name, value) in &spec.headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(format!("headers: \"{name}\" is not a field name"));
            }
            if CONNECTION_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                return Err(format!("headers: {name} is the connection's to write"));
            }
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(format!(
                    "headers: the value of {name} has a control character"
                ));
            }
        }
        let redirect = match (spec.redirect, spec.status) {
            (Some(to), status) => Some(Redirect {
                to: Template::parse(&to)?,
                status: redirect_status(status.unwrap_or(301))?,
            }),
            (None, Some(_)) => return Err("status goes with redirect".into()),
            (None, None) => None,
        };
        let try_files = spec.try_files.map(|list| candidates(&list)).transpose()?;
        let cors = spec.cors_origins.as_deref().map(Cors::parse).transpose()?;
        Ok(Rule {
            source: spec.path,
            pattern,
            headers: spec.headers,
            redirect,
            try_files,
            auth: spec.auth,
            listing: spec.listing,
            compress: spec.compress,
            hidden: spec.hidden,
            cors,
        })
    }
}

fn redirect_status(code: u16) -> Result<StatusCode, String> {
    match code {
        301 | 302 | 303 | 307 | 308 => StatusCode::known(code).ok_or_else(|| code.to_string()),
        _ => Err(format!(
            "status {code}: a redirect is 301, 302, 303, 307 or 308"
        )),
    }
}

fn candidates(list: &[String]) -> Result<Vec<Candidate>, String> {
    if list.is_empty() {
        return Err("try-files: name at least one candidate".into());
    }
    let last = list.len() - 1;
    list.iter()
        .enumerate()
        .map(|(i, text)| match text.strip_prefix('=') {
            Some(code) if i == last => code
                .parse()
                .ok()
                .and_then(StatusCode::known)
                .filter(|s| s.as_u16() >= 400)
                .map(Candidate::Status)
                .ok_or_else(|| format!("try-files: \"{text}\" is not an error status (=404)")),
            Some(_) => Err(format!(
                "try-files: \"{text}\" can only be the last candidate"
            )),
            None if text.starts_with('/') || text.starts_with('{') => {
                Template::parse(text).map(Candidate::Path)
            }
            None => Err(format!(
                "try-files: \"{text}\" is not a path (/index.html, {{path}})"
            )),
        })
        .collect()
}

/// A site's rules, compiled.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
}

/// What the rules that match one path say together.
#[derive(Debug, Default)]
pub(crate) struct Effect<'a> {
    /// Fields to set, by name; an empty value removes the field.
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    /// With what the `/*` of its rule matched.
    pub(crate) redirect: Option<(&'a Redirect, &'a str)>,
    pub(crate) try_files: Option<(&'a [Candidate], &'a str)>,
    pub(crate) auth: Option<&'a Arc<Gate>>,
    pub(crate) listing: Option<bool>,
    pub(crate) compress: Option<bool>,
    pub(crate) hidden: Option<bool>,
    pub(crate) cors: Option<&'a Cors>,
}

impl Rules {
    /// Checks and compiles `specs`, in order; every error, each naming its
    /// rule.
    pub(crate) fn compile(specs: Vec<RuleSpec>) -> Result<Rules, Vec<String>> {
        let mut rules = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let path = spec.path.clone();
            match Rule::compile(spec) {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.push(format!("rule {} (path \"{path}\"): {e}", i + 1)),
            }
        }
        match errors.is_empty() {
            true => Ok(Rules { rules }),
            false => Err(errors),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The password gates of the rules that have one.
    pub(crate) fn gates(&self) -> impl Iterator<Item = &Arc<Gate>> {
        self.rules.iter().filter_map(|r| r.auth.as_ref())
    }

    /// Whether a rule serves files other than the request's own.
    pub(crate) fn needs_files(&self) -> bool {
        self.rules.iter().any(|r| r.try_files.is_some())
    }

    /// The paths of the rules, in order, for `--check-config`.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.rules.iter().map(describe).collect()
    }

    /// What the rules matching `path` (normalised) say, later ones over
    /// earlier ones.
    pub(crate) fn effect<'a>(&'a self, path: &'a str) -> Effect<'a> {
        let mut effect = Effect::default();
        for rule in &self.rules {
            let Some(rest) = rule.pattern.matched(path) else {
                continue;
            };
            for (name, value) in &rule.headers {
                match effect
                    .headers
                    .iter_mut()
                    .find(|(set, _)| set.eq_ignore_ascii_case(name))
                {
                    Some(field) => field.1 = value,
                    None => effect.headers.push((name, value)),
                }
            }
            if let Some(redirect) = &rule.redirect {
                effect.redirect = Some((redirect, rest));
            }
            if let Some(list) = &rule.try_files {
                effect.try_files = Some((list, rest));
            }
            effect.auth = rule.auth.as_ref().or(effect.auth);
            effect.listing = rule.listing.or(effect.listing);
            effect.compress = rule.compress.or(effect.compress);
            effect.hidden = rule.hidden.or(effect.hidden);
            effect.cors = rule.cors.as_ref().or(effect.cors);
        }
        effect
    }
}

fn describe(rule: &Rule) -> String {
    let mut keys = Vec::new();
    if !rule.headers.is_empty() {
        let names: Vec<&str> = rule.headers.iter().map(|(n, _)| n.as_str()).collect();
        keys.push(format!("headers {}", names.join(", ")));
    }
    if let Some(r) = &rule.redirect {
        keys.push(format!("redirect {} {}", r.status.as_u16(), r.to.source()));
    }
    if let Some(list) = &rule.try_files {
        let names: Vec<String> = list
            .iter()
            .map(|c| match c {
                Candidate::Path(t) => t.source().to_owned(),
                Candidate::Status(s) => format!("={}", s.as_u16()),
            })
            .collect();
        keys.push(format!("try-files {}", names.join(" ")));
    }
    if rule.auth.is_some() {
        keys.push("auth".into());
    }
    for (name, value) in [
        ("listing", rule.listing),
        ("compress", rule.compress),
        ("hidden", rule.hidden),
    ] {
        if let Some(on) = value {
            keys.push(format!("{name} {on}"));
        }
    }
    if rule.cors.is_some() {
        keys.push("cors".into());
    }
    format!("{}: {}", rule.source, keys.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str) -> RuleSpec {
        RuleSpec {
            path: path.into(),
            ..RuleSpec::default()
        }
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn exact_paths_and_prefixes_match_in_the_one_spelling() {
        let p = Pattern::parse("/assets/*").unwrap();
        assert_eq!(p.matched("/assets/a/b.css"), Some("a/b.css"));
        assert_eq!(p.matched("/assets/"), Some(""));
        assert_eq!(
            p.matched("/assets"),
            None,
            "the folder itself is not under it"
        );
        assert_eq!(p.matched("/assetsx/a"), None);
        let p = Pattern::parse("/old-post").unwrap();
        assert_eq!(p.matched("/old-post"), Some(""));
        assert_eq!(p.matched("/old-post/"), None);
        let p = Pattern::parse("/café/*").unwrap();
        assert_eq!(p.matched("/caf%C3%A9/menu"), Some("menu"));
        assert_eq!(Pattern::parse("/*").unwrap().matched("/x"), Some("x"));
        for bad in ["assets/*", "/a*", "/a/*/b", "/../x"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn later_rules_override_earlier_ones_key_by_key() {
        let rules = Rules::compile(vec![
            RuleSpec {
                headers: headers(&[("Cache-Control", "no-cache"), ("X-Frame-Options", "DENY")]),
                listing: Some(true),
                ..rule("/*")
            },
            RuleSpec {
                headers: headers(&[
                    ("cache-control", "public, immutable"),
                    ("X-Frame-Options", ""),
                ]),
                ..rule("/assets/*")
            },
            RuleSpec {
                listing: Some(false),
                ..rule("/private/*")
            },
        ])
        .unwrap();
        let effect = rules.effect("/assets/app.js");
        assert_eq!(
            effect.headers,
            vec![
                ("Cache-Control", "public, immutable"),
                ("X-Frame-Options", "")
            ]
        );
        assert_eq!(effect.listing, Some(true));
        assert_eq!(rules.effect("/private/x").listing, Some(false));
        assert_eq!(rules.effect("/index.html").headers.len(), 2);
    }

    #[test]
    fn redirects_keep_what_their_star_matched() {
        let rules = Rules::compile(vec![RuleSpec {
            redirect: Some("https://example.org/{rest}".into()),
            status: Some(308),
            ..rule("/blog/*")
        }])
        .unwrap();
        let effect = rules.effect("/blog/2026/hello");
        let (redirect, rest) = effect.redirect.unwrap();
        assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(rest, "2026/hello");
    }

    #[test]
    fn every_bad_rule_is_reported() {
        let errors = Rules::compile(vec![
            RuleSpec {
                redirect: Some("/x".into()),
                status: Some(200),
                ..rule("/a")
            },
            RuleSpec {
                status: Some(301),
                ..rule("/b")
            },
            RuleSpec {
                headers: headers(&[("Content-Length", "3")]),
                ..rule("/c")
            },
            RuleSpec {
                try_files: Some(vec!["=404".into(), "/x".into()]),
                ..rule("/d")
            },
            RuleSpec {
                redirect: Some("/{nope}".into()),
                ..rule("/e")
            },
            rule("no-slash"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(
            errors[0].starts_with("rule 1 (path \"/a\")"),
            "{}",
            errors[0]
        );
    }
}
