//! The status page (`--status PATH`): what the server is doing, for an
//! operator and for a learner watching the loop.
//!
//! - `PATH` as JSON when the client prefers `application/json`, or as HTML
//!   ([`page`]): a page that draws the JSON and fetches it again every
//!   second, without a reload;
//! - `PATH/metrics` in the Prometheus text format.
//!
//! It shows connections by phase, requests and bytes served, the loop's turns
//! and a histogram of how many events each turn handled, the deadlines in the
//! heap, the file cache's hits, misses and holdings, how often accepting had
//! to wait, clients refused, and the uptime, summed over every loop
//! (`stats`); and, live, each event loop as it last published itself
//! (`stats::live`): its last turns, its connections in each state of the
//! core, and the first hundred of them one by one. Only clients on
//! loopback may see it, unless `--status-allow` names more; the address that
//! counts is the client's, as a trusted proxy gives it (the PROXY protocol),
//! so a local load balancer does not open it to the world.

mod page;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Reply;
use super::methods::{self, READ};
use crate::cidr::Cidr;
use crate::http::{Now, RequestHead, Response, StatusCode, list_elements, weighted};
use crate::stats::live;
use crate::stats::{EVENT_BUCKETS, Phase, REJECTIONS, Registry, Snapshot, bucket_bound};

/// Where the page is and who may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusConfig {
    /// `/.status`: starts with `/`, no trailing `/`.
    pub path: String,
    /// Who may see it besides loopback.
    pub allow: Vec<Cidr>,
}

pub(super) struct StatusPage {
    config: StatusConfig,
    metrics_path: String,
    registry: Arc<Registry>,
}

impl StatusPage {
    pub(super) fn new(config: StatusConfig, registry: Arc<Registry>) -> StatusPage {
        StatusPage {
            metrics_path: format!("{}/metrics", config.path),
            config,
            registry,
        }
    }

    /// The answer if `path` is the page's, else `None`.
    pub(super) fn answer(
        &self,
        request: &RequestHead,
        path: &str,
        client: IpAddr,
        now: Now<'_>,
    ) -> Option<Reply> {
        let metrics = path == self.metrics_path;
        if path != self.config.path && !metrics {
            return None;
        }
        if !self.allows(client) {
            log::debug!("status page refused to {client}");
            return Some(Reply::Respond(Response::error(StatusCode::FORBIDDEN)));
        }
        Some(methods::only(request, READ, || {
            let snapshot = self.registry.snapshot(now.instant);
            let response = if metrics {
                Response::new(StatusCode::OK)
                    .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .with_body(prometheus(&snapshot).into_bytes())
            } else if prefers_json(request) {
                Response::new(StatusCode::OK)
                    .with_header("Content-Type", "application/json")
                    .with_body(json(&snapshot, now.instant).into_bytes())
            } else {
                page::html(&json(&snapshot, now.instant))
            };
            let response = response.with_header("Cache-Control", "no-store");
            Reply::Respond(match metrics {
                true => response,
                false => response.with_header("Vary", "Accept"),
            })
        }))
    }

    fn allows(&self, client: IpAddr) -> bool {
        client.to_canonical().is_loopback() || self.config.allow.iter().any(|c| c.contains(client))
    }
}

/// Whether `Accept` ranks `application/json` above `text/html`.
fn prefers_json(request: &RequestHead) -> bool {
    let (mut json, mut html) = (0, 0);
    for element in list_elements(request.headers("accept")) {
        let (item, quality) = weighted(element);
        if item.eq_ignore_ascii_case(b"application/json") {
            json = json.max(quality);
        } else if item.eq_ignore_ascii_case(b"text/html") {
            html = html.max(quality);
        }
    }
    json > 0 && json >= html
}

/// A row label for each events-per-turn bucket: `0`, `1`, `2-3`, ..., `512+`.
fn bucket_label(index: usize) -> String {
    match (index, bucket_bound(index)) {
        (0, _) => "0".into(),
        (1, _) => "1".into(),
        (i, Some(bound)) => format!("{}-{bound}", 1u64 << (i - 1)),
        (i, None) => format!("{}+", 1u64 << (i - 1)),
    }
}

