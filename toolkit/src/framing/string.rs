//! Length-prefixed strings: [`IntNStringReceiver`] with 8-, 16- and 32-bit prefixes, and
//! the [`StringHandler`] trait it shares with
//! [`NetstringReceiver`](super::NetstringReceiver).

use std::cell::Ref;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use torsion_transport::{Consumer, Reason, Transport};

use super::FramingError;
use super::engine::{FramedTransport, Machine, Receiver, forward_protocol};
use super::netstring::format_netstring;

/// Your side of a string receiver ([`IntNStringReceiver`] or
/// [`NetstringReceiver`](super::NetstringReceiver)): what to do with each string.
///
/// Called from the receiver's `Protocol` callbacks (so through the transport's panic
/// funnel), never re-entrantly.
pub trait StringHandler: 'static {
    /// The connection is up.
    #[doc(alias = "connectionMade")]
    fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
        let _ = ctl;
    }

    /// A complete string arrived, without its framing.
    #[doc(alias = "stringReceived")]
    fn string_received(&mut self, string: &[u8], ctl: &mut StringControl<'_>);

    /// A length prefix announced `length` bytes, more than the maximum (Twisted's
    /// `lengthLimitExceeded`). The default loses the connection. The bytes stay buffered
    /// from that prefix on, so a handler that keeps the connection is called again when
    /// more bytes arrive, as in Twisted. Netstrings report an over-long length through
    /// [`framing_error`](Self::framing_error) instead.
    #[doc(alias = "lengthLimitExceeded")]
    fn length_limit_exceeded(&mut self, length: usize, ctl: &mut StringControl<'_>) {
        log::debug!(
            "string receiver: a {length}-byte string is over the maximum of {}; closing",
            ctl.max_length()
        );
        ctl.lose_connection();
    }

    /// The peer broke the framing (a malformed netstring). The receiver loses the
    /// connection after this call whatever the handler does: nothing after the error can
    /// be framed. The default logs the error.
    fn framing_error(&mut self, error: &FramingError, ctl: &mut StringControl<'_>) {
        let _ = ctl;
        log::warn!("string receiver: {error}; closing");
    }

    /// The connection is gone; an unfinished last string is discarded.
    #[doc(alias = "connectionLost")]
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }

    /// Whether the receiver should offer half-close to the transport. Default false.
    fn half_closeable(&self) -> bool {
        false
    }

    /// With [`half_closeable`](Self::half_closeable): the peer shut down its write side.
    #[doc(alias = "readConnectionLost")]
    fn read_connection_lost(&mut self, ctl: &mut StringControl<'_>) {
        let _ = ctl;
    }

    /// With [`half_closeable`](Self::half_closeable): our write side was shut down.
    #[doc(alias = "writeConnectionLost")]
    fn write_connection_lost(&mut self) {}
}

/// How strings are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A big-endian length of this many bytes, then the string.
    Prefix(usize),
    /// `<decimal length>:<string>,`
    Netstring,
}

impl Format {
    pub(crate) fn send(self, t: &dyn Transport, string: &[u8]) -> Result<(), FramingError> {
        match self {
            Format::Prefix(n) => {
                let too_long = FramingError::StringTooLong {
                    length: string.len(),
                    prefix_bytes: n,
                };
                let len = u32::try_from(string.len()).map_err(|_| too_long.clone())?;
                if n < 4 && len >> (8 * n) != 0 {
                    return Err(too_long);
                }
                let be = len.to_be_bytes();
                let prefix = &be[4 - n..];
                if string.len() <= 252 {
                    let mut buf = [0u8; 256];
                    buf[..n].copy_from_slice(prefix);
                    buf[n..n + string.len()].copy_from_slice(string);
                    t.write(&buf[..n + string.len()]);
                } else {
                    t.write(&[prefix, string].concat());
                }
                Ok(())
            }
            Format::Netstring => {
                t.write(&format_netstring(string));
                Ok(())
            }
        }
    }
}

/// What a [`StringHandler`] can do from inside a callback: send strings, write, pause,
/// close, change the maximum.
pub struct StringControl<'a> {
    pub(crate) link: &'a Rc<FramedTransport>,
    pub(crate) max_length: &'a mut usize,
    pub(crate) format: Format,
}

impl fmt::Debug for StringControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringControl")
            .field("max_length", &*self.max_length)
            .field("format", &self.format)
            .finish()
    }
}

