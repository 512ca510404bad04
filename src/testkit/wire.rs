//! One real `Session` over the real application, driven the way a driver
//! drives it, over a pretend socket and a fake clock.
//!
//! The client's bytes wait on a "wire" that the session reads only when it
//! wants to; everything the session queues is taken at once (memory segments
//! and file ranges alike, the latter read with `pread` as the fallback of
//! `sendfile` would). After every step the bounds the core promises are
//! checked: the input buffer within its limit, queued output within the
//! backpressure threshold plus one response, and every access-log line one
//! line of printable ASCII.

use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use crate::access_log;
use crate::http::READ_SIZE;
use crate::http::{Front, Now, Settings, State};
use crate::session::{Service, Session};

use super::site::CACHE_FILE_BYTES;

/// Who every conversation comes from: a client on the internet.
pub const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

/// The `Date` every response carries here.
pub const DATE: &str = "Sat, 21 Nov 2026 00:00:00 GMT";

/// What a conversation left: every byte the server sent, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    pub output: Vec<u8>,
    pub(crate) state: State,
}

impl Transcript {
    /// The output with what is meant to differ between runs made equal:
    /// multipart boundaries carry a counter.
    pub fn normalized(&self) -> Vec<u8> {
        const MARK: &[u8] = b"oneloop-";
        const DIGITS: usize = 24;
        let mut out = Vec::with_capacity(self.output.len());
        let mut rest = self.output.as_slice();
        while let Some(at) = rest.windows(MARK.len()).position(|w| w == MARK) {
            let (before, from_mark) = rest.split_at(at);
            out.extend_from_slice(before);
            out.extend_from_slice(MARK);
            let after = from_mark.get(MARK.len()..).unwrap_or_default();
            let digits = after
                .iter()
                .take(DIGITS)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if digits == DIGITS {
                out.extend_from_slice(b"BOUNDARY");
                rest = after.get(DIGITS..).unwrap_or_default();
            } else {
                rest = after;
            }
        }
        out.extend_from_slice(rest);
        out
    }

    /// The output as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

struct Wire {
    session: Session,
    clock: Instant,
    /// Sent by the client, not yet read by the session.
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl Wire {
    fn now(&self) -> Now<'static> {
        Now {
            instant: self.clock,
            wall: UNIX_EPOCH,
            date: DATE,
        }
    }

    /// Moves bytes until nothing moves: the client takes the output, the
    /// session reads the wire (and answers inside each verb).
    fn pump(&mut self) {
        loop {
            let drained = self.drain();
            let read = self.read_pending();
            if !drained && !read {
                break;
            }
        }
    }

    fn read_pending(&mut self) -> bool {
        let mut read = false;
        while !self.pending.is_empty() && self.session.wants_read() {
            if self.session.needs_buffer() {
                self.session.lend_buffer(vec![0; READ_SIZE]);
            }
            let room = self.session.read_buffer();
            let n = room.len().min(self.pending.len());
            let (taken, _) = self.pending.split_at(n);
            room.get_mut(..n).unwrap_or_default().copy_from_slice(taken);
            self.pending.drain(..n);
            self.session.received(n, self.now());
            self.check_bounds();
            read = true;
            // Answers go out before more is read, as a driver would write them.
            self.drain();
        }
        read
    }

    fn drain(&mut self) -> bool {
        let mut drained = false;
        while self.session.has_output() {
            drained = true;
            let mut slices = [IoSlice::new(&[]); 16];
            let n = match self.session.front(&mut slices) {
                Front::Memory { count, .. } => {
                    let before = self.out.len();
                    for slice in slices.iter().take(count) {
                        self.out.extend_from_slice(slice);
                    }
                    self.out.len() - before
                }
                Front::File { file, offset, len } => {
                    let mut chunk = vec![0; len.min(64 * 1024) as usize];
                    let read = file.read_at(&mut chunk, offset).unwrap_or(0);
                    assert!(read > 0, "a file range the file does not have");
                    self.out
                        .extend_from_slice(chunk.get(..read).unwrap_or_default());
                    read
                }
                Front::Empty => 0,
            };
            self.session.written(n, self.now());
            self.check_bounds();
        }
        self.check_log_lines();
        drained
    }

