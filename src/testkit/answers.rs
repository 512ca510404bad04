//! One answer read back from the bytes the server sent, in the form
//! HTTP/1.1's and HTTP/2's share, so the two can be compared: the status,
//! the fields (names in lower case, the connection's own left out, in
//! order of name) and the body.

/// What a request got, whichever protocol carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Fields that describe one connection, not the answer (RFC 9113 section
/// 8.2.2 forbids them in HTTP/2).
const CONNECTION_FIELDS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

impl Answer {
    fn new(status: u16, fields: Vec<(String, String)>, body: Vec<u8>) -> Answer {
        let mut fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .filter(|(name, _)| !CONNECTION_FIELDS.contains(&name.as_str()))
            .collect();
        // Stable: fields of one name keep their order.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Answer {
            status,
            fields,
            body,
        }
    }
}

/// The first final answer in an HTTP/1.1 server's bytes (interim `1xx`
/// answers skipped), its body framed by its fields; `None` if there is
/// none whole.
pub fn http1_answer(mut output: &[u8], head_request: bool) -> Option<Answer> {
    loop {
        let end = output.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(output.get(..end)?).into_owned();
        let rest = output.get(end + 4..)?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let fields: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect();
        if (100..200).contains(&status) {
            output = rest;
            continue;
        }
        let field = |wanted: &str| {
            fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.clone())
        };
        let bodiless = head_request || status == 204 || status == 304;
        let body = if bodiless {
            Vec::new()
        } else if let Some(length) = field("content-length") {
            rest.get(..length.parse::<usize>().ok()?)?.to_vec()
        } else if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            dechunk(rest)?
        } else {
            rest.to_vec()
        };
        return Some(Answer::new(status, fields, body));
    }
}

fn dechunk(mut input: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = input.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(input.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        input = input.get(line_end + 2..)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(input.get(..size)?);
        input = input.get(size + 2..)?;
    }
}

/// What became of one stream in an HTTP/2 server's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Http2Outcome {
    /// A final answer, its body ended.
    Answered(Answer),
    /// RST_STREAM with this code, before or instead of an answer.
    Reset(u32),
    /// GOAWAY with this code: the connection ended first.
    GoAway(u32),
    /// None of these yet.
    Unfinished,
}

/// The outcome of `stream` in the frames an HTTP/2 server sent (its
/// preface SETTINGS first). A block that does not decode is an error.
pub fn http2_outcome(mut output: &[u8], stream: u32) -> Result<Http2Outcome, String> {
    let mut head: Option<(u16, Vec<(String, String)>)> = None;
    let mut block = Vec::new();
    let mut body = Vec::new();
    let mut ended = false;
    while !ended && output.len() >= 9 {
        let len =
            usize::from(output[0]) << 16 | usize::from(output[1]) << 8 | usize::from(output[2]);
        let (kind, flags) = (output[3], output[4]);
        let id = u32::from_be_bytes([output[5], output[6], output[7], output[8]]) & 0x7fff_ffff;
        let Some(payload) = output.get(9..9 + len) else {
            break;
        };
        output = output.get(9 + len..).unwrap_or_default();
        let code = || {
            payload
                .get(..4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        match kind {
            // GOAWAY: its code follows the last stream id.
            0x7 => {
                let code = payload
                    .get(4..8)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if code != 0 || head.is_none() {
                    return Ok(Http2Outcome::GoAway(code));
                }
            }
            _ if id != stream => {}
            0x3 => return Ok(Http2Outcome::Reset(code())),
            // HEADERS and CONTINUATION: a block, decoded at END_HEADERS.
            0x1 | 0x9 => {
                block.extend_from_slice(payload);
                if flags & 0x4 == 0 {
                    continue;
                }
                let fields = crate::h2::decode_response_block(&block)
                    .map_err(|e| format!("our block does not decode: {}", e.0))?;
                block.clear();
                let mut fields: Vec<(String, String)> = fields
                    .into_iter()
                    .map(|(n, v)| {
                        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                        (text(n), text(v))
                    })
                    .collect();
                let status = match fields.first() {
                    Some((name, value)) if name == ":status" => value.parse().unwrap_or(0),
                    _ => return Err(String::from("a block without :status first")),
                };
                fields.remove(0);
                if head.is_none() && !(100..200).contains(&status) {
                    head = Some((status, fields));
                }
                ended = flags & 0x1 != 0;
            }
            0x0 => {
                // DATA: our frames are never padded.
                body.extend_from_slice(payload);
                ended = flags & 0x1 != 0;
            }
            _ => {}
        }
    }
    Ok(match head {
        Some((status, fields)) if ended => {
            Http2Outcome::Answered(Answer::new(status, fields, body))
        }
        _ => Http2Outcome::Unfinished,
    })
}
