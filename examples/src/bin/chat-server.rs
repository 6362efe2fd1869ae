//! chat-server: a line chat over TCP. Every line a client sends reaches every other client.
//!
//! Run it:
//!
//! ```text
//! cargo run -p torsion-examples --bin chat-server -- --port 8000
//! cargo run -p torsion-examples --bin chat-server -- --help
//! ```
//!
//! then connect a few clients with `nc localhost 8000` and type. It prints
//! `listening on ADDR` once it is ready (`--port 0` picks a free port) and serves until
//! SIGINT or SIGTERM, then exits 0.
//!
//! - Lines end with LF; a CR before the LF is stripped. Each line goes, ended by LF, to
//!   every *other* connected client, once, in the order its sender sent it.
//! - A line over 16,384 bytes closes its sender's connection.
//! - A client that does not read, so that more than 1 MiB waits unsent for it, is
//!   disconnected: it can neither stall the others nor grow the server.
//!
//! The room is `torsion_examples::chat` (tested on the test kit's `StringTransport`);
//! this file only listens and runs the reactor.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion_examples::chat::Room;

/// A line chat server on torsion's reactor: each line goes to every other client.
///
/// Serves until SIGINT or SIGTERM, then exits 0.
#[derive(Debug, Parser)]
#[command(name = "chat-server")]
struct Args {
    /// TCP port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, value_name = "N", default_value_t = 8000)]
    port: u16,
}

fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let reactor = Reactor::new()?;
    let room = Room::new();
    let factory = factory_fn(move |_peer| Box::new(room.protocol()));
    let port = reactor
        .listen_tcp(([127, 0, 0, 1], args.port).into(), factory)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", port.host())?;
    out.flush()?;
    drop(out);
    // `run` stops the reactor on SIGINT and SIGTERM (CONTRACT B7).
    reactor.run()?;
    port.stop_listening();
    Ok(())
}

fn main() -> ExitCode {
    // Bad arguments and `--help` end here: clap prints the usage (exit 2, or 0 for help).
    let args = Args::parse();
    torsion_examples::exit_code("chat-server", serve(args))
}
