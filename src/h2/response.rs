//! A [`Response`] as HTTP/2 sends it: its fields HPACK-encoded into one
//! header block, its body left as the chunks the application made (DATA
//! frames are cut from them as the windows allow, in `conn.rs`).
//!
//! The application wrote the head as HTTP/1.1 does (`Name: value` lines
//! after a status line); the names go out in lower case (RFC 9113 section
//! 8.2), the connection-specific fields not at all (section 8.2.2), and the
//! connection's own fields (`content-length`, `date`, HSTS) are added here as
//! the HTTP/1.1 core adds them.

use super::hpack;
use crate::http::{Body, Response, StatusCode};

/// What a response becomes: the encoded block, and the body to frame
/// (`None`: the stream ends with its HEADERS).
pub(super) struct Encoded {
    pub status: StatusCode,
    pub block: Vec<u8>,
    pub body: Option<Body>,
}

/// Encodes `response`; `is_head` drops its body (but not its length),
/// `date` and `hsts` are the connection's fields.
pub(super) fn encode(response: Response, is_head: bool, date: &str, hsts: Option<u64>) -> Encoded {
    let (status, head, body) = response.into_parts();
    let mut block = Vec::with_capacity(head.len());
    hpack::encode_status(status.as_u16(), &mut block);
    // The status line first, then `Name: value\r\n` lines.
    let lines = head.split(|&b| b == b'\n').skip(1);
    let mut name = String::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (field, value) = line.split_at(colon);
        let value = value[1..].trim_ascii_start();
        name.clear();
        name.extend(field.iter().map(|&b| char::from(b.to_ascii_lowercase())));
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
        ) {
            continue;
        }
        hpack::encode_field(&name, value, &mut block);
    }
    let permits_body = status.permits_body();
    if permits_body {
        let length = body.len().to_string();
        hpack::encode_field("content-length", length.as_bytes(), &mut block);
    }
    hpack::encode_field("date", date.as_bytes(), &mut block);
    if let Some(max_age) = hsts {
        let value = format!("max-age={max_age}");
        hpack::encode_field("strict-transport-security", value.as_bytes(), &mut block);
    }
    let body = (permits_body && !is_head && !body.is_empty()).then_some(body);
    Encoded {
        status,
        block,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hpack::{Decoder, tests::decode_all};

    #[test]
    fn fields_go_in_lower_case_without_the_connection_specific_ones() {
        let response = Response::plain_text(StatusCode::OK, "hello")
            .with_header("X-Frame-Options", "DENY")
            .closing();
        let encoded = encode(response, false, "Thu, 03 Dec 2026 17:00:00 GMT", Some(60));
        let fields = decode_all(&mut Decoder::new(), &encoded.block).expect("decodes");
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                ":status",
                "content-type",
                "x-frame-options",
                "content-length",
                "date",
                "strict-transport-security"
            ]
        );
        assert_eq!(fields[3].1, "5");
        assert_eq!(fields[5].1, "max-age=60");
        assert_eq!(encoded.body.map(|b| b.len()), Some(5));
    }

    #[test]
    fn head_and_not_modified_send_no_data() {
        let ok = Response::plain_text(StatusCode::OK, "hello");
        let encoded = encode(ok, true, "d", None);
        assert!(encoded.body.is_none());
        let fields = decode_all(&mut Decoder::new(), &encoded.block).expect("decodes");
        assert!(fields.contains(&("content-length".into(), "5".into())));
        let unchanged = Response::new(StatusCode::NOT_MODIFIED);
        let encoded = encode(unchanged, false, "d", None);
        let fields = decode_all(&mut Decoder::new(), &encoded.block).expect("decodes");
        assert!(fields.iter().all(|(n, _)| n != "content-length"));
        assert!(encoded.body.is_none());
    }
}
