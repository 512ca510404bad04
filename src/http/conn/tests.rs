//! The connection core under test: bytes in (in any split), bytes out.
//!
//! A tiny application stands in for the real one: it answers GET with the target
//! as the body, and reads the body of POST and answers with it.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::http::harness::{DATE, Harness, assert_split_invariant, converse};

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nDate: {DATE}\r\n\r\n{body}",
        body.len()
    )
}

fn ok_closing(body: &str) -> String {
    ok(body).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
}

#[test]
fn one_request_one_response() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), ok("/a"));
    assert_eq!(h.conn.state(), State::Idle);
}

#[test]
fn an_idle_connection_gives_back_its_working_part() {
    let mut h = Harness::new();
    assert!(h.conn.busy_ref().is_none(), "nothing before the first byte");
    h.feed(b"GET /a HTTP/1.");
    assert!(h.conn.busy_ref().is_some(), "a head on its way");
    h.feed(b"1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), ok("/a"));
    assert_eq!(h.conn.state(), State::Idle);
    assert!(h.conn.busy_ref().is_none(), "idle, everything sent");
    // The keep-alive timeout still counts from the response.
    h.tick(Settings::default().timeouts.keep_alive - Duration::from_millis(1));
    assert_eq!(h.conn.state(), State::Idle);
    h.tick(Duration::from_millis(2));
    assert!(h.conn.is_closed());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = Harness::new();
    let mut input = Vec::new();
    for i in 0..16 {
        input.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    h.feed(&input);
    let expected: String = (0..16).map(|i| ok(&format!("/{i}"))).collect();
    assert_eq!(h.output(), expected);
}

#[test]
fn connection_close_ends_after_the_response() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), ok_closing("/a"));
    // The pipelined request after `close` is never read: linger, then close.
    assert_eq!(h.conn.state(), State::Lingering);
    assert!(h.conn.take_shutdown_request());
    h.eof();
    assert!(h.conn.is_closed());
}

#[test]
fn a_refused_connection_answers_once_and_lingers() {
    let mut h = Harness::new();
    let now = h.now();
    let refusal = Response::error(StatusCode::SERVICE_UNAVAILABLE).with_header("Retry-After", "1");
    assert_eq!(h.conn.refuse(refusal.clone(), now), Some(1));
    assert_eq!(h.conn.refuse(refusal, now), None, "once only");
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = h.output();
    assert!(
        out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{out}"
    );
    assert!(out.contains("Retry-After: 1\r\n") && out.contains("Connection: close\r\n"));
    assert!(!out.contains("/a"), "the request is never answered: {out}");
    assert_eq!(h.conn.state(), State::Lingering);
    h.eof();
    assert!(h.conn.is_closed());
}

#[test]
fn a_plain_close_closes_without_lingering() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        h.conn.is_closed(),
        "closed as soon as the response is flushed"
    );
    assert!(!h.conn.take_shutdown_request());
}

#[test]
fn http10_closes_unless_it_asks_for_keep_alive() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.0\r\n\r\n");
    assert_eq!(h.output(), ok_closing("/a"));
    assert!(h.conn.is_closed());

    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        h.output(),
        ok("/a").replace("\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n")
    );
    assert_eq!(h.conn.state(), State::Idle);
}

#[test]
fn head_gets_the_length_but_no_body() {
    let mut h = Harness::new();
    h.feed(b"HEAD /abc HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n");
    let head_only = ok("/abc").replace("/abc", "");
    assert_eq!(h.output(), format!("{head_only}{}", ok("/d")));
}

#[test]
fn a_content_length_body_reaches_the_application() {
    let mut h = Harness::new();
    h.feed(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /n HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), format!("{}{}", ok("hello"), ok("/n")));
}

