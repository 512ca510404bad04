//! The two tables HPACK indexes into (RFC 7541 section 2.3): the static
//! table of Appendix A, and the decoder's dynamic table, whose size the
//! encoder changes within the bound our SETTINGS announced.

use std::collections::VecDeque;

/// RFC 7541 Appendix A: index 1 is the first entry.
pub(super) const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// What an entry costs in the dynamic table: its bytes and 32 (section 4.1).
const ENTRY_OVERHEAD: usize = 32;

/// A name and its value, as the dynamic table keeps them.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The decoder's dynamic table: newest entry first, its size never over
/// `max_size`.
#[derive(Debug)]
pub(super) struct Dynamic {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
}

impl Dynamic {
    pub(super) fn new(max_size: usize) -> Dynamic {
        Dynamic {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// The entry at HPACK index `index` (static first, then dynamic).
    pub(super) fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match index {
            0 => None,
            1..=61 => STATIC
                .get(index - 1)
                .map(|(name, value)| (name.as_bytes(), value.as_bytes())),
            _ => self
                .entries
                .get(index - 62)
                .map(|(name, value)| (&name[..], &value[..])),
        }
    }

    /// Adds an entry, evicting the oldest until it fits; one larger than
    /// the whole table empties it and is not kept (section 4.4).
    pub(super) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let cost = name.len() + value.len() + ENTRY_OVERHEAD;
        self.evict_to(self.max_size.saturating_sub(cost));
        if cost <= self.max_size {
            self.entries.push_front((name.into(), value.into()));
            self.size += cost;
        }
    }

    /// A dynamic table size update (section 6.3), already checked against
    /// the bound our SETTINGS allow.
    pub(super) fn resize(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            let Some((name, value)) = self.entries.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }

    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.size
    }
}

/// The static index of `name`, if the static table has it: the encoder
/// names a field by it instead of spelling it.
pub(super) fn static_name_index(name: &str) -> Option<usize> {
    // The first entry of each name is the one to use; the :status entries
    // are found by `static_status_index`.
    STATIC.iter().position(|(n, _)| *n == name).map(|at| at + 1)
}

/// The static index of `:status` with `code`, when it has one of its own.
pub(super) fn static_status_index(code: u16) -> Option<usize> {
    match code {
        200 => Some(8),
        204 => Some(9),
        206 => Some(10),
        304 => Some(11),
        400 => Some(12),
        404 => Some(13),
        500 => Some(14),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first_and_a_giant_empties_the_table() {
        let mut table = Dynamic::new(100);
        table.insert(b"a", b"1"); // 34
        table.insert(b"b", b"2"); // 68
        assert_eq!(table.get(62), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(table.get(63), Some((&b"a"[..], &b"1"[..])));
        table.insert(b"c", b"3"); // evicts a
        assert_eq!(table.size(), 68);
        assert_eq!(table.get(63), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(table.get(64), None);
        table.insert(&[b'x'; 80], b"");
        assert_eq!(table.size(), 0);
        assert_eq!(table.get(62), None);
        table.insert(b"d", b"4");
        table.resize(0);
        assert_eq!(table.get(62), None);
    }

    #[test]
    fn static_entries_are_where_appendix_a_puts_them() {
        let table = Dynamic::new(0);
        assert_eq!(table.get(2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(table.get(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(table.get(0), None);
        assert_eq!(static_name_index("content-type"), Some(31));
        assert_eq!(static_name_index(":status"), Some(8));
        assert_eq!(static_name_index("x-nope"), None);
    }
}
