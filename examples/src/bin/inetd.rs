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

use torsion_process::{Process, spawn};
use torsion_reactor::Reactor;
use torsion_transport::{
    Address, ChildFd, Consumer, ExitReason, Factory, HalfCloseableProtocol, ProcessBuilder,
    ProcessProtocol, ProcessTransport, Producer, Protocol, PushProducer, ReactorTcp, Reason,
    ShutdownPolicy, Transport,
};

const USAGE: &str = "usage: inetd --port N -- PROGRAM [ARGS...]";

/// The child's side of one connection: its stdout goes to the socket.
struct ChildSide(Rc<dyn Transport>);

impl ProcessProtocol for ChildSide {
    fn out_received(&mut self, data: &[u8]) {
        self.0.write(data);
    }
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.lose_connection();
    }
}

/// A producer that only pauses and resumes `T`: when its consumer goes away it stops the
/// flow in that direction without closing the other one.
struct Valve<T: PushProducer + ?Sized>(Rc<T>);

impl<T: PushProducer + ?Sized> PushProducer for Valve<T> {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }
    fn resume_producing(&self) {
        self.0.resume_producing();
    }
    fn stop_producing(&self) {
        self.0.pause_producing();
    }
}

/// The socket's side of one connection: its bytes go to the child's stdin.
struct Connection {
    reactor: Reactor,
    builder: Rc<ProcessBuilder>,
    child: Option<Rc<Process>>,
}

impl Protocol for Connection {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        match spawn(
            &self.reactor,
            &self.builder,
            Box::new(ChildSide(transport.clone())),
        ) {
            Ok(child) => {
                // A slow client pauses the child; a slow child pauses the socket.
                let _ = transport.register_producer(Producer::Push(Rc::new(Valve(child.clone()))));
                let _ = child.register_producer(Producer::Push(Rc::new(Valve(transport))));
                self.child = Some(child);
            }
            Err(e) => {
                eprintln!("inetd: {e}");
                transport.write(b"inetd: cannot start the service\n");
                transport.lose_connection();
            }
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(c) = &self.child {
            c.write(data);
        }
    }

    fn connection_lost(&mut self, _reason: Reason) {
        if let Some(c) = self.child.take() {
            // The client is gone: no more input, and nobody to read the output.
            c.unregister_producer();
            ProcessTransport::lose_connection(&*c);
        }
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl HalfCloseableProtocol for Connection {
    fn read_connection_lost(&mut self) {
        if let Some(c) = &self.child {
            c.unregister_producer();
            let _ = c.close_stdin();
        }
    }
}

struct Service {
    reactor: Reactor,
    builder: Rc<ProcessBuilder>,
}

impl Factory for Service {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(Connection {
            reactor: self.reactor.clone(),
            builder: self.builder.clone(),
            child: None,
        }))
    }
}

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
        reactor: reactor.clone(),
        builder: Rc::new(builder),
    });
    let listener = reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory)?;
    println!("listening on {}", listener.host());
    let _keep = RefCell::new(listener);
    reactor.run()?; // until SIGINT or SIGTERM
    Ok(ExitCode::SUCCESS)
}
