//! [`TlsProtocol`]: TLS as a protocol wrapper over any transport (Twisted's
//! `TLSMemoryBIOProtocol`). The underlying transport carries ciphertext; the wrapped
//! protocol sees plaintext through a [`TlsTransport`].

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::{Rc, Weak};

use rustls::Connection;
use torsion_reactor::ProtocolSlot;
use torsion_transport::callback::catch_panic;
use torsion_transport::{Address, HalfCloseableProtocol, Producer, Protocol, Reason, Transport};

use crate::config::{TlsClientConfig, TlsServerConfig, TlsVersion};
use crate::control::TlsControl;
use crate::error::TlsError;
use crate::transport::{Membrane, TlsTransport};

/// How much plaintext written before the handshake completes is queued before a
/// streaming producer on the TLS transport is paused (as a socket's buffer size).
pub const EARLY_BUFFER_SIZE: usize = 64 * 1024;

/// Which side of TLS a connection plays, or none yet.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// No TLS yet: bytes pass through unchanged until
    /// [`TlsControl::start_tls`](crate::TlsControl::start_tls).
    Plaintext,
    /// The TLS server side.
    Server(TlsServerConfig),
    /// The TLS client side (the configuration holds the server name).
    Client(TlsClientConfig),
}

pub(crate) type HandshakeCallback = Box<dyn FnOnce(Result<(), TlsError>)>;

/// The connection's state. Every call out of this crate (the underlying transport, the
/// wrapped protocol, a producer, a callback) happens with no borrow of it held.
pub(crate) struct State {
    /// The underlying (ciphertext) transport, from `connection_made` to `connection_lost`.
    pub(crate) lower: Option<Rc<dyn Transport>>,
    /// The mode to begin in at `connection_made`.
    pub(crate) initial: Option<TlsMode>,
    /// The TLS session; `None` in plaintext mode.
    pub(crate) conn: Option<Connection>,
    pub(crate) handshake_done: bool,
    /// Plaintext written before the handshake completed.
    pub(crate) early: Vec<u8>,
    /// Plaintext decrypted while the wrapped protocol could not take it (start_tls from
    /// inside one of its callbacks); delivered when that callback returns.
    pub(crate) undelivered: Vec<u8>,
    /// `lose_connection` was called: no more delivery, close after the flush.
    pub(crate) disconnecting: bool,
    /// `lose_write_connection` was called.
    pub(crate) write_shutdown: bool,
    /// Our close_notify is sent (or, in plaintext, the close passed down): writes are
    /// dropped from now on.
    pub(crate) close_sent: bool,
    /// The peer's close_notify arrived.
    pub(crate) peer_closed: bool,
    /// `lose_connection` was passed down to the underlying transport.
    pub(crate) lower_closing: bool,
    /// `abort_connection` was called.
    pub(crate) aborted: bool,
    /// `connection_lost` was delivered (or is being).
    pub(crate) lost: bool,
    /// Why the connection is ending, when we know better than the underlying transport.
    pub(crate) failure: Option<Reason>,
    /// The wrapped protocol's producer and the membrane registered for it below.
    pub(crate) producer: Option<Producer>,
    pub(crate) membrane: Option<Rc<Membrane>>,
    pub(crate) on_handshake: Vec<HandshakeCallback>,
    /// Why the handshake failed, once the connection ended before it completed.
    pub(crate) handshake_failure: Option<TlsError>,
    pub(crate) host: Option<Address>,
    pub(crate) peer: Option<Address>,
}

pub(crate) struct Inner {
    pub(crate) state: RefCell<State>,
    pub(crate) app: ProtocolSlot,
    pub(crate) transport: Rc<TlsTransport>,
    pub(crate) half_closeable: RefCell<Option<bool>>,
}

/// What one pass of incoming ciphertext produced.
#[derive(Default)]
pub(crate) struct Received {
    pub(crate) plain: Vec<u8>,
    pub(crate) handshake_done: bool,
    pub(crate) peer_closed: bool,
    pub(crate) failed: bool,
}

