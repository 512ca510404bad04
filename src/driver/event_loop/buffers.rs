//! A pool of read buffers shared by the connections of one loop.
//!
//! A connection borrows a buffer only while it has bytes in flight and returns it
//! as soon as its input is empty, so ten thousand idle keep-alive connections hold
//! no buffers, and a busy loop reuses a handful instead of allocating and zeroing
//! one per request.

use crate::http::READ_SIZE;

#[derive(Debug)]
pub(super) struct BufferPool {
    free: Vec<Vec<u8>>,
    /// Buffers kept for reuse; beyond this, returned buffers are freed.
    keep: usize,
}

impl BufferPool {
    pub(super) fn new(keep: usize) -> BufferPool {
        BufferPool {
            free: Vec::new(),
            keep,
        }
    }

    pub(super) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; READ_SIZE])
    }

    pub(super) fn put(&mut self, buffer: Vec<u8>) {
        // Buffers grown for a large head are not worth keeping at that size.
        if self.free.len() < self.keep && buffer.len() == READ_SIZE {
            self.free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_up_to_its_bound() {
        let mut pool = BufferPool::new(1);
        let a = pool.take();
        let b = pool.take();
        let a_ptr = a.as_ptr();
        pool.put(a);
        pool.put(b);
        assert_eq!(pool.free.len(), 1);
        let reused = pool.take();
        assert_eq!(reused.as_ptr(), a_ptr);
    }
}
