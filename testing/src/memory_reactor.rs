//! [`MemoryReactor`]: a reactor that records what it is asked to do (CONTRACT O5).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use torsion_process::ReactorProcess;
use torsion_transport::{
    Address, ClientFactory, Connector, DatagramProtocol, DatagramTransport, DelayedCall, Factory,
    ListeningPort, ProcessBuilder, ProcessProtocol, ProcessTransport, ReactorCore,
    ReactorStateError, ReactorTcp, ReactorTime, ReactorUdp, ReactorUnix, Reason, SpawnError,
    UnixListenOptions,
};

use crate::{
    Clock, FakeDatagramTransport, FakeProcessTransport, StateError,
    StringTransportWithDisconnection,
};

/// The first port handed out for `listen_tcp` on port 0.
pub const FIRST_FAKE_PORT: u16 = 40000;

/// A fake [`ListeningPort`]: records `stop_listening`.
#[derive(Debug)]
pub struct FakeListeningPort {
    host: Address,
    stop_calls: Cell<usize>,
}

impl FakeListeningPort {
    /// True once `stop_listening` was called.
    pub fn stopped(&self) -> bool {
        self.stop_calls.get() > 0
    }

    /// How many times `stop_listening` was called.
    pub fn stop_calls(&self) -> usize {
        self.stop_calls.get()
    }
}

impl ListeningPort for FakeListeningPort {
    fn host(&self) -> Address {
        self.host.clone()
    }

    fn stop_listening(&self) {
        self.stop_calls.set(self.stop_calls.get() + 1);
    }
}

/// Where a [`FakeConnector`]'s attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorState {
    /// Neither completed, failed nor cancelled yet.
    Connecting,
    /// [`FakeConnector::complete`] connected a protocol.
    Connected,
    /// [`FakeConnector::fail`] was called, or the factory refused to build a protocol.
    Failed,
    /// `stop_connecting` was called while connecting.
    Cancelled,
}

/// A fake [`Connector`]: the test completes or fails the attempt.
pub struct FakeConnector {
    destination: Address,
    factory: Rc<dyn ClientFactory>,
    clock: Clock,
    state: Cell<ConnectorState>,
}

impl fmt::Debug for FakeConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConnector")
            .field("destination", &self.destination)
            .field("state", &self.state.get())
            .finish()
    }
}

impl FakeConnector {
    /// The attempt's state.
    pub fn state(&self) -> ConnectorState {
        self.state.get()
    }

    /// Complete the attempt: build a protocol with the factory (peer = the destination)
    /// and connect it to a new [`StringTransportWithDisconnection`], which is returned.
    /// `None` if the attempt is not connecting any more, or the factory refused (then the
    /// state is `Failed`).
    pub fn complete(&self) -> Option<Rc<StringTransportWithDisconnection>> {
        let transport = Rc::new(StringTransportWithDisconnection::wrap(
            crate::StringTransport::with_addresses(
                Address::Memory("client".into()),
                self.destination.clone(),
            ),
        ));
        self.complete_with(&transport).then_some(transport)
    }

    /// As [`complete`](Self::complete), with a transport the test built. Returns whether a
    /// protocol was connected.
    pub fn complete_with(&self, transport: &Rc<StringTransportWithDisconnection>) -> bool {
        if self.state.get() != ConnectorState::Connecting {
            return false;
        }
        match self.factory.build_protocol(&self.destination) {
            Some(protocol) => {
                self.state.set(ConnectorState::Connected);
                transport.make_connection(protocol);
                true
            }
            None => {
                self.state.set(ConnectorState::Failed);
                false
            }
        }
    }

    /// Fail the attempt: the factory's `client_connection_failed(reason)` is called now.
    /// Returns false (and calls nothing) if the attempt is not connecting any more.
    pub fn fail(&self, reason: Reason) -> bool {
        if self.state.get() != ConnectorState::Connecting {
            return false;
        }
        self.state.set(ConnectorState::Failed);
        self.factory.client_connection_failed(reason);
        true
    }
}

impl Connector for FakeConnector {
    /// While connecting: the state becomes `Cancelled` and the factory gets
    /// `client_connection_failed(Reason::Cancelled)` from the reactor's clock, on its next
    /// `advance` (not inside this call). A no-op otherwise.
    fn stop_connecting(&self) {
        if self.state.get() != ConnectorState::Connecting {
            return;
        }
        self.state.set(ConnectorState::Cancelled);
        let factory = self.factory.clone();
        self.clock.call_later(Duration::ZERO, move || {
            factory.client_connection_failed(Reason::Cancelled)
        });
    }