#[test]
fn a_chunked_body_reaches_the_application() {
    let mut h = Harness::new();
    h.feed(b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!(h.output(), ok("abcde"));
    assert_eq!(h.conn.state(), State::Idle);
}

#[test]
fn an_unwanted_body_is_discarded_and_the_next_request_served() {
    let mut h = Harness::new();
    // GET with a body: the stub answers from the head and never asks for it.
    h.feed(b"GET /g HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyGET /n HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), format!("{}{}", ok("/g"), ok("/n")));
}

#[test]
fn expect_100_continue_is_sent_before_reading_the_body() {
    let mut h = Harness::new();
    h.feed(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(h.output(), "HTTP/1.1 100 Continue\r\n\r\n");
    h.feed(b"hi");
    assert_eq!(
        h.output(),
        format!("HTTP/1.1 100 Continue\r\n\r\n{}", ok("hi"))
    );
}

#[test]
fn an_early_answer_to_expect_100_closes_instead_of_waiting_for_the_body() {
    let mut h = Harness::new();
    h.feed(b"GET /g HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(h.output(), ok_closing("/g"));
    assert_eq!(h.conn.state(), State::Lingering);
}

#[test]
fn malformed_requests_get_400_and_close() {
    let mut h = Harness::new();
    h.feed(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n");
    assert!(
        h.output().starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{}",
        h.output()
    );
    assert!(h.output().contains("Connection: close\r\n"));
    assert_eq!(h.failures.len(), 1);
    assert_eq!(h.conn.state(), State::Lingering);
}

#[test]
fn framing_errors_map_to_their_status() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            "505 HTTP Version Not Supported",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501 Not Implemented",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
            "413 Content Too Large",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 1\r\n\r\n",
            "417 Expectation Failed",
        ),
        (b"GET / HTTP/1.1\nHost: x\n\n", "400 Bad Request"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
        ),
    ];
    for (input, status) in cases {
        let mut h = Harness::new();
        h.feed(input);
        assert!(
            h.output().starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{:?} -> {}",
            String::from_utf8_lossy(input),
            h.output()
        );
        assert!(matches!(h.conn.state(), State::Lingering | State::Closed));
    }
}

#[test]
fn a_failing_head_request_gets_no_body() {
    let mut h = Harness::new();
    h.feed(b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n");
    let out = h.output();
    assert!(out.starts_with("HTTP/1.1 501 Not Implemented\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "headers only: {out:?}");
    let get_body = "501 Not Implemented\n";
    assert!(
        out.contains(&format!("Content-Length: {}\r\n", get_body.len())),
        "the length GET would have had"
    );
}

/// A HEAD request whose head does not even parse still gets no body
/// (RFC 9110 section 9.3.2): its line said HEAD.
#[test]
fn a_head_request_that_does_not_parse_gets_no_body() {
    let mut h = Harness::new();
    h.feed(b"HEAD * HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = h.output();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "headers only: {out:?}");
    let mut h = Harness::new();
    h.feed(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.output().ends_with("400 Bad Request\n"), "a GET's has one");
}

#[test]
fn long_lines_and_large_heads_are_refused_early() {
    let mut h = Harness::new();
    let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
    h.feed(long_target.as_bytes());
    assert!(
        h.output().starts_with("HTTP/1.1 414 URI Too Long\r\n"),
        "{}",
        h.output()
    );

    let mut h = Harness::new();
    h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n");
    for _ in 0..1000 {
        h.feed(b"X-Padding: 0123456789012345678901234567890123456789\r\n");
    }
    assert!(
        h.output()
            .starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
}

#[test]
fn a_request_then_half_close_is_still_answered() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    h.eof();
    assert_eq!(h.output(), format!("{}{}", ok("/a"), ok("/b")));
    assert!(h.conn.is_closed());
}

#[test]
fn a_truncated_request_closes_without_an_answer() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHo");
    h.eof();
    assert_eq!(h.output(), "");
    assert!(h.conn.is_closed());
    assert_eq!(h.failures, vec![ProtocolError::Truncated]);
}

#[test]
fn leading_empty_lines_are_ignored() {
    let mut h = Harness::new();
    h.feed(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), ok("/a"));
}

#[test]
fn backpressure_stops_reading_until_output_drains() {
    let settings = Settings {
        limits: Limits {
            max_queued_responses: 2,
            ..Limits::default()
        },
        ..Settings::default()
    };
    let mut h = Harness::with(settings);
    h.client_reads = false;
    let request = |i: usize| format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n");
    let first: String = (0..5).map(request).collect();
    h.feed(first.as_bytes());
    assert_eq!(h.conn.output().responses_in_flight(), 2);
    assert!(
        !h.conn.wants_read(),
        "a client that does not read is not read from"
    );
    let second: String = (5..10).map(request).collect();
    h.feed(second.as_bytes());
    assert_eq!(
        h.wire.len(),
        second.len(),
        "later requests wait in the socket"
    );
    h.client_reads = true;
    h.pump();
    let expected: String = (0..10).map(|i| ok(&format!("/{i}"))).collect();
    assert_eq!(h.output(), expected);
    assert!(h.conn.wants_read());
}

#[test]
fn idle_connections_hold_no_buffer() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.conn.detach_idle_buffer().is_some());
    assert!(!h.conn.has_buffer());
}

// ----- timeouts ----------------------------------------------------------------

fn short_timeouts() -> Settings {
    Settings {
        timeouts: Timeouts {
            header: Duration::from_secs(2),
            keep_alive: Duration::from_secs(5),
            body: Duration::from_secs(3),
            send: Duration::from_secs(4),
            linger: Duration::from_secs(1),
        },
        ..Settings::default()
    }
}

#[test]
fn a_slow_head_gets_408_on_time_however_it_trickles() {
    let mut h = Harness::with(short_timeouts());
    let accepted = h.t;
    for byte in b"GET / HTTP/1.1\r\nHo" {
        h.advance(Duration::from_millis(100));
        h.feed(&[*byte]);
    }
    // Each byte is progress, but the head's deadline stays where it was.
    assert_eq!(h.conn.deadline(), Some(accepted + Duration::from_secs(2)));
    h.tick(Duration::from_millis(100));
    assert!(h.output().is_empty(), "not yet at 1.9 s");
    h.tick(Duration::from_millis(100));
    assert!(
        h.output().starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{}",
        h.output()
    );
    assert!(h.conn.is_closed());
}

#[test]
fn idle_keep_alive_connections_close_quietly() {
    let mut h = Harness::with(short_timeouts());
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    let answered = h.output().len();
    h.tick(Duration::from_millis(4900));
    assert!(!h.conn.is_closed());
    h.tick(Duration::from_millis(100));
    assert!(h.conn.is_closed());
    assert_eq!(h.output().len(), answered, "nothing more was sent");
}

#[test]
fn the_next_head_has_its_own_header_timeout() {
    let mut h = Harness::with(short_timeouts());
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    h.tick(Duration::from_secs(4));
    h.feed(b"GET /b HTTP/1.1\r\n");
    assert_eq!(h.conn.deadline(), Some(h.t + Duration::from_secs(2)));
}

#[test]
fn a_stalled_body_gets_408() {
    let mut h = Harness::with(short_timeouts());
    h.feed(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
    h.tick(Duration::from_secs(2));
    h.feed(b"cd"); // progress moves the body deadline
    h.tick(Duration::from_secs(2));
    assert!(!h.conn.is_closed());
    h.tick(Duration::from_secs(1));
    assert!(h.output().starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert!(h.conn.is_closed());
}

#[test]
fn a_client_that_stops_reading_is_dropped() {
    let mut h = Harness::with(short_timeouts());
    h.client_reads = false;
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.conn.has_output());
    h.tick(Duration::from_secs(3));
    assert!(!h.conn.is_closed());
    h.tick(Duration::from_secs(1));
    assert!(h.conn.is_closed());
}

#[test]
fn lingering_ends_after_its_timeout() {
    let mut h = Harness::with(short_timeouts());
    h.feed(b"BAD\r\n\r\n");
    assert_eq!(h.conn.state(), State::Lingering);
    h.tick(Duration::from_secs(1));
    assert!(h.conn.is_closed());
}

#[test]
fn draining_closes_idle_connections_and_finishes_busy_ones() {
    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    h.conn.drain();
    assert!(h.conn.is_closed());

    let mut h = Harness::new();
    h.feed(b"GET /a HTTP/1.1\r\n");
    h.conn.drain();
    assert!(!h.conn.is_closed());
    h.feed(b"Host: x\r\n\r\n");
    assert_eq!(h.output(), ok_closing("/a"));
    assert!(h.conn.is_closed());
}

// ----- any split, same answer ------------------------------------------------

/// Conversations that exercise every state: pipelining, bodies of both framings,
/// HEAD, discarded bodies, 100-continue, errors, and a close.
const CONVERSATIONS: &[&[u8]] = &[
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /g HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /h HTTP/1.0\r\n\r\n",
    b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n",
];

#[test]
fn byte_by_byte_equals_whole() {
    for input in CONVERSATIONS {
        let whole = converse(input, &[]);
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            converse(input, &every_byte),
            whole,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

proptest! {
    #[test]
    fn any_split_gives_the_same_answer(
        which in 0..CONVERSATIONS.len(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input = CONVERSATIONS[which];
        prop_assert_eq!(converse(input, &cuts), converse(input, &[]));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_hold_much(
        input in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = converse(&input, &[]);
        prop_assert_eq!(converse(&input, &cuts), whole);
    }
}

/// Every input the fuzzer has found a failure with, replayed (fuzz/README.md).
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/connection");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/connection exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| assert_split_invariant(&data));
        assert!(outcome.is_ok(), "{} fails again", path.display());
        replayed += 1;
    }
    assert!(
        replayed > 0,
        "no regression inputs found in {}",
        dir.display()
    );
}

#[test]
fn a_lone_cr_before_a_request_is_not_a_request_yet() {
    assert_eq!(converse(b"\r\n", &[1]), converse(b"\r\n", &[]));
    let mut h = Harness::new();
    h.feed(b"\r");
    assert_eq!(h.conn.state(), State::Idle);
    h.feed(b"\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.output(), ok("/a"));
}

#[test]
fn decimals_are_written_as_they_read() {
    for n in [0, 7, 10, 200, 4096, 1 << 20, u64::MAX] {
        let mut out = b"x".to_vec();
        push_decimal(&mut out, n);
        assert_eq!(out, format!("x{n}").into_bytes());
    }
}
