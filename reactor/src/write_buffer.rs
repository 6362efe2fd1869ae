//! The write buffer a [`FileDescriptor`](crate::FileDescriptor) queues into: chunks plus
//! the offset sent of the first. Small copied writes coalesce; owned `Vec`s, shared
//! buffers (CONTRACT D10) and static data (CONTRACT D11) are queued as they are.

use std::collections::VecDeque;
use std::io::IoSlice;

use torsion_transport::SharedBytes;

/// Writes up to this size are coalesced into the previous chunk; larger ones keep their
/// own allocation.
const COALESCE: usize = 4096;
/// Most iovecs per `writev`.
const MAX_IOV: usize = 64;

/// One queued write: bytes copied in (small writes coalesce here), an owned `Vec` taken
/// as is, or a shared buffer (CONTRACT D10).
pub(crate) enum Chunk {
    Owned(Vec<u8>),
    Shared(SharedBytes),
    /// Never freed or changed: the sink may reference its pages (CONTRACT D11).
    Static(&'static [u8]),
}

impl Chunk {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(b) => b,
            Chunk::Static(s) => s,
        }
    }
}

#[derive(Default)]
pub(crate) struct WriteBuffer {
    pub(crate) chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already sent.
    pub(crate) offset: usize,
    /// Bytes not yet sent.
    pub(crate) unsent: usize,
}

impl WriteBuffer {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.unsent += data.len();
        if data.len() <= COALESCE {
            if let Some(Chunk::Owned(last)) = self.chunks.back_mut() {
                if last.len() + data.len() <= COALESCE * 4 {
                    last.extend_from_slice(data);
                    return;
                }
            }
        }
        self.chunks.push_back(Chunk::Owned(data.to_vec()));
    }

    /// Queue `chunk` as is, its first `sent` bytes already written (only when the buffer
    /// is empty, so they are the front chunk's offset).
    pub(crate) fn push_chunk(&mut self, chunk: Chunk, sent: usize) {
        let len = chunk.bytes().len();
        if sent >= len {
            return;
        }
        if self.chunks.is_empty() {
            self.offset = sent;
            self.unsent += len - sent;
            self.chunks.push_back(chunk);
            return;
        }
        match chunk {
            Chunk::Owned(v) if sent > 0 => self.push(&v[sent..]),
            Chunk::Shared(mut b) => {
                b.advance(sent);
                self.unsent += b.len();
                self.chunks.push_back(Chunk::Shared(b));
            }
            Chunk::Static(s) => {
                let rest = s.get(sent..).unwrap_or_default();
                self.unsent += rest.len();
                self.chunks.push_back(Chunk::Static(rest));
            }
            other => {
                self.unsent += len;
                self.chunks.push_back(other);
            }
        }
    }

    /// The front chunk's unsent part if it is a static one (written with
    /// [`WriteSink::write_static`]).
    pub(crate) fn front_static(&self) -> Option<&'static [u8]> {
        match self.chunks.front() {
            Some(Chunk::Static(s)) => s.get(self.offset..),
            _ => None,
        }
    }

    /// The unsent bytes up to the first static chunk after the front (those go out alone,
    /// through [`WriteSink::write_static`]).
    pub(crate) fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(self.chunks.len().min(MAX_IOV));
        for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
            if i > 0 && matches!(c, Chunk::Static(_)) {
                break;
            }
            let c = c.bytes();
            let s = if i == 0 { &c[self.offset..] } else { c };
            if !s.is_empty() {
                out.push(IoSlice::new(s));
            }
        }
        out
    }

    pub(crate) fn consume(&mut self, mut n: usize) {
        self.unsent -= n.min(self.unsent);
        while n > 0 {
            let Some(first) = self.chunks.front() else {
                break;
            };
            let left = first.bytes().len() - self.offset;
            if n >= left {
                n -= left;
                self.chunks.pop_front();
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.offset = 0;
        self.unsent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_buffer_coalesces_small_and_keeps_large() {
        let mut b = WriteBuffer::default();
        b.push(b"ab");
        b.push(b"cd");
        assert_eq!(b.chunks.len(), 1);
        b.push(&vec![1u8; 100_000]);
        assert_eq!(b.chunks.len(), 2);
        assert_eq!(b.unsent, 100_004);
        b.consume(3);
        assert_eq!(b.offset, 3);
        assert_eq!(b.slices()[0].len(), 1);
        b.consume(1);
        assert_eq!(b.chunks.len(), 1);
        b.consume(100_000);
        assert_eq!(b.unsent, 0);
        assert!(b.chunks.is_empty());
    }

    #[test]
    fn write_buffer_appends_after_a_partly_sent_chunk() {
        let mut b = WriteBuffer::default();
        b.push(b"hello");
        b.consume(2);
        b.push(b"!");
        let joined: Vec<u8> = b.slices().iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(joined, b"llo!");
    }

    fn joined(b: &WriteBuffer) -> Vec<u8> {
        b.slices().iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn d10_owned_and_shared_chunks_are_queued_without_copy_and_in_order() {
        let shared = SharedBytes::from(b"shared".to_vec());
        let mut b = WriteBuffer::default();
        let v = b"owned".to_vec();
        let ptr = v.as_ptr();
        b.push_chunk(Chunk::Owned(v), 2);
        assert_eq!(
            b.offset, 2,
            "the part already sent is an offset, not a copy"
        );
        b.push_chunk(Chunk::Shared(shared.clone()), 0);
        b.push(b"!");
        assert_eq!(b.unsent, 3 + 6 + 1);
        assert_eq!(
            joined(&b),
            b"ned".iter().chain(b"shared!").copied().collect::<Vec<_>>()
        );
        assert!(matches!(b.chunks.front(), Some(Chunk::Owned(v)) if v.as_ptr() == ptr));
        assert!(
            matches!(b.chunks.get(1), Some(Chunk::Shared(s)) if s.as_ptr() == shared.as_ptr()),
            "the shared chunk is the caller's allocation"
        );
        // A small write after a shared chunk does not try to coalesce into it.
        assert_eq!(b.chunks.len(), 3);
        b.consume(3 + 6 + 1);
        assert_eq!(b.unsent, 0);
        assert!(b.chunks.is_empty());
    }

    #[test]
    fn d10_a_partly_sent_chunk_behind_others_keeps_only_its_rest() {
        let mut b = WriteBuffer::default();
        b.push(b"ab");
        b.push_chunk(Chunk::Shared(SharedBytes::from(&b"xyz"[..])), 1);
        b.push_chunk(Chunk::Owned(b"123".to_vec()), 2);
        b.push_chunk(Chunk::Owned(b"4".to_vec()), 1);
        assert_eq!(joined(&b), b"abyz3");
        assert_eq!(b.unsent, 5);
    }

    #[test]
    fn d11_a_static_chunk_goes_out_alone_and_in_order() {
        static PAYLOAD: &[u8] = b"static pages";
        let mut b = WriteBuffer::default();
        b.push(b"ab");
        b.push_chunk(Chunk::Static(PAYLOAD), 0);
        b.push(b"cd");
        assert_eq!(joined(&b), b"ab", "writev stops before the static chunk");
        assert!(b.front_static().is_none());
        b.consume(2);
        assert_eq!(b.front_static(), Some(PAYLOAD));
        b.consume(7);
        assert_eq!(b.front_static(), Some(&PAYLOAD[7..]));
        b.consume(5);
        assert!(b.front_static().is_none());
        assert_eq!(joined(&b), b"cd");
        assert_eq!(b.unsent, 2);
    }
}
