//! Line framing: [`LineReceiver`] (lines, with a raw mode) and [`LineOnlyReceiver`].

use std::cell::Ref;
use std::fmt;
use std::rc::Rc;

use torsion_transport::{Consumer, Reason, Transport};

use super::engine::{FramedTransport, Machine, Receiver, forward_protocol};
use super::{Cut, Delimiter, MAX_LENGTH};

/// Your side of a [`LineReceiver`]: what to do with each line (Twisted's `LineReceiver`
/// subclass methods).
///
/// Every method gets a [`LineControl`] to write, send lines, switch modes, pause or close.
/// They are called from the receiver's `Protocol` callbacks (so through the transport's
/// panic funnel), never re-entrantly.
///
/// ```
/// use torsion_toolkit::framing::{LineControl, LineHandler};
///
/// /// Answers each line with its length.
/// struct Length;
/// impl LineHandler for Length {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
///         ctl.send_line(line.len().to_string().as_bytes());
///     }
/// }
/// ```
pub trait LineHandler: 'static {
    /// The connection is up; `ctl` can send a greeting or keep `ctl.transport()`.
    #[doc(alias = "connectionMade")]
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        let _ = ctl;
    }

    /// A complete line arrived, without its delimiter (in "LF with optional CR" mode,
    /// without the CR either).
    #[doc(alias = "lineReceived")]
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>);

    /// Bytes arrived in raw mode ([`LineControl::set_raw_mode`]).
    ///
    /// The default logs an error and loses the connection: a handler that switches to raw
    /// mode must say what raw data means (Twisted raises `NotImplementedError`, which also
    /// ends the connection).
    #[doc(alias = "rawDataReceived")]
    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        log::error!(
            "LineReceiver: {} bytes of raw data but the handler has no raw_data_received; closing",
            data.len()
        );
        ctl.lose_connection();
    }

    /// A line is longer than the maximum ([`MAX_LENGTH`] unless set). `data` is the
    /// over-long line with everything buffered after it (the buffer is cleared, as in
    /// Twisted). The default loses the connection; an override that keeps it goes on with
    /// the next bytes that arrive.
    #[doc(alias = "lineLengthExceeded")]
    fn line_length_exceeded(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        log::debug!(
            "LineReceiver: line longer than {} bytes ({} buffered); closing",
            ctl.max_length(),
            data.len()
        );
        ctl.lose_connection();
    }

    /// The connection is gone; an unfinished last line is discarded, as in Twisted.
    #[doc(alias = "connectionLost")]
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }

    /// Whether the receiver should offer half-close to the transport (Twisted's
    /// `IHalfCloseableProtocol`). The default is false: the peer's EOF ends the connection.
    fn half_closeable(&self) -> bool {
        false
    }

    /// With [`half_closeable`](Self::half_closeable): the peer shut down its write side.
    /// An unfinished last line stays buffered ([`LineControl::clear_line_buffer`] takes it).
    #[doc(alias = "readConnectionLost")]
    fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) {
        let _ = ctl;
    }

    /// With [`half_closeable`](Self::half_closeable): our write side was shut down.
    #[doc(alias = "writeConnectionLost")]
    fn write_connection_lost(&mut self) {}
}

/// The receiver's state a handler may change.
#[derive(Debug, Clone)]
pub(crate) struct LineConfig {
    pub(crate) delimiter: Delimiter,
    pub(crate) max_length: usize,
    pub(crate) raw: bool,
}

/// What a handler call may touch: the transport, the configuration, and the bytes not
/// delivered yet (the rest of the current chunk, then the buffer).
pub(crate) struct Parts<'a> {
    link: &'a Rc<FramedTransport>,
    config: &'a mut LineConfig,
    input: &'a [u8],
    pos: &'a mut usize,
    carry: &'a mut Vec<u8>,
}

impl Parts<'_> {
    fn clear_line_buffer(&mut self) -> Vec<u8> {
        let mut rest = self.input[*self.pos..].to_vec();
        *self.pos = self.input.len();
        rest.append(self.carry);
        rest
    }

    fn queue_front(&mut self, extra: &[u8]) {
        let mut queued = Vec::with_capacity(extra.len() + self.input.len() - *self.pos);
        queued.extend_from_slice(extra);
        queued.extend_from_slice(&self.input[*self.pos..]);
        *self.pos = self.input.len();
        queued.append(self.carry);
        *self.carry = queued;
    }
}

