//! [`Pump`]: move bytes between two protocols in memory (Twisted's `iosim.IOPump`,
//! CONTRACT O6).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use torsion_transport::{Address, Factory, Producer, Protocol, Reason, Transport};

use crate::PumpError;
use crate::loopback::LoopbackTransport;

/// How many rounds [`Pump::flush`] pumps before it gives up (CONTRACT O6).
pub const MAX_FLUSH_ROUNDS: usize = 1000;

/// Two protocols connected through two [`LoopbackTransport`]s; the test moves the bytes
/// (Twisted's `iosim.IOPump`, CONTRACT O6).
///
/// The pump is the loop of this little world: [`pump`](Self::pump) runs one round,
/// [`flush`](Self::flush) runs rounds until nothing moves. Protocols are only called from
/// here, never from a transport method, and never while one of their callbacks is on the
/// stack (a delivery that finds its protocol busy waits for a later round).
///
/// # Examples
///
/// ```
/// use torsion_testing::{AccumulatingProtocol, connect};
/// use torsion_transport::{Consumer, Transport};
///
/// let (server, server_seen) = AccumulatingProtocol::new();
/// let (client, client_seen) = AccumulatingProtocol::new();
/// let pump = connect(Box::new(server), Box::new(client));
/// pump.client().write(b"ping");
/// pump.flush();
/// assert_eq!(server_seen.data(), b"ping");
/// pump.client().lose_connection();
/// pump.flush();
/// assert!(server_seen.closed() && client_seen.closed());
/// ```
pub struct Pump {
    server: Rc<LoopbackTransport>,
    client: Rc<LoopbackTransport>,
    /// Chunking mode: the PRNG that cuts deliveries (see [`Pump::with_chunking`]).
    chunking: RefCell<Option<XorShift64>>,
}

impl fmt::Debug for Pump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pump")
            .field("server", &self.server)
            .field("client", &self.client)
            .field("chunking", &self.chunking.borrow().is_some())
            .finish()
    }
}

