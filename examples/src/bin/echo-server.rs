//! echo-server: a TCP (or Unix-socket) echo server with flow control.
//!
//! Run it:
//!
//! ```text
//! cargo run -p torsion-examples --bin echo-server -- --port 8000
//! cargo run -p torsion-examples --bin echo-server -- --unix /tmp/echo.sock
//! ```
//!
//! then talk to it with `nc localhost 8000` (or `nc -U /tmp/echo.sock`). It prints
//! `listening on ADDR` once it is ready and serves until SIGINT or SIGTERM, then exits 0.
//! `--port 0` picks a free port, which the `listening on` line reports.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_transport::{
    Producer, Protocol, PushProducer, ReactorTcp, ReactorUnix, Transport, UnixListenOptions,
    factory_fn,
};

const USAGE: &str = "usage: echo-server [--port N] [--unix PATH]";

/// Writes back what it reads. The transport is registered as the producer of its own
/// writes, so reading pauses while the peer is slow to take the echo (CONTRACT D4, D8).
#[derive(Default)]
struct Echo {
    transport: Option<Rc<dyn Transport>>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let me: Rc<dyn PushProducer> = transport.clone();
        if let Err(e) = transport.register_producer(Producer::Push(me)) {
            log::warn!("cannot register for flow control: {e}");
        }
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
}

enum Listen {
    Tcp(u16),
    Unix(PathBuf),
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Listen, String> {
    let mut listen = Listen::Tcp(8000);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        listen = match arg.as_str() {
            "--port" => Listen::Tcp(value.parse().map_err(|_| format!("bad port {value:?}"))?),
            "--unix" => Listen::Unix(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {arg:?}")),
        };
    }
    Ok(listen)
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let listen = match parse(std::env::args().skip(1)) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("echo-server: {msg}\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    let reactor = Reactor::new()?;
    let factory = factory_fn(|_| Box::new(Echo::default()));
    let port = match listen {
        Listen::Tcp(port) => reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory)?,
        Listen::Unix(path) => {
            let mut options = UnixListenOptions::default();
            options.remove_stale = true;
            options.unlink_on_stop = true;
            reactor.listen_unix(&path, factory, options)?
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", port.host())?;
    out.flush()?;
    drop(out);
    // `run` installs SIGINT/SIGTERM handlers that stop the reactor (CONTRACT B7).
    reactor.run()?;
    port.stop_listening();
    Ok(ExitCode::SUCCESS)
}
