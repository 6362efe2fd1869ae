//! Framing: cut a byte stream into lines or strings (Twisted's `twisted.protocols.basic`).
//!
//! Pure logic, no I/O: each receiver is a [`Protocol`](torsion_transport::Protocol) that
//! runs over every transport — TCP, Unix sockets, pipes, PTYs, `StandardIo` — and over
//! the test kit's fakes. You write a small handler; the receiver buffers, cuts frames,
//! enforces the maximum length, and calls the handler once per frame:
//!
//! | Receiver | Frames | Your handler | Twisted |
//! |---|---|---|---|
//! | [`LineReceiver`] | lines, with a raw mode | [`LineHandler`] | `LineReceiver` |
//! | [`LineOnlyReceiver`] | lines | [`LineOnlyHandler`] | `LineOnlyReceiver` |
//! | [`Int8StringReceiver`], [`Int16StringReceiver`], [`Int32StringReceiver`] | length-prefixed strings | [`StringHandler`] | `IntNStringReceiver` |
//! | [`NetstringReceiver`] | `5:hello,` | [`StringHandler`] | `NetstringReceiver` |
//!
//! Handler methods get a control (`ctl`: [`LineControl`], [`StringControl`]) to send
//! frames, write, switch modes, pause and close; `ctl.transport()` is a
//! [`FramedTransport`], the connection's transport whose `pause_producing` also stops
//! delivery (Twisted's `_PauseableMixin`), so it is the one to register as a producer.
//!
//! For code that reads a stream itself (an async `lines()` stream, a blocking reader),
//! [`LineDecoder`] is the same line splitter pull-style: push bytes, take lines.
//!
//! Whatever the chunking of the stream, the same frames are delivered in the same order:
//! the tests check every split point and, with `proptest`, random segmentations.
//!
//! # Example
//!
//! A line echo server's protocol, tested on the test kit's `StringTransport`:
//!
//! ```
//! use std::rc::Rc;
//! use torsion_testing::StringTransport;
//! use torsion_toolkit::framing::{Delimiter, LineControl, LineHandler, LineReceiver};
//! use torsion_transport::Protocol;
//!
//! struct Echo;
//!
//! impl LineHandler for Echo {
//!     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
//!         if line == b"quit" {
//!             ctl.lose_connection();
//!         } else {
//!             ctl.send_line(line);
//!         }
//!     }
//! }
//!
//! let transport = Rc::new(StringTransport::new());
//! // "LF with an optional CR": lines from Unix tools and from Windows clients alike.
//! let mut protocol = LineReceiver::new(Echo).with_delimiter(Delimiter::lf_optional_cr());
//! protocol.connection_made(transport.clone());
//! protocol.data_received(b"one\r\ntw");
//! protocol.data_received(b"o\nquit\nignored\n");
//! assert_eq!(transport.value(), b"one\ntwo\n");
//! assert!(transport.disconnecting());
//! ```
//!
//! With the reactor, hand the receiver to a factory:
//! `factory_fn(|_| Box::new(LineReceiver::new(Echo)))`.

mod decoder;
mod engine;
mod error;
mod line;
mod netstring;
mod string;

pub use decoder::LineDecoder;
pub use engine::FramedTransport;
pub use error::FramingError;
pub use line::{
    LineControl, LineHandler, LineOnlyControl, LineOnlyHandler, LineOnlyReceiver, LineReceiver,
    LineSender,
};
pub use netstring::{NetstringReceiver, send_netstring};
pub use string::{
    Int8StringReceiver, Int16StringReceiver, Int32StringReceiver, IntNStringReceiver, Prefix8,
    Prefix16, Prefix32, PrefixWidth, StringControl, StringHandler, StringSender,
};

/// The longest line a [`LineReceiver`] or [`LineOnlyReceiver`] accepts by default, in
/// bytes, delimiter excluded (Twisted's `LineReceiver.MAX_LENGTH`).
pub const MAX_LENGTH: usize = 16_384;

/// The longest string an [`IntNStringReceiver`] or [`NetstringReceiver`] accepts by
/// default, in bytes (Twisted's `IntNStringReceiver.MAX_LENGTH` and
/// `NetstringReceiver.MAX_LENGTH`).
#[doc(alias = "MAX_LENGTH")]
pub const STRING_MAX_LENGTH: usize = 99_999;

/// How lines end (Twisted's `delimiter` attribute).
///
/// ```
/// use torsion_toolkit::framing::{Delimiter, FramingError};
///
/// assert_eq!(Delimiter::default().as_bytes(), b"\r\n"); // Twisted's default
/// assert_eq!(Delimiter::lf_optional_cr().as_bytes(), b"\n"); // what send_line appends
/// assert_eq!(Delimiter::new(*b"\0").map(|d| d.as_bytes().to_vec()), Ok(vec![0]));
/// assert_eq!(Delimiter::new(Vec::new()), Err(FramingError::EmptyDelimiter));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiter(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Bytes(Box<[u8]>),
    LfOptionalCr,
}

impl Default for Delimiter {
    /// `\r\n`, as in Twisted.
    fn default() -> Self {
        Delimiter::crlf()
    }
}

impl Delimiter {
    /// `\r\n` (the default; Internet protocols).
    pub fn crlf() -> Self {
        Delimiter(Repr::Bytes(Box::new(*b"\r\n")))
    }

    /// `\n` exactly: a `\r` before it stays part of the line.
    pub fn lf() -> Self {
        Delimiter(Repr::Bytes(Box::new(*b"\n")))
    }

    /// Lines end with `\n`, and a `\r` just before it is stripped too: reads Unix and
    /// Windows line endings alike. Lines are sent with `\n`. The maximum length counts
    /// the line without its `\r`.
    pub fn lf_optional_cr() -> Self {
        Delimiter(Repr::LfOptionalCr)
    }

