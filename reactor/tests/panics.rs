//! A panic in any user callback is caught by the funnel, closes only that connection, and
//! skips no cleanup (ARCHITECTURE, errors; CONTRACT C2, D7): for each callback, on TCP and Unix
//! sockets, the loop goes on, the connection's fds are closed (counted in `/proc/self/fd`),
//! `selectable_count()` is back to its baseline and the closing callbacks still come.
//!
//! The tests count the process's fds, so they take a lock and run one at a time.

mod util;

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use torsion_reactor::{FileDescriptor, Reactor, TcpTransport};
use torsion_transport::{
    Address, Consumer, Factory, ListeningPort, Producer, Protocol, PullProducer, PushProducer,
    ReactorTcp, Reason, Transport,
};
use util::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// A reactor, and the fd count and selectable count to come back to.
struct Fixture {
    r: Reactor,
    fds: usize,
    _serial: MutexGuard<'static, ()>,
}

fn fixture() -> Fixture {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let r = Reactor::new().unwrap();
    Fixture {
        fds: open_fds(),
        r,
        _serial: serial,
    }
}

impl Fixture {
    /// The loop goes on (a timer scheduled now runs), every selectable is gone and every fd
    /// the test opened is closed.
    #[track_caller]
    fn assert_clean(&self) {
        let ran = Rc::new(Cell::new(false));
        let r2 = ran.clone();
        self.r.call_later(Duration::ZERO, move || r2.set(true));
        self.r.run_until(|| ran.get(), DEADLINE).unwrap();
        self.r
            .run_until(|| self.r.selectable_count() == 0, DEADLINE)
            .unwrap();
        assert_eq!(open_fds(), self.fds, "every fd of the connection is closed");
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tcp,
    #[cfg(unix)]
    Unix,
}

/// Both ends of a connection, each driving a protocol through the reactor.
enum Pair {
    Tcp(Rc<TcpTransport>, Rc<TcpTransport>),
    #[cfg(unix)]
    Unix(
        Rc<torsion_reactor::unix::UnixTransport>,
        Rc<torsion_reactor::unix::UnixTransport>,
    ),
}

impl Pair {
    fn new(r: &Reactor, kind: Kind, client: Box<dyn Protocol>, server: Box<dyn Protocol>) -> Pair {
        match kind {
            Kind::Tcp => {
                let (c, s) = tcp_sockets();
                let (c, s) = start_pair(r, c, s, client, server);
                Pair::Tcp(c, s)
            }
            #[cfg(unix)]
            Kind::Unix => {
                let (c, s) = unix_sockets();
                let (c, s) = start_pair(r, c, s, client, server);
                Pair::Unix(c, s)
            }
        }
    }

    fn client(&self) -> Rc<dyn Transport> {
        match self {
            Pair::Tcp(c, _) => c.clone(),
            #[cfg(unix)]
            Pair::Unix(c, _) => c.clone(),
        }
    }

    fn server(&self) -> Rc<dyn Transport> {
        match self {
            Pair::Tcp(_, s) => s.clone(),
            #[cfg(unix)]
            Pair::Unix(_, s) => s.clone(),
        }
    }