    /// Whatever the client sent, each access-log line is one line: of
    /// printable ASCII, with the unquoted user field free of spaces, in the
    /// text formats; with no control character in JSON (which the black-box
    /// tests read with a real parser).
    fn check_log_lines(&mut self) {
        let time = access_log::LogTime {
            common: "10/Oct/2000:13:55:36 +0000",
            rfc3339: "2000-10-10T13:55:36Z",
        };
        for entry in self.session.take_log_entries() {
            let line = access_log::line(access_log::Format::Combined, CLIENT, &entry, time);
            let (text, end) = line.split_at(line.len() - 1);
            assert_eq!(end, "\n", "{line:?}");
            assert!(
                text.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "not one printable line: {line:?}"
            );
            let user = text.split(' ').nth(2).unwrap_or_default();
            assert!(
                text.starts_with(&format!("{CLIENT} - {user} [")),
                "{line:?}"
            );
            let vhost = access_log::line(access_log::Format::Vhost, CLIENT, &entry, time);
            let host = vhost.split(' ').next().unwrap_or_default();
            assert_eq!(vhost, format!("{host} {line}"), "the host, then the line");
            let json = access_log::line(access_log::Format::Json, CLIENT, &entry, time);
            let (object, end) = json.split_at(json.len() - 1);
            assert_eq!(end, "\n", "{json:?}");
            assert!(object.starts_with('{') && object.ends_with('}'), "{json:?}");
            assert!(!object.chars().any(char::is_control), "{json:?}");
        }
    }

    /// The memory bounds the core promises whatever the input.
    fn check_bounds(&self) {
        let limits = Settings::default().limits;
        let (input, output) = self.session.buffered();
        // HTTP/2's holds one whole frame at least (it is HTTP/1.1's by default).
        let input_bound = crate::h2::input_bound(limits.max_head_bytes);
        debug_assert!(input_bound >= limits.max_head_bytes.max(READ_SIZE));
        assert!(
            input <= input_bound,
            "input buffer {input} over its bound {input_bound}"
        );
        // Backpressure stops new requests once the threshold is passed, so at
        // most one response goes past it. The largest one held in memory here
        // is a cached file, an echoed head, or a listing (a few KiB).
        let largest_response = CACHE_FILE_BYTES.max(limits.max_head_bytes) + 16 * 1024;
        let output_bound = limits.max_queued_bytes + largest_response;
        assert!(
            output <= output_bound,
            "queued output {output} over {output_bound}"
        );
    }
}

/// Sends `input` to a new session over `service`, cut at `cuts` (taken
/// modulo its length), then closes the client's side; returns what came back.
pub(crate) fn converse(service: &Arc<Service>, input: &[u8], cuts: &[usize]) -> Transcript {
    let clock = Instant::now();
    let mut wire = Wire {
        session: Session::new(7, Arc::clone(service), CLIENT, clock),
        clock,
        pending: Vec::new(),
        out: Vec::new(),
    };
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        let end = cut.max(start);
        wire.pending
            .extend_from_slice(input.get(start..end).unwrap_or_default());
        wire.pump();
        start = end;
    }
    wire.pump();
    let now = wire.now();
    wire.session.received_eof(now);
    wire.pump();
    Transcript {
        output: wire.out,
        state: wire.session.state(),
    }
}

/// Where to cut `input`, from one seed byte: the first byte of a raw fuzz
/// input says how the rest is split, so libFuzzer can mutate the splits too.
pub fn seeded_cuts(seed: u8, input: &[u8]) -> Vec<usize> {
    input
        .iter()
        .take(usize::from(seed % 16))
        .map(|&b| usize::from(b) * 31 + usize::from(seed))
        .collect()
}

/// The answer must not depend on how the input was split: whole, cut where
/// `cuts` says, and (for short inputs) byte by byte, each from the same store.
pub fn assert_split_invariant(site: &super::FixtureSite, input: &[u8], cuts: &[usize]) {
    let run = |cuts: &[usize]| {
        site.reset().expect("the store can be reset");
        converse(&site.service, input, cuts)
    };
    let whole = run(&[]);
    let check = |other: Transcript, how: &str| {
        assert!(
            whole.normalized() == other.normalized() && whole.state == other.state,
            "the answer depends on how the input was split ({how}):\n\
             input {:?}\nwhole ({:?}) {:?}\n{how} ({:?}) {:?}",
            String::from_utf8_lossy(input),
            whole.state,
            whole.text(),
            other.state,
            other.text(),
        );
    };
    check(run(cuts), "cut");
    if input.len() < 512 {
        let every_byte: Vec<usize> = (1..input.len()).collect();
        check(run(&every_byte), "byte by byte");
    }
}
