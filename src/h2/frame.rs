//! HTTP/2 frames (RFC 9113 sections 4 and 6): the 9-byte head, and each
//! type's rules for its length, its flags and its stream, as a parser that
//! answers a frame or the error the RFC names, never a panic.
//!
//! Parsing looks at one whole frame (the connection waits until its bytes are
//! all in); what a frame means for streams and windows is `conn.rs`'s
//! business. Writing is here too: every frame the server sends is a head and
//! a payload built by one of the functions at the bottom.

use super::error::{ErrorCode, H2Error};

/// The length of every frame's head.
pub(super) const HEAD_LEN: usize = 9;
/// The largest payload a peer may send before it has heard our
/// SETTINGS_MAX_FRAME_SIZE, and the one we advertise (section 4.2).
pub(super) const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest SETTINGS_MAX_FRAME_SIZE a peer may announce.
pub(super) const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// The largest flow-control window (section 6.9.1).
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Every window's size until SETTINGS say otherwise (section 6.9.2).
pub(super) const DEFAULT_WINDOW: u32 = 65_535;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY: u8 = 0x20;

/// The frame types of section 6; any other is ignored (section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl Kind {
    fn from_u8(byte: u8) -> Kind {
        match byte {
            0x0 => Kind::Data,
            0x1 => Kind::Headers,
            0x2 => Kind::Priority,
            0x3 => Kind::RstStream,
            0x4 => Kind::Settings,
            0x5 => Kind::PushPromise,
            0x6 => Kind::Ping,
            0x7 => Kind::GoAway,
            0x8 => Kind::WindowUpdate,
            0x9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Kind::Data => 0x0,
            Kind::Headers => 0x1,
            Kind::Priority => 0x2,
            Kind::RstStream => 0x3,
            Kind::Settings => 0x4,
            Kind::PushPromise => 0x5,
            Kind::Ping => 0x6,
            Kind::GoAway => 0x7,
            Kind::WindowUpdate => 0x8,
            Kind::Continuation => 0x9,
            Kind::Unknown(other) => other,
        }
    }
}

/// A frame's head: its payload's length, its type, flags and stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub len: u32,
    pub kind: Kind,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads a head from its 9 bytes; `None` if fewer have arrived.
    pub(super) fn read(bytes: &[u8]) -> Option<Head> {
        let b: &[u8; HEAD_LEN] = bytes.get(..HEAD_LEN)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: Kind::from_u8(b[3]),
            flags: b[4],
            // The reserved bit is ignored on receipt (section 4.1).
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// The head as it goes on the wire.
    pub(super) fn bytes(self) -> [u8; HEAD_LEN] {
        let len = self.len.to_be_bytes();
        let stream = self.stream.to_be_bytes();
        [
            len[1],
            len[2],
            len[3],
            self.kind.as_u8(),
            self.flags,
            stream[0],
            stream[1],
            stream[2],
            stream[3],
        ]
    }

    fn has(self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A PRIORITY frame's or a HEADERS frame's priority fields: read (the
/// self-dependency is an error), then ignored, as RFC 9113 allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Priority {
    pub depends_on: u32,
}

/// One frame, parsed and checked against its type's rules.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// What it counts against the windows: the whole payload, padding
        /// included (section 6.9.1).
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
        /// Its priority names the stream itself: a stream error, told
        /// once the block is decoded (the HPACK tables must stay in step).
        self_dependent: bool,
    },
    Priority {
        stream: u32,
    },
    RstStream {
        stream: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        settings: Settings<'a>,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A type this server does not know: skipped.
    Unknown,
}

/// The parameters of a SETTINGS frame, read one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Settings<'a>(&'a [u8]);

/// One setting a peer announced (unknown ones are ignored, section 6.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Setting {
    HeaderTableSize(u32),
    EnablePush(u32),
    MaxConcurrentStreams(u32),
    InitialWindowSize(u32),
    MaxFrameSize(u32),
    MaxHeaderListSize(u32),
    Unknown,
}

impl<'a> Iterator for Settings<'a> {
    type Item = Setting;

