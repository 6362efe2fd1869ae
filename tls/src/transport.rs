//! [`TlsTransport`]: the plaintext side a wrapped protocol writes to, and the producer
//! membrane that lets the ciphertext side's buffer pause the protocol's producer.

use std::cell::Cell;
use std::fmt;
use std::io::Write;
use std::rc::{Rc, Weak};

use torsion_transport::callback::catch_panic;
use torsion_transport::{
    Address, Consumer, Producer, ProducerError, PullProducer, PushProducer, Transport,
};

use crate::protocol::{EARLY_BUFFER_SIZE, Inner};

/// The transport a protocol wrapped by [`TlsProtocol`](crate::TlsProtocol) writes to:
/// plaintext in, ciphertext out through the underlying transport.
///
/// It follows the transport contract as the underlying transport does:
///
/// - `write` encrypts at once and hands the records to the underlying transport, whose
///   buffer pauses a producer registered here (CONTRACT D4); before the handshake
///   completes, writes are queued (a streaming producer is paused past
///   [`EARLY_BUFFER_SIZE`]) and sent when it does;
/// - `lose_connection` sends close_notify after everything written (and a pull producer's
///   last chunk), then closes the underlying transport;
/// - `lose_write_connection` sends close_notify and half-closes the underlying transport
///   when TLS 1.3 was negotiated (the peer may go on sending); with TLS 1.2, whose peer
///   must answer close_notify by closing, it closes instead;
/// - `pause_producing` / `resume_producing` pause and resume reading the underlying
///   transport (the plaintext of a chunk it already delivered is still delivered, in one
///   `data_received`, as a socket delivers what it already read).
///
/// No method calls into the wrapped protocol.
pub struct TlsTransport {
    inner: Weak<Inner>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl TlsTransport {
    pub(crate) fn new(inner: Weak<Inner>) -> Self {
        TlsTransport { inner }
    }
}

impl Consumer for TlsTransport {
    fn write(&self, data: &[u8]) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let (lower, out, pause) = {
            let mut guard = inner.state.borrow_mut();
            let s = &mut *guard;
            if data.is_empty() || s.lost || s.aborted || s.close_sent || s.write_shutdown {
                return;
            }
            match s.conn.as_mut() {
                None => (s.lower.clone(), data.to_vec(), None),
                Some(_) if !s.handshake_done => {
                    s.early.extend_from_slice(data);
                    let pause = (s.early.len() > EARLY_BUFFER_SIZE)
                        .then(|| s.membrane.clone())
                        .flatten();
                    (None, Vec::new(), pause)
                }
                Some(conn) => {
                    // Unlimited buffer: rustls takes it all.
                    let _ = conn.writer().write_all(data);
                    let mut out = Vec::with_capacity(data.len() + 64);
                    while conn.wants_write() {
                        match conn.write_tls(&mut out) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    (s.lower.clone(), out, None)
                }
            }
        };
        inner.send(&lower, &out);
        if let Some(m) = pause {
            m.set_handshake_paused(true);
        }
    }

    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        let Some(inner) = self.inner.upgrade() else {
            catch_panic("stop_producing", || producer.stop_producing());
            return Ok(());
        };
        let (lower, membrane) = {
            let mut s = inner.state.borrow_mut();
            if s.producer.is_some() {
                return Err(ProducerError::AlreadyRegistered);
            }
            match s.lower.clone() {
                Some(lower) if !s.lost => {
                    let membrane = Rc::new(Membrane {
                        user: producer.clone(),
                        inner: self.inner.clone(),
                        paused_below: Cell::new(false),
                        paused_early: Cell::new(
                            s.conn.is_some()
                                && !s.handshake_done
                                && s.early.len() > EARLY_BUFFER_SIZE,
                        ),
                        user_paused: Cell::new(false),
                        stopped: Cell::new(false),
                    });
                    s.producer = Some(producer.clone());
                    s.membrane = Some(membrane.clone());
                    (Some(lower), Some(membrane))
                }
                _ => (None, None),
            }
        };
        let (Some(lower), Some(membrane)) = (lower, membrane) else {
            catch_panic("stop_producing", || producer.stop_producing());
            return Ok(());
        };
        membrane.update();
        let below = match producer {
            Producer::Push(_) => Producer::Push(membrane.clone()),
            Producer::Pull(_) => Producer::Pull(membrane.clone()),
        };
        if let Err(e) = lower.register_producer(below) {
            let mut s = inner.state.borrow_mut();
            s.producer = None;
            s.membrane = None;
            return Err(e);
        }
        Ok(())
    }

    fn unregister_producer(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let (lower, had) = {
            let mut s = inner.state.borrow_mut();
            let had = s.producer.take().is_some();
            if let Some(m) = s.membrane.take() {
                m.stopped.set(true);
            }
            (s.lower.clone(), had)
        };
        if had && let Some(lower) = lower {
            lower.unregister_producer();
        }
        inner.maybe_finish_close();
    }
}

impl PushProducer for TlsTransport {
    /// Stop reading the underlying transport (CONTRACT D8).
    fn pause_producing(&self) {
        if let Some(lower) = self.inner.upgrade().and_then(|i| i.lower()) {
            lower.pause_producing();
        }
    }