fn seconds(snapshot: &Snapshot) -> f64 {
    snapshot.uptime.as_secs_f64()
}

fn json(s: &Snapshot, now: Instant) -> String {
    let mut out = String::from("{");
    let _ = write!(out, "\"uptime_seconds\":{:.3},", seconds(s));
    out.push_str("\"connections\":{");
    for (phase, count) in Phase::ALL.iter().zip(s.connections) {
        let _ = write!(out, "\"{}\":{count},", phase.name());
    }
    let _ = write!(out, "\"open\":{}}},", s.open_connections());
    let _ = write!(
        out,
        "\"accepted\":{},\"requests\":{},\"body_bytes\":{},\"accept_pauses\":{},",
        s.accepted, s.requests, s.body_bytes, s.accept_pauses
    );
    let responses: Vec<String> = s
        .responses_by_status()
        .map(|(status, count)| format!("\"{status}\":{count}"))
        .collect();
    let _ = write!(out, "\"responses\":{{{}}},", responses.join(","));
    sites_json(&mut out, s);
    let rejected: Vec<String> = REJECTIONS
        .iter()
        .map(|(code, reason)| format!("\"{reason}\":{}", s.responses_with(*code)))
        .collect();
    let _ = write!(out, "\"rejected\":{{{}}},", rejected.join(","));
    let _ = write!(
        out,
        "\"loops\":{},\"turns\":{},\"events\":{},\"timers\":{},\"events_per_turn\":{{",
        s.loops, s.turns, s.events, s.timers
    );
    let buckets: Vec<String> = (0..EVENT_BUCKETS)
        .map(|i| format!("\"{}\":{}", bucket_label(i), s.events_per_turn[i]))
        .collect();
    out.push_str(&buckets.join(","));
    let r = &s.refused;
    let _ = write!(
        out,
        "}},\"refused\":{{\"denied\":{},\"too_many_connections\":{},\"rate_limited\":{}",
        r.denied, r.too_many_connections, r.rate_limited
    );
    let c = &s.cache;
    let _ = write!(
        out,
        "}},\"cache\":{{\"hits\":{},\"revalidations\":{},\"misses\":{},\"bytes_held\":{},\"files_open\":{},\"entries\":{}}},",
        c.hits, c.revalidations, c.misses, c.bytes_held, c.files_open, c.entries
    );
    live_json(&mut out, s, now);
    out.push('}');
    out
}

/// Each site's responses by status and body bytes sent:
/// `"sites":{"example.org":{"responses":{"200":3},"sent_bytes":12}}`.
fn sites_json(out: &mut String, s: &Snapshot) {
    out.push_str("\"sites\":{");
    for (i, site) in s.sites.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let responses: Vec<String> = site
            .responses_by_status()
            .map(|(status, count)| format!("\"{status}\":{count}"))
            .collect();
        let _ = write!(
            out,
            "{comma}\"{}\":{{\"responses\":{{{}}},\"sent_bytes\":{}}}",
            json_text(&site.name),
            responses.join(","),
            site.sent_bytes
        );
    }
    out.push_str("},");
}

