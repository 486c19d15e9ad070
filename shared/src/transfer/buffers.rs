//! Part buffers that are filled, sent and then filled again.
//!
//! A multipart copy keeps at most `concurrency + 1` parts in memory at a time, yet it sends
//! thousands of parts over a large object. Allocating and freeing a new part-sized block for each one lets
//! glibc raise its mmap threshold to the part size and serve later parts from its arenas, where
//! freed blocks fragment and the resident size grows with the object. Reusing the same few
//! blocks keeps the resident size flat and spares the kernel from zeroing fresh pages per part.

use bytes::{Bytes, BytesMut};

/// A free list of empty buffers of one capacity.
pub(super) struct PartBuffers {
    capacity: usize,
    free: Vec<BytesMut>,
    allocated: usize,
}

impl PartBuffers {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            free: Vec::new(),
            allocated: 0,
        }
    }

    /// Returns an empty buffer with room for one part, reused where one is free.
    pub(super) fn take(&mut self) -> BytesMut {
        self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            BytesMut::with_capacity(self.capacity)
        })
    }

    /// Takes back a part's bytes once its upload has finished. The block is reused only when no
    /// other reference to it remains, such as a store that keeps the bytes. Otherwise the last
    /// reference frees it when dropped.
    pub(super) fn recycle(&mut self, part: Bytes) {
        if let Ok(mut buffer) = part.try_into_mut()
            && buffer.capacity() >= self.capacity
        {
            buffer.clear();
            self.free.push(buffer);
        }
    }

    /// Returns the number of buffers this copy allocated.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.allocated
    }

    /// Logs at debug level how many buffers the copy of `key` allocated.
    pub(super) fn log_allocated(&self, key: &str, upload_id: &str) {
        tracing::debug!(
            key,
            upload_id,
            part_buffers = self.allocated,
            "part buffers allocated by this copy"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(buffers: &mut PartBuffers, byte: u8) -> Bytes {
        let mut buffer = buffers.take();
        buffer.resize(buffer.capacity(), byte);
        buffer.freeze()
    }

    #[test]
    fn sent_part_block_is_reused() {
        let mut buffers = PartBuffers::new(4096);
        let first = filled(&mut buffers, 1);
        let address = first.as_ptr();
        let sent = first.clone();
        drop(sent);
        buffers.recycle(first);

        let second = buffers.take();
        assert_eq!(second.as_ptr(), address);
        assert!(second.is_empty());
        assert_eq!(second.capacity(), 4096);
        assert_eq!(buffers.allocated(), 1);
    }

    #[test]
    fn shared_block_is_not_reused() {
        let mut buffers = PartBuffers::new(4096);
        let part = filled(&mut buffers, 2);
        let kept_by_store = part.clone();
        buffers.recycle(part);

        let next = buffers.take();
        assert_ne!(next.as_ptr(), kept_by_store.as_ptr());
        assert_eq!(buffers.allocated(), 2);
        assert!(kept_by_store.iter().all(|&byte| byte == 2));
    }

    #[test]
    fn short_part_keeps_full_capacity() {
        let mut buffers = PartBuffers::new(4096);
        let mut buffer = buffers.take();
        buffer.extend_from_slice(&[3; 100]);
        buffers.recycle(buffer.freeze());

        let next = buffers.take();
        assert_eq!(next.capacity(), 4096);
        assert_eq!(buffers.allocated(), 1);
    }
}