/// Writes `line` and `delimiter` with one `write` (one system call when the transport
/// writes through). A `FramedTransport` (a `LineSender` of a framed connection) gathers
/// the two pieces itself inside a callback.
pub(crate) fn write_line(t: &dyn Transport, line: &[u8], delimiter: &[u8]) {
    let n = line.len() + delimiter.len();
    if n <= 256 {
        let mut buf = [0u8; 256];
        buf[..line.len()].copy_from_slice(line);
        buf[line.len()..n].copy_from_slice(delimiter);
        t.write(&buf[..n]);
    } else {
        t.write(&[line, delimiter].concat());
    }
}

/// Methods shared by both controls.
macro_rules! common_control {
    () => {
        /// The transport, to keep (to write later, to register as a producer). It is the
        /// receiver's [`FramedTransport`]: pausing it also stops line delivery.
        pub fn transport(&self) -> Rc<dyn Transport> {
            self.p.link.clone()
        }

        /// Write bytes as they are.
        pub fn write(&self, data: &[u8]) {
            self.p.link.write(data);
        }

        /// Write `line` followed by the delimiter (Twisted's `sendLine`; in "LF with
        /// optional CR" mode, `\n`).
        #[doc(alias = "sendLine")]
        pub fn send_line(&self, line: &[u8]) {
            self.p
                .link
                .write_line(line, self.p.config.delimiter.as_bytes());
        }

        /// A handle that sends lines on this connection later, from anywhere.
        pub fn sender(&self) -> LineSender {
            LineSender {
                transport: self.transport(),
                delimiter: self.p.config.delimiter.as_bytes().into(),
            }
        }

        /// Close after the writes are flushed; no further line is delivered, not even
        /// one already buffered (CONTRACT D5).
        #[doc(alias = "loseConnection")]
        pub fn lose_connection(&self) {
            self.p.link.lose_connection();
        }

        /// The transport's unsent bytes ([`Transport::unsent_bytes`]).
        pub fn unsent_bytes(&self) -> usize {
            self.p.link.unsent_bytes()
        }

        /// Stop delivering lines (even buffered ones) and stop reading, until
        /// [`resume_producing`](Self::resume_producing) (Twisted's `pauseProducing`).
        #[doc(alias = "pauseProducing")]
        pub fn pause_producing(&self) {
            torsion_transport::PushProducer::pause_producing(&**self.p.link);
        }

        /// Undo [`pause_producing`](Self::pause_producing): lines buffered meanwhile
        /// are delivered once this callback returns.
        #[doc(alias = "resumeProducing")]
        pub fn resume_producing(&self) {
            torsion_transport::PushProducer::resume_producing(&**self.p.link);
        }

        /// Take the bytes received and not delivered yet: the rest of the current chunk
        /// and anything buffered (Twisted's `clearLineBuffer`). They will not be delivered.
        #[doc(alias = "clearLineBuffer")]
        pub fn clear_line_buffer(&mut self) -> Vec<u8> {
            self.p.clear_line_buffer()
        }

        /// The delimiter lines end with.
        pub fn delimiter(&self) -> &Delimiter {
            &self.p.config.delimiter
        }

        /// Change the delimiter; the next line is cut with the new one.
        pub fn set_delimiter(&mut self, delimiter: Delimiter) {
            self.p.config.delimiter = delimiter;
        }

        /// The longest line accepted, in bytes, delimiter excluded (Twisted's
        /// `MAX_LENGTH`).
        #[doc(alias = "MAX_LENGTH")]
        pub fn max_length(&self) -> usize {
            self.p.config.max_length
        }

        /// Change the longest line accepted.
        pub fn set_max_length(&mut self, max_length: usize) {
            self.p.config.max_length = max_length;
        }
    };
}

/// What a [`LineHandler`] can do from inside a callback: write, send lines, switch between
/// line and raw mode, pause, close.
pub struct LineControl<'a> {
    p: Parts<'a>,
}

