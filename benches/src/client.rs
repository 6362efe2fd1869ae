//! The B4/B8 load client: runs in its own process so the server under test has the other
//! core. Raw mio, one thread. The report binary runs the same code as
//! `report echo-client ARGS` (so it never uses a stale build of this binary).
//!
//! ```text
//! echo_client --port P --conns N --size BYTES --secs T [--warmup W]
//!     N connections, one message of BYTES in flight on each; counts messages echoed
//!     in full during T seconds after W seconds of warm-up; prints
//!     `RESULT msgs_per_sec=... msgs=... secs=...`; with `--announce 1`, first prints
//!     `CONNECTED N` once every connection is up and has its first message in flight
//! echo_client --port P --conns N --size BYTES --secs T --rate R [--warmup W]
//!     open loop (B14): R requests per second spread evenly over the N connections,
//!     sent at their scheduled times whether or not earlier ones were answered; latency
//!     runs from the scheduled time (not the actual send) to the last byte of the echo, so
//!     a slow server cannot hide its queueing (no coordinated omission); prints
//!     `RESULT p50_us=... p99_us=... p999_us=... sent=... answered=... late=...`
//! echo_client ... --line L
//!     the same with each message cut into lines of L bytes, each L - 1 bytes of `x` and
//!     a `\n` (B9; BYTES a multiple of L)
//! echo_client --port P --idle N
//!     opens N connections, prints `READY N`, holds them until stdin closes
//! ```

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

struct Conn {
    stream: TcpStream,
    /// Bytes of the current message written.
    sent: usize,
    /// Bytes of the current message echoed back.
    received: usize,
}