impl StringControl<'_> {
    /// The transport, to keep. Pausing it also stops string delivery.
    pub fn transport(&self) -> Rc<dyn Transport> {
        self.link.clone()
    }

    /// Write bytes as they are.
    pub fn write(&self, data: &[u8]) {
        self.link.write(data);
    }

    /// Frame `string` and write it (Twisted's `sendString`).
    ///
    /// # Errors
    ///
    /// [`FramingError::StringTooLong`] if the string does not fit the length prefix
    /// (255 bytes for 8 bits, 65,535 for 16, 2³² − 1 for 32); nothing is written.
    #[doc(alias = "sendString")]
    pub fn send_string(&self, string: &[u8]) -> Result<(), FramingError> {
        self.format.send(&**self.link, string)
    }

    /// A handle that sends strings on this connection later, from anywhere.
    pub fn sender(&self) -> StringSender {
        StringSender {
            transport: self.transport(),
            format: self.format,
        }
    }

    /// Close after the writes are flushed; no further string is delivered.
    #[doc(alias = "loseConnection")]
    pub fn lose_connection(&self) {
        self.link.lose_connection();
    }

    /// The transport's unsent bytes.
    pub fn unsent_bytes(&self) -> usize {
        self.link.unsent_bytes()
    }

    /// Stop delivering strings and stop reading, until
    /// [`resume_producing`](Self::resume_producing).
    #[doc(alias = "pauseProducing")]
    pub fn pause_producing(&self) {
        torsion_transport::PushProducer::pause_producing(&**self.link);
    }

    /// Undo [`pause_producing`](Self::pause_producing).
    #[doc(alias = "resumeProducing")]
    pub fn resume_producing(&self) {
        torsion_transport::PushProducer::resume_producing(&**self.link);
    }

    /// The longest string accepted, in bytes (Twisted's `MAX_LENGTH`).
    #[doc(alias = "MAX_LENGTH")]
    pub fn max_length(&self) -> usize {
        *self.max_length
    }

    /// Change the longest string accepted.
    pub fn set_max_length(&mut self, max_length: usize) {
        *self.max_length = max_length;
    }
}

/// Sends framed strings on a connection, from anywhere; taken with
/// [`StringControl::sender`].
#[derive(Clone)]
pub struct StringSender {
    transport: Rc<dyn Transport>,
    format: Format,
}

impl fmt::Debug for StringSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringSender")
            .field("peer", &self.transport.peer())
            .field("format", &self.format)
            .finish()
    }
}

impl StringSender {
    /// Frame `string` and write it (Twisted's `sendString`).
    ///
    /// # Errors
    ///
    /// As [`StringControl::send_string`].
    #[doc(alias = "sendString")]
    pub fn send_string(&self, string: &[u8]) -> Result<(), FramingError> {
        self.format.send(&*self.transport, string)
    }

    /// The transport.
    pub fn transport(&self) -> &Rc<dyn Transport> {
        &self.transport
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The width of an [`IntNStringReceiver`]'s length prefix: [`Prefix8`], [`Prefix16`] or
/// [`Prefix32`]. Big-endian (network order) and unsigned, as Twisted's `!B`, `!H`, `!I`.
pub trait PrefixWidth: sealed::Sealed + 'static {
    /// The prefix length in bytes (Twisted's `prefixLength`).
    #[doc(alias = "prefixLength")]
    const BYTES: usize;
}

/// An 8-bit length prefix (strings of at most 255 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Prefix8;
/// A 16-bit length prefix (strings of at most 65,535 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Prefix16;
/// A 32-bit length prefix.
#[derive(Debug, Clone, Copy)]
pub struct Prefix32;

impl sealed::Sealed for Prefix8 {}
impl sealed::Sealed for Prefix16 {}
impl sealed::Sealed for Prefix32 {}
impl PrefixWidth for Prefix8 {
    const BYTES: usize = 1;
}
impl PrefixWidth for Prefix16 {
    const BYTES: usize = 2;
}
impl PrefixWidth for Prefix32 {
    const BYTES: usize = 4;
}

/// Reads a big-endian length of `prefix.len()` (1 to 4) bytes.
fn decode_length(prefix: &[u8]) -> usize {
    prefix
        .iter()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b))
}

/// Calls the handler's methods with a [`StringControl`].
pub(crate) fn control<'a>(
    link: &'a Rc<FramedTransport>,
    max_length: &'a mut usize,
    format: Format,
) -> StringControl<'a> {
    StringControl {
        link,
        max_length,
        format,
    }
}

pub(crate) struct IntNMachine<P, H> {
    pub(crate) handler: H,
    pub(crate) max_length: usize,
    pub(crate) width: PhantomData<P>,
}

impl<P: PrefixWidth, H: StringHandler> Machine for IntNMachine<P, H> {
    fn run(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        _carry: &mut Vec<u8>,
        link: &Rc<FramedTransport>,
    ) {
        let format = Format::Prefix(P::BYTES);
        while !link.stopped() {
            let rest = &input[*pos..];
            if rest.len() < P::BYTES {
                return;
            }
            let length = decode_length(&rest[..P::BYTES]);
            if length > self.max_length {
                let mut ctl = control(link, &mut self.max_length, format);
                self.handler.length_limit_exceeded(length, &mut ctl);
                return;
            }
            let end = P::BYTES + length;
            if rest.len() < end {
                return;
            }
            *pos += end;
            let mut ctl = control(link, &mut self.max_length, format);
            self.handler.string_received(&rest[P::BYTES..end], &mut ctl);
        }
    }

