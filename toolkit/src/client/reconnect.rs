//! [`ReconnectingClientFactory`]: connect, and connect again with exponential backoff
//! whenever the attempt fails or the connection ends.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use torsion_transport::{
    Address, ClientFactory, Connector, DelayedCall, Factory, Protocol, ReactorTcp, ReactorTime,
    Reason,
};

/// How a [`ReconnectingClientFactory`] spaces its attempts. The defaults are Twisted's.
///
/// After the n-th consecutive failure the delay is the previous one times `factor`, capped
/// at `max_delay`, then drawn from a normal distribution around it with standard deviation
/// `delay × jitter` (so many clients that lost one server do not come back at the same
/// instant). The first retry waits `initial_delay × factor` (about 2.7 s with the
/// defaults), as in Twisted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay before growth (Twisted's `initialDelay`, 1 s).
    pub initial_delay: Duration,
    /// The most a delay grows to before jitter (Twisted's `maxDelay`, 3600 s).
    pub max_delay: Duration,
    /// The growth per failure (Twisted's `factor`, e = 2.7182818284590451).
    pub factor: f64,
    /// The relative standard deviation of the jitter; 0 for none (Twisted's `jitter`,
    /// 0.119626565582).
    pub jitter: f64,
    /// Give up after this many consecutive failed retries; `None` (the default) never
    /// gives up (Twisted's `maxRetries`).
    pub max_retries: Option<u32>,
    /// Reset the delay when a connection succeeds (default `true`). **\[deliberate\]**
    /// Twisted leaves this to the protocol, which must call `resetDelay` from
    /// `connectionMade`; set `false` to get that behaviour and call
    /// [`reset_delay`](ReconnectingClientFactory::reset_delay) yourself.
    pub reset_on_connect: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3600),
            factor: std::f64::consts::E,
            jitter: 0.119626565582,
            max_retries: None,
            reset_on_connect: true,
        }
    }
}

impl Backoff {
    /// The defaults with no jitter: the delays are exactly `initial × factorⁿ`, capped.
    pub fn without_jitter() -> Self {
        Backoff {
            jitter: 0.0,
            ..Backoff::default()
        }
    }

    /// With `max_retries`.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
}

/// SplitMix64: a small seeded generator for the jitter (no dependency needed; this is not
/// for cryptography).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

type Build = Box<dyn Fn(&Address) -> Box<dyn Protocol>>;
type Connect = Box<dyn Fn(Rc<dyn ClientFactory>) -> Rc<dyn Connector>>;

struct State {
    delay: Duration,
    retries: u32,
    continue_trying: bool,
    gave_up: bool,
    pending: Option<DelayedCall>,
    /// The attempt in progress, for `stop_trying`; dropped when it ends, since the
    /// connector holds this factory.
    connector: Option<Rc<dyn Connector>>,
    rng: Rng,
}

/// A client factory that keeps a connection up: when an attempt fails or the connection
/// ends, it connects again after a delay that grows exponentially with jitter
/// ([`Backoff`]; Twisted's `ReconnectingClientFactory`), until
/// [`stop_trying`](Self::stop_trying) or `max_retries` (CONTRACT P10).
///
/// Configure it, then [`connect_tcp`](Self::connect_tcp) makes the first attempt and
/// returns the running factory. Each connection gets a fresh protocol from the `build`
/// closure.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use torsion_testing::{AccumulatingProtocol, MemoryReactor};
/// use torsion_toolkit::client::{Backoff, ReconnectingClientFactory};
/// use torsion_transport::Reason;
///
/// let reactor = Rc::new(MemoryReactor::new());
/// let factory = ReconnectingClientFactory::new(|_| Box::new(AccumulatingProtocol::new().0))
///     .backoff(Backoff::without_jitter())
///     .connect_tcp(reactor.clone(), "127.0.0.1:6379".parse().unwrap());
/// reactor.tcp_connects()[0].connector.fail(Reason::ConnectionRefused);
/// assert_eq!(factory.delay(), Duration::from_secs_f64(std::f64::consts::E));
/// reactor.clock().advance(Duration::from_secs(3));
/// assert_eq!(reactor.tcp_connects().len(), 2, "tried again");
/// factory.stop_trying();
/// ```
pub struct ReconnectingClientFactory {
    build: Build,
    backoff: Backoff,
    seed: Option<u64>,
    timeout: Option<Duration>,
    clock: Option<Rc<dyn ReactorTime>>,
    connect: Option<Connect>,
    me: Weak<ReconnectingClientFactory>,
    state: RefCell<State>,
    attempts: Cell<u64>,
}

impl fmt::Debug for ReconnectingClientFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReconnectingClientFactory");
        d.field("backoff", &self.backoff);
        if let Ok(s) = self.state.try_borrow() {
            d.field("delay", &s.delay)
                .field("retries", &s.retries)
                .field("continue_trying", &s.continue_trying);
        }
        d.finish_non_exhaustive()
    }
}

impl ReconnectingClientFactory {
    /// A factory building each connection's protocol with `build`, with the default
    /// [`Backoff`] and a jitter seeded from the time. Nothing happens until
    /// [`connect_tcp`](Self::connect_tcp).
    pub fn new(build: impl Fn(&Address) -> Box<dyn Protocol> + 'static) -> Self {
        ReconnectingClientFactory {
            build: Box::new(build),
            backoff: Backoff::default(),
            seed: None,
            timeout: None,
            clock: None,
            connect: None,
            me: Weak::new(),
            state: RefCell::new(State {
                delay: Duration::from_secs(1),
                retries: 0,
                continue_trying: true,
                gave_up: false,
                pending: None,
                connector: None,
                rng: Rng(0),
            }),
            attempts: Cell::new(0),
        }
    }