struct Args {
    port: u16,
    conns: usize,
    size: usize,
    secs: f64,
    warmup: f64,
    idle: Option<usize>,
    /// Cut each message into lines of this many bytes, `\n` included (line protocols,
    /// B9); 0: no newlines.
    line: usize,
    announce: bool,
    rate: Option<f64>,
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        conns: 1,
        size: 64,
        secs: 1.0,
        warmup: 0.1,
        idle: None,
        line: 0,
        announce: false,
        rate: None,
    };
    let mut it = args.into_iter();
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        let bad = || format!("bad value for {k}: {v}");
        match k.as_str() {
            "--port" => a.port = v.parse().map_err(|_| bad())?,
            "--conns" => a.conns = v.parse().map_err(|_| bad())?,
            "--size" => a.size = v.parse().map_err(|_| bad())?,
            "--secs" => a.secs = v.parse().map_err(|_| bad())?,
            "--warmup" => a.warmup = v.parse().map_err(|_| bad())?,
            "--idle" => a.idle = Some(v.parse().map_err(|_| bad())?),
            "--line" => a.line = v.parse().map_err(|_| bad())?,
            "--announce" => a.announce = v != "0",
            "--rate" => a.rate = Some(v.parse().map_err(|_| bad())?).filter(|r| *r > 0.0),
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.port == 0 {
        return Err("--port is required".into());
    }
    Ok(a)
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

/// Write what is left of the current message; false if the socket is full.
fn push(c: &mut Conn, msg: &[u8]) -> io::Result<()> {
    while c.sent < msg.len() {
        match c.stream.write(&msg[c.sent..]) {
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn load(a: &Args, addr: SocketAddr) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut msg = vec![b'x'; a.size];
    if a.line > 0 {
        for end in msg.chunks_mut(a.line) {
            if let Some(last) = end.last_mut() {
                *last = b'\n';
            }
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut conns = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        let mut stream = connect(addr)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            sent: 0,
            received: 0,
        });
    }
    for c in &mut conns {
        push(c, &msg)?;
    }
    if a.announce {
        println!("CONNECTED {}", conns.len());
        io::stdout().flush()?;
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.secs);
    let mut counted = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        poll.poll(&mut events, Some(end - now))?;
        for ev in events.iter() {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if ev.is_writable() {
                push(c, &msg)?;
            }
            if ev.is_readable() || ev.is_read_closed() {
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => return Err(io::Error::other("server closed a connection")),
                        Ok(n) => {
                            c.received += n;
                            while c.received >= a.size && c.sent == a.size {
                                c.received -= a.size;
                                c.sent = 0;
                                if Instant::now() >= measure_from {
                                    counted += 1;
                                }
                                push(c, &msg)?;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    let secs = a.secs;
    println!(
        "RESULT msgs_per_sec={:.1} msgs={counted} secs={secs}",
        counted as f64 / secs
    );
    Ok(())
}

/// One connection of the open-loop client.
struct Paced {
    stream: TcpStream,
    /// Bytes queued to send (requests due but not yet taken by the kernel).
    out: Vec<u8>,
    /// Scheduled send times of the requests in flight, oldest first.
    due: std::collections::VecDeque<Instant>,
    /// Bytes of the oldest request's echo received so far.
    received: usize,
}

fn flush(c: &mut Paced) -> io::Result<()> {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `p` quantile (0..1) of sorted `v`, nearest rank.
fn quantile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn open_loop(a: &Args, addr: SocketAddr, rate: f64) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let msg = vec![b'x'; a.size];
    let mut buf = vec![0u8; 64 * 1024];
    let mut conns = Vec::with_capacity(a.conns);
    for i in 0..a.conns.max(1) {
        let mut stream = connect(addr)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Paced {
            stream,
            out: Vec::new(),
            due: std::collections::VecDeque::new(),
            received: 0,
        });
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.secs);
    let mut latencies: Vec<u64> = Vec::with_capacity((rate * a.secs * 1.1) as usize + 16);
    let (mut sent, mut next, mut k) = (0u64, start, 0usize);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Send every request whose time has come, each stamped with its scheduled time.
        while next <= now && next < end {
            let c = &mut conns[k % a.conns.max(1)];
            c.out.extend_from_slice(&msg);
            c.due.push_back(next);
            flush(c)?;
            k += 1;
            sent += 1;
            next += interval;
        }
        let wait = next.min(end).saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(wait))?;
        for ev in events.iter() {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if ev.is_writable() {
                flush(c)?;
            }
            if ev.is_readable() || ev.is_read_closed() {
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => return Err(io::Error::other("server closed a connection")),
                        Ok(n) => {
                            c.received += n;
                            let at = Instant::now();
                            while c.received >= a.size {
                                c.received -= a.size;
                                let Some(due) = c.due.pop_front() else {
                                    return Err(io::Error::other("echo without a request"));
                                };
                                if due >= measure_from {
                                    latencies
                                        .push(at.saturating_duration_since(due).as_nanos() as u64);
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    // Requests still unanswered at the end count at their age then: an overloaded server
    // cannot improve its tail by not answering.
    let at = Instant::now();
    let mut late = 0u64;
    for c in &conns {
        for due in c.due.iter().filter(|d| **d >= measure_from) {
            latencies.push(at.saturating_duration_since(*due).as_nanos() as u64);
            late += 1;
        }
    }
    let answered = latencies.len() as u64 - late;
    latencies.sort_unstable();
    let us = |p: f64| quantile(&latencies, p) as f64 / 1000.0;
    println!(
        "RESULT p50_us={:.1} p99_us={:.1} p999_us={:.1} sent={sent} answered={answered} late={late}",
        us(0.5),
        us(0.99),
        us(0.999)
    );
    Ok(())
}

fn idle(addr: SocketAddr, n: usize) -> io::Result<()> {
    let conns: Vec<std::net::TcpStream> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr))
        .collect::<io::Result<_>>()?;
    println!("READY {}", conns.len());
    io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    drop(conns);
    Ok(())
}

/// Run the client with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_client: {e}");
            return 2;
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, a.port));
    let res = match (a.idle, a.rate) {
        (Some(n), _) => idle(addr, n),
        (None, Some(rate)) => open_loop(&a, addr, rate),
        (None, None) => load(&a, addr),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("echo_client: {e}");
            1
        }
    }
}