impl fmt::Debug for LineControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineControl")
            .field("config", &self.p.config)
            .field(
                "pending",
                &(self.p.input.len() - *self.p.pos + self.p.carry.len()),
            )
            .finish()
    }
}

impl LineControl<'_> {
    common_control!();

    /// Deliver what follows (the rest of this chunk included) to
    /// [`LineHandler::raw_data_received`] as it arrives (Twisted's `setRawMode`).
    #[doc(alias = "setRawMode")]
    pub fn set_raw_mode(&mut self) {
        self.p.config.raw = true;
    }

    /// Cut what follows (the rest of this chunk included) into lines again (Twisted's
    /// `setLineMode`).
    #[doc(alias = "setLineMode")]
    pub fn set_line_mode(&mut self) {
        self.p.config.raw = false;
    }

    /// [`set_line_mode`](Self::set_line_mode), with `extra` delivered as lines before the
    /// rest: bytes a raw-mode handler read past the end of its data (Twisted's
    /// `setLineMode(extra)`).
    #[doc(alias = "setLineMode")]
    pub fn set_line_mode_with(&mut self, extra: &[u8]) {
        self.p.config.raw = false;
        if !extra.is_empty() {
            self.p.queue_front(extra);
        }
    }

    /// True in line mode, false in raw mode (Twisted's `line_mode`).
    #[doc(alias = "line_mode")]
    pub fn is_line_mode(&self) -> bool {
        !self.p.config.raw
    }
}

/// Sends lines on a connection, from anywhere (a broadcast, a timer): the transport and
/// the delimiter of a [`LineReceiver`], taken with [`LineControl::sender`].
#[derive(Clone)]
pub struct LineSender {
    transport: Rc<dyn Transport>,
    delimiter: Box<[u8]>,
}

impl fmt::Debug for LineSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSender")
            .field("peer", &self.transport.peer())
            .field("delimiter", &self.delimiter)
            .finish()
    }
}

impl LineSender {
    /// A sender for `transport` ending lines with `delimiter`.
    pub fn new(transport: Rc<dyn Transport>, delimiter: &Delimiter) -> Self {
        LineSender {
            transport,
            delimiter: delimiter.as_bytes().into(),
        }
    }

    /// Write `line` and the delimiter (Twisted's `sendLine`).
    #[doc(alias = "sendLine")]
    pub fn send_line(&self, line: &[u8]) {
        write_line(&*self.transport, line, &self.delimiter);
    }

    /// The transport.
    pub fn transport(&self) -> &Rc<dyn Transport> {
        &self.transport
    }

    /// The transport's unsent bytes: how far this peer lags behind.
    pub fn unsent_bytes(&self) -> usize {
        self.transport.unsent_bytes()
    }
}

