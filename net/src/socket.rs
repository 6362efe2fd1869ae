//! What TCP and Unix sockets share: connecting as a future, an accept queue, and the
//! stream type's methods (one macro, so `TcpStream` and `UnixStream` cannot drift apart).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use torsion_transport::{Address, ClientFactory, Connector, Factory, Protocol, Reason};

use crate::error::io_from_reason;
use crate::stream::{Io, Shared, StreamProtocol};

#[derive(Default)]
struct ConnectState {
    result: RefCell<Option<io::Result<Rc<Shared>>>>,
    waker: RefCell<Option<Waker>>,
}

impl ConnectState {
    fn complete(&self, r: io::Result<Rc<Shared>>) {
        *self.result.borrow_mut() = Some(r);
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct ConnectFactory(Rc<ConnectState>);

impl Factory for ConnectFactory {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        let state = self.0.clone();
        Some(Box::new(StreamProtocol::new(Box::new(move |shared| {
            state.complete(Ok(shared));
        }))))
    }
}

impl ClientFactory for ConnectFactory {
    fn client_connection_failed(&self, reason: Reason) {
        self.0.complete(Err(io_from_reason(&reason)));
    }
}

/// Cancels the attempt, or closes a connection nobody took, when the future is dropped.
struct ConnectGuard {
    state: Rc<ConnectState>,
    connector: Rc<dyn Connector>,
}

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        match self.state.result.borrow_mut().take() {
            None => self.connector.stop_connecting(),
            Some(Ok(shared)) => drop(Io::new(shared)),
            Some(Err(_)) => {}
        }
    }
}

