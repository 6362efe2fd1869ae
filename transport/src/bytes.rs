//! [`SharedBytes`]: an immutable, reference-counted byte buffer that a consumer queues
//! without copying (CONTRACT D10).

use std::fmt;
use std::ops::{Bound, Deref, RangeBounds};
use std::rc::Rc;

/// An immutable byte buffer shared by reference count: an `Rc<[u8]>` and a range of it.
///
/// Cloning it, slicing it and queueing it with
/// [`Consumer::write_shared`](crate::Consumer::write_shared) copy no bytes: the consumer
/// keeps a reference until the bytes are sent. Use it for data written more than once
/// (the same reply to many connections, a reused chunk) or kept after writing.
///
/// ```
/// use std::rc::Rc;
/// use torsion_transport::SharedBytes;
///
/// let chunk = SharedBytes::from(Rc::<[u8]>::from(&b"hello world"[..]));
/// let hello = chunk.get(..5).expect("in range");
/// assert_eq!(&*hello, b"hello");
/// assert!(chunk.get(5..100).is_none(), "out of range is None, not a panic");
/// ```
#[derive(Clone)]
pub struct SharedBytes {
    buf: Rc<[u8]>,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// All of `buf`.
    pub fn new(buf: Rc<[u8]>) -> SharedBytes {
        let end = buf.len();
        SharedBytes { buf, start: 0, end }
    }

    /// The bytes in `range` (relative to this view), sharing the same allocation; `None`
    /// if the range is reversed or goes past the end.
    pub fn get(&self, range: impl RangeBounds<usize>) -> Option<SharedBytes> {
        let len = self.len();
        let lo = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&n) => n.checked_add(1)?,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => len,
        };
        (lo <= hi && hi <= len).then(|| SharedBytes {
            buf: self.buf.clone(),
            start: self.start + lo,
            end: self.start + hi,
        })
    }

    /// Drop the first `n` bytes of this view (all of them if `n` is larger).
    pub fn advance(&mut self, n: usize) {
        self.start = self.end.min(self.start.saturating_add(n));
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Rc<[u8]>> for SharedBytes {
    fn from(buf: Rc<[u8]>) -> SharedBytes {
        SharedBytes::new(buf)
    }
}

/// Moves the bytes into one `Rc<[u8]>` allocation (one copy, here, once).
impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> SharedBytes {
        SharedBytes::new(Rc::from(v))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(v: &[u8]) -> SharedBytes {
        SharedBytes::new(Rc::from(v))
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &SharedBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.len())
            .field("refs", &Rc::strong_count(&self.buf))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_shares_and_checks_bounds() {
        let b = SharedBytes::from(b"abcdef".to_vec());
        let mid = b.get(1..4).expect("in range");
        assert_eq!(&*mid, b"bcd");
        assert_eq!(&*mid.get(1..=2).expect("in range"), b"cd");
        assert!(Rc::ptr_eq(&b.buf, &mid.buf), "no copy");
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 4..2;
        assert!(b.get(reversed).is_none());
        assert!(b.get(..7).is_none());
        assert!(b.get(..=usize::MAX).is_none());
        assert_eq!(b.get(6..).map(|s| s.len()), Some(0));
    }

    #[test]
    fn advance_stops_at_the_end() {
        let mut b = SharedBytes::from(&b"abc"[..]);
        b.advance(1);
        assert_eq!(&*b, b"bc");
        b.advance(10);
        assert!(b.is_empty());
    }
}
