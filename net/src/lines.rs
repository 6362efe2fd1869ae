//! [`Lines`]: a stream of text lines over any readable stream.
//!
//! The toolkit's framing (`torsion::framing`) frames lines *as a protocol* (`LineReceiver`
//! calls a handler per line); it has no pull-style splitter a stream's buffer could drive,
//! so this one is local to `torsion-net`. It cuts lines by the same rule as the toolkit's
//! `Delimiter::lf_optional_cr()` and bounds them the same way (a maximum length, an error
//! past it). A pull-style splitter in the toolkit would let this become a thin adapter.

use std::future::poll_fn;
use std::io;
use std::rc::Rc;

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
    max: usize,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines").field("max", &self.max).finish()
    }
}

impl Lines {
    pub(crate) fn new(source: Rc<dyn HasInbound>) -> Self {
        Lines {
            source,
            max: MAX_LINE_LENGTH,
        }
    }

    /// Accept lines up to `max` bytes (default [`MAX_LINE_LENGTH`]).
    #[must_use]
    pub fn with_max_length(mut self, max: usize) -> Self {
        self.max = max.max(1);
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
        let max = self.max;
        let source = self.source.clone();
        poll_fn(|cx| {
            source.inbound().poll_scan(cx, |avail, eof| {
                if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                    if i > max {
                        return Some((0, Err(NetError::LineTooLong { limit: max })));
                    }
                    let mut line = avail[..i].to_vec();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some((i + 1, Ok(Some(line))));
                }
                if avail.len() > max {
                    return Some((0, Err(NetError::LineTooLong { limit: max })));
                }
                if eof {
                    return Some(if avail.is_empty() {
                        (0, Ok(None))
                    } else {
                        (avail.len(), Ok(Some(avail.to_vec())))
                    });
                }
                None
            })
        })
        .await?
        .map_err(|e| e.into_io(io::ErrorKind::InvalidData))
    }

    /// Take the bytes buffered and not returned as a line (after a `LineTooLong`).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        self.source.inbound().take_all()
    }
}