    fn next(&mut self) -> Option<Setting> {
        let (entry, rest) = self.0.split_first_chunk::<6>()?;
        self.0 = rest;
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        Some(match u16::from_be_bytes([entry[0], entry[1]]) {
            0x1 => Setting::HeaderTableSize(value),
            0x2 => Setting::EnablePush(value),
            0x3 => Setting::MaxConcurrentStreams(value),
            0x4 => Setting::InitialWindowSize(value),
            0x5 => Setting::MaxFrameSize(value),
            0x6 => Setting::MaxHeaderListSize(value),
            _ => Setting::Unknown,
        })
    }
}

/// Parses the frame whose head is `head` and whose payload is `payload`
/// (exactly `head.len` bytes), by the rules of its type in section 6.
pub(super) fn parse(head: Head, payload: &[u8]) -> Result<Frame<'_>, H2Error> {
    let connection = |code, why| Err(H2Error::Connection(code, why));
    let stream_error = |code, why| Err(H2Error::Stream(head.stream, code, why));
    let on_stream_zero = head.stream == 0;
    match head.kind {
        Kind::Data => {
            if on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "DATA on stream 0");
            }
            let data = unpadded(head, payload)?;
            Ok(Frame::Data {
                stream: head.stream,
                end_stream: head.has(END_STREAM),
                data,
                flow_len: head.len,
            })
        }
        Kind::Headers => {
            if on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "HEADERS on stream 0");
            }
            let mut block = unpadded(head, payload)?;
            let mut self_dependent = false;
            if head.has(PRIORITY) {
                let Some((fields, rest)) = block.split_first_chunk::<5>() else {
                    return connection(ErrorCode::FRAME_SIZE_ERROR, "HEADERS too short");
                };
                self_dependent = priority(fields).depends_on == head.stream;
                block = rest;
            }
            Ok(Frame::Headers {
                stream: head.stream,
                end_stream: head.has(END_STREAM),
                end_headers: head.has(END_HEADERS),
                block,
                self_dependent,
            })
        }
        Kind::Priority => {
            if on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "PRIORITY on stream 0");
            }
            let Ok(fields) = <&[u8; 5]>::try_from(payload) else {
                return stream_error(ErrorCode::FRAME_SIZE_ERROR, "PRIORITY is 5 bytes");
            };
            if priority(fields).depends_on == head.stream {
                return stream_error(ErrorCode::PROTOCOL_ERROR, "a stream depends on itself");
            }
            Ok(Frame::Priority {
                stream: head.stream,
            })
        }
        Kind::RstStream => {
            if on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on stream 0");
            }
            let Ok(code) = <[u8; 4]>::try_from(payload) else {
                return connection(ErrorCode::FRAME_SIZE_ERROR, "RST_STREAM is 4 bytes");
            };
            Ok(Frame::RstStream {
                stream: head.stream,
                code: ErrorCode(u32::from_be_bytes(code)),
            })
        }
        Kind::Settings => {
            if !on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "SETTINGS on a stream");
            }
            let ack = head.has(ACK);
            if ack && !payload.is_empty() {
                return connection(ErrorCode::FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload");
            }
            if !payload.len().is_multiple_of(6) {
                return connection(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS not in 6-byte entries",
                );
            }
            Ok(Frame::Settings {
                ack,
                settings: Settings(payload),
            })
        }
        Kind::PushPromise => connection(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE from a client"),
        Kind::Ping => {
            if !on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "PING on a stream");
            }
            let Ok(data) = <[u8; 8]>::try_from(payload) else {
                return connection(ErrorCode::FRAME_SIZE_ERROR, "PING is 8 bytes");
            };
            Ok(Frame::Ping {
                ack: head.has(ACK),
                data,
            })
        }
        Kind::GoAway => {
            if !on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "GOAWAY on a stream");
            }
            let Some((fields, _debug_data)) = payload.split_first_chunk::<8>() else {
                return connection(ErrorCode::FRAME_SIZE_ERROR, "GOAWAY too short");
            };
            let last = u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]);
            let code = u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]);
            Ok(Frame::GoAway {
                last_stream: last & 0x7fff_ffff,
                code: ErrorCode(code),
            })
        }
        Kind::WindowUpdate => {
            let Ok(bytes) = <[u8; 4]>::try_from(payload) else {
                return connection(ErrorCode::FRAME_SIZE_ERROR, "WINDOW_UPDATE is 4 bytes");
            };
            let increment = u32::from_be_bytes(bytes) & 0x7fff_ffff;
            if increment == 0 {
                return if on_stream_zero {
                    connection(ErrorCode::PROTOCOL_ERROR, "a window grown by 0")
                } else {
                    stream_error(ErrorCode::PROTOCOL_ERROR, "a window grown by 0")
                };
            }
            Ok(Frame::WindowUpdate {
                stream: head.stream,
                increment,
            })
        }
        Kind::Continuation => {
            if on_stream_zero {
                return connection(ErrorCode::PROTOCOL_ERROR, "CONTINUATION on stream 0");
            }
            Ok(Frame::Continuation {
                stream: head.stream,
                end_headers: head.has(END_HEADERS),
                block: payload,
            })
        }
        Kind::Unknown(_) => Ok(Frame::Unknown),
    }
}

