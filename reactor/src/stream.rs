//! `StreamTransport`: a connected byte stream (TCP or Unix) driving a [`Protocol`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::rc::{Rc, Weak};

use mio::event::Source;
use mio::{Interest, Registry, Token};
use torsion_transport::{
    Address, Consumer, HalfCloseableProtocol, Producer, ProducerError, Protocol, PushProducer,
    Reason, SharedBytes, Transport,
};

use crate::callback::{ProtocolSlot, catch_panic};
use crate::fdesc::{FileDescriptor, WriteOutcome, WriteSink};
use crate::reactor::{READ_BUDGET, Reactor};
use crate::selectable::{IoStatus, Selectable};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// A connected stream socket a [`StreamTransport`] can drive.
pub trait StreamSocket: Read + Write + Source {
    /// `shutdown(SHUT_WR)`.
    ///
    /// # Errors
    ///
    /// The OS error.
    fn shutdown_write(&self) -> io::Result<()>;
    /// The local address.
    fn host_address(&self) -> Address;
    /// The remote address.
    fn peer_address(&self) -> Address;

    /// This socket as a Unix stream socket, for descriptor passing and credentials
    /// (CONTRACT Q8, Q9); `None` (the default) for other kinds.
    #[cfg(unix)]
    fn as_unix_stream(&self) -> Option<&mio::net::UnixStream> {
        None
    }
}

impl StreamSocket for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn host_address(&self) -> Address {
        self.local_addr()
            .map(Address::from)
            .unwrap_or(Address::Memory("unknown".into()))
    }
    fn peer_address(&self) -> Address {
        self.peer_addr()
            .map(Address::from)
            .unwrap_or(Address::Memory("unknown".into()))
    }
}

#[cfg(unix)]
impl StreamSocket for mio::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn as_unix_stream(&self) -> Option<&mio::net::UnixStream> {
        Some(self)
    }
    fn host_address(&self) -> Address {
        Address::Unix(
            self.local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Into::into)),
        )
    }
    fn peer_address(&self) -> Address {
        Address::Unix(
            self.peer_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Into::into)),
        )
    }
}

struct Sink<'a, S> {
    sock: &'a mut S,
    #[cfg(unix)]
    fds: &'a crate::passfd::FdOut,
}

impl<S: StreamSocket> WriteSink for Sink<'_, S> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(unix)]
        if self.fds.pending() {
            if let Some(unix) = self.sock.as_unix_stream() {
                return self.fds.write(unix, bufs);
            }
        }
        self.sock.write_vectored(bufs)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.sock.shutdown_write()
    }
}

/// Called with the reason after the protocol's `connection_lost` (for
/// `ClientFactory::client_connection_lost`).
pub type LostHook = Box<dyn FnOnce(Reason)>;

/// A connected stream socket driving a protocol: Twisted's `tcp.Connection`.
///
/// Given to the protocol as `Rc<dyn Transport>`. The protocol is dropped after its
/// `connection_lost` returns, which breaks the transport ↔ protocol cycle.
pub struct StreamTransport<S: StreamSocket> {
    fd: FileDescriptor,
    sock: RefCell<Option<S>>,
    protocol: ProtocolSlot,
    host: Address,
    peer: Address,
    read_lost: Cell<bool>,
    on_lost: RefCell<Option<LostHook>>,
    /// Descriptors waiting to go out with their bytes (Unix stream sockets).
    #[cfg(unix)]
    fds_out: crate::passfd::FdOut,
    /// The protocol takes descriptors: read with `recvmsg`.
    #[cfg(unix)]
    fd_receiver: Cell<bool>,
    me: Weak<Self>,
}

impl<S: StreamSocket> fmt::Debug for StreamTransport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTransport")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("fd", &self.fd)
            .finish()
    }
}

