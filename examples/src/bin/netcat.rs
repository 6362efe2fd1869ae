//! netcat: relays stdin to a connection and the connection to stdout.
//!
//! Run it:
//!
//! ```text
//! cargo run -p torsion-examples --bin netcat -- tcp:host=localhost:port=8000
//! echo hello | cargo run -p torsion-examples --bin netcat -- unix:path=/tmp/echo.sock
//! cargo run -p torsion-examples --bin netcat -- tls:host=localhost:port=8443:trustRoots=ca.pem
//! ```
//!
//! CLIENT_ENDPOINT is a client endpoint in Twisted's syntax: `tcp:host=H:port=P` (a host
//! name is resolved and every address tried, Happy Eyeballs) or `unix:path=P`, with
//! `:timeout=S` (default 30); or `tls:host=H:port=P[:trustRoots=PEM_FILE_OR_DIR]`, TLS that
//! verifies the server's certificate for H against the system's roots or the given ones (a
//! certificate that cannot be verified is an error naming why). When stdin ends, netcat half-closes the connection (the peer
//! sees EOF) and keeps relaying what the peer sends; when the peer closes, it exits 0. A
//! bad endpoint or a failed connection prints `netcat: error: ...` and exits 1.

use std::cell::RefCell;
use std::error::Error;
use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;
use torsion::endpoints::{self, ClientEndpoint};
use torsion::prelude::*;
use torsion::process::StdoutWriter;
use torsion::reactor::Reactor;

/// Relay stdin to a connection and the connection to stdout.
#[derive(Debug, Parser)]
#[command(name = "netcat")]
struct Args {
    /// Where to connect: tcp:host=H:port=P[:timeout=S], unix:path=P[:timeout=S] or
    /// tls:host=H:port=P[:trustRoots=PEM_FILE_OR_DIR].
    #[arg(value_name = "CLIENT_ENDPOINT")]
    endpoint: String,
}

/// The connection's side: what arrives goes to stdout; the end stops the reactor.
struct ToStdout {
    stdout: Rc<StdoutWriter>,
    reactor: Reactor,
    ended: Rc<RefCell<Option<Reason>>>,
}

impl Protocol for ToStdout {
    fn data_received(&mut self, data: &[u8]) {
        self.stdout.write(data);
    }

    fn connection_lost(&mut self, reason: Reason) {
        *self.ended.borrow_mut() = Some(reason);
        // Flush what is buffered for stdout, then stop.
        self.stdout.lose_connection();
        let _ = self.reactor.stop();
    }
}

/// The stdin side: what is read goes to the connection; EOF half-closes it.
struct ToConnection(Rc<dyn Transport>);

impl Protocol for ToConnection {
    fn data_received(&mut self, data: &[u8]) {
        self.0.write(data);
    }

    fn connection_lost(&mut self, _: Reason) {
        self.0.lose_write_connection();
    }
}

fn relay(args: Args) -> Result<(), Box<dyn Error>> {
    // Parse first: a bad endpoint is reported before anything starts.
    ClientEndpoint::parse(&args.endpoint)?;
    let reactor = Reactor::new()?;
    let stdout = StandardIo::stdout(&reactor)?;
    let ended = Rc::new(RefCell::new(None));
    let failed: Rc<RefCell<Option<Failure>>> = Rc::new(RefCell::new(None));
    let (r, e, out) = (reactor.clone(), ended.clone(), stdout.clone());
    let factory = factory_fn(move |_| {
        Box::new(ToStdout {
            stdout: out.clone(),
            reactor: r.clone(),
            ended: e.clone(),
        })
    });
    let (r, f) = (reactor.clone(), failed.clone());
    endpoints::connect(&reactor, &args.endpoint, factory).add_both(move |result| {
        match result {
            Ok(connection) => {
                if let Err(e) = StandardIo::stdin(&r, Box::new(ToConnection(connection.clone()))) {
                    *f.borrow_mut() = Some(Failure::from(e));
                    connection.abort_connection();
                }
            }
            Err(failure) => {
                *f.borrow_mut() = Some(failure);
                let _ = r.stop();
            }
        }
        Ok(())
    });
    reactor.run()?;
    // Continuations the last iteration queued (a TLS endpoint's handshake failure): the
    // failure says more than the lost connection.
    torsion::defer::run_soon();
    if let Some(failure) = failed.borrow_mut().take() {
        return Err(failure.into());
    }
    match ended.borrow_mut().take() {
        Some(reason) if reason.is_clean() => Ok(()),
        Some(reason) => Err(format!("the connection was lost: {reason}").into()),
        None => Err("stopped before the connection ended".into()),
    }
}

fn main() -> ExitCode {
    // Bad arguments and `--help` end here: clap prints the usage (exit 2, or 0 for help).
    let args = Args::parse();
    torsion_examples::exit_code("netcat", relay(args))
}