/// `text` escaped for a JSON string (a site's name is the operator's, but
/// it is checked nowhere for quotes).
fn json_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for a Prometheus label value.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Each event loop as it last published itself: its last turns, its
/// connections by state, and the first of them one by one (bounded by
/// `stats::live`).
fn live_json(out: &mut String, s: &Snapshot, now: Instant) {
    out.push_str("\"live\":[");
    for (index, view) in s.live.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let age = now.saturating_duration_since(view.published).as_millis();
        let _ = write!(
            out,
            "{{\"loop\":{},\"as_of_ms\":{age},\"turns\":[",
            index + 1
        );
        for (i, turn) in view.turns.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(
                out,
                "{comma}{{\"turn\":{},\"events\":{},\"deadlines\":{},\"micros\":{}}}",
                turn.number,
                turn.events,
                turn.deadlines_due,
                turn.took.as_micros()
            );
        }
        out.push_str("],\"states\":{");
        for (i, (state, count)) in live::STATES.iter().zip(view.states).enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(out, "{comma}\"{state:?}\":{count}");
        }
        let _ = write!(
            out,
            "}},\"connections\":{{\"count\":{},\"shown\":[",
            view.connections
        );
        for (i, conn) in view.shown.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let deadline = conn
                .deadline_in
                .map_or("null".to_owned(), |d| d.as_millis().to_string());
            let streams = conn.streams.map_or("null".to_owned(), |n| n.to_string());
            let _ = write!(
                out,
                "{comma}{{\"token\":{},\"client\":\"{}\",\"state\":\"{:?}\",\"handshake\":{},\
                 \"streams\":{streams},\"interest\":\"{}\",\"queued\":{},\"deadline_ms\":{deadline},\
                 \"served\":{}}}",
                conn.token,
                conn.client,
                conn.state,
                conn.handshaking,
                conn.interest,
                conn.queued,
                conn.served
            );
        }
        out.push_str("]}}");
    }
    out.push(']');
}

