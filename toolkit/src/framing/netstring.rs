//! [`NetstringReceiver`]: `<length>:<bytes>,` framing (D. J. Bernstein's netstrings).

use std::cell::Ref;
use std::fmt;
use std::rc::Rc;

use torsion_transport::{Reason, Transport};

use super::FramingError;
use super::engine::{FramedTransport, Machine, Receiver, forward_protocol};
use super::string::{Format, StringHandler, control};

/// `data` as a netstring.
pub(crate) fn format_netstring(data: &[u8]) -> Vec<u8> {
    let len = data.len().to_string();
    let mut out = Vec::with_capacity(len.len() + data.len() + 2);
    out.extend_from_slice(len.as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// What the start of `rest` holds.
enum Header {
    /// The length and the header size (digits and colon).
    Complete { length: usize, size: usize },
    /// Valid so far; more bytes needed.
    Partial,
}

/// Parse `<length>:` at the start of `rest`, as Twisted's `(0|[1-9]\d*):` with the length
/// checked against `max_length` as digits arrive.
fn parse_header(rest: &[u8], max_length: usize) -> Result<Header, FramingError> {
    let mut length: usize = 0;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b':' if i > 0 => {
                return Ok(Header::Complete {
                    length,
                    size: i + 1,
                });
            }
            b'0'..=b'9' if !(i == 1 && rest[0] == b'0') => {
                length = length
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(b - b'0')))
                    .filter(|&n| n <= max_length)
                    .ok_or(FramingError::NetstringTooLong { max_length })?;
            }
            _ => return Err(FramingError::NetstringBadLength { found: b }),
        }
    }
    Ok(Header::Partial)
}

pub(crate) struct NetstringMachine<H> {
    pub(crate) handler: H,
    pub(crate) max_length: usize,
}

impl<H: StringHandler> Machine for NetstringMachine<H> {
    fn run(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        _carry: &mut Vec<u8>,
        link: &Rc<FramedTransport>,
    ) {
        while *pos < input.len() && !link.stopped() {
            let rest = &input[*pos..];
            let parsed = parse_header(rest, self.max_length).and_then(|h| match h {
                Header::Complete { length, size } => match rest.get(size + length) {
                    Some(b',') => Ok(Some((size, length))),
                    Some(&found) => Err(FramingError::NetstringMissingComma { found }),
                    None => Ok(None),
                },
                Header::Partial => Ok(None),
            });
            match parsed {
                Ok(Some((size, length))) => {
                    *pos += size + length + 1;
                    let mut ctl = control(link, &mut self.max_length, Format::Netstring);
                    self.handler
                        .string_received(&rest[size..size + length], &mut ctl);
                }
                Ok(None) => return,
                Err(error) => {
                    // Nothing after a framing error can be framed: drop it and close.
                    *pos = input.len();
                    let mut ctl = control(link, &mut self.max_length, Format::Netstring);
                    self.handler.framing_error(&error, &mut ctl);
                    link.lose_connection();
                    return;
                }
            }
        }
    }

    fn made(&mut self, link: &Rc<FramedTransport>, _carry: &mut Vec<u8>) {
        let mut ctl = control(link, &mut self.max_length, Format::Netstring);
        self.handler.connection_made(&mut ctl);
    }

    fn lost(&mut self, reason: Reason) {
        self.handler.connection_lost(reason);
    }

    fn half_closeable(&self) -> bool {
        self.handler.half_closeable()
    }

    fn read_lost(&mut self, link: &Rc<FramedTransport>, _carry: &mut Vec<u8>) {
        let mut ctl = control(link, &mut self.max_length, Format::Netstring);
        self.handler.read_connection_lost(&mut ctl);
    }

    fn write_lost(&mut self) {
        self.handler.write_connection_lost();
    }
}