/// A DATA or HEADERS payload without its padding (section 6.1): padding as
/// long as the payload or longer is a connection error.
fn unpadded(head: Head, payload: &[u8]) -> Result<&[u8], H2Error> {
    if !head.has(PADDED) {
        return Ok(payload);
    }
    let too_much = H2Error::Connection(ErrorCode::PROTOCOL_ERROR, "padding longer than its frame");
    let (&pad, rest) = payload.split_first().ok_or(too_much)?;
    let keep = rest.len().checked_sub(usize::from(pad)).ok_or(too_much)?;
    rest.get(..keep).ok_or(too_much)
}

fn priority(fields: &[u8; 5]) -> Priority {
    let depends_on = u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]) & 0x7fff_ffff;
    Priority { depends_on }
}

// ----- frames the server sends ------------------------------------------------

/// Appends a frame of `kind` with `payload`.
pub(super) fn push(out: &mut Vec<u8>, kind: Kind, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&head(kind, flags, stream, len));
    out.extend_from_slice(payload);
}

/// A frame head, for a payload that follows it separately (a DATA frame's
/// file range).
pub(super) fn head(kind: Kind, flags: u8, stream: u32, len: u32) -> [u8; HEAD_LEN] {
    Head {
        len,
        kind,
        flags,
        stream,
    }
    .bytes()
}

pub(super) fn push_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    let mut payload = Vec::with_capacity(settings.len() * 6);
    for (id, value) in settings {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    push(out, Kind::Settings, 0, 0, &payload);
}

pub(super) fn push_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    push(out, Kind::WindowUpdate, 0, stream, &increment.to_be_bytes());
}

pub(super) fn push_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    push(out, Kind::RstStream, 0, stream, &code.0.to_be_bytes());
}

pub(super) fn push_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode, why: &str) {
    let mut payload = Vec::with_capacity(8 + why.len());
    payload.extend_from_slice(&last_stream.to_be_bytes());
    payload.extend_from_slice(&code.0.to_be_bytes());
    payload.extend_from_slice(why.as_bytes());
    push(out, Kind::GoAway, 0, 0, &payload);
}

