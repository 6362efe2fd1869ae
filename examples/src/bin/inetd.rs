//! inetd — serve each TCP connection with a fresh child process.
//!
//! ```sh
//! cargo run -p torsion-examples --bin inetd -- --port 7000 -- tr a-z A-Z
//! # elsewhere: nc 127.0.0.1 7000
//! ```
//!
//! For each connection, PROGRAM is spawned with the connection as its stdin and stdout
//! (its stderr is ours), proxied through the reactor with flow control both ways: a slow
//! client pauses reading the child, a slow child pauses reading the socket. The client's
//! EOF closes the child's stdin; the child's end closes the connection. Prints
//! `listening on ADDR`, serves until SIGINT/SIGTERM, then terminates the children it still
//! has (SIGTERM, SIGKILL after 2 s) and exits 0.

use std::cell::RefCell;
use std::error::Error;
use std::ffi::OsString;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use torsion_examples::inetd::Service;
use torsion_reactor::Reactor;
use torsion_transport::{ChildFd, ProcessBuilder, ReactorTcp, ShutdownPolicy};

const USAGE: &str = "usage: inetd --port N -- PROGRAM [ARGS...]";

fn parse(args: &[OsString]) -> Result<(u16, Vec<OsString>), String> {
    let mut port = None;
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        match args[i].to_str() {
            Some("--port") => {
                let v = args
                    .get(i + 1)
                    .and_then(|v| v.to_str())
                    .ok_or("--port needs a value")?;
                port = Some(v.parse::<u16>().map_err(|_| format!("bad port {v:?}"))?);
                i += 2;
            }
            _ => return Err(format!("unknown option {:?}", args[i])),
        }
    }
    let program = args.get(i + 1..).unwrap_or_default().to_vec();
    match (port, program.is_empty()) {
        (None, _) => Err("--port is required".into()),
        (_, true) => Err("no program given".into()),
        (Some(p), false) => Ok((p, program)),
    }
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (port, argv) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("inetd: {e}\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    let builder = ProcessBuilder::new(&argv[0])
        .argv(&argv)
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
    let listener = reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory)?;
    println!("listening on {}", listener.host());
    let _keep = RefCell::new(listener);
    reactor.run()?; // until SIGINT or SIGTERM
    Ok(ExitCode::SUCCESS)
}
