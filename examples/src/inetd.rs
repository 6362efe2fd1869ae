//! inetd's per-connection proxy: a TCP connection on one side, a child process on the
//! other, with flow control both ways. Generic over [`ReactorProcess`], so the real
//! reactor runs it and the test kit's `MemoryReactor` tests it.

use std::fmt;
use std::rc::Rc;

use torsion::prelude::*;

/// The child's side of one connection: its stdout goes to the socket; its end closes the
/// connection.
pub struct ChildSide(pub Rc<dyn Transport>);

impl ProcessProtocol for ChildSide {
    fn out_received(&mut self, data: &[u8]) {
        self.0.write(data);
    }
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.lose_connection();
    }
}

/// A producer that only pauses and resumes `T`: when its consumer goes away it stops the
/// flow in that direction without closing the other one.
pub struct Valve<T: PushProducer + ?Sized>(pub Rc<T>);

impl<T: PushProducer + ?Sized> PushProducer for Valve<T> {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }
    fn resume_producing(&self) {
        self.0.resume_producing();
    }
    fn stop_producing(&self) {
        self.0.pause_producing();
    }
}

/// The socket's side of one connection: its bytes go to the child's stdin.
pub struct Connection<R: ReactorProcess> {
    reactor: Rc<R>,
    builder: Rc<ProcessBuilder>,
    child: Option<Rc<dyn ProcessTransport>>,
}

impl<R: ReactorProcess> Connection<R> {
    /// A connection that will spawn `builder` on `reactor` once it is made.
    pub fn new(reactor: Rc<R>, builder: Rc<ProcessBuilder>) -> Self {
        Connection {
            reactor,
            builder,
            child: None,
        }
    }
}

impl<R: ReactorProcess> Protocol for Connection<R> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let side = Box::new(ChildSide(transport.clone()));
        match self.reactor.spawn_process(&self.builder, side) {
            Ok(child) => {
                // A slow client pauses the child; a slow child pauses the socket.
                let _ = transport.register_producer(Producer::Push(Rc::new(Valve(child.clone()))));
                let _ = child.register_producer(Producer::Push(Rc::new(Valve(transport))));
                self.child = Some(child);
            }
            Err(e) => {
                log::error!("inetd: {e}");
                transport.write(b"inetd: cannot start the service\n");
                transport.lose_connection();
            }
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(c) = &self.child {
            c.write(data);
        }
    }

    fn connection_lost(&mut self, _reason: Reason) {
        if let Some(c) = self.child.take() {
            // The client is gone: no more input, and nobody to read the output.
            c.unregister_producer();
            c.lose_connection();
        }
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl<R: ReactorProcess> HalfCloseableProtocol for Connection<R> {
    fn read_connection_lost(&mut self) {
        if let Some(c) = &self.child {
            c.unregister_producer();
            let _ = c.close_stdin();
        }
    }
}

/// Builds a [`Connection`] per accepted socket.
pub struct Service<R: ReactorProcess> {
    /// Where children are spawned.
    pub reactor: Rc<R>,
    /// What each connection runs.
    pub builder: Rc<ProcessBuilder>,
}

impl<R: ReactorProcess + 'static> Factory for Service<R> {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(Connection::new(
            self.reactor.clone(),
            self.builder.clone(),
        )))
    }
}

impl fmt::Debug for ChildSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChildSide")
    }
}

impl<T: PushProducer + ?Sized> fmt::Debug for Valve<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Valve")
    }
}

impl<R: ReactorProcess> fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("child", &self.child.as_ref().and_then(|c| c.pid()))
            .finish_non_exhaustive()
    }
}

impl<R: ReactorProcess> fmt::Debug for Service<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}
