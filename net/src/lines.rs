//! [`Lines`]: a stream of text lines over any readable stream, cut by the toolkit's
//! framing: a [`LineDecoder`] with the `Delimiter::lf_optional_cr()` rule, the very
//! splitter `LineReceiver` uses.

use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;

use torsion_toolkit::framing::{Delimiter, LineDecoder};

use crate::error::NetError;
use crate::pipe::Inbound;

/// Something with a read side (a stream, a read half, a child's stdout).
pub(crate) trait HasInbound {
    fn inbound(&self) -> &Inbound;
}

/// The default longest line [`Lines`] accepts: 1 MiB.
pub const MAX_LINE_LENGTH: usize = 1024 * 1024;

/// The lines of a stream, from `lines()`: `while let Some(line) = lines.next_line().await?`.
///
/// A line ends at `\n` (a `\r` before it is dropped too); the last line may lack one. The
/// line limit bounds memory: a longer line is an error, not a growing buffer.
pub struct Lines {
    source: Rc<dyn HasInbound>,
    decoder: LineDecoder,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("max", &self.decoder.max_length())
            .field("buffered", &self.decoder.buffered().len())
            .finish()
    }
}

impl Lines {
    pub(crate) fn new(source: Rc<dyn HasInbound>) -> Self {
        Lines {
            source,
            decoder: LineDecoder::new()
                .with_delimiter(Delimiter::lf_optional_cr())
                .with_max_length(MAX_LINE_LENGTH),
        }
    }

    /// Accept lines up to `max` bytes (default [`MAX_LINE_LENGTH`]).
    #[must_use]
    pub fn with_max_length(mut self, max: usize) -> Self {
        self.decoder = self.decoder.with_max_length(max.max(1));
        self
    }

    /// The next line without its end, or `None` at the end of the stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` with [`NetError::LineTooLong`] (the bytes stay buffered, see
    /// [`take_buffer`](Self::take_buffer)) or [`NetError::NotUtf8`] (the line is consumed
    /// and its bytes are in the error); the stream's own read error.
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        match self.next_line_bytes().await? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| NetError::NotUtf8(e.into_bytes()).into_io(io::ErrorKind::InvalidData)),
        }
    }

    /// [`next_line`](Self::next_line) without the UTF-8 check.
    ///
    /// # Errors
    ///
    /// As `next_line`, without `NotUtf8`.
    pub async fn next_line_bytes(&mut self) -> io::Result<Option<Vec<u8>>> {
        let source = self.source.clone();
        let decoder = &mut self.decoder;
        let too_long = |limit| NetError::LineTooLong { limit }.into_io(io::ErrorKind::InvalidData);
        poll_fn(|cx| {
            loop {
                match decoder.next_line() {
                    Some(Ok(line)) => return Poll::Ready(Ok(Some(line))),
                    Some(Err(_)) => return Poll::Ready(Err(too_long(decoder.max_length()))),
                    None => {}
                }
                // Move what the stream has into the decoder; at its end, the rest is the
                // last line (which may lack its newline).
                let eof = match source.inbound().poll_scan(cx, |avail, eof| {
                    decoder.push(avail);
                    Some((avail.len(), eof && avail.is_empty()))
                }) {
                    Poll::Ready(Ok(eof)) => eof,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                };
                if eof {
                    let rest = decoder.take_buffer();
                    return Poll::Ready(if rest.is_empty() {
                        Ok(None)
                    } else if rest.len() > decoder.max_length() {
                        decoder.push(&rest);
                        Err(too_long(decoder.max_length()))
                    } else {
                        Ok(Some(rest))
                    });
                }
            }
        })
        .await
    }

    /// Take the bytes buffered and not returned as a line (after a `LineTooLong`).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let mut rest = self.decoder.take_buffer();
        rest.extend_from_slice(&self.source.inbound().take_all());
        rest
    }
}