/// The sink the line machine calls; one per handler kind.
pub(crate) trait LineSink: 'static {
    fn made(&mut self, p: Parts<'_>);
    fn line(&mut self, line: &[u8], p: Parts<'_>);
    fn raw(&mut self, data: &[u8], p: Parts<'_>);
    fn exceeded(&mut self, data: &[u8], p: Parts<'_>);
    fn lost(&mut self, reason: Reason);
    fn half_closeable(&self) -> bool;
    fn read_lost(&mut self, p: Parts<'_>);
    fn write_lost(&mut self);
}

/// A [`LineHandler`] as a sink.
pub(crate) struct Full<H>(pub(crate) H);

impl<H: LineHandler> LineSink for Full<H> {
    fn made(&mut self, p: Parts<'_>) {
        self.0.connection_made(&mut LineControl { p });
    }
    fn line(&mut self, line: &[u8], p: Parts<'_>) {
        self.0.line_received(line, &mut LineControl { p });
    }
    fn raw(&mut self, data: &[u8], p: Parts<'_>) {
        self.0.raw_data_received(data, &mut LineControl { p });
    }
    fn exceeded(&mut self, data: &[u8], p: Parts<'_>) {
        self.0.line_length_exceeded(data, &mut LineControl { p });
    }
    fn lost(&mut self, reason: Reason) {
        self.0.connection_lost(reason);
    }
    fn half_closeable(&self) -> bool {
        self.0.half_closeable()
    }
    fn read_lost(&mut self, p: Parts<'_>) {
        self.0.read_connection_lost(&mut LineControl { p });
    }
    fn write_lost(&mut self) {
        self.0.write_connection_lost();
    }
}

pub(crate) struct LineMachine<S> {
    pub(crate) sink: S,
    pub(crate) config: LineConfig,
}

impl<S: LineSink> Machine for LineMachine<S> {
    fn run(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        carry: &mut Vec<u8>,
        link: &Rc<FramedTransport>,
    ) {
        while *pos < input.len() && !link.stopped() {
            let rest = &input[*pos..];
            if self.config.raw {
                *pos = input.len();
                let p = Parts {
                    link,
                    config: &mut self.config,
                    input,
                    pos,
                    carry,
                };
                self.sink.raw(rest, p);
                continue;
            }
            let (end, next) = match self.config.delimiter.cut(rest, self.config.max_length) {
                Cut::Line { end, next } => (end, next),
                Cut::Incomplete => return,
                Cut::TooLong => {
                    *pos = input.len();
                    let p = Parts {
                        link,
                        config: &mut self.config,
                        input,
                        pos,
                        carry,
                    };
                    self.sink.exceeded(rest, p);
                    return;
                }
            };
            *pos += next;
            let p = Parts {
                link,
                config: &mut self.config,
                input,
                pos,
                carry,
            };
            self.sink.line(&rest[..end], p);
        }
    }

    fn made(&mut self, link: &Rc<FramedTransport>, carry: &mut Vec<u8>) {
        let mut pos = 0;
        let p = Parts {
            link,
            config: &mut self.config,
            input: &[],
            pos: &mut pos,
            carry,
        };
        self.sink.made(p);
    }

    fn lost(&mut self, reason: Reason) {
        self.sink.lost(reason);
    }

    fn half_closeable(&self) -> bool {
        self.sink.half_closeable()
    }

    fn read_lost(&mut self, link: &Rc<FramedTransport>, carry: &mut Vec<u8>) {
        let mut pos = 0;
        let p = Parts {
            link,
            config: &mut self.config,
            input: &[],
            pos: &mut pos,
            carry,
        };
        self.sink.read_lost(p);
    }

    fn write_lost(&mut self) {
        self.sink.write_lost();
    }
}

/// A [`Protocol`](torsion_transport::Protocol) that cuts the byte stream into lines and
/// hands them to a [`LineHandler`] (Twisted's `twisted.protocols.basic.LineReceiver`).
///
/// - Lines end with a [`Delimiter`]: `\r\n` by default, as in Twisted, or
///   [`Delimiter::lf_optional_cr`] for Unix tools (`\n`, with a `\r` before it stripped).
/// - A line longer than [`MAX_LENGTH`] (16,384 bytes, settable) goes to
///   [`LineHandler::line_length_exceeded`], which loses the connection by default.
/// - A handler may switch to raw mode and back mid-chunk
///   ([`LineControl::set_raw_mode`], [`LineControl::set_line_mode`]): the rest of the
///   chunk is delivered in the new mode.
/// - Pausing the transport ([`LineControl::pause_producing`], or whoever holds
///   `ctl.transport()` as a producer) stops delivery at once, buffered lines included;
///   resuming delivers them (Twisted's `_PauseableMixin`).
/// - After `lose_connection` no further line is delivered (CONTRACT D5; Twisted checks
///   `transport.disconnecting` the same way).
/// - What a callback writes through its control or `ctl.transport()` goes out in one
///   write when the callback returns (or every 64 KiB), as Twisted writes once per loop
///   iteration: a chunk of many lines answered line by line costs one system call.
///
/// Chunk boundaries never change which lines are delivered.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::StringTransport;
/// use torsion_toolkit::framing::{LineControl, LineHandler, LineReceiver};
/// use torsion_transport::Protocol;
///
/// struct Upper;
/// impl LineHandler for Upper {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
///         ctl.send_line(&line.to_ascii_uppercase());
///     }
/// }
///
/// let transport = Rc::new(StringTransport::new());
/// let mut protocol = LineReceiver::new(Upper);
/// protocol.connection_made(transport.clone());
/// protocol.data_received(b"hello\r");
/// protocol.data_received(b"\nwor");
/// protocol.data_received(b"ld\r\n");
/// assert_eq!(transport.value(), b"HELLO\r\nWORLD\r\n");
/// ```
pub struct LineReceiver<H: LineHandler> {
    rx: Receiver<LineMachine<Full<H>>>,
}

impl<H: LineHandler> fmt::Debug for LineReceiver<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineReceiver")
            .field("config", &self.rx.with_machine(|m| m.config.clone()))
            .field("buffered", &self.rx.buffered())
            .finish()
    }
}

impl<H: LineHandler> LineReceiver<H> {
    /// A receiver with Twisted's defaults: `\r\n` lines of at most [`MAX_LENGTH`] bytes.
    pub fn new(handler: H) -> Self {
        LineReceiver {
            rx: Receiver::new(LineMachine {
                sink: Full(handler),
                config: LineConfig {
                    delimiter: Delimiter::crlf(),
                    max_length: MAX_LENGTH,
                    raw: false,
                },
            }),
        }
    }

    /// Use `delimiter` instead of `\r\n` (Twisted's `delimiter` attribute).
    #[doc(alias = "delimiter")]
    pub fn with_delimiter(self, delimiter: Delimiter) -> Self {
        self.rx.with_machine_mut(|m| m.config.delimiter = delimiter);
        self
    }

    /// Accept lines of at most `max_length` bytes (Twisted's `MAX_LENGTH`).
    #[doc(alias = "MAX_LENGTH")]
    pub fn with_max_length(self, max_length: usize) -> Self {
        self.rx
            .with_machine_mut(|m| m.config.max_length = max_length);
        self
    }

    /// The handler, unless it is running (a line is being delivered).
    pub fn handler(&self) -> Option<Ref<'_, H>> {
        let core = self.rx.core.try_borrow().ok()?;
        Some(Ref::map(core, |c| &c.machine.sink.0))
    }

    /// Bytes received and not delivered yet (an unfinished line, or lines held while
    /// paused).
    pub fn buffered(&self) -> usize {
        self.rx.buffered()
    }
}

forward_protocol!(LineReceiver<H: LineHandler>);

/// Your side of a [`LineOnlyReceiver`] (Twisted's `LineOnlyReceiver` subclass methods).
pub trait LineOnlyHandler: 'static {
    /// The connection is up.
    #[doc(alias = "connectionMade")]
    fn connection_made(&mut self, ctl: &mut LineOnlyControl<'_>) {
        let _ = ctl;
    }

    /// A complete line arrived, without its delimiter.
    #[doc(alias = "lineReceived")]
    fn line_received(&mut self, line: &[u8], ctl: &mut LineOnlyControl<'_>);

    /// A line is longer than the maximum; as [`LineHandler::line_length_exceeded`]. The
    /// default loses the connection.
    #[doc(alias = "lineLengthExceeded")]
    fn line_length_exceeded(&mut self, data: &[u8], ctl: &mut LineOnlyControl<'_>) {
        log::debug!(
            "LineOnlyReceiver: line longer than {} bytes ({} buffered); closing",
            ctl.max_length(),
            data.len()
        );
        ctl.lose_connection();
    }

    /// The connection is gone.
    #[doc(alias = "connectionLost")]
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }
}