fn prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP oneloop_{name} {help}");
        let _ = writeln!(out, "# TYPE oneloop_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "oneloop_{name}{labels} {value}");
        }
    };
    let one = |value: u64| vec![(String::new(), value.to_string())];
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[(String::new(), format!("{:.3}", seconds(s)))],
    );
    let phases: Vec<_> = Phase::ALL
        .iter()
        .zip(s.connections)
        .map(|(phase, count)| (format!("{{phase=\"{}\"}}", phase.name()), count.to_string()))
        .collect();
    metric(
        "connections",
        "gauge",
        "Open connections, by what they are doing.",
        &phases,
    );
    metric(
        "connections_accepted_total",
        "counter",
        "Connections accepted.",
        &one(s.accepted),
    );
    metric(
        "requests_total",
        "counter",
        "Responses sent, whole or cut short.",
        &one(s.requests),
    );
    metric(
        "body_bytes_total",
        "counter",
        "Response body bytes sent.",
        &one(s.body_bytes),
    );
    // By status and site only: a series without the site beside them would
    // be counted twice by every `sum()` (`sum by (code)` gives the totals).
    let responses: Vec<_> = s
        .sites
        .iter()
        .flat_map(|site| {
            let name = label_value(&site.name);
            site.responses_by_status().map(move |(status, count)| {
                (
                    format!("{{code=\"{status}\",site=\"{name}\"}}"),
                    count.to_string(),
                )
            })
        })
        .collect();
    metric(
        "responses_total",
        "counter",
        "Responses answered, by status (a status oneloop never sends by its class, 4xx) \
         and site (other: no site's).",
        &responses,
    );
    let sent: Vec<_> = s
        .sites
        .iter()
        .map(|site| {
            let name = label_value(&site.name);
            (format!("{{site=\"{name}\"}}"), site.sent_bytes.to_string())
        })
        .collect();
    metric(
        "sent_bytes_total",
        "counter",
        "Response body bytes sent, by site.",
        &sent,
    );
    let rejected: Vec<_> = REJECTIONS
        .iter()
        .map(|(code, reason)| {
            let count = s.responses_with(*code);
            (
                format!("{{reason=\"{reason}\",code=\"{code}\"}}"),
                count.to_string(),
            )
        })
        .collect();
    metric(
        "rejected_total",
        "counter",
        "Requests refused by the protocol's limits, as malformed, or by the password gate.",
        &rejected,
    );
    metric(
        "accept_pauses_total",
        "counter",
        "Times accepting had to wait (the connection cap, or no descriptors).",
        &one(s.accept_pauses),
    );
    metric(
        "loops",
        "gauge",
        "Event loops (0 in the threaded models).",
        &one(s.loops),
    );
    metric(
        "loop_turns_total",
        "counter",
        "Turns of the event loops.",
        &one(s.turns),
    );
    metric(
        "timers",
        "gauge",
        "Entries in the event loops' timer heaps.",
        &one(s.timers),
    );
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for index in 0..EVENT_BUCKETS {
        cumulative += s.events_per_turn[index];
        let bound = bucket_bound(index).map_or("+Inf".to_owned(), |b| b.to_string());
        buckets.push((format!("_bucket{{le=\"{bound}\"}}"), cumulative.to_string()));
    }
    buckets.push(("_sum".to_owned(), s.events.to_string()));
    buckets.push(("_count".to_owned(), s.turns.to_string()));
    metric(
        "loop_events_per_turn",
        "histogram",
        "Readiness events handled by one turn of an event loop.",
        &buckets,
    );
    let r = &s.refused;
    metric(
        "refused_total",
        "counter",
        "Clients turned away by the per-client limits, by reason.",
        &[
            ("{reason=\"denied\"}".to_owned(), r.denied.to_string()),
            (
                "{reason=\"too_many_connections\"}".to_owned(),
                r.too_many_connections.to_string(),
            ),
            (
                "{reason=\"rate_limited\"}".to_owned(),
                r.rate_limited.to_string(),
            ),
        ],
    );
    let c = &s.cache;
    metric(
        "cache_hits_total",
        "counter",
        "File cache hits.",
        &one(c.hits),
    );
    metric(
        "cache_revalidations_total",
        "counter",
        "File cache entries checked against the file system.",
        &one(c.revalidations),
    );
    metric(
        "cache_misses_total",
        "counter",
        "File cache misses.",
        &one(c.misses),
    );
    metric(
        "cache_bytes",
        "gauge",
        "Bytes the file cache holds: files' bytes and every entry's own.",
        &one(c.bytes_held),
    );
    metric(
        "cache_entries",
        "gauge",
        "Entries the file cache holds.",
        &one(c.entries),
    );
    metric(
        "cache_open_files",
        "gauge",
        "Descriptors the file cache holds open.",
        &one(c.files_open),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{body_bytes, now, respond};
    use crate::http::test_head as head;
    use crate::stats::DriverKind;

    fn page(allow: &[&str]) -> (StatusPage, Arc<Registry>) {
        let registry = Registry::new();
        let config = StatusConfig {
            path: "/.status".into(),
            allow: allow.iter().map(|c| c.parse().unwrap()).collect(),
        };
        (StatusPage::new(config, Arc::clone(&registry)), registry)
    }

    fn ask(page: &StatusPage, text: &str, client: &str) -> Option<Response> {
        let request = head(text);
        let path = request.path().to_owned();
        page.answer(&request, &path, client.parse().unwrap(), now())
            .map(respond)
    }

    #[test]
    fn loopback_sees_it_and_others_only_when_allowed() {
        let (page, _) = page(&["10.0.0.0/8"]);
        let get = "GET /.status HTTP/1.1\r\nHost: a\r\n\r\n";
        for client in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3"] {
            assert_eq!(
                ask(&page, get, client).unwrap().status(),
                StatusCode::OK,
                "{client}"
            );
        }
        for client in ["192.168.1.1", "2001:db8::1"] {
            assert_eq!(
                ask(&page, get, client).unwrap().status(),
                StatusCode::FORBIDDEN,
                "{client}"
            );
        }
        assert!(ask(&page, "GET /other HTTP/1.1\r\nHost: a\r\n\r\n", "127.0.0.1").is_none());
        let post = "POST /.status HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            ask(&page, post, "127.0.0.1").unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn one_snapshot_three_ways() {
        let (page, registry) = page(&[]);
        let driver = registry.driver(DriverKind::Loop);
        driver.opened(Phase::Reading);
        driver.delivered(12, crate::stats::SiteSlot::OTHER);
        driver.turn(3);
        registry.cache().hit();

        let html = ask(&page, "GET /.status HTTP/1.1\r\nHost: a\r\n\r\n", "::1").unwrap();
        assert_eq!(
            html.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(html.header("vary"), Some("Accept"));
        let text = String::from_utf8(body_bytes(&html)).unwrap();
        // The page carries the JSON it draws first.
        assert!(text.contains("\"requests\":1,\"body_bytes\":12,"), "{text}");

        let json = ask(
            &page,
            "GET /.status HTTP/1.1\r\nHost: a\r\nAccept: text/html;q=0.5, application/json\r\n\r\n",
            "::1",
        )
        .unwrap();
        assert_eq!(json.header("content-type"), Some("application/json"));
        let text = String::from_utf8(body_bytes(&json)).unwrap();
        assert!(text.contains("\"reading\":1,"), "{text}");
        assert!(text.contains("\"requests\":1,\"body_bytes\":12,"), "{text}");
        assert!(text.contains("\"2-3\":1,"), "{text}");
        assert!(text.contains("\"cache\":{\"hits\":1,"), "{text}");
        assert!(text.ends_with(",\"live\":[]}"), "{text}");

        let metrics = ask(
            &page,
            "GET /.status/metrics HTTP/1.1\r\nHost: a\r\n\r\n",
            "::1",
        )
        .unwrap();
        assert!(
            metrics
                .header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = String::from_utf8(body_bytes(&metrics)).unwrap();
        assert!(
            text.contains("oneloop_connections{phase=\"reading\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("oneloop_loop_events_per_turn_bucket{le=\"1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("oneloop_loop_events_per_turn_bucket{le=\"3\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("oneloop_loop_events_per_turn_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("oneloop_loop_events_per_turn_sum 3\n"),
            "{text}"
        );
        assert!(
            text.contains("oneloop_loop_events_per_turn_count 1\n"),
            "{text}"
        );
    }

    #[test]
    fn the_live_view_is_each_loops_last_publication() {
        use crate::http::State;
        use crate::stats::live::{ConnView, RecentTurns, TurnView, view_of};
        use std::time::Duration;
        let (page, registry) = page(&[]);
        let driver = registry.driver(DriverKind::Loop);
        let mut turns = RecentTurns::default();
        turns.record(TurnView {
            number: 7,
            events: 2,
            deadlines_due: 1,
            took: Duration::from_micros(42),
        });
        let conn = ConnView {
            token: 3,
            client: "192.0.2.9".parse().unwrap(),
            state: State::ReadingBody,
            handshaking: false,
            streams: Some(2),
            interest: "RW",
            queued: 512,
            deadline_in: Some(Duration::from_millis(1500)),
            served: 4,
        };
        driver.publish(view_of(now().instant, &turns, [conn].into_iter()));
        let json = ask(
            &page,
            "GET /.status HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n",
            "::1",
        )
        .unwrap();
        let text = String::from_utf8(body_bytes(&json)).unwrap();
        assert!(
            text.contains("\"turns\":[{\"turn\":7,\"events\":2,\"deadlines\":1,\"micros\":42}]"),
            "{text}"
        );
        assert!(text.contains("\"ReadingBody\":1,"), "{text}");
        assert!(
            text.contains(
                "\"connections\":{\"count\":1,\"shown\":[{\"token\":3,\"client\":\"192.0.2.9\",\
                 \"state\":\"ReadingBody\",\"handshake\":false,\"streams\":2,\"interest\":\"RW\",\
                 \"queued\":512,\
                 \"deadline_ms\":1500,\"served\":4}]}"
            ),
            "{text}"
        );
    }

    #[test]
    fn browsers_get_html_and_asking_for_json_gets_json() {
        let ask_with = |accept: &str| {
            prefers_json(&head(&format!(
                "GET / HTTP/1.1\r\nHost: a\r\nAccept: {accept}\r\n\r\n"
            )))
        };
        assert!(ask_with("application/json"));
        assert!(!ask_with(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!ask_with("text/html, application/json;q=0.9"));
        assert!(!ask_with("application/json;q=0"));
        assert!(!prefers_json(&head("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
    }

    #[test]
    fn bucket_labels_read_as_ranges() {
        let labels: Vec<String> = (0..EVENT_BUCKETS).map(bucket_label).collect();
        assert_eq!(
            labels,
            [
                "0", "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256-511",
                "512+"
            ]
        );
    }
}