    /// Read the underlying transport again.
    fn resume_producing(&self) {
        if let Some(lower) = self.inner.upgrade().and_then(|i| i.lower()) {
            lower.resume_producing();
        }
    }

    /// As `lose_connection`.
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl Transport for TlsTransport {
    fn lose_connection(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        {
            let mut s = inner.state.borrow_mut();
            if s.disconnecting || s.lost {
                return;
            }
            s.disconnecting = true;
        }
        inner.maybe_finish_close();
    }

    fn abort_connection(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let lower = {
            let mut s = inner.state.borrow_mut();
            if s.aborted || s.lost {
                return;
            }
            s.aborted = true;
            s.disconnecting = true;
            s.early.clear();
            s.lower.clone()
        };
        if let Some(lower) = lower {
            lower.abort_connection();
        }
    }

    fn lose_write_connection(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        {
            let mut s = inner.state.borrow_mut();
            if s.write_shutdown || s.disconnecting || s.lost {
                return;
            }
            s.write_shutdown = true;
        }
        inner.maybe_finish_close();
    }

    /// The plaintext waiting for the handshake plus the ciphertext the underlying
    /// transport has not sent yet (TLS adds a few dozen bytes per record of up to 16 KiB,
    /// so after the handshake this is a little more than the plaintext backlog). Zero
    /// once the connection is closed or aborted.
    fn unsent_bytes(&self) -> usize {
        let Some(inner) = self.inner.upgrade() else {
            return 0;
        };
        let (early, lower) = {
            let s = inner.state.borrow();
            if s.lost {
                return 0;
            }
            (s.early.len(), s.lower.clone())
        };
        early + lower.map_or(0, |l| l.unsent_bytes())
    }

    fn host(&self) -> Address {
        self.inner
            .upgrade()
            .and_then(|i| i.state.borrow().host.clone())
            .unwrap_or_else(|| Address::Memory("tls".into()))
    }

    fn peer(&self) -> Address {
        self.inner
            .upgrade()
            .and_then(|i| i.state.borrow().peer.clone())
            .unwrap_or_else(|| Address::Memory("tls".into()))
    }
}

/// Stands for the wrapped protocol's producer on the underlying transport: the
/// underlying buffer pauses and resumes it, and so does the queue of plaintext waiting
/// for the handshake. The protocol's producer is paused while either wants it paused.
pub(crate) struct Membrane {
    user: Producer,
    inner: Weak<Inner>,
    paused_below: Cell<bool>,
    paused_early: Cell<bool>,
    user_paused: Cell<bool>,
    stopped: Cell<bool>,
}

impl Membrane {
    /// Pause or resume the protocol's push producer to match what is wanted.
    fn update(&self) {
        let Producer::Push(p) = &self.user else {
            return;
        };
        if self.stopped.get() {
            return;
        }
        let want = self.paused_below.get() || self.paused_early.get();
        if want == self.user_paused.get() {
            return;
        }
        self.user_paused.set(want);
        let p = p.clone();
        if want {
            catch_panic("pause_producing", move || p.pause_producing());
        } else {
            catch_panic("resume_producing", move || p.resume_producing());
        }
    }

    pub(crate) fn set_handshake_paused(&self, paused: bool) {
        self.paused_early.set(paused);
        match &self.user {
            Producer::Push(_) => self.update(),
            Producer::Pull(p) => {
                // A pull producer asked for more while the handshake ran: ask it now.
                if !paused && self.paused_below.replace(false) && !self.stopped.get() {
                    let p = p.clone();
                    catch_panic("resume_producing", move || p.resume_producing());
                }
            }
        }
    }

    /// The connection is gone: stop the protocol's producer, once.
    pub(crate) fn stop(&self) {
        if !self.stopped.replace(true) {
            let p = self.user.clone();
            catch_panic("stop_producing", move || p.stop_producing());
        }
    }

    fn handshaking(&self) -> bool {
        self.inner.upgrade().is_some_and(|i| {
            let s = i.state.borrow();
            s.conn.is_some() && !s.handshake_done
        })
    }
}

impl fmt::Debug for Membrane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membrane")
            .field("paused_below", &self.paused_below.get())
            .field("paused_early", &self.paused_early.get())
            .finish()
    }
}

impl PushProducer for Membrane {
    fn pause_producing(&self) {
        self.paused_below.set(true);
        self.update();
    }

    fn resume_producing(&self) {
        self.paused_below.set(false);
        self.update();
    }

    fn stop_producing(&self) {
        self.stop();
    }
}

impl PullProducer for Membrane {
    fn resume_producing(&self) {
        if self.stopped.get() {
            return;
        }
        if self.handshaking() {
            // Its chunk would only wait for the handshake: ask once it is done.
            self.paused_below.set(true);
            return;
        }
        if let Producer::Pull(p) = &self.user {
            let p = p.clone();
            catch_panic("resume_producing", move || p.resume_producing());
        }
    }

    fn stop_producing(&self) {
        self.stop();
    }
}
