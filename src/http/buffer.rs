//! The input buffer: bytes received and not yet consumed.
//!
//! The driver reads straight into its spare room (no intermediate copy), the core
//! parses in place, and consuming a prefix only moves an offset. The memory comes
//! from the driver's pool and goes back to it whenever the buffer is empty, so an
//! idle keep-alive connection holds no buffer at all.

/// Bytes of room offered to each read.
pub(crate) const READ_SIZE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    /// Allocated and initialised storage; `storage.len()` is the capacity.
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl InputBuffer {
    /// The bytes received and not yet consumed.
    pub(crate) fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether storage is attached (a pooled buffer, or one grown for a large head).
    pub(crate) fn has_storage(&self) -> bool {
        !self.storage.is_empty()
    }

    /// Attaches pooled storage. The pool hands out zero-filled, fixed-size vectors.
    pub(crate) fn attach(&mut self, storage: Vec<u8>) {
        debug_assert!(self.is_empty());
        if self.storage.is_empty() {
            self.storage = storage;
            self.start = 0;
            self.end = 0;
        }
    }

    /// Detaches the storage when nothing is buffered, for the pool to reuse.
    pub(crate) fn detach_if_empty(&mut self) -> Option<Vec<u8>> {
        if self.is_empty() && !self.storage.is_empty() {
            self.start = 0;
            self.end = 0;
            Some(std::mem::take(&mut self.storage))
        } else {
            None
        }
    }

    /// Room to read into: at least `READ_SIZE / 4` bytes unless `max_len` bytes are
    /// already buffered, in which case it is empty. Compacts before it grows.
    pub(crate) fn spare(&mut self, max_len: usize) -> &mut [u8] {
        if self.storage.is_empty() {
            self.storage = vec![0; READ_SIZE];
        }
        if self.len() >= max_len {
            return &mut [];
        }
        let want = READ_SIZE / 4;
        if self.storage.len() - self.end < want && self.start > 0 {
            self.storage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.storage.len() - self.end < want {
            // Only a head larger than one read gets here; max_len bounds the growth.
            let grown = (self.storage.len() * 2).min(max_len.max(READ_SIZE) + READ_SIZE);
            self.storage.resize(grown, 0);
        }
        let room = (max_len - self.len()).min(self.storage.len() - self.end);
        &mut self.storage[self.end..self.end + room]
    }

    /// Records that `n` bytes were read into [`spare`](Self::spare).
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.storage.len());
        self.end = (self.end + n).min(self.storage.len());
    }

    /// Drops `n` bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops everything buffered.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(buffer: &mut InputBuffer, bytes: &[u8], max_len: usize) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = buffer.spare(max_len);
            assert!(!room.is_empty(), "no room for the rest");
            let n = room.len().min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            buffer.commit(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn consumption_moves_an_offset_and_compaction_keeps_the_data() {
        let mut b = InputBuffer::default();
        fill(&mut b, &[1u8; READ_SIZE - 10], usize::MAX);
        b.consume(READ_SIZE - 20);
        fill(&mut b, &[2u8; 100], usize::MAX);
        assert_eq!(b.len(), 110);
        assert_eq!(&b.data()[..10], &[1u8; 10]);
        assert_eq!(&b.data()[10..], &[2u8; 100][..]);
        assert_eq!(b.storage.len(), READ_SIZE, "compacted rather than grown");
    }

    #[test]
    fn grows_for_a_large_head_up_to_the_bound() {
        let mut b = InputBuffer::default();
        fill(&mut b, &vec![7u8; 40_000], 40_000);
        assert_eq!(b.len(), 40_000);
        assert!(b.spare(40_000).is_empty());
    }

    #[test]
    fn storage_is_detached_only_when_empty() {
        let mut b = InputBuffer::default();
        fill(&mut b, b"abc", usize::MAX);
        assert!(b.detach_if_empty().is_none());
        b.consume(3);
        let storage = b.detach_if_empty().expect("empty buffer detaches");
        assert_eq!(storage.len(), READ_SIZE);
        assert!(!b.has_storage());
    }
}