/// A tiny xorshift64 generator: the chunking mode needs reproducible cuts, not quality.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        // xorshift is stuck at zero; any other fixed state will do.
        XorShift64(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `1..=max` (`max` >= 1).
    fn between_one_and(&mut self, max: usize) -> usize {
        let max = max.max(1) as u64;
        (self.next() % max) as usize + 1
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// The size of the next piece of a delivery of `len` bytes: often tiny (so delimiters
    /// and length prefixes get cut), sometimes anything up to all of it.
    fn piece(&mut self, len: usize) -> usize {
        if self.one_in(2) {
            self.between_one_and(len.min(4))
        } else {
            self.between_one_and(len)
        }
    }
}

/// [`Pump::new`] with [`Pump::with_chunking`]`(seed)`, then [`Pump::flush`]: the greeting
/// is already chunked.
///
/// # Panics
///
/// As [`connect`].
#[track_caller]
pub fn connect_chunked(server: Box<dyn Protocol>, client: Box<dyn Protocol>, seed: u64) -> Pump {
    let pump = Pump::new(server, client).with_chunking(seed);
    pump.flush();
    pump
}

/// Connect `server` and `client` (their `connection_made` is called, server first) and
/// [`flush`](Pump::flush) once so greetings are exchanged (Twisted's `iosim.connect`).
///
/// # Panics
///
/// If the greeting does not settle within [`MAX_FLUSH_ROUNDS`] rounds.
#[track_caller]
pub fn connect(server: Box<dyn Protocol>, client: Box<dyn Protocol>) -> Pump {
    let pump = Pump::new(server, client);
    pump.flush();
    pump
}

/// Build a protocol from each factory and [`connect`] them (Twisted's
/// `connectedServerAndClient`). `None` if a factory refused (`build_protocol` returned
/// `None`).
///
/// # Panics
///
/// As [`connect`].
#[track_caller]
pub fn connected_server_and_client<S, C>(server_factory: &S, client_factory: &C) -> Option<Pump>
where
    S: Factory + ?Sized,
    C: Factory + ?Sized,
{
    let server = server_factory.build_protocol(&Address::Memory("client".into()))?;
    let client = client_factory.build_protocol(&Address::Memory("server".into()))?;
    Some(connect(server, client))
}

impl Pump {
    /// Connect `server` and `client` without pumping: both `connection_made` calls have
    /// run (server first) when this returns.
    pub fn new(server: Box<dyn Protocol>, client: Box<dyn Protocol>) -> Self {
        let server_addr = Address::Memory("server".into());
        let client_addr = Address::Memory("client".into());
        let server = Rc::new(LoopbackTransport::new(
            server,
            server_addr.clone(),
            client_addr.clone(),
        ));
        let client = Rc::new(LoopbackTransport::new(client, client_addr, server_addr));
        make_connection(&server);
        make_connection(&client);
        Pump {
            server,
            client,
            chunking: RefCell::new(None),
        }
    }

    /// Chunking mode: from now on each round delivers the bytes written since the last
    /// one cut at random points into several `data_received` calls (often of 1 to 4
    /// bytes), and now and then keeps a random tail back to merge it with the next writes.
    /// Adjacent writes are always merged. The cuts come from a xorshift generator seeded
    /// with `seed`, so a failing seed reproduces; chunk boundaries carry no meaning on a
    /// real connection either, and this makes framing bugs show in unit tests.
    ///
    /// ```
    /// use torsion_testing::{AccumulatingProtocol, Pump};
    /// use torsion_transport::Consumer;
    ///
    /// let (server, seen) = AccumulatingProtocol::new();
    /// let (client, _) = AccumulatingProtocol::new();
    /// let pump = Pump::new(Box::new(server), Box::new(client)).with_chunking(7);
    /// pump.client().write(b"hello, ");
    /// pump.client().write(b"world");
    /// pump.flush();
    /// assert_eq!(seen.data(), b"hello, world"); // same bytes, other chunks
    /// ```
    pub fn with_chunking(self, seed: u64) -> Self {
        self.set_chunking(Some(seed));
        self
    }

    /// Turn chunking mode on with a seed ([`with_chunking`](Self::with_chunking)), or
    /// off with `None` (each round then delivers everything pending in one call).
    pub fn set_chunking(&self, seed: Option<u64>) {
        *self.chunking.borrow_mut() = seed.map(XorShift64::new);
    }

    /// The server's transport.
    pub fn server(&self) -> &Rc<LoopbackTransport> {
        &self.server
    }

    /// The client's transport.
    pub fn client(&self) -> &Rc<LoopbackTransport> {
        &self.client
    }

    /// One round: move the server's pending bytes to the client and the client's to the
    /// server; on each end whose buffer is empty, resume a paused streaming producer or a
    /// pull producer, or complete a pending `lose_connection` / `lose_write_connection`;
    /// deliver disconnects to both ends. Returns whether anything happened.
    pub fn pump(&self) -> bool {
        let mut progress = false;
        progress |= deliver_lost(&self.server);
        progress |= deliver_lost(&self.client);
        progress |= self.transfer(&self.server, &self.client);
        progress |= self.transfer(&self.client, &self.server);
        progress |= after_drain(&self.server, &self.client);
        progress |= after_drain(&self.client, &self.server);
        progress
    }

    /// Pump until a round does nothing. Returns whether anything happened.
    ///
    /// # Errors
    ///
    /// [`PumpError`] if things still moved after [`MAX_FLUSH_ROUNDS`] rounds.
    pub fn try_flush(&self) -> Result<bool, PumpError> {
        let mut any = false;
        for _ in 0..MAX_FLUSH_ROUNDS {
            if !self.pump() {
                return Ok(any);
            }
            any = true;
        }
        Err(PumpError {
            rounds: MAX_FLUSH_ROUNDS,
        })
    }

    /// [`try_flush`](Self::try_flush), failing the test loudly.
    ///
    /// # Panics
    ///
    /// With "pump did not settle ..." if things still moved after [`MAX_FLUSH_ROUNDS`]
    /// rounds (CONTRACT O6).
    #[track_caller]
    pub fn flush(&self) -> bool {
        match self.try_flush() {
            Ok(any) => any,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Pump {
    fn transfer(&self, from: &LoopbackTransport, to: &LoopbackTransport) -> bool {
        let rng = self.chunking.borrow().clone();
        match rng {
            None => transfer(from, to),
            Some(mut rng) => {
                let progress = transfer_chunked(from, to, &mut rng);
                if let Some(r) = self.chunking.borrow_mut().as_mut() {
                    *r = rng;
                }
                progress
            }
        }
    }
}

fn make_connection(t: &Rc<LoopbackTransport>) {
    let transport: Rc<dyn Transport> = t.clone();
    match t.protocol.try_borrow_mut() {
        Ok(mut slot) => {
            if let Some(p) = slot.as_mut() {
                p.connection_made(transport);
            }
        }
        Err(_) => log::warn!("loopback: protocol busy in connection_made"),
    }
}

fn deliver_lost(t: &LoopbackTransport) -> bool {
    let Some(reason) = t.state.borrow_mut().lost_pending.take() else {
        return false;
    };
    let protocol = match t.protocol.try_borrow_mut() {
        Ok(mut slot) => slot.take(),
        Err(_) => {
            t.state.borrow_mut().lost_pending = Some(reason);
            return false;
        }
    };
    if let Some(mut p) = protocol {
        log::debug!("loopback {}: connection_lost({reason})", t.host());
        p.connection_lost(reason);
    }
    true
}

fn transfer(from: &LoopbackTransport, to: &LoopbackTransport) -> bool {
    let mut data = {
        let mut fs = from.state.borrow_mut();
        if fs.closed || fs.outgoing.is_empty() {
            return false;
        }
        let ts = to.state.borrow();
        if ts.closed {
            // Writing to a connection the other end closed: it resets.
            fs.outgoing.clear();
            drop(fs);
            drop(ts);
            close_side(from, to, reset());
            return true;
        }
        if ts.disconnecting || ts.read_closed {
            // The receiver stopped reading for good (CONTRACT D5): the bytes are lost.
            fs.outgoing.clear();
            return true;
        }
        if ts.reading_paused {
            return false;
        }
        std::mem::take(&mut fs.outgoing)
    };
    let delivered = match to.protocol.try_borrow_mut() {
        Ok(mut slot) => {
            if let Some(p) = slot.as_mut() {
                log::trace!(
                    "loopback {} -> {}: {} bytes",
                    from.host(),
                    to.host(),
                    data.len()
                );
                p.data_received(&data);
            }
            true
        }
        Err(_) => false,
    };
    if !delivered {
        let mut fs = from.state.borrow_mut();
        data.extend_from_slice(&fs.outgoing);
        fs.outgoing = data;
    }
    delivered
}

/// [`transfer`] in chunking mode: deliver a random prefix of the pending bytes (all of
/// them most rounds) in random pieces, re-checking the receiver between pieces; what is
/// not delivered goes back to the front of the sender's buffer.
fn transfer_chunked(
    from: &LoopbackTransport,
    to: &LoopbackTransport,
    rng: &mut XorShift64,
) -> bool {
    let pending = from.state.borrow().outgoing.len();
    if pending == 0 {
        return false;
    }
    // Hold a tail back now and then, to merge it with the next writes.
    let budget = if pending > 1 && rng.one_in(3) {
        rng.between_one_and(pending - 1)
    } else {
        pending
    };
    let mut delivered = 0;
    let mut progress = false;
    while delivered < budget {
        let piece = rng.piece(budget - delivered);
        let moved = {
            let mut fs = from.state.borrow_mut();
            let ts = to.state.borrow();
            if fs.closed
                || fs.outgoing.len() < piece
                || ts.closed
                || ts.disconnecting
                || ts.read_closed
                || ts.reading_paused
            {
                None
            } else {
                let rest = fs.outgoing.split_off(piece);
                Some(std::mem::replace(&mut fs.outgoing, rest))
            }
        };
        let Some(chunk) = moved else {
            // The receiver stopped or closed: let the plain path apply its rules (drop,
            // reset or wait) to whatever is left.
            return transfer(from, to) || progress;
        };
        {
            // Deliver `chunk` alone: park the rest so `transfer` moves exactly it.
            let rest = std::mem::replace(&mut from.state.borrow_mut().outgoing, chunk);
            let ok = transfer(from, to);
            let mut fs = from.state.borrow_mut();
            if fs.aborted || fs.closed {
                // Aborted or closed during the callback: the rest is dropped with the buffer.
                return true;
            }
            if ok {
                // Anything written to `from` during `to`'s callback goes after the rest.
                let written = std::mem::replace(&mut fs.outgoing, rest);
                fs.outgoing.extend_from_slice(&written);
            } else {
                // Not delivered: `transfer` put the piece back; the rest follows it.
                fs.outgoing.extend_from_slice(&rest);
                return progress;
            }
        }
        progress = true;
        delivered += piece;
    }
    progress
}

enum Action {
    Nothing,
    ResumePush(Producer),
    ResumePull(Producer),
    Close(Reason),
    ShutdownWrite,
}

fn after_drain(side: &LoopbackTransport, peer: &LoopbackTransport) -> bool {
    let action = {
        let mut s = side.state.borrow_mut();
        if s.closed {
            Action::Nothing
        } else if s.aborted {
            Action::Close(Reason::ConnectionAborted)
        } else if !s.outgoing.is_empty() {
            Action::Nothing
        } else {
            match s.producer.clone() {
                Some(p @ Producer::Push(_)) if s.producer_paused => {
                    s.producer_paused = false;
                    Action::ResumePush(p)
                }
                Some(p @ Producer::Pull(_)) => Action::ResumePull(p),
                _ if s.disconnecting => Action::Close(Reason::ConnectionDone),
                _ if s.write_shutdown_requested && !s.write_closed => Action::ShutdownWrite,
                _ => Action::Nothing,
            }
        }
    };
    match action {
        Action::Nothing => false,
        Action::ResumePush(p) => {
            p.resume_producing();
            true
        }
        Action::ResumePull(p) => {
            p.resume_producing();
            let s = side.state.borrow();
            !s.outgoing.is_empty() || !s.producer.as_ref().is_some_and(|q| q.same_as(&p))
        }
        Action::Close(reason) => {
            close_side(side, peer, reason);
            true
        }
        Action::ShutdownWrite => {
            side.state.borrow_mut().write_closed = true;
            if let Ok(mut slot) = side.protocol.try_borrow_mut() {
                if let Some(h) = slot.as_mut().and_then(|p| p.as_half_closeable()) {
                    h.write_connection_lost();
                }
            }
            deliver_eof(peer, side);
            if side.state.borrow().read_closed {
                close_side(side, peer, Reason::ConnectionDone);
            }
            true
        }
    }
}

fn reset() -> Reason {
    Reason::lost(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
}

/// Mark `side` closed, stop its producer (CONTRACT D7), deliver its `connection_lost`, and
/// tell the peer (EOF, or a reset after an abort).
fn close_side(side: &LoopbackTransport, peer: &LoopbackTransport, reason: Reason) {
    let (producer, aborted) = {
        let mut s = side.state.borrow_mut();
        if s.closed {
            return;
        }
        s.closed = true;
        s.outgoing.clear();
        s.producer_paused = false;
        s.lost_pending = Some(reason);
        (s.producer.take(), s.aborted)
    };
    if let Some(p) = producer {
        p.stop_producing();
    }
    deliver_lost(side);
    if aborted {
        close_side(peer, side, reset());
    } else {
        deliver_eof(peer, side);
    }
}

/// The other end shut down its write side: a half-closeable protocol gets
/// `read_connection_lost` and may keep writing; any other closes.
fn deliver_eof(peer: &LoopbackTransport, side: &LoopbackTransport) {
    {
        let s = peer.state.borrow();
        if s.closed || s.read_closed {
            return;
        }
    }
    let disconnecting = peer.state.borrow().disconnecting;
    let half_closed = !disconnecting
        && match peer.protocol.try_borrow_mut() {
            Ok(mut slot) => match slot.as_mut().and_then(|p| p.as_half_closeable()) {
                Some(h) => {
                    peer.state.borrow_mut().read_closed = true;
                    h.read_connection_lost();
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
    if !half_closed || peer.state.borrow().write_closed {
        close_side(peer, side, Reason::ConnectionDone);
    }
}