fn take_tls(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        match conn.write_tls(&mut out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}

pub(crate) fn new_connection(mode: &TlsMode) -> Result<Option<Connection>, TlsError> {
    let conn = match mode {
        TlsMode::Plaintext => return Ok(None),
        TlsMode::Server(c) => {
            rustls::ServerConnection::new(c.rustls_config().clone()).map(Connection::Server)
        }
        TlsMode::Client(c) => {
            rustls::ClientConnection::new(c.rustls_config().clone(), c.server_name().clone())
                .map(Connection::Client)
        }
    };
    match conn {
        Ok(mut c) => {
            // Flow control is ours: the ciphertext goes straight to the underlying
            // transport, whose buffer pauses the producers.
            c.set_buffer_limit(None);
            Ok(Some(c))
        }
        Err(e) => Err(TlsError::Setup(e.to_string())),
    }
}

impl Inner {
    pub(crate) fn lower(&self) -> Option<Rc<dyn Transport>> {
        self.state.borrow().lower.clone()
    }

    /// Write ciphertext (or plaintext in plaintext mode) to the underlying transport.
    pub(crate) fn send(&self, lower: &Option<Rc<dyn Transport>>, bytes: &[u8]) {
        if let Some(lower) = lower
            && !bytes.is_empty()
        {
            lower.write(bytes);
        }
    }

    /// Feed `data` to the TLS session: handshake messages are answered, plaintext is
    /// collected, a failure is recorded (its alert sent) and the underlying connection
    /// closed.
    pub(crate) fn receive(&self, mut data: &[u8]) -> Received {
        let mut got = Received::default();
        loop {
            let (lower, out, early, failure) = {
                let mut guard = self.state.borrow_mut();
                let s = &mut *guard;
                if s.failure.is_some() || s.lost || s.aborted {
                    return got;
                }
                let was_done = s.handshake_done;
                let Some(conn) = s.conn.as_mut() else {
                    got.plain.extend_from_slice(data);
                    return got;
                };
                let mut failure = None;
                match conn.read_tls(&mut data) {
                    // Nothing taken: after the peer's close_notify rustls reads no more;
                    // what follows it is dropped (a loop here would never end).
                    Ok(0) if !data.is_empty() => {
                        log::debug!("{} bytes after the peer's close_notify dropped", data.len());
                        data = &[];
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // rustls refused more input (its buffers are full of garbage).
                        let e = rustls::Error::General(e.to_string());
                        failure = Some(if was_done {
                            TlsError::Protocol(e)
                        } else {
                            TlsError::Handshake(e)
                        });
                    }
                }
                let mut early = false;
                if failure.is_none() {
                    match conn.process_new_packets() {
                        Ok(io) => {
                            let n = io.plaintext_bytes_to_read();
                            if n > 0 {
                                let at = got.plain.len();
                                got.plain.resize(at + n, 0);
                                if conn.reader().read_exact(&mut got.plain[at..]).is_err() {
                                    got.plain.truncate(at);
                                }
                            }
                            if io.peer_has_closed() && !s.peer_closed {
                                s.peer_closed = true;
                                got.peer_closed = true;
                            }
                            if !was_done && !conn.is_handshaking() {
                                // The handshake is complete: what was written before it
                                // goes now.
                                early = true;
                                let _ = conn.writer().write_all(&s.early);
                                s.early = Vec::new();
                                s.handshake_done = true;
                                got.handshake_done = true;
                            }
                        }
                        Err(e) => {
                            failure = Some(if was_done {
                                TlsError::Protocol(e)
                            } else {
                                TlsError::Handshake(e)
                            })
                        }
                    }
                }
                // On failure this is the alert rustls queued for the peer.
                let out = take_tls(conn);
                if let Some(f) = &failure {
                    log::debug!("TLS failure: {f}");
                    s.failure = Some(f.clone().into_reason());
                }
                (s.lower.clone(), out, early, failure)
            };
            self.send(&lower, &out);
            if early {
                self.handshake_finished(Ok(()));
            }
            if failure.is_some() {
                got.failed = true;
                if let Some(lower) = lower {
                    lower.lose_connection();
                }
                return got;
            }
            if data.is_empty() {
                return got;
            }
        }
    }

    /// The handshake ended: tell those waiting, let a producer paused by the early
    /// buffer go on, and finish a close that waited for it.
    pub(crate) fn handshake_finished(&self, result: Result<(), TlsError>) {
        let (callbacks, membrane) = {
            let mut s = self.state.borrow_mut();
            (std::mem::take(&mut s.on_handshake), s.membrane.clone())
        };
        for cb in callbacks {
            let r = result.clone();
            catch_panic("TLS handshake callback", move || cb(r));
        }
        if result.is_ok() {
            if let Some(m) = membrane {
                m.set_handshake_paused(false);
            }
            self.maybe_finish_close();
        }
    }

    /// Send close_notify and close (or half-close) the underlying transport once every
    /// byte written is out: no pull producer left, no plaintext waiting for the handshake.
    pub(crate) fn maybe_finish_close(&self) {
        let (lower, out, full) = {
            let mut s = self.state.borrow_mut();
            if !(s.disconnecting || s.write_shutdown) || s.lost || s.aborted {
                return;
            }
            if s.close_sent {
                // close_notify went with a half-close; now the whole connection closes.
                if s.disconnecting && !s.lower_closing {
                    s.lower_closing = true;
                    let lower = s.lower.clone();
                    drop(s);
                    if let Some(lower) = lower {
                        lower.lose_connection();
                    }
                }
                return;
            }
            if matches!(s.producer, Some(Producer::Pull(_))) {
                return;
            }
            let tls = s.conn.is_some();
            if tls && !s.handshake_done && (s.write_shutdown || !s.early.is_empty()) {
                // The version decides half-close, and the queued plaintext must go first.
                return;
            }
            let full = s.disconnecting
                || (tls
                    && s.conn
                        .as_ref()
                        .and_then(|c| c.protocol_version())
                        .and_then(TlsVersion::from_rustls)
                        != Some(TlsVersion::Tls13));
            s.close_sent = true;
            s.lower_closing = full;
            let out = match s.conn.as_mut() {
                Some(conn) => {
                    conn.send_close_notify();
                    take_tls(conn)
                }
                None => Vec::new(),
            };
            (s.lower.clone(), out, full)
        };
        self.send(&lower, &out);
        if let Some(lower) = lower {
            if full {
                lower.lose_connection();
            } else {
                lower.lose_write_connection();
            }
        }
    }

    /// Deliver plaintext to the wrapped protocol, unless it asked to close.
    pub(crate) fn deliver(&self, plain: &[u8]) {
        if plain.is_empty() || self.state.borrow().disconnecting {
            return;
        }
        match self.app.call("data_received", |p| p.data_received(plain)) {
            Ok(Some(())) => {}
            Ok(None) => {
                // The protocol is on the stack (start_tls from inside its callback):
                // keep the bytes for when it returns.
                self.state.borrow_mut().undelivered.extend_from_slice(plain);
            }
            Err(panicked) => self.fail_after_panic(panicked.reason()),
        }
    }

    /// Deliver what was decrypted while the protocol was busy.
    fn deliver_undelivered(&self) {
        loop {
            let plain = std::mem::take(&mut self.state.borrow_mut().undelivered);
            if plain.is_empty() {
                return;
            }
            self.deliver(&plain);
            if self.state.borrow().lost {
                return;
            }
        }
    }

    pub(crate) fn fail_after_panic(&self, reason: Reason) {
        let lower = {
            let mut s = self.state.borrow_mut();
            if s.failure.is_none() {
                s.failure = Some(reason);
            }
            s.aborted = true;
            s.lower.clone()
        };
        if let Some(lower) = lower {
            lower.abort_connection();
        }
    }

    fn app_half_closeable(&self) -> bool {
        if let Some(known) = *self.half_closeable.borrow() {
            return known;
        }
        let known = matches!(
            self.app
                .call("as_half_closeable", |p| p.as_half_closeable().is_some()),
            Ok(Some(true))
        );
        *self.half_closeable.borrow_mut() = Some(known);
        known
    }

    /// The peer ended its side (close_notify, or EOF in plaintext mode).
    fn peer_ended(&self) {
        if self.app_half_closeable() {
            let r = self.app.call("read_connection_lost", |p| {
                if let Some(h) = p.as_half_closeable() {
                    h.read_connection_lost();
                }
            });
            if let Err(panicked) = r {
                self.fail_after_panic(panicked.reason());
            }
        } else {
            self.state.borrow_mut().disconnecting = true;
            self.maybe_finish_close();
        }
    }
}

/// TLS over any transport (Twisted's `TLSMemoryBIOProtocol`): give it to a transport —
/// a TCP or Unix connection, a child's pipes, the test kit's loopback pump — as that
/// transport's protocol, and it runs the wrapped protocol over TLS.
///
/// The wrapped protocol gets `connection_made` at once, with a [`TlsTransport`]; what it
/// writes before the handshake completes is queued and sent when it does. Plaintext is
/// delivered as it is decrypted. A failed handshake, a bad certificate or garbage from the
/// peer closes this connection, and the wrapped protocol's `connection_lost` gets a
/// reason carrying a [`TlsError`] that names the alert or the verification error.
///
/// In [`TlsMode::Plaintext`] bytes pass through unchanged until the protocol calls
/// [`TlsControl::start_tls`] (STARTTLS); build it with [`TlsProtocol::new_with`] to hand
/// the protocol its [`TlsControl`].
#[doc(alias = "TLSMemoryBIOProtocol")]
pub struct TlsProtocol {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for TlsProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.state.try_borrow();
        f.debug_struct("TlsProtocol")
            .field("tls", &s.as_ref().map(|s| s.conn.is_some()).ok())
            .field("handshake_done", &s.as_ref().map(|s| s.handshake_done).ok())
            .finish_non_exhaustive()
    }
}

