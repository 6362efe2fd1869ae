//! `PtyTransport`: a byte-stream [`Transport`] over a PTY master the caller holds, with no
//! child of ours on the other side.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_reactor::{ProtocolSlot, Reactor, Selectable, catch_panic};
use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, SharedBytes,
    Transport,
};

use crate::master::{MasterOwner, PtyMaster};

/// A [`Protocol`] driven over a PTY master: what the slave's holder writes arrives as
/// `data_received`; what the protocol writes goes to the slave's input.
///
/// For a terminal whose slave is used by something other than a child spawned here — a
/// program started elsewhere, a terminal handed over by another process, or a test that
/// holds the slave itself. It is built from the same master selectable as
/// `torsion-process`'s PTY children, so the two share the reading, buffering, flow
/// control and end-of-output rules:
///
/// - Reading stops with a clean `connection_lost(ConnectionDone)` once every slave fd is
///   closed (`EIO` on Linux, end-of-file on the BSDs; CONTRACT L4).
/// - `lose_connection` stops reading, flushes, then closes the master (D5); if it was the
///   last master fd, the terminal hangs up and input the slave's reader had not read is
///   discarded. `abort_connection` closes without flushing.
/// - A terminal cannot half-close: `lose_write_connection` is `lose_connection`.
///
/// The line discipline sits between the two ends: put the terminal in raw mode with echo
/// off ([`termios`](crate::termios)) for a transparent byte stream.
pub struct PtyTransport {
    master: RefCell<Option<Rc<PtyMaster>>>,
    protocol: ProtocolSlot,
    me: Weak<PtyTransport>,
}

impl fmt::Debug for PtyTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyTransport")
            .field("master", &self.master.borrow())
            .finish()
    }
}

impl PtyTransport {
    /// Make `master` non-blocking, register it with `reactor`, call
    /// `protocol.connection_made` and start reading.
    ///
    /// The transport owns `master` from now on (pass a duplicate to keep your own). The
    /// reactor keeps the transport alive until the connection is lost.
    ///
    /// # Errors
    ///
    /// The OS error of `fcntl` or of the registration; the protocol then gets no callback.
    pub fn start(
        reactor: &Reactor,
        master: OwnedFd,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Rc<PtyTransport>> {
        crate::sys::unix::fd::set_nonblocking(master.as_fd())?;
        let t = Rc::new_cyclic(|me| PtyTransport {
            master: RefCell::new(None),
            protocol: ProtocolSlot::new(protocol),
            me: me.clone(),
        });
        let m = PtyMaster::register(reactor, master, t.clone())?;
        *t.master.borrow_mut() = Some(m.clone());
        log::debug!("PTY transport on {}", m.describe());
        let as_transport: Rc<dyn Transport> = t.clone();
        if let Err(panicked) = t
            .protocol
            .call("connection_made", |p| p.connection_made(as_transport))
        {
            // A panic in user code closes only this connection; connection_lost still comes
            // (CONTRACT C5).
            m.file_descriptor().abort_with(panicked.reason());
            return Ok(t);
        }
        if !m.file_descriptor().disconnecting() {
            m.file_descriptor().start_reading();
        }
        Ok(t)
    }

    fn master(&self) -> Option<Rc<PtyMaster>> {
        self.master.borrow().clone()
    }

    /// Bytes written but not yet accepted by the kernel.
    pub fn unsent(&self) -> usize {
        self.master().map_or(0, |m| m.file_descriptor().unsent())
    }

    /// Set the write buffer size over which a registered streaming producer is paused
    /// (default 64 KiB, CONTRACT D4).
    pub fn set_buffer_size(&self, bytes: usize) {
        if let Some(m) = self.master() {
            m.file_descriptor().set_buffer_size(bytes);
        }
    }

    /// True once the master is closed and `connection_lost` was delivered.
    pub fn is_closed(&self) -> bool {
        self.master().is_none_or(|m| m.is_lost())
    }

    /// This transport as the `Rc<dyn Transport>` protocols hold.
    pub fn as_transport(&self) -> Option<Rc<dyn Transport>> {
        self.me.upgrade().map(|t| t as Rc<dyn Transport>)
    }
}

impl MasterOwner for PtyTransport {
    fn data_received(&self, data: &[u8]) {
        if let Err(panicked) = self
            .protocol
            .call("data_received", |p| p.data_received(data))
        {
            // A panic closes this connection only (CONTRACT C5).
            if let Some(m) = self.master() {
                m.file_descriptor().abort_with(panicked.reason());
            }
        }
    }

    /// No child of ours waits on the terminal: close at once.
    fn end_of_output(&self) {
        if let Some(m) = self.master() {
            m.close();
        }
    }

    fn master_lost(&self, reason: Reason) {
        self.protocol.lose(reason);
    }
}

impl Consumer for PtyTransport {
    fn write(&self, data: &[u8]) {
        if let Some(m) = self.master() {
            m.file_descriptor().write(data);
        }
    }

    fn write_owned(&self, data: Vec<u8>) {
        if let Some(m) = self.master() {
            m.file_descriptor().write_vec(data);
        }
    }

    fn write_shared(&self, data: SharedBytes) {
        if let Some(m) = self.master() {
            m.file_descriptor().write_shared(data);
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        if let Some(m) = self.master() {
            m.file_descriptor().write_sequence(data);
        }
    }

    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        match self.master() {
            Some(m) => m.file_descriptor().register_producer(producer),
            None => {
                catch_panic("stop_producing", || producer.stop_producing());
                Ok(())
            }
        }
    }

    fn unregister_producer(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().unregister_producer();
        }
    }
}

impl PushProducer for PtyTransport {
    fn pause_producing(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().pause_producing();
        }
    }

    fn resume_producing(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().resume_producing();
        }
    }

    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl Transport for PtyTransport {
    fn lose_connection(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().lose_connection();
        }
    }

    fn abort_connection(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().abort_connection();
        }
    }

    /// A terminal cannot half-close: this is [`lose_connection`](Self::lose_connection).
    fn lose_write_connection(&self) {
        self.lose_connection();
    }

    fn host(&self) -> Address {
        Address::Process
    }

    fn peer(&self) -> Address {
        Address::Process
    }

    /// What the master's writer has not handed to the terminal yet (0 once closed).
    fn unsent_bytes(&self) -> usize {
        self.unsent()
    }
}