impl<S: StreamSocket + 'static> StreamTransport<S> {
    /// Register `sock` with `reactor`, call `protocol.connection_made`, and start reading.
    /// `on_lost` runs after the protocol's `connection_lost`.
    ///
    /// # Errors
    ///
    /// The OS error from registration; the protocol is not started and gets no callback.
    pub fn start(
        reactor: &Reactor,
        sock: S,
        protocol: Box<dyn Protocol>,
        on_lost: Option<LostHook>,
    ) -> io::Result<Rc<Self>> {
        let host = sock.host_address();
        let peer = sock.peer_address();
        let t = Rc::new_cyclic(|me| StreamTransport {
            fd: FileDescriptor::new(reactor),
            sock: RefCell::new(Some(sock)),
            protocol: ProtocolSlot::new(protocol),
            host,
            peer,
            read_lost: Cell::new(false),
            on_lost: RefCell::new(on_lost),
            #[cfg(unix)]
            fds_out: crate::passfd::FdOut::default(),
            #[cfg(unix)]
            fd_receiver: Cell::new(false),
            me: me.clone(),
        });
        let token = reactor.register(t.clone())?;
        t.fd.set_token(token);
        log::debug!("connection made: {} -> {}", t.host, t.peer);
        let as_transport: Rc<dyn Transport> = t.clone();
        let made = t
            .protocol
            .call("connection_made", |p| p.connection_made(as_transport));
        if let Err(panicked) = made {
            // A panic in user code closes only this connection, from the loop (ARCHITECTURE,
            // errors); connection_lost still comes.
            t.fd.abort_with(panicked.reason());
            return Ok(t);
        }
        #[cfg(unix)]
        t.check_fd_receiver();
        if !t.fd.disconnecting() && !t.fd.disconnected() {
            t.fd.start_reading();
        }
        Ok(t)
    }

    /// The shared write side: buffer size, low-water mark, state.
    pub fn file_descriptor(&self) -> &FileDescriptor {
        &self.fd
    }

    /// Run `f` on the socket (to set options), if it is still open. `None` once closed
    /// (and, never in practice, while the socket is borrowed for a system call).
    pub fn with_socket<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        let sock = self.sock.try_borrow().ok()?;
        sock.as_ref().map(f)
    }

    /// `data_received`, through the funnel; a panic becomes the reason to disconnect.
    fn deliver(&self, data: &[u8]) -> Result<(), Reason> {
        self.protocol
            .call("data_received", |p| p.data_received(data))
            .map(drop)
            .map_err(|e| e.reason())
    }

    /// Call `f` on the protocol as a half-closeable one, through the funnel. `Ok(false)`
    /// if it is not half-closeable (or gone); a panic is returned as the reason to
    /// disconnect.
    fn half_close_callback(
        &self,
        what: &str,
        f: impl FnOnce(&mut dyn HalfCloseableProtocol),
    ) -> Result<bool, Reason> {
        self.protocol
            .call(what, |p| match p.as_half_closeable() {
                Some(hc) => {
                    f(hc);
                    true
                }
                None => false,
            })
            .map(|called| called.unwrap_or(false))
            .map_err(|e| e.reason())
    }

    /// The protocol takes descriptors, so reads go through `recvmsg` (Unix sockets).
    fn takes_fds(&self) -> bool {
        #[cfg(unix)]
        return self.fd_receiver.get();
        #[cfg(not(unix))]
        return false;
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        if self.fd_receiver.get() {
            return self.read_with_fds(buf);
        }
        match self.sock.borrow_mut().as_mut() {
            Some(s) => s.read(buf),
            None => Ok(0),
        }
    }

    fn read_loop(&self, buf: &mut [u8]) -> Result<IoStatus, Reason> {
        for _ in 0..READ_BUDGET {
            if !self.fd.is_reading() {
                return Ok(IoStatus::Blocked);
            }
            match self.read_once(buf) {
                Ok(0) => return Err(Reason::ConnectionDone),
                Ok(n) => {
                    self.deliver(&buf[..n])?;
                    // A read shorter than the buffer emptied the socket's queue; with
                    // edge-triggered readiness the next byte brings a new event, so skip the
                    // read that would only say `WouldBlock` (as tokio and libuv do) — unless
                    // the peer's close was seen, whose edge is spent: then read on to EOF.
                    // Not when descriptors may come: `recvmsg` stops short at each message
                    // that carries some, with more bytes queued behind it (CONTRACT Q8). Not
                    // on Windows either, where mio emulates readiness over IOCP and a short
                    // read brings no new event (tokio makes the same exception).
                    if n < buf.len()
                        && cfg!(not(windows))
                        && !self.takes_fds()
                        && !self.fd.read_closed_seen()
                    {
                        return Ok(IoStatus::Blocked);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Reason::lost(e)),
            }
        }
        Ok(IoStatus::More)
    }
}