impl TlsProtocol {
    /// Wrap `app`, beginning in `mode`.
    pub fn new(mode: TlsMode, app: Box<dyn Protocol>) -> Self {
        Self::new_with(mode, |_| app)
    }

    /// Wrap the protocol `build` makes, handing it the connection's [`TlsControl`] (to
    /// call `start_tls`, or to ask about the session).
    pub fn new_with(mode: TlsMode, build: impl FnOnce(TlsControl) -> Box<dyn Protocol>) -> Self {
        let inner = Rc::new_cyclic(|weak: &Weak<Inner>| {
            let app = build(TlsControl::new(weak.clone()));
            Inner {
                state: RefCell::new(State {
                    lower: None,
                    initial: Some(mode),
                    conn: None,
                    handshake_done: false,
                    early: Vec::new(),
                    undelivered: Vec::new(),
                    disconnecting: false,
                    write_shutdown: false,
                    close_sent: false,
                    peer_closed: false,
                    lower_closing: false,
                    aborted: false,
                    lost: false,
                    failure: None,
                    producer: None,
                    membrane: None,
                    on_handshake: Vec::new(),
                    handshake_failure: None,
                    host: None,
                    peer: None,
                }),
                app: ProtocolSlot::new(app),
                transport: Rc::new(TlsTransport::new(weak.clone())),
                half_closeable: RefCell::new(None),
            }
        });
        TlsProtocol { inner }
    }

