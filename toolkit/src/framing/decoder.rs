//! [`LineDecoder`]: the line splitter of [`LineReceiver`](super::LineReceiver), pull-style.

use super::{Cut, Delimiter, FramingError, MAX_LENGTH};

/// Cuts lines out of bytes pushed into it, one at a time on demand: the pull-style twin of
/// [`LineReceiver`](super::LineReceiver), for code that reads a stream itself (an async
/// `lines()` stream, a blocking reader, a parser test).
///
/// It uses the very rules of `LineReceiver` (the same code): lines end at the
/// [`Delimiter`] (default CRLF, Twisted's), are returned without it, and may be at most
/// `max_length` bytes (default [`MAX_LENGTH`]). A longer line — or unfinished bytes that
/// can no longer end one short enough — is [`FramingError::LineTooLong`]; the bytes stay
/// buffered ([`take_buffer`](Self::take_buffer) gives them back), so nothing is lost.
/// Whatever the chunking of `push`, the same lines come out.
///
/// ```
/// use torsion_toolkit::framing::{Delimiter, FramingError, LineDecoder};
///
/// let mut lines = LineDecoder::new().with_delimiter(Delimiter::lf_optional_cr());
/// lines.push(b"one\r\ntw");
/// assert_eq!(lines.next_line(), Some(Ok(b"one".to_vec())));
/// assert_eq!(lines.next_line(), None); // "tw" waits for its end
/// lines.push(b"o\n");
/// assert_eq!(lines.next_line(), Some(Ok(b"two".to_vec())));
///
/// let mut short = LineDecoder::new().with_max_length(3);
/// short.push(b"toolong\r\n");
/// assert_eq!(short.next_line(), Some(Err(FramingError::LineTooLong { max_length: 3 })));
/// assert_eq!(short.take_buffer(), b"toolong\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct LineDecoder {
    delimiter: Delimiter,
    max_length: usize,
    buf: Vec<u8>,
    /// Bytes before this were returned as lines already (compacted on `push`).
    start: usize,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LineDecoder {
    /// A decoder with `LineReceiver`'s defaults: CRLF lines of at most [`MAX_LENGTH`]
    /// bytes.
    pub fn new() -> Self {
        LineDecoder {
            delimiter: Delimiter::default(),
            max_length: MAX_LENGTH,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Lines end at `delimiter` from now on.
    #[must_use]
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Lines may be at most `max_length` bytes (delimiter excluded) from now on.
    #[must_use]
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// The delimiter lines end at.
    pub fn delimiter(&self) -> &Delimiter {
        &self.delimiter
    }

    /// The longest line accepted.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Add bytes that arrived.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            // Drop the lines already returned, at most once per half of the buffer.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, without its delimiter; `None` until more bytes arrive.
    ///
    /// # Errors
    ///
    /// `Some(Err(`[`FramingError::LineTooLong`]`))` for a line over the maximum; it
    /// is returned again until the bytes are taken out with
    /// [`take_buffer`](Self::take_buffer).
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, FramingError>> {
        let rest = &self.buf[self.start..];
        match self.delimiter.cut(rest, self.max_length) {
            Cut::Incomplete => None,
            Cut::TooLong => Some(Err(FramingError::LineTooLong {
                max_length: self.max_length,
            })),
            Cut::Line { end, next } => {
                let line = rest[..end].to_vec();
                self.start += next;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Some(Ok(line))
            }
        }
    }

    /// The bytes pushed and not returned as lines (an unfinished line, or one too long).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Take out the bytes not returned as lines; the decoder is empty afterwards (at the
    /// end of a stream, they are its last, unterminated line).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        all.drain(..self.start);
        self.start = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_one_at_a_time_and_the_rest_waits() {
        let mut d = LineDecoder::new();
        d.push(b"a\r\nb\r\nc");
        assert_eq!(d.next_line(), Some(Ok(b"a".to_vec())));
        assert_eq!(d.buffered(), b"b\r\nc");
        assert_eq!(d.next_line(), Some(Ok(b"b".to_vec())));
        assert_eq!(d.next_line(), None);
        d.push(b"\r");
        assert_eq!(d.next_line(), None, "half a delimiter is not a line end");
        d.push(b"\n");
        assert_eq!(d.next_line(), Some(Ok(b"c".to_vec())));
        assert_eq!(d.next_line(), None);
        assert!(d.take_buffer().is_empty());
    }

    #[test]
    fn an_unfinished_line_past_the_limit_is_an_error_and_keeps_its_bytes() {
        let mut d = LineDecoder::new()
            .with_delimiter(Delimiter::lf())
            .with_max_length(4);
        d.push(b"1234");
        assert_eq!(d.next_line(), None, "4 bytes may still end in time");
        d.push(b"5");
        let e = FramingError::LineTooLong { max_length: 4 };
        assert_eq!(d.next_line(), Some(Err(e.clone())));
        assert_eq!(d.next_line(), Some(Err(e)), "the error stays until taken");
        assert_eq!(d.take_buffer(), b"12345");
        d.push(b"ok\n");
        assert_eq!(d.next_line(), Some(Ok(b"ok".to_vec())));
        assert!(
            FramingError::LineTooLong { max_length: 4 }
                .to_string()
                .contains("maximum of 4 bytes")
        );
    }

    #[test]
    fn returned_lines_are_dropped_from_the_buffer_as_it_goes() {
        let mut d = LineDecoder::new().with_delimiter(Delimiter::lf());
        for i in 0..1000 {
            d.push(format!("{i}\n{i}").as_bytes());
            assert_eq!(d.next_line(), Some(Ok(i.to_string().into_bytes())));
            d.push(b"\n");
            assert_eq!(d.next_line(), Some(Ok(i.to_string().into_bytes())));
        }
        assert!(d.buf.capacity() < 64, "{}", d.buf.capacity());
    }
}
