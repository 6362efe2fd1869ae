//! What can go wrong in framing: bad configuration, a string too long to send, and
//! malformed input from the peer.

use std::fmt;

/// A framing error: a delimiter or string the caller got wrong, or input from the peer
/// that breaks the framing (which ends the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// [`Delimiter::new`](super::Delimiter::new) was given no bytes: an empty delimiter
    /// would end a line at every position.
    EmptyDelimiter,
    /// `send_string` was given more bytes than the length prefix can describe (Twisted's
    /// `StringTooLongError`). Nothing was written.
    #[doc(alias = "StringTooLongError")]
    StringTooLong {
        /// The length of the string.
        length: usize,
        /// The prefix width in bytes (1, 2 or 4).
        prefix_bytes: usize,
    },
    /// A netstring does not start with a valid length: a digit was expected (and no
    /// leading zero) but the peer sent `found` (Twisted's `NetstringParseError`).
    #[doc(alias = "NetstringParseError")]
    NetstringBadLength {
        /// The offending byte.
        found: u8,
    },
    /// A netstring announces a length over the receiver's maximum.
    NetstringTooLong {
        /// The receiver's maximum length.
        max_length: usize,
    },
    /// A line is longer than the [`LineDecoder`](super::LineDecoder)'s maximum (or its
    /// unfinished bytes can no longer end one short enough). The bytes stay buffered.
    LineTooLong {
        /// The decoder's maximum line length.
        max_length: usize,
    },
    /// A netstring's payload is not followed by `,`.
    NetstringMissingComma {
        /// The byte found where the comma belongs.
        found: u8,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::EmptyDelimiter => {
                f.write_str("a line delimiter must have at least one byte")
            }
            FramingError::StringTooLong {
                length,
                prefix_bytes,
            } => {
                let bits = prefix_bytes * 8;
                write!(
                    f,
                    "a string of {length} bytes does not fit a {bits}-bit length prefix \
                     (the limit is 2^{bits} - 1 bytes); use a wider prefix or split the string"
                )
            }
            FramingError::NetstringBadLength { found } => write!(
                f,
                "malformed netstring: expected a length (digits without a leading zero, then \
                 ':'), got byte {found:#04x}"
            ),
            FramingError::NetstringTooLong { max_length } => write!(
                f,
                "netstring longer than the maximum of {max_length} bytes (raise the receiver's \
                 max_length if the peer is right)"
            ),
            FramingError::LineTooLong { max_length } => write!(
                f,
                "a line is longer than the maximum of {max_length} bytes (raise the decoder's \
                 max_length if the peer is right, or take the buffered bytes)"
            ),
            FramingError::NetstringMissingComma { found } => write!(
                f,
                "malformed netstring: expected ',' after the payload, got byte {found:#04x}"
            ),
        }
    }
}

impl std::error::Error for FramingError {}