    /// The TLS server side of `app`.
    pub fn server(config: TlsServerConfig, app: Box<dyn Protocol>) -> Self {
        Self::new(TlsMode::Server(config), app)
    }

    /// The TLS client side of `app`.
    pub fn client(config: TlsClientConfig, app: Box<dyn Protocol>) -> Self {
        Self::new(TlsMode::Client(config), app)
    }

    /// `app` in plaintext mode, until it calls [`TlsControl::start_tls`].
    pub fn plaintext(build: impl FnOnce(TlsControl) -> Box<dyn Protocol>) -> Self {
        Self::new_with(TlsMode::Plaintext, build)
    }

    /// This connection's control handle.
    pub fn control(&self) -> TlsControl {
        TlsControl::new(Rc::downgrade(&self.inner))
    }
}

impl Protocol for TlsProtocol {
    fn connection_made(&mut self, lower: Rc<dyn Transport>) {
        let inner = &self.inner;
        let (setup, out) = {
            let mut s = inner.state.borrow_mut();
            s.host = Some(lower.host());
            s.peer = Some(lower.peer());
            s.lower = Some(lower.clone());
            let mode = s.initial.take().unwrap_or(TlsMode::Plaintext);
            match new_connection(&mode) {
                Ok(conn) => {
                    s.conn = conn;
                    let out = s.conn.as_mut().map(take_tls).unwrap_or_default();
                    (Ok(()), out)
                }
                Err(e) => {
                    s.failure = Some(e.clone().into_reason());
                    (Err(e), Vec::new())
                }
            }
        };
        // The ClientHello first, then whatever the protocol writes.
        inner.send(&Some(lower.clone()), &out);
        let transport: Rc<dyn Transport> = inner.transport.clone();
        match inner
            .app
            .call("connection_made", |p| p.connection_made(transport))
        {
            Ok(_) => {}
            Err(panicked) => {
                inner.fail_after_panic(panicked.reason());
                return;
            }
        }
        if setup.is_err() {
            lower.lose_connection();
        }
        inner.deliver_undelivered();
    }

