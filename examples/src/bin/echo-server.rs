//! echo-server: a TCP, Unix-socket and UDP echo server, for systemd or standalone, on one
//! process or on prefork workers.
//!
//! Run it:
//!
//! ```text
//! cargo run -p torsion-examples --bin echo-server -- --port 8000
//! cargo run -p torsion-examples --bin echo-server -- --unix /tmp/echo.sock
//! cargo run -p torsion-examples --bin echo-server -- --listen tcp:8000 --listen udp:8000 --workers 2
//! cargo run -p torsion-examples --bin echo-server -- --listen ssl:8443:privateKey=key.pem:certKey=cert.pem
//! systemd-socket-activate -l 8000 target/debug/echo-server --listen systemd:domain=INET6:index=0
//! ```
//!
//! then talk to it with `nc localhost 8000` (or `nc -U /tmp/echo.sock`, `nc -u localhost
//! 8000`, or `openssl s_client -connect localhost:8443` for TLS). `--listen ENDPOINT`
//! (repeatable) takes any server endpoint (`tcp:`, `tcp6:`, `unix:`, `systemd:`, `udp:`,
//! and `ssl:` for TLS with a PEM key and certificate chain); without it, `--port` (default 8000, on 127.0.0.1) or
//! `--unix` says where. It prints `listening on ADDR` per endpoint, then, under systemd
//! (`NOTIFY_SOCKET` set), sends `READY=1` once listening with its signal handling in place
//! and `STOPPING=1` when it stops. It serves until SIGINT or SIGTERM, then exits 0. With
//! `--workers N` the process binds the endpoints, prints the lines, and supervises N
//! worker processes that serve them. A startup failure (a bad endpoint, a port in use)
//! prints `echo-server: error: ...` and exits 1; bad arguments print the usage and exit 2.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;
use torsion::endpoints::{BindOptions, ServerEndpoint};
use torsion::prefork::{PreforkOptions, Supervisor, Worker};
use torsion::prelude::*;
use torsion::reactor::{Event, Phase, Reactor};
use torsion::systemd;
use torsion_examples::echo::{Echo, UdpEcho};

/// A TCP, Unix-socket and UDP echo server with flow control, on torsion's reactor.
///
/// Serves until SIGINT or SIGTERM, then exits 0.
#[derive(Debug, Parser)]
#[command(name = "echo-server")]
struct Args {
    /// TCP port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, value_name = "N", default_value_t = 8000)]
    port: u16,
    /// Listen on this Unix socket path instead of TCP (a stale socket file is replaced).
    #[arg(long, value_name = "PATH", conflicts_with = "port")]
    unix: Option<PathBuf>,
    /// Listen on this endpoint (tcp:8000, unix:/run/echo.sock, systemd:domain=INET:index=0,
    /// udp:8000, ssl:8443:privateKey=KEY.pem:certKey=CERT.pem, ...); repeatable. Replaces
    /// --port and --unix.
    #[arg(long, value_name = "ENDPOINT", conflicts_with_all = ["port", "unix"])]
    listen: Vec<String>,
    /// Prefork this many worker processes to serve the endpoints (0: serve here).
    #[arg(long, value_name = "N", default_value_t = 0)]
    workers: usize,
}

fn endpoints(args: &Args) -> Result<Vec<ServerEndpoint>, Box<dyn Error>> {
    let descriptions = if !args.listen.is_empty() {
        args.listen.clone()
    } else if let Some(path) = &args.unix {
        let path = path
            .to_string_lossy()
            .replace('\\', "\\\\")
            .replace(':', "\\:");
        vec![format!("unix:{path}")]
    } else {
        vec![format!("tcp:{}:interface=127.0.0.1", args.port)]
    };
    Ok(descriptions
        .iter()
        .map(|d| ServerEndpoint::parse(d))
        .collect::<Result<_, _>>()?)
}

/// Serve the endpoints here, or the sockets a prefork parent passed.
fn serve_here(
    reactor: &Reactor,
    eps: &[ServerEndpoint],
    worker: Option<&Worker>,
) -> Result<Vec<String>, Box<dyn Error>> {
    let mut hosts = Vec::new();
    for (i, ep) in eps.iter().enumerate() {
        let factory = factory_fn(|_| Box::new(Echo::default()));
        let host = match (worker, ep.is_datagram()) {
            (None, false) => ep.listen(reactor, factory)?.host(),
            (None, true) => ep
                .listen_datagram(reactor, Box::new(UdpEcho::default()))?
                .host(),
            (Some(w), false) => w.listen(reactor, i, factory)?.host(),
            (Some(w), true) => {
                let fd = w
                    .socket(i)
                    .ok_or("the parent passed too few sockets")?
                    .try_clone_to_owned()?;
                reactor
                    .adopt_datagram_port(fd, Box::new(UdpEcho::default()))?
                    .host()
            }
        };
        hosts.push(match (ep.is_datagram(), host.socket_addr()) {
            (true, Some(a)) => format!("udp:{a}"),
            _ => host.to_string(),
        });
    }
    Ok(hosts)
}

fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let worker = Worker::from_env()?;
    let eps = endpoints(&args)?;
    let reactor = Reactor::new()?;
    let mut _keep = Vec::new();
    let mut _supervisor = None;
    let hosts = if args.workers > 0 && worker.is_none() {
        let mut hosts = Vec::new();
        let mut fds = Vec::new();
        for ep in &eps {
            let bound = ep.bind(&BindOptions::new())?;
            hosts.push(
                match (ep.is_datagram(), bound.local_address().socket_addr()) {
                    (true, Some(a)) => format!("udp:{a}"),
                    _ => bound.local_address().to_string(),
                },
            );
            fds.push(bound.fd().try_clone_to_owned()?);
            _keep.push(bound);
        }
        let me = std::env::current_exe()?;
        let command = ProcessBuilder::new(&me).args(std::env::args_os().skip(1));
        _supervisor = Some(Supervisor::start(
            &reactor,
            command,
            fds,
            PreforkOptions::new(args.workers),
        )?);
        hosts
    } else {
        if let Some(w) = worker {
            w.watch_parent(&reactor);
        }
        serve_here(&reactor, &eps, worker)?
    };
    if worker.is_none() {
        let mut out = std::io::stdout().lock();
        for h in &hosts {
            writeln!(out, "listening on {h}")?;
        }
        out.flush()?;
        // `run` installs SIGINT/SIGTERM handlers that stop the reactor (CONTRACT B7)
        // before the calls below run: READY=1 promises a graceful SIGTERM.
        let r = reactor.clone();
        let watchdog = Rc::new(std::cell::RefCell::new(None));
        let w = watchdog.clone();
        reactor.call_when_running(move || match systemd::ready(&r) {
            Ok(dog) => *w.borrow_mut() = dog,
            Err(e) => eprintln!("echo-server: warning: {e}"),
        });
        reactor.add_system_event_trigger(Phase::Before, Event::Shutdown, move || {
            drop(watchdog.borrow_mut().take());
            if let Err(e) = systemd::notify("STOPPING=1") {
                eprintln!("echo-server: warning: {e}");
            }
        });
    }
    reactor.run()?;
    Ok(())
}

fn main() -> ExitCode {
    // Bad arguments and `--help` end here: clap prints the usage (exit 2, or 0 for help).
    let args = Args::parse();
    torsion_examples::exit_code("echo-server", serve(args))
}
