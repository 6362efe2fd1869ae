//! inetd — serve each TCP connection with a fresh child process.
//!
//! ```sh
//! cargo run -p torsion-examples --bin inetd -- --port 7000 -- tr a-z A-Z
//! # elsewhere: nc 127.0.0.1 7000
//! cargo run -p torsion-examples --bin inetd -- --help
//! ```
//!
//! For each connection, PROGRAM is spawned with the connection as its stdin and stdout
//! (its stderr is ours), proxied through the reactor with flow control both ways: a slow
//! client pauses reading the child, a slow child pauses reading the socket. The client's
//! EOF closes the child's stdin; the child's end closes the connection. Prints
//! `listening on ADDR`, serves until SIGINT/SIGTERM, then terminates the children it still
//! has (SIGTERM, SIGKILL after 2 s) and exits 0. A startup failure prints
//! `inetd: error: ...` and exits 1; bad arguments print the usage and exit 2.

use std::error::Error;
use std::ffi::OsString;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion::transport::ShutdownPolicy;
use torsion_examples::inetd::Service;

/// Serve each TCP connection on 127.0.0.1 with a fresh child process.
///
/// The connection becomes PROGRAM's stdin and stdout; its stderr is ours.
#[derive(Debug, Parser)]
#[command(name = "inetd")]
struct Args {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, value_name = "N")]
    port: u16,
    /// The program to run for each connection, and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    command: Vec<OsString>,
}

fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let builder = ProcessBuilder::new(&args.command[0])
        .argv(&args.command)
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Read)
        .child_fd(2, ChildFd::Inherit(2))
        .shutdown_policy(ShutdownPolicy::Terminate {
            grace: Duration::from_secs(2),
        });
    builder.validate()?;
    let reactor = Reactor::new()?;
    let factory = Rc::new(Service {
        reactor: Rc::new(reactor.clone()),
        builder: Rc::new(builder),
    });
    let listener = reactor
        .listen_tcp(([127, 0, 0, 1], args.port).into(), factory)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    println!("listening on {}", listener.host());
    reactor.run()?; // until SIGINT or SIGTERM
    listener.stop_listening();
    Ok(())
}

fn main() -> ExitCode {
    // Bad arguments and `--help` end here: clap prints the usage (exit 2, or 0 for help).
    let args = Args::parse();
    torsion_examples::exit_code("inetd", serve(args))
}