/// Connect with `start` (the reactor's `connect_tcp`/`connect_unix`) and wait.
pub(crate) async fn connect(
    start: impl FnOnce(Rc<dyn ClientFactory>) -> Rc<dyn Connector>,
) -> io::Result<Rc<Io>> {
    let state = Rc::new(ConnectState::default());
    let connector = start(Rc::new(ConnectFactory(state.clone())));
    let guard = ConnectGuard { state, connector };
    let shared = poll_fn(|cx| match guard.state.result.borrow_mut().take() {
        Some(r) => Poll::Ready(r),
        None => {
            *guard.state.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await?;
    Ok(Io::new(shared))
}

/// Accepted connections waiting for `accept()` before the port stops accepting (the kernel's
/// backlog holds the next ones): a listener nobody accepts from does not grow without end.
pub const ACCEPT_QUEUE_MAX: usize = 128;

/// Connections accepted by a listening port and not yet taken by `accept()`.
#[derive(Default)]
pub(crate) struct AcceptQueue {
    queue: RefCell<VecDeque<(Rc<Io>, Address)>>,
    waker: RefCell<Option<Waker>>,
    /// The port's reactor and token, to stop and restart accepting.
    port: RefCell<Option<(torsion_reactor::WeakReactor, torsion_reactor::Token)>>,
    paused: std::cell::Cell<bool>,
}

impl AcceptQueue {
    /// Let the queue pause and resume the port `token` of `reactor`.
    pub(crate) fn set_port(
        &self,
        reactor: &torsion_reactor::Reactor,
        token: Option<torsion_reactor::Token>,
    ) {
        if let Some(token) = token {
            *self.port.borrow_mut() = Some((reactor.downgrade(), token));
        }
    }

    fn set_paused(&self, pause: bool) {
        if self.paused.replace(pause) == pause {
            return;
        }
        let port = self.port.borrow().clone();
        if let Some((weak, token)) = port {
            if let Some(reactor) = weak.upgrade() {
                if pause {
                    log::debug!(
                        "{ACCEPT_QUEUE_MAX} connections wait for accept(): pausing the port"
                    );
                    reactor.remove_reader(token);
                } else {
                    reactor.add_reader(token);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// The factory of the listening port: each connection goes into the queue.
    pub(crate) fn factory(self: &Rc<Self>) -> Rc<dyn Factory> {
        Rc::new(AcceptFactory(Rc::downgrade(self)))
    }

    pub(crate) async fn accept(&self) -> (Rc<Io>, Address) {
        poll_fn(|cx| {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(c) => {
                    if self.paused.get() && self.queue.borrow().len() < ACCEPT_QUEUE_MAX / 2 {
                        self.set_paused(false);
                    }
                    Poll::Ready(c)
                }
                None => {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

struct AcceptFactory(Weak<AcceptQueue>);

impl Factory for AcceptFactory {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let queue = self.0.clone();
        let peer = peer.clone();
        Some(Box::new(StreamProtocol::new(Box::new(move |shared| {
            let io = Io::new(shared);
            // With the listener gone, `io` is dropped here, which closes the connection.
            if let Some(q) = queue.upgrade() {
                q.queue.borrow_mut().push_back((io, peer));
                if q.queue.borrow().len() >= ACCEPT_QUEUE_MAX {
                    q.set_paused(true);
                }
                let w = q.waker.borrow_mut().take();
                if let Some(w) = w {
                    w.wake();
                }
            }
        }))))
    }
}

/// The methods of a connected stream type holding `io: Rc<Io>`.
macro_rules! stream_methods {
    ($name:ident) => {
        impl $name {
            /// Read into `buf`: the number of bytes read, `Ok(0)` at EOF (the peer shut its
            /// write side down or closed). Waits for data. While unread data piles up over
            /// [`READ_HIGH_WATER`](crate::READ_HIGH_WATER), the transport stops reading
            /// (CONTRACT P6).
            ///
            /// # Errors
            ///
            /// The connection ended with an error (reset): its kind, with
            /// [`NetError::ConnectionLost`](crate::NetError::ConnectionLost) inside.
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.read(buf).await
            }

            /// Write some of `data` (at most [`WRITE_CHUNK`](crate::WRITE_CHUNK)), waiting
            /// while the transport's buffer is over its size.
            ///
            /// # Errors
            ///
            /// `BrokenPipe` with [`NetError::WriteClosed`](crate::NetError::WriteClosed)
            /// after [`shutdown`](Self::shutdown) or once the connection is closed.
            pub async fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.io.write(data).await
            }

            /// Write all of `data`: the transport's producer machinery makes this wait
            /// while its buffer is over its size, so memory stays bounded (CONTRACT P6).
            ///
            /// # Errors
            ///
            /// As [`write`](Self::write).
            pub async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
                self.io.write_all(data).await
            }

            /// Half-close: once everything written is sent, shut the write side down (the
            /// peer reads EOF); reading goes on. Returns when the write side is shut.
            ///
            /// # Errors
            ///
            /// None today; `io::Result` for symmetry with std and tokio.
            pub async fn shutdown(&mut self) -> std::io::Result<()> {
                self.io.shutdown().await
            }

            /// Split into a read half and a write half, usable from two tasks at once.
            pub fn split(self) -> ($crate::ReadHalf, $crate::WriteHalf) {
                $crate::stream::split(self.io)
            }

            /// The stream of lines read from this stream.
            pub fn lines(self) -> $crate::Lines {
                $crate::Lines::new(self.io)
            }

            /// The remote address (`None` once the connection is closed).
            #[doc(alias = "getPeer")]
            pub fn peer(&self) -> Option<torsion_transport::Address> {
                self.io.peer()
            }

            /// The local address (`None` once the connection is closed).
            #[doc(alias = "getHost")]
            pub fn host(&self) -> Option<torsion_transport::Address> {
                self.io.host()
            }

            /// Bytes received and not read yet.
            pub fn buffered(&self) -> usize {
                self.io.shared.inbound.buffered()
            }

            /// True while the transport's write buffer is over its size: writers wait.
            pub fn is_write_paused(&self) -> bool {
                self.io.shared.outbound.is_paused()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("peer", &self.io.peer())
                    .finish()
            }
        }
    };
}

pub(crate) use stream_methods;