    fn destination(&self) -> Address {
        self.destination.clone()
    }
}

/// A recorded `listen_tcp` call.
#[derive(Clone)]
pub struct TcpListen {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The factory given.
    pub factory: Rc<dyn Factory>,
    /// The port returned.
    pub port: Rc<FakeListeningPort>,
}

/// A recorded `connect_tcp` call.
#[derive(Clone)]
pub struct TcpConnect {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The factory given.
    pub factory: Rc<dyn ClientFactory>,
    /// The timeout given.
    pub timeout: Option<Duration>,
    /// The connector returned.
    pub connector: Rc<FakeConnector>,
}

/// A recorded `listen_unix` call.
#[derive(Clone)]
pub struct UnixListen {
    /// The socket path.
    pub path: PathBuf,
    /// The factory given.
    pub factory: Rc<dyn Factory>,
    /// The options given.
    pub options: UnixListenOptions,
    /// The port returned.
    pub port: Rc<FakeListeningPort>,
}

/// A recorded `connect_unix` call.
#[derive(Clone)]
pub struct UnixConnect {
    /// The socket path.
    pub path: PathBuf,
    /// The factory given.
    pub factory: Rc<dyn ClientFactory>,
    /// The timeout given.
    pub timeout: Option<Duration>,
    /// The connector returned.
    pub connector: Rc<FakeConnector>,
}

/// A recorded `listen_udp` call.
#[derive(Clone, Debug)]
pub struct UdpListen {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The fake socket returned (its protocol started), for the test to drive.
    pub transport: Rc<FakeDatagramTransport>,
}

/// A recorded, successful `spawn_process` call.
#[derive(Clone)]
pub struct ProcessSpawn {
    /// The builder, as given (every argument of the spawn).
    pub builder: ProcessBuilder,
    /// The fake child, for the test to drive.
    pub transport: Rc<FakeProcessTransport>,
}

macro_rules! debug_record {
    ($t:ty, $($field:ident),*) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}
debug_record!(TcpListen, addr, port);
debug_record!(TcpConnect, addr, timeout, connector);
debug_record!(UnixListen, path, options, port);
debug_record!(UnixConnect, path, timeout, connector);
debug_record!(ProcessSpawn, builder, transport);

/// A reactor for tests that does no I/O: it records every `listen_*`, `connect_*` and
/// `spawn_process` call with all its arguments, hands back fakes the test drives, and
/// keeps time with a [`Clock`] (Twisted's `MemoryReactorClock`, CONTRACT O5).
///
/// - `listen_tcp`/`listen_unix` return a [`FakeListeningPort`] (port 0 gets a fake port
///   from [`FIRST_FAKE_PORT`] up);
/// - `listen_udp` starts the protocol on a [`FakeDatagramTransport`] and returns it;
/// - `connect_tcp`/`connect_unix` call the factory's `started_connecting` and return a
///   [`FakeConnector`]; the test completes it ([`FakeConnector::complete`]) or fails it
///   ([`FakeConnector::fail`] → `client_connection_failed`);
/// - `spawn_process` validates the builder, calls the protocol's `connection_made` with a
///   [`FakeProcessTransport`] and returns it; the record keeps it for the test to drive;
/// - [`run`](Self::run)/[`stop`](Self::stop) only record the state and run the
///   `call_when_running` hooks.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::{AccumulatingProtocol, MemoryReactor};
/// use torsion_transport::{factory_fn, ReactorTcp};
///
/// let reactor = MemoryReactor::new();
/// let port = reactor
///     .listen_tcp("127.0.0.1:0".parse().unwrap(), factory_fn(|_| Box::new(AccumulatingProtocol::new().0)))
///     .unwrap();
/// assert_eq!(reactor.tcp_listens().len(), 1);
/// assert_eq!(port.host().port(), Some(40000));
/// ```
pub struct MemoryReactor {
    clock: Clock,
    tcp_listens: RefCell<Vec<TcpListen>>,
    tcp_connects: RefCell<Vec<TcpConnect>>,
    unix_listens: RefCell<Vec<UnixListen>>,
    unix_connects: RefCell<Vec<UnixConnect>>,
    udp_listens: RefCell<Vec<UdpListen>>,
    spawns: RefCell<Vec<ProcessSpawn>>,
    spawn_failures: RefCell<VecDeque<SpawnError>>,
    next_port: Cell<u16>,
    running: Cell<bool>,
    has_run: Cell<bool>,
    has_stopped: Cell<bool>,
    when_running: RefCell<VecDeque<Box<dyn FnOnce()>>>,
}

