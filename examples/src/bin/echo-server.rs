//! echo-server: a TCP (or Unix-socket) echo server with flow control.
//!
//! Run it:
//!
//! ```text
//! cargo run -p torsion-examples --bin echo-server -- --port 8000
//! cargo run -p torsion-examples --bin echo-server -- --unix /tmp/echo.sock
//! cargo run -p torsion-examples --bin echo-server -- --help
//! ```
//!
//! then talk to it with `nc localhost 8000` (or `nc -U /tmp/echo.sock`). It prints
//! `listening on ADDR` once it is ready and serves until SIGINT or SIGTERM, then exits 0.
//! `--port 0` picks a free port, which the `listening on` line reports. A startup failure
//! (the port is taken, say) prints `echo-server: error: ...` and exits 1; bad arguments
//! print the usage and exit 2.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion::transport::UnixListenOptions;

/// A TCP or Unix-socket echo server with flow control, on torsion's reactor.
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
}

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

fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let reactor = Reactor::new()?;
    let factory = factory_fn(|_| Box::new(Echo::default()));
    let port = match &args.unix {
        None => reactor
            .listen_tcp(([127, 0, 0, 1], args.port).into(), factory)
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?,
        Some(path) => {
            let mut options = UnixListenOptions::default();
            options.remove_stale = true;
            options.unlink_on_stop = true;
            reactor
                .listen_unix(path, factory, options)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", port.host())?;
    out.flush()?;
    drop(out);
    // `run` installs SIGINT/SIGTERM handlers that stop the reactor (CONTRACT B7).
    reactor.run()?;
    port.stop_listening();
    Ok(())
}

fn main() -> ExitCode {
    // Bad arguments and `--help` end here: clap prints the usage (exit 2, or 0 for help).
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Display, never Debug: "Address already in use (os error 98)", not `Os { .. }`.
            eprintln!("echo-server: error: {e}");
            ExitCode::FAILURE
        }
    }
}