/// What a [`LineOnlyHandler`] can do from inside a callback: [`LineControl`] without the
/// raw mode.
pub struct LineOnlyControl<'a> {
    p: Parts<'a>,
}

impl fmt::Debug for LineOnlyControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineOnlyControl")
            .field("config", &self.p.config)
            .finish()
    }
}

impl LineOnlyControl<'_> {
    common_control!();
}

pub(crate) struct OnlyLines<H>(pub(crate) H);

impl<H: LineOnlyHandler> LineSink for OnlyLines<H> {
    fn made(&mut self, p: Parts<'_>) {
        self.0.connection_made(&mut LineOnlyControl { p });
    }
    fn line(&mut self, line: &[u8], p: Parts<'_>) {
        self.0.line_received(line, &mut LineOnlyControl { p });
    }
    fn raw(&mut self, data: &[u8], p: Parts<'_>) {
        // Unreachable: a LineOnlyControl cannot switch to raw mode.
        log::error!("LineOnlyReceiver: {} bytes in raw mode", data.len());
        p.link.lose_connection();
    }
    fn exceeded(&mut self, data: &[u8], p: Parts<'_>) {
        self.0
            .line_length_exceeded(data, &mut LineOnlyControl { p });
    }
    fn lost(&mut self, reason: Reason) {
        self.0.connection_lost(reason);
    }
    fn half_closeable(&self) -> bool {
        false
    }
    fn read_lost(&mut self, _p: Parts<'_>) {}
    fn write_lost(&mut self) {}
}

/// Lines only, no raw mode (Twisted's `twisted.protocols.basic.LineOnlyReceiver`).
///
/// It is [`LineReceiver`] without [`set_raw_mode`](LineControl::set_raw_mode), so it
/// follows the same rules. **\[deliberate\]** Twisted's `LineOnlyReceiver` rejects an
/// unfinished line as soon as it is longer than `MAX_LENGTH`, even when its last byte is
/// the start of the delimiter, so the chunking of the stream could decide whether a line
/// of exactly `MAX_LENGTH` bytes is accepted; here it never does. It also honours pausing,
/// which Twisted's does not.
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::StringTransport;
/// use torsion_toolkit::framing::{Delimiter, LineOnlyControl, LineOnlyHandler, LineOnlyReceiver};
/// use torsion_transport::Protocol;
///
/// struct Echo;
/// impl LineOnlyHandler for Echo {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineOnlyControl<'_>) {
///         ctl.send_line(line);
///     }
/// }
///
/// let t = Rc::new(StringTransport::new());
/// let mut p = LineOnlyReceiver::new(Echo).with_delimiter(Delimiter::lf());
/// p.connection_made(t.clone());
/// p.data_received(b"a\nb");
/// p.data_received(b"\n");
/// assert_eq!(t.value(), b"a\nb\n");
/// ```
pub struct LineOnlyReceiver<H: LineOnlyHandler> {
    rx: Receiver<LineMachine<OnlyLines<H>>>,
}

impl<H: LineOnlyHandler> fmt::Debug for LineOnlyReceiver<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineOnlyReceiver")
            .field("config", &self.rx.with_machine(|m| m.config.clone()))
            .field("buffered", &self.rx.buffered())
            .finish()
    }
}