impl fmt::Debug for MemoryReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReactor")
            .field("clock", &self.clock)
            .field("tcp_listens", &*self.tcp_listens.borrow())
            .field("tcp_connects", &*self.tcp_connects.borrow())
            .field("unix_listens", &*self.unix_listens.borrow())
            .field("unix_connects", &*self.unix_connects.borrow())
            .field("udp_listens", &*self.udp_listens.borrow())
            .field("spawns", &*self.spawns.borrow())
            .field("running", &self.running.get())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryReactor {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryReactor {
    /// A reactor that is not running, at time 0, with nothing recorded.
    pub fn new() -> Self {
        MemoryReactor {
            clock: Clock::new(),
            tcp_listens: RefCell::default(),
            tcp_connects: RefCell::default(),
            unix_listens: RefCell::default(),
            unix_connects: RefCell::default(),
            udp_listens: RefCell::default(),
            spawns: RefCell::default(),
            spawn_failures: RefCell::default(),
            next_port: Cell::new(FIRST_FAKE_PORT),
            running: Cell::new(false),
            has_run: Cell::new(false),
            has_stopped: Cell::new(false),
            when_running: RefCell::default(),
        }
    }

    /// The clock behind [`ReactorTime`]; `advance` it to run timers.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The recorded `listen_tcp` calls, in order.
    pub fn tcp_listens(&self) -> Vec<TcpListen> {
        self.tcp_listens.borrow().clone()
    }

    /// The recorded `connect_tcp` calls, in order.
    pub fn tcp_connects(&self) -> Vec<TcpConnect> {
        self.tcp_connects.borrow().clone()
    }

    /// The recorded `listen_unix` calls, in order.
    pub fn unix_listens(&self) -> Vec<UnixListen> {
        self.unix_listens.borrow().clone()
    }

    /// The recorded `connect_unix` calls, in order.
    pub fn unix_connects(&self) -> Vec<UnixConnect> {
        self.unix_connects.borrow().clone()
    }

    /// The recorded `listen_udp` calls, in order.
    pub fn udp_listens(&self) -> Vec<UdpListen> {
        self.udp_listens.borrow().clone()
    }

    /// The recorded successful `spawn_process` calls, in order.
    pub fn spawns(&self) -> Vec<ProcessSpawn> {
        self.spawns.borrow().clone()
    }

    /// Make the next `spawn_process` (that passes validation) fail with `error`.
    pub fn fail_next_spawn(&self, error: SpawnError) {
        self.spawn_failures.borrow_mut().push_back(error);
    }

    /// True between `run` and `stop`.
    pub fn is_running(&self) -> bool {
        self.running.get()
    }

    /// True once `run` was called.
    pub fn has_run(&self) -> bool {
        self.has_run.get()
    }

    /// True once `stop` was called.
    pub fn has_stopped(&self) -> bool {
        self.has_stopped.get()
    }

    /// How many `call_when_running` hooks wait for `run`.
    pub fn pending_when_running(&self) -> usize {
        self.when_running.borrow().len()
    }

    /// Mark the reactor running and run the `call_when_running` hooks in registration
    /// order (CONTRACT B3). Returns at once: there is no loop.
    ///
    /// # Errors
    ///
    /// [`StateError::AlreadyRunning`]; [`StateError::NotRestartable`] after `stop` (B6).
    pub fn run(&self) -> Result<(), StateError> {
        if self.running.get() {
            return Err(StateError::AlreadyRunning);
        }
        if self.has_stopped.get() {
            return Err(StateError::NotRestartable);
        }
        self.running.set(true);
        self.has_run.set(true);
        loop {
            let next = self.when_running.borrow_mut().pop_front();
            match next {
                Some(f) => f(),
                None => break,
            }
        }
        Ok(())
    }

    /// Mark the reactor stopped (CONTRACT B4).
    ///
    /// # Errors
    ///
    /// [`StateError::NotRunning`] if it is not running.
    pub fn stop(&self) -> Result<(), StateError> {
        if !self.running.get() {
            return Err(StateError::NotRunning);
        }
        self.running.set(false);
        self.has_stopped.set(true);
        Ok(())
    }

    /// Run `f` now if the reactor is running, else when [`run`](Self::run) is called, in
    /// registration order (CONTRACT B3).
    pub fn call_when_running(&self, f: impl FnOnce() + 'static) {
        if self.running.get() {
            f();
        } else {
            self.when_running.borrow_mut().push_back(Box::new(f));
        }
    }

    fn fake_port(&self, addr: SocketAddr) -> SocketAddr {
        let mut addr = addr;
        if addr.port() == 0 {
            let port = self.next_port.get();
            self.next_port.set(port.wrapping_add(1));
            addr.set_port(port);
        }
        addr
    }

    fn connector(&self, destination: Address, factory: Rc<dyn ClientFactory>) -> Rc<FakeConnector> {
        factory.started_connecting();
        Rc::new(FakeConnector {
            destination,
            factory,
            clock: self.clock.clone(),
            state: Cell::new(ConnectorState::Connecting),
        })
    }
}

impl ReactorCore for MemoryReactor {
    fn running(&self) -> bool {
        self.is_running()
    }

    fn stop(&self) -> Result<(), ReactorStateError> {
        MemoryReactor::stop(self).map_err(|_| ReactorStateError::NotRunning)
    }

    fn call_when_running_boxed(&self, f: Box<dyn FnOnce()>) {
        MemoryReactor::call_when_running(self, f);
    }
}

impl ReactorTime for MemoryReactor {
    fn seconds(&self) -> f64 {
        self.clock.seconds()
    }

    fn call_later_boxed(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall {
        self.clock.call_later_boxed(delay, f)
    }

    fn delayed_calls(&self) -> Vec<DelayedCall> {
        self.clock.delayed_calls()
    }
}

impl ReactorTcp for MemoryReactor {
    /// Records the call and returns a [`FakeListeningPort`]; never fails.
    fn listen_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        let bound = self.fake_port(addr);
        let port = Rc::new(FakeListeningPort {
            host: Address::from(bound),
            stop_calls: Cell::new(0),
        });
        self.tcp_listens.borrow_mut().push(TcpListen {
            addr,
            factory,
            port: port.clone(),
        });
        Ok(port)
    }

    /// Records the call, calls `started_connecting`, returns a [`FakeConnector`].
    fn connect_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector> {
        let connector = self.connector(Address::from(addr), factory.clone());
        self.tcp_connects.borrow_mut().push(TcpConnect {
            addr,
            factory,
            timeout,
            connector: connector.clone(),
        });
        connector
    }
}

impl ReactorUnix for MemoryReactor {
    /// Records the call and returns a [`FakeListeningPort`]; never fails.
    fn listen_unix(
        &self,
        path: &Path,
        factory: Rc<dyn Factory>,
        options: UnixListenOptions,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        let port = Rc::new(FakeListeningPort {
            host: Address::Unix(Some(path.to_owned())),
            stop_calls: Cell::new(0),
        });
        self.unix_listens.borrow_mut().push(UnixListen {
            path: path.to_owned(),
            factory,
            options,
            port: port.clone(),
        });
        Ok(port)
    }

    /// Records the call, calls `started_connecting`, returns a [`FakeConnector`].
    fn connect_unix(
        &self,
        path: PathBuf,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector> {
        let connector = self.connector(Address::Unix(Some(path.clone())), factory.clone());
        self.unix_connects.borrow_mut().push(UnixConnect {
            path,
            factory,
            timeout,
            connector: connector.clone(),
        });
        connector
    }
}

impl ReactorUdp for MemoryReactor {
    /// Records the call and starts `protocol` on a [`FakeDatagramTransport`] bound to the
    /// address (port 0 gets a fake port, as for TCP); never fails.
    fn listen_udp(
        &self,
        addr: SocketAddr,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<dyn DatagramTransport>> {
        let transport = FakeDatagramTransport::new(Address::from(self.fake_port(addr)));
        self.udp_listens.borrow_mut().push(UdpListen {
            addr,
            transport: transport.clone(),
        });
        transport.start(protocol);
        Ok(transport)
    }
}

impl ReactorProcess for MemoryReactor {
    /// Validates `builder`, then calls `protocol.connection_made` with a
    /// [`FakeProcessTransport`] built from it and returns that transport (CONTRACT F1).
    ///
    /// # Errors
    ///
    /// The builder's validation error (CONTRACT G1), or an error queued with
    /// [`fail_next_spawn`](MemoryReactor::fail_next_spawn). Failed spawns are not recorded.
    fn spawn_process(
        &self,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
        builder.validate()?;
        if let Some(e) = self.spawn_failures.borrow_mut().pop_front() {
            return Err(e);
        }
        let transport = Rc::new(FakeProcessTransport::from_builder(builder));
        self.spawns.borrow_mut().push(ProcessSpawn {
            builder: builder.clone(),
            transport: transport.clone(),
        });
        transport.make_connection(protocol);
        Ok(transport)
    }
}