/// A [`Protocol`](torsion_transport::Protocol) for netstrings, `<length>:<bytes>,`
/// (Twisted's `NetstringReceiver`; <https://cr.yp.to/proto/netstrings.txt>).
///
/// Malformed input — a length that is not decimal digits, has a leading zero or is over
/// the maximum ([`STRING_MAX_LENGTH`](super::STRING_MAX_LENGTH), 99,999 bytes, settable),
/// or a payload not followed by `,` — goes to [`StringHandler::framing_error`] as a
/// [`FramingError`], and the connection is lost. An over-long length is caught from its
/// digits, before the payload is buffered.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::StringTransport;
/// use torsion_toolkit::framing::{NetstringReceiver, StringControl, StringHandler};
/// use torsion_transport::Protocol;
///
/// struct Echo;
/// impl StringHandler for Echo {
///     fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
///         ctl.send_string(s).expect("netstrings have no length limit when sent");
///     }
/// }
///
/// let t = Rc::new(StringTransport::new());
/// let mut p = NetstringReceiver::new(Echo);
/// p.connection_made(t.clone());
/// p.data_received(b"5:hel");
/// p.data_received(b"lo,0:,");
/// assert_eq!(t.value(), b"5:hello,0:,");
/// p.data_received(b"x:");
/// assert!(t.disconnecting()); // malformed: the connection is lost
/// ```
pub struct NetstringReceiver<H: StringHandler> {
    rx: Receiver<NetstringMachine<H>>,
}

impl<H: StringHandler> fmt::Debug for NetstringReceiver<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetstringReceiver")
            .field("max_length", &self.rx.with_machine(|m| m.max_length))
            .field("buffered", &self.rx.buffered())
            .finish()
    }
}

impl<H: StringHandler> NetstringReceiver<H> {
    /// A receiver accepting netstrings of at most
    /// [`STRING_MAX_LENGTH`](super::STRING_MAX_LENGTH) bytes.
    pub fn new(handler: H) -> Self {
        NetstringReceiver {
            rx: Receiver::new(NetstringMachine {
                handler,
                max_length: super::STRING_MAX_LENGTH,
            }),
        }
    }

    /// Accept netstrings of at most `max_length` bytes (Twisted's `MAX_LENGTH`).
    #[doc(alias = "MAX_LENGTH")]
    pub fn with_max_length(self, max_length: usize) -> Self {
        self.rx.with_machine_mut(|m| m.max_length = max_length);
        self
    }

    /// The handler, unless it is running.
    pub fn handler(&self) -> Option<Ref<'_, H>> {
        let core = self.rx.core.try_borrow().ok()?;
        Some(Ref::map(core, |c| &c.machine.handler))
    }

    /// Bytes received and not delivered yet.
    pub fn buffered(&self) -> usize {
        self.rx.buffered()
    }
}

forward_protocol!(NetstringReceiver<H: StringHandler>);

/// Write `string` to `transport` as a netstring (Twisted's `sendString`), for code that
/// holds a transport but no receiver.
#[doc(alias = "sendString")]
pub fn send_netstring(transport: &dyn Transport, string: &[u8]) {
    transport.write(&format_netstring(string));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rest: &[u8], max: usize) -> Result<Option<(usize, usize)>, FramingError> {
        parse_header(rest, max).map(|h| match h {
            Header::Complete { length, size } => Some((length, size)),
            Header::Partial => None,
        })
    }

    #[test]
    fn headers() {
        assert_eq!(header(b"", 10), Ok(None));
        assert_eq!(header(b"0", 10), Ok(None));
        assert_eq!(header(b"0:", 10), Ok(Some((0, 2))));
        assert_eq!(header(b"10:xyz", 10), Ok(Some((10, 3))));
        assert_eq!(
            header(b"11", 10),
            Err(FramingError::NetstringTooLong { max_length: 10 })
        );
        assert_eq!(
            header(b"01", 10),
            Err(FramingError::NetstringBadLength { found: b'1' })
        );
        assert_eq!(
            header(b":", 10),
            Err(FramingError::NetstringBadLength { found: b':' })
        );
        assert_eq!(
            header(b"1x", 10),
            Err(FramingError::NetstringBadLength { found: b'x' })
        );
        // No overflow on absurd lengths.
        assert_eq!(
            header(&[b'9'; 40], usize::MAX),
            Err(FramingError::NetstringTooLong {
                max_length: usize::MAX
            })
        );
    }

    #[test]
    fn format() {
        assert_eq!(format_netstring(b""), b"0:,");
        assert_eq!(format_netstring(b"hello"), b"5:hello,");
    }
}