    /// Any non-empty byte string.
    ///
    /// # Errors
    ///
    /// [`FramingError::EmptyDelimiter`] for an empty one.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, FramingError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(FramingError::EmptyDelimiter);
        }
        Ok(Delimiter(Repr::Bytes(bytes.into_boxed_slice())))
    }

    /// The bytes `send_line` appends.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Bytes(b) => b,
            Repr::LfOptionalCr => b"\n",
        }
    }

    /// The first line in `hay`: `(end of the line, start of what follows)`.
    pub(crate) fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        match &self.0 {
            Repr::Bytes(d) => find_bytes(hay, d).map(|i| (i, i + d.len())),
            Repr::LfOptionalCr => {
                let i = memchr(b'\n', hay)?;
                let end = if i > 0 && hay[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                Some((end, i + 1))
            }
        }
    }

    /// Where the first line of `rest` ends, by the rules every line splitter shares
    /// ([`LineReceiver`], [`LineOnlyReceiver`], [`LineDecoder`]): a line longer than
    /// `max_length`, or unfinished bytes that can no longer end one short enough, are
    /// [`Cut::TooLong`].
    pub(crate) fn cut(&self, rest: &[u8], max_length: usize) -> Cut {
        match self.find(rest) {
            Some((end, _)) if end > max_length => Cut::TooLong,
            Some((end, next)) => Cut::Line { end, next },
            None if rest.len() >= self.partial_limit(max_length) => Cut::TooLong,
            None => Cut::Incomplete,
        }
    }

    /// An unfinished line this long (or longer) can no longer end within `max_length`
    /// (Twisted: `MAX_LENGTH + len(delimiter)`; its last bytes may be the start of the
    /// delimiter).
    pub(crate) fn partial_limit(&self, max_length: usize) -> usize {
        let tail = match &self.0 {
            Repr::Bytes(d) => d.len(),
            Repr::LfOptionalCr => 2,
        };
        max_length.saturating_add(tail)
    }
}

/// What [`Delimiter::cut`] found at the start of the unread bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// A line: `rest[..end]`, and the next one starts at `rest[next..]`.
    Line { end: usize, next: usize },
    /// No complete line yet.
    Incomplete,
    /// The line is over the maximum length.
    TooLong,
}

/// The first `needle` in `hay`, eight bytes at a time: a word has a matching byte when
/// `(w - 0x01..) & !w & 0x80..` is non-zero for `w = word ^ needle repeated` (exact, no
/// false positives), then the byte is found within that word.
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let repeated = LO.wrapping_mul(u64::from(needle));
    let mut start = 0;
    for chunk in hay.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_ne_bytes(bytes) ^ repeated;
        if w.wrapping_sub(LO) & !w & HI != 0 {
            break;
        }
        start += 8;
    }
    hay[start..]
        .iter()
        .position(|&b| b == needle)
        .map(|i| start + i)
}

/// The first occurrence of `needle` (non-empty) in `hay`: search its last byte, then
/// compare the rest.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&last, _) = needle.split_last()?;
    if needle.len() == 1 {
        return memchr(last, hay);
    }
    let mut from = needle.len() - 1;
    while from < hay.len() {
        let end = from + memchr(last, &hay[from..])? + 1;
        let start = end - needle.len();
        if &hay[start..end] == needle {
            return Some(start);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_bytes_finds_the_first_occurrence() {
        assert_eq!(find_bytes(b"ab\r\ncd\r\n", b"\r\n"), Some(2));
        assert_eq!(find_bytes(b"aaa", b"aa"), Some(0));
        assert_eq!(find_bytes(b"xaab", b"ab"), Some(2));
        assert_eq!(find_bytes(b"\r\r\n", b"\r\n"), Some(1));
        assert_eq!(find_bytes(b"\n\r", b"\r\n"), None);
        assert_eq!(find_bytes(b"", b"\r\n"), None);
        assert_eq!(find_bytes(b"\r", b"\r\n"), None);
        assert_eq!(find_bytes(b"abcabd", b"abd"), Some(3));
    }

    #[test]
    fn memchr_finds_the_first_byte_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'\n';
                if at + 3 < len {
                    hay[at + 3] = b'\n';
                }
                assert_eq!(memchr(b'\n', &hay), Some(at), "len {len}, at {at}");
            }
            assert_eq!(memchr(b'\n', &vec![b'x'; len]), None);
        }
        // Bytes that differ from the needle only in the high bit, and 0x00/0xff.
        let hay = [0x8a, 0x0b, 0x09, 0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a];
        assert_eq!(memchr(0x0a, &hay), Some(8));
        assert_eq!(memchr(0x00, &hay), Some(3));
        assert_eq!(memchr(0xff, &hay), Some(4));
        assert_eq!(memchr(0x80, &hay), Some(6));
    }

    #[test]
    fn lf_optional_cr_strips_one_cr() {
        let d = Delimiter::lf_optional_cr();
        assert_eq!(d.find(b"ab\r\n"), Some((2, 4)));
        assert_eq!(d.find(b"ab\n"), Some((2, 3)));
        assert_eq!(d.find(b"ab\r\r\n"), Some((3, 5)));
        assert_eq!(d.find(b"\n"), Some((0, 1)));
        assert_eq!(d.find(b"ab\r"), None);
    }

    #[test]
    fn partial_limit_leaves_room_for_the_delimiter() {
        assert_eq!(Delimiter::crlf().partial_limit(10), 12);
        assert_eq!(Delimiter::lf().partial_limit(10), 11);
        assert_eq!(Delimiter::lf_optional_cr().partial_limit(10), 12);
        assert_eq!(Delimiter::lf().partial_limit(usize::MAX), usize::MAX);
    }
}