    fn data_received(&mut self, data: &[u8]) {
        let inner = &self.inner;
        let got = inner.receive(data);
        inner.deliver(&got.plain);
        inner.deliver_undelivered();
        if got.peer_closed && !got.failed {
            inner.peer_ended();
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        let inner = &self.inner;
        let (reason, handshake_failed, membrane) = {
            let mut s = inner.state.borrow_mut();
            s.lost = true;
            s.lower = None;
            let tls = s.conn.is_some();
            let ours = s.close_sent || s.aborted;
            let reason = match s.failure.take() {
                Some(r) => r,
                None if tls && !s.handshake_done && reason.is_clean() => {
                    TlsError::ClosedDuringHandshake.into_reason()
                }
                None if tls && !s.peer_closed && !ours && reason.is_clean() => {
                    TlsError::Truncated.into_reason()
                }
                None => reason,
            };
            let handshake_failed = if tls && !s.handshake_done {
                Some(
                    TlsError::from_reason(&reason)
                        .cloned()
                        .unwrap_or(TlsError::ClosedDuringHandshake),
                )
            } else {
                None
            };
            s.handshake_failure = handshake_failed.clone();
            s.early.clear();
            s.producer = None;
            (reason, handshake_failed, s.membrane.take())
        };
        if let Some(e) = handshake_failed {
            inner.handshake_finished(Err(e));
        }
        if let Some(m) = membrane {
            m.stop();
        }
        inner.app.lose(reason);
        inner.state.borrow_mut().on_handshake.clear();
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl HalfCloseableProtocol for TlsProtocol {
    /// The underlying transport reached EOF. After a close_notify that is expected; in
    /// plaintext mode it is the peer's half-close; otherwise the TLS stream was cut.
    fn read_connection_lost(&mut self) {
        let inner = &self.inner;
        let (tls, peer_closed, lower) = {
            let s = inner.state.borrow();
            (s.conn.is_some(), s.peer_closed, s.lower.clone())
        };
        if !tls {
            inner.peer_ended();
            return;
        }
        if peer_closed {
            return;
        }
        {
            let mut s = inner.state.borrow_mut();
            if s.failure.is_none() && !s.close_sent {
                s.failure = Some(if s.handshake_done {
                    TlsError::Truncated.into_reason()
                } else {
                    TlsError::ClosedDuringHandshake.into_reason()
                });
            }
            s.disconnecting = true;
        }
        if let Some(lower) = lower {
            lower.lose_connection();
        }
    }

    fn write_connection_lost(&mut self) {
        let r = self.inner.app.call("write_connection_lost", |p| {
            if let Some(h) = p.as_half_closeable() {
                h.write_connection_lost();
            }
        });
        if let Err(panicked) = r {
            self.inner.fail_after_panic(panicked.reason());
        }
    }
}