    /// Use `backoff`.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seed the jitter, for reproducible delays (tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The timeout of each connection attempt (`connect_tcp`'s); the OS's by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Start: connect to `addr` on `reactor` (`Rc::new(reactor.clone())` for the real
    /// `Reactor`; the test kit's `Rc<MemoryReactor>`), and again after each failure or
    /// loss. Returns the running factory.
    pub fn connect_tcp<R>(mut self, reactor: Rc<R>, addr: SocketAddr) -> Rc<Self>
    where
        R: ReactorTcp + ReactorTime + 'static,
    {
        let timeout = self.timeout;
        let r = reactor.clone();
        self.connect = Some(Box::new(move |factory| {
            r.connect_tcp(addr, factory, timeout)
        }));
        self.clock = Some(reactor);
        {
            let s = self.state.get_mut();
            s.delay = self.backoff.initial_delay;
            s.rng = Rng(self.seed.unwrap_or_else(time_seed));
        }
        let factory = Rc::new_cyclic(|me| {
            self.me = me.clone();
            self
        });
        factory.attempt();
        factory
    }

    fn attempt(&self) {
        let (Some(me), Some(connect)) = (self.me.upgrade(), &self.connect) else {
            return;
        };
        self.attempts.set(self.attempts.get() + 1);
        let connector = connect(me);
        let mut s = self.state.borrow_mut();
        if s.continue_trying {
            s.connector = Some(connector);
        }
    }

    /// Schedule the next attempt (Twisted's `retry`).
    fn retry(&self) {
        let delay = {
            let mut s = self.state.borrow_mut();
            if !s.continue_trying {
                return;
            }
            s.retries += 1;
            if self.backoff.max_retries.is_some_and(|max| s.retries > max) {
                log::warn!("giving up connecting after {} retries", s.retries - 1);
                s.gave_up = true;
                return;
            }
            let grown = (s.delay.as_secs_f64() * self.backoff.factor)
                .min(self.backoff.max_delay.as_secs_f64());
            let delay = if self.backoff.jitter != 0.0 {
                grown + s.rng.normal() * grown * self.backoff.jitter
            } else {
                grown
            };
            // A negative or non-finite draw means "at once" / "the maximum".
            s.delay = Duration::try_from_secs_f64(delay.max(0.0)).unwrap_or(self.backoff.max_delay);
            s.delay
        };
        log::debug!("reconnecting in {delay:?}");
        let (Some(clock), Some(me)) = (&self.clock, self.me.upgrade()) else {
            return;
        };
        let weak = Rc::downgrade(&me);
        let call = clock.call_later_boxed(
            delay,
            Box::new(move || {
                if let Some(f) = weak.upgrade() {
                    f.state.borrow_mut().pending = None;
                    f.attempt();
                }
            }),
        );
        self.state.borrow_mut().pending = Some(call);
    }

    /// Stop: cancel a scheduled attempt, stop one in progress (`stop_connecting`), and make
    /// no more (Twisted's `stopTrying`). An established connection is left alone; its end
    /// will not be followed by another attempt.
    #[doc(alias = "stopTrying")]
    pub fn stop_trying(&self) {
        let (pending, connector) = {
            let mut s = self.state.borrow_mut();
            s.continue_trying = false;
            (s.pending.take(), s.connector.take())
        };
        if let Some(call) = pending {
            let _ = call.cancel();
        }
        if let Some(c) = connector {
            c.stop_connecting();
        }
    }

    /// Back to the initial delay and zero retries, and trying again if stopped (Twisted's
    /// `resetDelay`). Called on each successful connection unless
    /// [`Backoff::reset_on_connect`] is off.
    #[doc(alias = "resetDelay")]
    pub fn reset_delay(&self) {
        let mut s = self.state.borrow_mut();
        s.delay = self.backoff.initial_delay;
        s.retries = 0;
        s.continue_trying = true;
        s.gave_up = false;
    }

    /// The current delay: the one the pending attempt waits (or waited) for.
    pub fn delay(&self) -> Duration {
        self.state.borrow().delay
    }

    /// Consecutive retries since the last reset.
    pub fn retries(&self) -> u32 {
        self.state.borrow().retries
    }

    /// How many connection attempts were made in all.
    pub fn attempts(&self) -> u64 {
        self.attempts.get()
    }

    /// False after [`stop_trying`](Self::stop_trying) (Twisted's `continueTrying`).
    pub fn continue_trying(&self) -> bool {
        self.state.borrow().continue_trying
    }

    /// True once `max_retries` ran out.
    pub fn gave_up(&self) -> bool {
        self.state.borrow().gave_up
    }

    /// Whether an attempt is scheduled.
    pub fn retry_pending(&self) -> bool {
        self.state.borrow().pending.is_some()
    }
}

impl Factory for ReconnectingClientFactory {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        // The attempt is over: the connector (which holds this factory) is let go.
        self.state.borrow_mut().connector = None;
        if self.backoff.reset_on_connect {
            self.reset_delay();
        }
        Some((self.build)(peer))
    }
}

impl ClientFactory for ReconnectingClientFactory {
    fn client_connection_failed(&self, reason: Reason) {
        log::debug!("connection attempt failed: {reason}");
        self.state.borrow_mut().connector = None;
        self.retry();
    }

    fn client_connection_lost(&self, reason: Reason) {
        log::debug!("connection lost: {reason}");
        self.state.borrow_mut().connector = None;
        self.retry();
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_jitter_source_is_seeded_and_roughly_standard_normal() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<f64> = (0..20_000).map(|_| a.normal()).collect();
        let ys: Vec<f64> = (0..20_000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys, "same seed, same draws");
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        assert_ne!(Rng(8).normal(), Rng(7).normal());
    }
}
