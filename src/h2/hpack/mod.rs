//! HPACK (RFC 7541), written here rather than taken from a crate: the
//! decoder must bound what a peer can make it hold (a table no larger than
//! our SETTINGS allow, strings no longer than the block they came in, and
//! decoded fields handed out one at a time so that the caller bounds the
//! header list, the defence against HPACK bombs), and the well-kept Rust
//! implementation of that (the `h2` crate's) is not published on its own.
//! The Huffman code is RFC 7541's table, taken as data (`huffman_codes.rs`).
//!
//! The encoder is stateless: it never adds to the peer's dynamic table, so
//! no SETTINGS_HEADER_TABLE_SIZE of the peer's can put the two out of step.
//! A response's fields are named by the static table where it has them and
//! spelled otherwise, values as they are.

mod huffman;
mod huffman_codes;
mod table;

use table::Dynamic;

/// The table size our SETTINGS leave at its default (section 6.5.2 of RFC
/// 9113): the most a peer's table size update may ask for.
pub(super) const TABLE_SIZE: usize = 4096;

/// A header block that does not decode: a COMPRESSION_ERROR, which ends the
/// connection (the tables would be out of step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid(pub &'static str);

/// The decoding side of one connection's HPACK context.
#[derive(Debug)]
pub(super) struct Decoder {
    table: Dynamic,
    /// Scratch for a field's name and value, kept between blocks.
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Decoder {
    pub(super) fn new() -> Decoder {
        Decoder {
            table: Dynamic::new(TABLE_SIZE),
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Decodes a whole header block, handing each field to `field` as it
    /// comes. Every field is decoded (and the table updated) even when the
    /// caller has stopped keeping them, so the tables stay in step.
    pub(super) fn decode(
        &mut self,
        mut block: &[u8],
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Invalid> {
        let mut fields_seen = false;
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // Indexed field (section 6.1).
                let index = integer(&mut block, 7)?;
                let (name, value) = self.table.get(index).ok_or(Invalid("no such index"))?;
                field(name, value);
                fields_seen = true;
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (section 6.3): only before the
                // block's first field, never over what our SETTINGS allow.
                let size = integer(&mut block, 5)?;
                if fields_seen {
                    return Err(Invalid("a table size update after a field"));
                }
                if size > TABLE_SIZE {
                    return Err(Invalid("a table larger than SETTINGS allow"));
                }
                self.table.resize(size);
            } else {
                // Literals (section 6.2): with incremental indexing (01),
                // without (0000) or never indexed (0001).
                let indexing = first & 0xc0 == 0x40;
                let prefix = if indexing { 6 } else { 4 };
                let index = integer(&mut block, prefix)?;
                self.name.clear();
                if index == 0 {
                    string(&mut block, &mut self.name)?;
                } else {
                    let (name, _) = self.table.get(index).ok_or(Invalid("no such index"))?;
                    self.name.extend_from_slice(name);
                }
                self.value.clear();
                string(&mut block, &mut self.value)?;
                field(&self.name, &self.value);
                if indexing {
                    self.table.insert(&self.name, &self.value);
                }
                fields_seen = true;
            }
        }
        Ok(())
    }
}

/// Reads an integer with an `prefix`-bit prefix (section 5.1). Values past
/// 2^28 are refused: nothing in a header block is that long.
fn integer(input: &mut &[u8], prefix: u8) -> Result<usize, Invalid> {
    let truncated = Invalid("a truncated integer");
    let (&first, rest) = input.split_first().ok_or(truncated)?;
    *input = rest;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let (&byte, rest) = input.split_first().ok_or(truncated)?;
        *input = rest;
        if shift > 21 {
            return Err(Invalid("an integer too large"));
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Reads a string literal (section 5.2) and appends it, decoded, to `out`.
fn string(input: &mut &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
    let huffman = input.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(input, 7)?;
    if len > input.len() {
        return Err(Invalid("a string longer than its block"));
    }
    let (raw, rest) = input.split_at(len);
    *input = rest;
    if huffman {
        huffman::decode(raw, out).map_err(|_| Invalid("a bad Huffman string"))
    } else {
        out.extend_from_slice(raw);
        Ok(())
    }
}

// ----- encoding ---------------------------------------------------------------

/// Appends `:status` with `code`.
pub(super) fn encode_status(code: u16, out: &mut Vec<u8>) {
    if let Some(index) = table::static_status_index(code) {
        push_integer(out, 0x80, 7, index);
        return;
    }
    // Literal without indexing, named by index 8 (`:status`).
    push_integer(out, 0x00, 4, 8);
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    push_string(out, &digits);
}

/// Appends a field, `name` in lower case, as a literal without indexing.
pub(super) fn encode_field(name: &str, value: &[u8], out: &mut Vec<u8>) {
    match table::static_name_index(name) {
        Some(index) => push_integer(out, 0x00, 4, index),
        None => {
            out.push(0x00);
            push_string(out, name.as_bytes());
        }
    }
    push_string(out, value);
}

/// RFC 7541's Huffman code for `bytes`, for the product harness's clients.
#[cfg(any(test, feature = "harness"))]
pub(crate) fn huffman_encode(bytes: &[u8]) -> Vec<u8> {
    huffman::encode(bytes)
}

/// A decoded field: its name and value.
#[cfg(any(test, feature = "harness"))]
pub(crate) type Field = (Vec<u8>, Vec<u8>);

/// The fields of one of our responses' blocks, for the product harness,
/// which reads answers back: our encoder never indexes, so every block
/// decodes alone, with a fresh table.
#[cfg(any(test, feature = "harness"))]
pub(crate) fn decode_response_block(block: &[u8]) -> Result<Vec<Field>, Invalid> {
    let mut fields = Vec::new();
    Decoder::new().decode(block, &mut |name, value| {
        fields.push((name.to_vec(), value.to_vec()));
    })?;
    Ok(fields)
}

fn push_integer(out: &mut Vec<u8>, pattern: u8, prefix: u8, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(pattern | value as u8);
        return;
    }
    out.push(pattern | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn push_string(out: &mut Vec<u8>, bytes: &[u8]) {
    push_integer(out, 0x00, 7, bytes.len());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn decode_all(
        decoder: &mut Decoder,
        block: &[u8],
    ) -> Result<Vec<(String, String)>, Invalid> {
        let mut fields = Vec::new();
        decoder.decode(block, &mut |name, value| {
            fields.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        })?;
        Ok(fields)
    }

    /// A request's block as a client's encoder writes it: every field
    /// added to the table, values Huffman-coded: the tests' encoder.
    pub(crate) fn request_block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in fields {
            out.push(0x40);
            let name = huffman::encode(name.as_bytes());
            push_integer(&mut out, 0x80, 7, name.len());
            out.extend_from_slice(&name);
            let value = huffman::encode(value.as_bytes());
            push_integer(&mut out, 0x80, 7, value.len());
            out.extend_from_slice(&value);
        }
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc_7541_c_4_requests_with_huffman_share_one_table() {
        let mut decoder = Decoder::new();
        let first = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            decode_all(&mut decoder, &first),
            Ok(pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]))
        );
        // C.4.2: the authority is now index 62, and a new field comes.
        let second = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ];
        assert_eq!(
            decode_all(&mut decoder, &second),
            Ok(pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ]))
        );
    }

    #[test]
    fn bad_blocks_are_compression_errors() {
        let mut decoder = Decoder::new();
        assert!(decode_all(&mut decoder, &[0x80]).is_err(), "index 0");
        assert!(
            decode_all(&mut decoder, &[0xbe]).is_err(),
            "empty dynamic table"
        );
        assert!(
            decode_all(&mut decoder, &[0x82, 0x20]).is_err(),
            "update after a field"
        );
        assert!(
            decode_all(&mut decoder, &[0x3f, 0xe2, 0x1f]).is_err(),
            "4097 > 4096"
        );
        assert!(
            decode_all(&mut decoder, &[0x04, 0x85, b'a']).is_err(),
            "string past the end"
        );
        assert!(
            decode_all(&mut decoder, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err(),
            "integer past 2^28"
        );
        assert_eq!(
            decode_all(&mut decoder, &[0x20, 0x82]),
            Ok(pairs(&[(":method", "GET")]))
        );
    }

    #[test]
    fn responses_decode_to_what_was_encoded() {
        let mut out = Vec::new();
        encode_status(200, &mut out);
        encode_status(418, &mut out);
        encode_field("content-type", b"text/plain", &mut out);
        encode_field("x-long-name-for-a-field", &[b'v'; 300], &mut out);
        let mut decoder = Decoder::new();
        let fields = decode_all(&mut decoder, &out).expect("decodes");
        assert_eq!(fields[0], (":status".into(), "200".into()));
        assert_eq!(fields[1], (":status".into(), "418".into()));
        assert_eq!(fields[2], ("content-type".into(), "text/plain".into()));
        assert_eq!(fields[3].1.len(), 300);
    }

    proptest! {
        #[test]
        fn any_block_decodes_or_fails_without_panicking(
            blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4)
        ) {
            let mut decoder = Decoder::new();
            for block in blocks {
                let _ = decode_all(&mut decoder, &block);
            }
        }

        #[test]
        fn encoded_requests_come_back(fields in proptest::collection::vec(("[a-z-]{1,12}", "[ -~]{0,40}"), 0..12)) {
            let list: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let mut decoder = Decoder::new();
            let block = request_block(&list);
            prop_assert_eq!(decode_all(&mut decoder, &block), Ok(pairs(&list)));
            // The same again: every field is in the table now, and the
            // table's evictions keep it under its bound.
            prop_assert_eq!(decode_all(&mut decoder, &block), Ok(pairs(&list)));
        }
    }
}