impl<H: LineOnlyHandler> LineOnlyReceiver<H> {
    /// A receiver with Twisted's defaults: `\r\n` lines of at most [`MAX_LENGTH`] bytes.
    pub fn new(handler: H) -> Self {
        LineOnlyReceiver {
            rx: Receiver::new(LineMachine {
                sink: OnlyLines(handler),
                config: LineConfig {
                    delimiter: Delimiter::crlf(),
                    max_length: MAX_LENGTH,
                    raw: false,
                },
            }),
        }
    }

    /// Use `delimiter` instead of `\r\n`.
    #[doc(alias = "delimiter")]
    pub fn with_delimiter(self, delimiter: Delimiter) -> Self {
        self.rx.with_machine_mut(|m| m.config.delimiter = delimiter);
        self
    }

    /// Accept lines of at most `max_length` bytes.
    #[doc(alias = "MAX_LENGTH")]
    pub fn with_max_length(self, max_length: usize) -> Self {
        self.rx
            .with_machine_mut(|m| m.config.max_length = max_length);
        self
    }

    /// The handler, unless it is running.
    pub fn handler(&self) -> Option<Ref<'_, H>> {
        let core = self.rx.core.try_borrow().ok()?;
        Some(Ref::map(core, |c| &c.machine.sink.0))
    }

    /// Bytes received and not delivered yet.
    pub fn buffered(&self) -> usize {
        self.rx.buffered()
    }
}

forward_protocol!(LineOnlyReceiver<H: LineOnlyHandler>);