    fn server_fd(&self) -> &FileDescriptor {
        match self {
            Pair::Tcp(_, s) => s.file_descriptor(),
            #[cfg(unix)]
            Pair::Unix(_, s) => s.file_descriptor(),
        }
    }
}

/// Wait until both ends got `connection_lost`; return the server's one reason.
#[track_caller]
fn both_lost(f: &Fixture, client: &Shared, server: &Shared) -> Reason {
    f.r.run_until(
        || client.borrow().lost.len() == 1 && server.borrow().lost.len() == 1,
        DEADLINE,
    )
    .unwrap();
    for _ in 0..3 {
        f.r.iterate(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(
        client.borrow().lost.len(),
        1,
        "client: connection_lost once"
    );
    assert_eq!(
        server.borrow().lost.len(),
        1,
        "server: connection_lost once"
    );
    server.borrow().lost[0].clone()
}

#[track_caller]
fn assert_names(reason: &Reason, what: &str) {
    let text = reason.to_string();
    assert!(
        matches!(reason, Reason::ConnectionLost(_)) && text.contains(&format!("{what} panicked")),
        "expected a ConnectionLost naming the {what} panic, got {text}"
    );
}

/// A producer (push or pull) whose calls are scripted; counts them.
#[derive(Default)]
struct Scripted {
    pauses: Cell<usize>,
    resumes: Cell<usize>,
    stops: Cell<usize>,
    on_pause: Option<Box<dyn Fn(usize)>>,
    on_resume: Option<Box<dyn Fn(usize)>>,
    on_stop: Option<Box<dyn Fn()>>,
}

impl Scripted {
    fn pause(&self) {
        self.pauses.set(self.pauses.get() + 1);
        if let Some(f) = &self.on_pause {
            f(self.pauses.get());
        }
    }
    fn resume(&self) {
        self.resumes.set(self.resumes.get() + 1);
        if let Some(f) = &self.on_resume {
            f(self.resumes.get());
        }
    }
    fn stop(&self) {
        self.stops.set(self.stops.get() + 1);
        if let Some(f) = &self.on_stop {
            f();
        }
    }
}

impl PushProducer for Scripted {
    fn pause_producing(&self) {
        self.pause();
    }
    fn resume_producing(&self) {
        self.resume();
    }
    fn stop_producing(&self) {
        self.stop();
    }
}

impl PullProducer for Scripted {
    fn resume_producing(&self) {
        self.resume();
    }
    fn stop_producing(&self) {
        self.stop();
    }
}

/// A protocol callback panics; the connection closes with a reason naming it.
fn protocol_callback_panics(kind: Kind, what: &str) {
    let f = fixture();
    let (client, server) = (shared(), shared());
    let mut s = Recorder::new(&server);
    let c = Recorder::new(&client);
    match what {
        "connection_made" => s = s.on_made(|_, _| panic!("deliberate")),
        "data_received" => s = s.on_data(|_, _, _| panic!("deliberate")),
        "read_connection_lost" => s = s.on_read_lost(|_, _| panic!("deliberate")),
        "write_connection_lost" => {
            s = s
                .on_made(|t, _| t.lose_write_connection())
                .on_write_lost(|_, _| panic!("deliberate"));
        }
        other => unreachable!("{other}"),
    }
    let pair = Pair::new(&f.r, kind, c.boxed(), s.boxed());
    match what {
        "data_received" => pair.client().write(b"x"),
        "read_connection_lost" => pair.client().lose_write_connection(),
        _ => {}
    }
    let reason = both_lost(&f, &client, &server);
    assert_names(&reason, what);
    drop(pair);
    f.assert_clean();
}

/// A panic in the protocol's `connection_lost` skips neither closing the socket nor the
/// peer's close.
fn connection_lost_panics(kind: Kind) {
    let f = fixture();
    let (client, server) = (shared(), shared());
    let pair = Pair::new(
        &f.r,
        kind,
        Recorder::new(&client).boxed(),
        Recorder::new(&server)
            .on_lost(|_, _| panic!("deliberate"))
            .boxed(),
    );
    pair.client().lose_connection();
    let reason = both_lost(&f, &client, &server);
    assert!(reason.is_clean(), "{reason}");
    drop(pair);
    f.assert_clean();
}

/// Which producer callback panics, and how it is reached.
#[derive(Clone, Copy, Debug)]
enum ProducerPanic {
    /// A push producer's `pause_producing`, inside the write that fills the buffer.
    Pause,
    /// A push producer's `resume_producing`, after the loop drained the buffer.
    PushResumeOnDrain,
    /// A pull producer's `resume_producing`, inside `register_producer`.
    PullResumeAtRegistration,
    /// A pull producer's `resume_producing`, after the loop drained the buffer.
    PullResumeOnDrain,
}

fn producer_panics(kind: Kind, which: ProducerPanic) {
    let f = fixture();
    let (client, server) = (shared(), shared());
    let pair = Pair::new(
        &f.r,
        kind,
        Recorder::new(&client).boxed(),
        Recorder::new(&server).boxed(),
    );
    let t = pair.server();
    pair.server_fd().set_buffer_size(16);
    let weak = Rc::downgrade(&t);
    let write_some = move || {
        if let Some(t) = weak.upgrade() {
            t.write_sequence(&[&[b'p'; 1024]]);
        }
    };
    let mut p = Scripted::default();
    match which {
        ProducerPanic::Pause => p.on_pause = Some(Box::new(|_| panic!("deliberate"))),
        ProducerPanic::PushResumeOnDrain | ProducerPanic::PullResumeAtRegistration => {
            p.on_resume = Some(Box::new(|_| panic!("deliberate")));
        }
        ProducerPanic::PullResumeOnDrain => {
            p.on_resume = Some(Box::new(move |n| {
                if n == 1 {
                    write_some();
                } else {
                    panic!("deliberate");
                }
            }));
        }
    }
    let p = Rc::new(p);
    let producer = match which {
        ProducerPanic::Pause | ProducerPanic::PushResumeOnDrain => Producer::Push(p.clone()),
        _ => Producer::Pull(p.clone()),
    };
    t.register_producer(producer).unwrap();
    if matches!(
        which,
        ProducerPanic::Pause | ProducerPanic::PushResumeOnDrain
    ) {
        // Buffered (write_sequence never writes through), over the buffer size: paused.
        t.write_sequence(&[&[b'w'; 1024]]);
    }
    let reason = both_lost(&f, &client, &server);
    let what = match which {
        ProducerPanic::Pause => "pause_producing",
        _ => "resume_producing",
    };
    assert_names(&reason, what);
    assert_eq!(
        p.stops.get(),
        1,
        "the panicking producer was still registered: connection_lost stopped it"
    );
    drop((t, pair));
    f.assert_clean();
}

/// A panic in `stop_producing` (from `connection_lost`) is logged; the protocol's
/// `connection_lost` still comes and the socket is closed.
fn stop_producing_panics(kind: Kind) {
    let f = fixture();
    let (client, server) = (shared(), shared());
    let pair = Pair::new(
        &f.r,
        kind,
        Recorder::new(&client).boxed(),
        Recorder::new(&server).boxed(),
    );
    let p = Scripted {
        on_stop: Some(Box::new(|| panic!("deliberate"))),
        ..Scripted::default()
    };
    let p = Rc::new(p);
    pair.server()
        .register_producer(Producer::Push(p.clone()))
        .unwrap();
    pair.client().lose_connection();
    let reason = both_lost(&f, &client, &server);
    assert!(reason.is_clean(), "{reason}");
    assert_eq!(p.stops.get(), 1);
    drop(pair);
    f.assert_clean();
}

/// A producer may use the transport's socket from `resume_producing` called by the loop's
/// writer (the issue's reproduced bug: the socket was borrowed across the call).
#[test]
fn issue_10_producer_may_use_the_socket_from_resume_producing() {
    let f = fixture();
    let (client, server) = (shared(), shared());
    let (c, s) = tcp_sockets();
    let (_ct, st) = start_pair(
        &f.r,
        c,
        s,
        Recorder::new(&client).boxed(),
        Recorder::new(&server).boxed(),
    );
    let nodelay = Rc::new(RefCell::new(None));
    let (weak, nd) = (Rc::downgrade(&st), nodelay.clone());
    let p = Scripted {
        on_resume: Some(Box::new(move |n| {
            let Some(t) = weak.upgrade() else { return };
            if n == 1 {
                t.write(b"first");
                return;
            }
            *nd.borrow_mut() = Some(t.set_nodelay(true).and_then(|()| t.nodelay()));
            t.write(b" second");
            t.unregister_producer();
            t.lose_connection();
        })),
        ..Scripted::default()
    };
    st.register_producer(Producer::Pull(Rc::new(p))).unwrap();
    let reason = both_lost(&f, &client, &server);
    assert!(reason.is_clean(), "{reason}");
    assert_eq!(client.borrow().data, b"first second");
    assert!(
        matches!(*nodelay.borrow(), Some(Ok(true))),
        "{:?}",
        nodelay.borrow()
    );
    drop((st, _ct));
    f.assert_clean();
}

/// Hands out `make()`'s protocols; the first `panics` calls panic instead.
struct PanickyFactory {
    panics: Cell<usize>,
    make: Box<dyn Fn() -> Box<dyn Protocol>>,
}

impl Factory for PanickyFactory {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        if self.panics.get() > 0 {
            self.panics.set(self.panics.get() - 1);
            panic!("deliberate");
        }
        Some((self.make)())
    }
}

/// A connection the test makes with plain sockets, to a listening port.
enum Peer {
    Tcp(std::net::TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Peer {
    /// Read until EOF or an error (the port closed this connection); false on timeout.
    fn sees_close(&mut self, r: &Reactor) -> bool {
        let mut buf = [0u8; 64];
        let mut closed = false;
        let _ = r.run_until(
            || {
                let res = match self {
                    Peer::Tcp(s) => s.read(&mut buf),
                    #[cfg(unix)]
                    Peer::Unix(s) => s.read(&mut buf),
                };
                closed = !matches!(res, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
                closed
            },
            DEADLINE,
        );
        closed
    }
}

/// A factory that panics in `build_protocol` refuses that connection only: it is closed,
/// the port goes on accepting.
fn factory_panics(kind: Kind) {
    let f = fixture();
    let server = shared();
    let s2 = server.clone();
    let factory = Rc::new(PanickyFactory {
        panics: Cell::new(1),
        make: Box::new(move || Recorder::new(&s2).boxed()),
    });
    let dir = TempDir::new("panics");
    let (port, connect): (Rc<dyn ListeningPort>, Box<dyn Fn() -> Peer>) = match kind {
        Kind::Tcp => {
            let port =
                f.r.listen_tcp("127.0.0.1:0".parse().unwrap(), factory)
                    .unwrap();
            let addr = port.host().socket_addr().unwrap();
            (
                port,
                Box::new(move || {
                    let s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_nonblocking(true).unwrap();
                    Peer::Tcp(s)
                }),
            )
        }
        #[cfg(unix)]
        Kind::Unix => {
            use torsion_transport::{ReactorUnix, UnixListenOptions};
            let path = dir.join("s");
            let port =
                f.r.listen_unix(&path, factory, UnixListenOptions::default())
                    .unwrap();
            (
                port,
                Box::new(move || {
                    let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
                    s.set_nonblocking(true).unwrap();
                    Peer::Unix(s)
                }),
            )
        }
    };
    let mut refused = connect();
    assert!(refused.sees_close(&f.r), "the refused connection is closed");
    let accepted = connect();
    f.r.run_until(|| server.borrow().made == 1, DEADLINE)
        .unwrap();
    drop((refused, accepted));
    f.r.run_until(|| server.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    port.stop_listening();
    drop((port, dir));
    f.assert_clean();
}

/// The client side's factory: a panic in the protocol's `connection_lost` does not skip
/// `client_connection_lost`; a panic in `build_protocol` is reported there too; a panic
/// in `client_connection_failed` leaves the loop going.
#[test]
fn client_factory_hooks_survive_panics() {
    let f = fixture();
    let server = shared();
    let s2 = server.clone();
    let port =
        f.r.listen_tcp(
            "127.0.0.1:0".parse().unwrap(),
            Rc::new(PanickyFactory {
                panics: Cell::new(0),
                make: Box::new(move || {
                    Recorder::new(&s2)
                        .on_made(|t, _| t.lose_connection())
                        .boxed()
                }),
            }),
        )
        .unwrap();
    let addr = port.host().socket_addr().unwrap();

    // connection_lost panics: client_connection_lost still comes.
    let client = shared();
    let c2 = client.clone();
    let factory = Client::new(move || {
        Recorder::new(&c2)
            .on_lost(|_, _| panic!("deliberate"))
            .boxed()
    });
    f.r.connect_tcp(addr, factory.clone(), Some(DEADLINE));
    f.r.run_until(|| factory.lost.borrow().len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(client.borrow().lost.len(), 1);

    // build_protocol panics: the connection is closed and reported lost, naming it.
    let factory = Client::new(|| panic!("deliberate"));
    f.r.connect_tcp(addr, factory.clone(), Some(DEADLINE));
    f.r.run_until(|| factory.lost.borrow().len() == 1, DEADLINE)
        .unwrap();
    assert_names(&factory.lost.borrow()[0], "build_protocol");
    assert_eq!(factory.failed_count(), 0);
    f.r.run_until(|| server.borrow().lost.len() == 2, DEADLINE)
        .unwrap();

    port.stop_listening();
    drop(port);

    // client_connection_failed panics: the loop goes on.
    struct Failing;
    impl Factory for Failing {
        fn build_protocol(&self, _: &Address) -> Option<Box<dyn Protocol>> {
            None
        }
    }
    impl torsion_transport::ClientFactory for Failing {
        fn client_connection_failed(&self, _: Reason) {
            panic!("deliberate");
        }
    }
    f.r.connect_tcp(addr, Rc::new(Failing), Some(DEADLINE));
    f.assert_clean();
}

macro_rules! on_each_socket {
    ($($name:ident => $body:expr;)*) => {
        mod tcp {
            use super::*;
            $(#[test] fn $name() { ($body)(Kind::Tcp) })*
        }
        #[cfg(unix)]
        mod unix {
            use super::*;
            $(#[test] fn $name() { ($body)(Kind::Unix) })*
        }
    };
}

on_each_socket! {
    panic_in_connection_made_closes_that_connection =>
        |k| protocol_callback_panics(k, "connection_made");
    panic_in_data_received_closes_that_connection =>
        |k| protocol_callback_panics(k, "data_received");
    panic_in_read_connection_lost_closes_that_connection =>
        |k| protocol_callback_panics(k, "read_connection_lost");
    panic_in_write_connection_lost_closes_that_connection =>
        |k| protocol_callback_panics(k, "write_connection_lost");
    panic_in_connection_lost_still_closes_the_socket => connection_lost_panics;
    panic_in_pause_producing_closes_that_connection =>
        |k| producer_panics(k, ProducerPanic::Pause);
    panic_in_push_resume_producing_on_drain_closes_that_connection =>
        |k| producer_panics(k, ProducerPanic::PushResumeOnDrain);
    panic_in_pull_resume_producing_at_registration_closes_that_connection =>
        |k| producer_panics(k, ProducerPanic::PullResumeAtRegistration);
    panic_in_pull_resume_producing_on_drain_closes_that_connection =>
        |k| producer_panics(k, ProducerPanic::PullResumeOnDrain);
    panic_in_stop_producing_is_logged_and_connection_lost_still_comes => stop_producing_panics;
    panic_in_build_protocol_refuses_only_that_connection => factory_panics;
}