/// SETTINGS parameter identifiers (section 6.5.2), for the ones we send.
pub(super) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(super) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(super) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: Kind, flags: u8, stream: u32, payload: &[u8]) -> Result<Frame<'_>, H2Error> {
        let head = Head {
            len: payload.len() as u32,
            kind,
            flags,
            stream,
        };
        parse(head, payload)
    }

    #[test]
    fn a_head_reads_back_what_was_written_and_ignores_the_reserved_bit() {
        let written = head(Kind::Headers, END_HEADERS, 0x7fff_ffff, 0x00ab_cdef);
        let mut read = Head::read(&written).expect("nine bytes");
        assert_eq!(read.len, 0x00ab_cdef);
        assert_eq!(read.kind, Kind::Headers);
        assert_eq!(read.stream, 0x7fff_ffff);
        let mut reserved = written;
        reserved[5] |= 0x80;
        read = Head::read(&reserved).expect("nine bytes");
        assert_eq!(read.stream, 0x7fff_ffff);
        assert_eq!(Head::read(&written[..8]), None);
    }

    #[test]
    fn padding_is_removed_and_too_much_of_it_is_a_connection_error() {
        let padded = [2, b'a', b'b', 0, 0];
        assert!(matches!(
            frame(Kind::Data, PADDED, 1, &padded),
            Ok(Frame::Data {
                data: b"ab",
                flow_len: 5,
                ..
            })
        ));
        for bad in [&[][..], &[1][..], &[3, 0, 0][..]] {
            assert_eq!(
                frame(Kind::Data, PADDED, 1, bad),
                Err(H2Error::Connection(
                    ErrorCode::PROTOCOL_ERROR,
                    "padding longer than its frame"
                ))
            );
        }
    }

    #[test]
    fn each_type_checks_its_length_and_stream() {
        let conn = |code| matches!(code, Err(H2Error::Connection(..)));
        assert!(conn(frame(Kind::Data, 0, 0, b"x")));
        assert!(conn(frame(Kind::Headers, 0, 0, b"")));
        assert!(conn(frame(Kind::Settings, 0, 1, b"")));
        assert!(conn(frame(Kind::Settings, 0, 0, &[0; 5])));
        assert!(conn(frame(Kind::Settings, ACK, 0, &[0; 6])));
        assert!(conn(frame(Kind::Ping, 0, 0, &[0; 7])));
        assert!(conn(frame(Kind::Ping, 0, 3, &[0; 8])));
        assert!(conn(frame(Kind::RstStream, 0, 1, &[0; 3])));
        assert!(conn(frame(Kind::GoAway, 0, 0, &[0; 7])));
        assert!(conn(frame(Kind::WindowUpdate, 0, 0, &[0; 3])));
        assert!(conn(frame(Kind::WindowUpdate, 0, 0, &[0; 4])));
        assert!(conn(frame(Kind::PushPromise, 0, 1, &[0; 4])));
        assert!(matches!(
            frame(Kind::Priority, 0, 1, &[0; 4]),
            Err(H2Error::Stream(1, ErrorCode::FRAME_SIZE_ERROR, _))
        ));
        assert!(matches!(
            frame(Kind::Priority, 0, 3, &[0, 0, 0, 3, 16]),
            Err(H2Error::Stream(3, ErrorCode::PROTOCOL_ERROR, _))
        ));
        assert!(matches!(
            frame(Kind::WindowUpdate, 0, 5, &[0; 4]),
            Err(H2Error::Stream(5, ErrorCode::PROTOCOL_ERROR, _))
        ));
        assert_eq!(
            frame(Kind::Unknown(0xfa), 0xff, 7, b"any"),
            Ok(Frame::Unknown)
        );
    }

    #[test]
    fn settings_are_read_one_by_one_and_unknown_ones_kept_as_unknown() {
        let payload = [0, 4, 0, 1, 0, 0, 0, 0x99, 0, 0, 0, 1, 0, 5, 0, 0, 0x40, 0];
        let Ok(Frame::Settings {
            ack: false,
            settings,
        }) = frame(Kind::Settings, 0, 0, &payload)
        else {
            panic!("SETTINGS parse");
        };
        assert_eq!(
            settings.collect::<Vec<_>>(),
            vec![
                Setting::InitialWindowSize(0x1_0000),
                Setting::Unknown,
                Setting::MaxFrameSize(0x4000)
            ]
        );
    }

    #[test]
    fn headers_with_priority_lose_its_five_bytes() {
        let payload = [0, 0, 0, 0, 16, b'h', b'p'];
        assert!(matches!(
            frame(Kind::Headers, PRIORITY | END_HEADERS, 1, &payload),
            Ok(Frame::Headers {
                block: b"hp",
                end_headers: true,
                ..
            })
        ));
    }
}
