//! Comma-separated header lists (RFC 9110 section 5.6.1) and their parameters.
//!
//! `Connection`, `Transfer-Encoding`, `Accept-Encoding` and `If-None-Match` are all
//! lists; a recipient must accept empty elements and optional whitespace around commas.

/// Splits every value of a list header into its trimmed, non-empty elements.
pub(crate) fn list_elements<'a, I>(values: I) -> impl Iterator<Item = &'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    values
        .into_iter()
        .flat_map(|value| value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|element| !element.is_empty())
}

/// Whether any element of the list is `token`, compared case-insensitively
/// (the way `Connection: Keep-Alive, CLOSE` must be read).
pub(super) fn contains_token<'a, I>(values: I, token: &str) -> bool
where
    I: IntoIterator<Item = &'a [u8]>,
{
    list_elements(values).any(|element| element.eq_ignore_ascii_case(token.as_bytes()))
}

/// Strips optional whitespace (spaces and tabs) from both ends.
pub(super) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// One element of a weighted list such as `Accept-Encoding: gzip;q=0.5`:
/// the item and its quality in thousandths (1000 when no `q` is given).
pub(crate) fn weighted(element: &[u8]) -> (&[u8], u16) {
    let mut parts = element.split(|&b| b == b';');
    let item = trim_ows(parts.next().unwrap_or_default());
    let mut quality = 1000;
    for param in parts {
        if let [b'q' | b'Q', b'=', value @ ..] = trim_ows(param) {
            // An unreadable weight makes the element useless rather than preferred.
            quality = parse_qvalue(value).unwrap_or(0);
        }
    }
    (item, quality)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_qvalue(text: &[u8]) -> Option<u16> {
    let (whole, fraction) = match text.split(|&b| b == b'.').collect::<Vec<_>>()[..] {
        [whole] => (whole, &b""[..]),
        [whole, fraction] => (whole, fraction),
        _ => return None,
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let thousandths: u16 = fraction
        .iter()
        .zip([100, 10, 1])
        .map(|(digit, scale)| u16::from(digit - b'0') * scale)
        .sum();
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_trimmed_and_empty_ones_skipped() {
        let values: [&[u8]; 2] = [b" a ,, b\t", b"c"];
        let got: Vec<&[u8]> = list_elements(values).collect();
        assert_eq!(got, vec![&b"a"[..], &b"b"[..], &b"c"[..]]);
    }

    #[test]
    fn tokens_compare_case_insensitively() {
        assert!(contains_token([&b"Keep-Alive, CLOSE"[..]], "close"));
        assert!(!contains_token([&b"closed"[..]], "close"));
    }

    #[test]
    fn weights() {
        assert_eq!(weighted(b"gzip"), (&b"gzip"[..], 1000));
        assert_eq!(weighted(b"gzip;q=0"), (&b"gzip"[..], 0));
        assert_eq!(weighted(b"gzip ; Q=0.5"), (&b"gzip"[..], 500));
        assert_eq!(weighted(b"br;q=0.001"), (&b"br"[..], 1));
        assert_eq!(weighted(b"br;q=1.000"), (&b"br"[..], 1000));
        assert_eq!(weighted(b"br;q=2"), (&b"br"[..], 0));
        assert_eq!(weighted(b"br;q=0.5555"), (&b"br"[..], 0));
        assert_eq!(weighted(b"br;q=0.5.5"), (&b"br"[..], 0));
        assert_eq!(weighted(b"br;q"), (&b"br"[..], 1000), "no weight given");
        assert_eq!(weighted(b"br;q=\xc3\xa9"), (&b"br"[..], 0));
        assert_eq!(weighted(b"\xc3\xa9;q=1"), (&b"\xc3\xa9"[..], 1000));
    }
}