impl<S: StreamSocket + 'static> Selectable for StreamTransport<S> {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.register(s, token, Interest::READABLE | Interest::WRITABLE),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.deregister(s),
            None => Ok(()),
        }
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        READ_BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.read_loop(&mut buf),
            Err(_) => self.read_loop(&mut vec![0; READ_CHUNK]),
        })
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        // The socket is borrowed for the system calls only; the producer (user code) is
        // resumed by `finish_write` after the borrow is released.
        let step = {
            let mut sock = self.sock.borrow_mut();
            let Some(s) = sock.as_mut() else {
                return Ok(IoStatus::Blocked);
            };
            self.fd.do_write(&mut Sink {
                sock: s,
                #[cfg(unix)]
                fds: &self.fds_out,
            })
        };
        match self.fd.finish_write(step)? {
            WriteOutcome::Blocked | WriteOutcome::Drained => Ok(IoStatus::Blocked),
            WriteOutcome::More => Ok(IoStatus::More),
            WriteOutcome::WriteShutdown => {
                if self.read_lost.get() {
                    return Err(Reason::ConnectionDone);
                }
                self.half_close_callback("write_connection_lost", |hc| {
                    hc.write_connection_lost();
                })?;
                Ok(IoStatus::Blocked)
            }
        }
    }

    fn read_connection_lost(&self) -> bool {
        if self.fd.write_shut() || self.fd.disconnecting() {
            return false;
        }
        let read_lost = &self.read_lost;
        match self.half_close_callback("read_connection_lost", |hc| {
            read_lost.set(true);
            hc.read_connection_lost();
        }) {
            Ok(handled) => handled,
            Err(reason) => {
                // Handled, in that the loop must not disconnect with a clean reason now:
                // it disconnects with the one naming the panic, at the end of this pass.
                self.fd.abort_with(reason);
                true
            }
        }
    }

    /// Cleanup first, then the user's callbacks, each through the funnel: a panic in the
    /// protocol's `connection_lost` skips neither the factory's `client_connection_lost`
    /// nor dropping the protocol, and the socket is closed before either runs.
    fn connection_lost(&self, reason: Reason) {
        if !self.fd.connection_lost() {
            return;
        }
        match self.sock.try_borrow_mut() {
            Ok(mut sock) => drop(sock.take()),
            Err(_) => log::warn!("{}: socket busy at connection_lost", self.describe()),
        }
        #[cfg(unix)]
        self.fds_out.clear();
        self.protocol.lose(reason.clone());
        let hook = self.on_lost.borrow_mut().take();
        if let Some(hook) = hook {
            catch_panic("client_connection_lost", move || hook(reason));
        }
    }

    fn describe(&self) -> String {
        format!("stream {} -> {}", self.host, self.peer)
    }
}

impl<S: StreamSocket + 'static> Consumer for StreamTransport<S> {
    fn write(&self, data: &[u8]) {
        // Straight to the socket when nothing is buffered and it was last seen writable;
        // the socket is borrowed only for each `write(2)`, never across a producer call.
        self.fd.write_through(data, |chunk| {
            let mut sock = self.sock.try_borrow_mut().ok()?;
            Some(sock.as_mut()?.write(chunk))
        });
    }
    fn write_owned(&self, data: Vec<u8>) {
        self.fd.write_through_vec(data, |chunk| {
            let mut sock = self.sock.try_borrow_mut().ok()?;
            Some(sock.as_mut()?.write(chunk))
        });
    }
    fn write_shared(&self, data: SharedBytes) {
        self.fd.write_through_shared(data, |chunk| {
            let mut sock = self.sock.try_borrow_mut().ok()?;
            Some(sock.as_mut()?.write(chunk))
        });
    }
    fn write_sequence(&self, data: &[&[u8]]) {
        self.fd.write_sequence(data);
    }
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        self.fd.register_producer(producer)
    }
    fn unregister_producer(&self) {
        self.fd.unregister_producer();
    }
}

impl<S: StreamSocket + 'static> PushProducer for StreamTransport<S> {
    fn pause_producing(&self) {
        self.fd.pause_producing();
    }
    fn resume_producing(&self) {
        if !self.read_lost.get() {
            self.fd.resume_producing();
        }
    }
    fn stop_producing(&self) {
        self.fd.stop_producing();
    }
}