    fn made(&mut self, link: &Rc<FramedTransport>, _carry: &mut Vec<u8>) {
        let mut ctl = control(link, &mut self.max_length, Format::Prefix(P::BYTES));
        self.handler.connection_made(&mut ctl);
    }

    fn lost(&mut self, reason: Reason) {
        self.handler.connection_lost(reason);
    }

    fn half_closeable(&self) -> bool {
        self.handler.half_closeable()
    }

    fn read_lost(&mut self, link: &Rc<FramedTransport>, _carry: &mut Vec<u8>) {
        let mut ctl = control(link, &mut self.max_length, Format::Prefix(P::BYTES));
        self.handler.read_connection_lost(&mut ctl);
    }

    fn write_lost(&mut self) {
        self.handler.write_connection_lost();
    }
}

/// A [`Protocol`](torsion_transport::Protocol) for strings each preceded by its length as
/// a big-endian unsigned integer of 1, 2 or 4 bytes (Twisted's `IntNStringReceiver`);
/// use the aliases [`Int8StringReceiver`], [`Int16StringReceiver`],
/// [`Int32StringReceiver`].
///
/// A length over the maximum ([`STRING_MAX_LENGTH`](super::STRING_MAX_LENGTH), 99,999
/// bytes, as in Twisted; settable) goes to [`StringHandler::length_limit_exceeded`],
/// which loses the connection by default. Pausing the transport stops delivery, buffered
/// strings included, as for [`LineReceiver`](super::LineReceiver); **\[deliberate\]** so
/// does closing it (Twisted's goes on delivering after `loseConnection`).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::StringTransport;
/// use torsion_toolkit::framing::{Int16StringReceiver, StringControl, StringHandler};
/// use torsion_transport::Protocol;
///
/// struct Reverse;
/// impl StringHandler for Reverse {
///     fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
///         let reversed: Vec<u8> = s.iter().rev().copied().collect();
///         ctl.send_string(&reversed).expect("a reversed string fits the same prefix");
///     }
/// }
///
/// let t = Rc::new(StringTransport::new());
/// let mut p = Int16StringReceiver::new(Reverse);
/// p.connection_made(t.clone());
/// p.data_received(&[0, 3, b'a']);
/// p.data_received(b"bc");
/// assert_eq!(t.value(), [0, 3, b'c', b'b', b'a']);
/// ```
pub struct IntNStringReceiver<P: PrefixWidth, H: StringHandler> {
    rx: Receiver<IntNMachine<P, H>>,
}

/// Strings with an 8-bit length prefix (Twisted's `Int8StringReceiver`).
pub type Int8StringReceiver<H> = IntNStringReceiver<Prefix8, H>;
/// Strings with a 16-bit length prefix (Twisted's `Int16StringReceiver`).
pub type Int16StringReceiver<H> = IntNStringReceiver<Prefix16, H>;
/// Strings with a 32-bit length prefix (Twisted's `Int32StringReceiver`).
pub type Int32StringReceiver<H> = IntNStringReceiver<Prefix32, H>;

impl<P: PrefixWidth, H: StringHandler> fmt::Debug for IntNStringReceiver<P, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntNStringReceiver")
            .field("prefix_bytes", &P::BYTES)
            .field("max_length", &self.rx.with_machine(|m| m.max_length))
            .field("buffered", &self.rx.buffered())
            .finish()
    }
}

impl<P: PrefixWidth, H: StringHandler> IntNStringReceiver<P, H> {
    /// A receiver accepting strings of at most
    /// [`STRING_MAX_LENGTH`](super::STRING_MAX_LENGTH) bytes.
    pub fn new(handler: H) -> Self {
        IntNStringReceiver {
            rx: Receiver::new(IntNMachine {
                handler,
                max_length: super::STRING_MAX_LENGTH,
                width: PhantomData,
            }),
        }
    }

    /// Accept strings of at most `max_length` bytes (Twisted's `MAX_LENGTH`).
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

forward_protocol!(IntNStringReceiver<P: PrefixWidth, H: StringHandler>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_big_endian() {
        assert_eq!(decode_length(&[0x12]), 0x12);
        assert_eq!(decode_length(&[0x01, 0x02]), 0x0102);
        assert_eq!(decode_length(&[0xff, 0xff, 0xff, 0xff]), 0xffff_ffff);
    }

    #[test]
    fn sending_checks_the_prefix_width() {
        let t = torsion_testing::StringTransport::new();
        assert_eq!(Format::Prefix(1).send(&t, &[1; 255]), Ok(()));
        assert_eq!(
            Format::Prefix(1).send(&t, &[1; 256]),
            Err(FramingError::StringTooLong {
                length: 256,
                prefix_bytes: 1
            })
        );
        assert_eq!(Format::Prefix(2).send(&t, &[1; 300]), Ok(()));
        let v = t.value();
        assert_eq!(v.len(), 1 + 255 + 2 + 300);
        assert_eq!(&v[256..258], &[0x01, 0x2c]);
    }
}