impl<S: StreamSocket + 'static> Transport for StreamTransport<S> {
    fn lose_connection(&self) {
        self.fd.lose_connection();
    }
    fn abort_connection(&self) {
        self.fd.abort_connection();
    }
    fn lose_write_connection(&self) {
        self.fd.lose_write_connection();
    }
    fn host(&self) -> Address {
        self.host.clone()
    }
    fn peer(&self) -> Address {
        self.peer.clone()
    }
    /// The `FileDescriptor`'s unsent bytes: what the kernel has not taken yet.
    fn unsent_bytes(&self) -> usize {
        self.fd.unsent()
    }
    #[cfg(unix)]
    fn as_unix_socket(&self) -> Option<&dyn torsion_transport::UnixSocketTransport> {
        let unix = self.with_socket(|s| s.as_unix_stream().is_some());
        if unix == Some(true) { Some(self) } else { None }
    }
}

#[cfg(unix)]
impl<S: StreamSocket + 'static> StreamTransport<S> {
    /// After `connection_made`: does the protocol take descriptors (and is this a Unix
    /// socket)? Then reads use `recvmsg`.
    fn check_fd_receiver(&self) {
        let unix = self.with_socket(|s| s.as_unix_stream().is_some()) == Some(true);
        if unix {
            let wants = self
                .protocol
                .call("as_fd_receiver", |p| p.as_fd_receiver().is_some());
            self.fd_receiver.set(matches!(wants, Ok(Some(true))));
        }
    }

    /// One `recvmsg`; descriptors that came are delivered before the bytes (CONTRACT Q8).
    fn read_with_fds(&self, buf: &mut [u8]) -> io::Result<usize> {
        let got = {
            let sock = self.sock.borrow();
            match sock.as_ref().and_then(|s| s.as_unix_stream()) {
                Some(u) => crate::passfd::recv(u, buf)?,
                None => return Ok(0),
            }
        };
        if got.truncated {
            let _ = self.protocol.call("fds_truncated", |p| {
                if let Some(r) = p.as_fd_receiver() {
                    r.fds_truncated();
                }
            });
        }
        if !got.fds.is_empty() {
            let fds = got.fds;
            let _ = self.protocol.call("fds_received", move |p| {
                if let Some(r) = p.as_fd_receiver() {
                    r.fds_received(fds);
                }
            });
        }
        Ok(got.len)
    }
}

#[cfg(unix)]
impl<S: StreamSocket + 'static> torsion_transport::UnixSocketTransport for StreamTransport<S> {
    fn send_fds(&self, data: &[u8], fds: Vec<std::os::fd::OwnedFd>) -> io::Result<()> {
        if data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file descriptors must be sent with at least one byte of data",
            ));
        }
        if fds.len() > torsion_transport::MAX_FDS_PER_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} file descriptors in one message; at most {} can be sent at once",
                    fds.len(),
                    torsion_transport::MAX_FDS_PER_MESSAGE
                ),
            ));
        }
        if self.fd.disconnecting() || self.fd.disconnected() || self.fd.write_shut() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is closing or closed: descriptors not sent",
            ));
        }
        if self.with_socket(|s| s.as_unix_stream().is_some()) != Some(true) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "descriptors can only be sent over a Unix socket",
            ));
        }
        let before = self.fd.unsent();
        self.fds_out.push(before, fds);
        self.fd.write(data);
        if self.fd.unsent() == before {
            // The write side would take nothing (a half-close is pending): close the
            // descriptors rather than leave them queued behind bytes that never come.
            self.fds_out.drop_last();
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection's write side is closing: descriptors not sent",
            ));
        }
        Ok(())
    }

    fn peer_credentials(&self) -> io::Result<torsion_transport::Credentials> {
        self.with_socket(|s| match s.as_unix_stream() {
            Some(u) => crate::passfd::peer_credentials(u),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "peer credentials exist only for Unix sockets",
            )),
        })
        .unwrap_or_else(|| Err(io::Error::from(io::ErrorKind::NotConnected)))
    }
}

impl<S: StreamSocket + 'static> StreamTransport<S> {
    /// This transport as the `Rc<dyn Transport>` protocols hold.
    pub fn as_transport(&self) -> Option<Rc<dyn Transport>> {
        self.me.upgrade().map(|t| t as Rc<dyn Transport>)
    }
}
