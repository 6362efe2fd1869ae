//! torsion for network daemons: what a service needs beyond sockets and protocols.
//!
//! - [`endpoints`]: listening and connecting by description, in Twisted's syntax
//!   (`tcp:8080`, `unix:/run/app.sock`, `systemd:domain=INET:index=0`, `udp:5353`,
//!   `tcp:host=example.com:port=80`), with Happy Eyeballs for host names.
//! - [`systemd`]: socket activation (`LISTEN_FDS`) and readiness (`sd_notify`: `READY=1`,
//!   `STOPPING=1`, `STATUS=`, watchdog pings), without a systemd library.
//! - [`prefork`]: a parent that binds once and supervises N worker processes that share
//!   the listening sockets (Twisted's prefork pattern).
//!
//! Unix only (the crate is empty elsewhere).
//!
//! # Example
//!
//! ```
//! # #[cfg(unix)] {
//! use std::rc::Rc;
//! use torsion_daemon::endpoints::{self, ServerEndpoint};
//! use torsion_reactor::Reactor;
//! use torsion_transport::{Protocol, factory_fn};
//!
//! struct Discard;
//! impl Protocol for Discard { fn data_received(&mut self, _: &[u8]) {} }
//!
//! let reactor = Reactor::new()?;
//! let port = endpoints::listen(&reactor, "tcp:0:interface=127.0.0.1", factory_fn(|_| Box::new(Discard)))?;
//! assert!(port.host().port().is_some_and(|p| p != 0));
//! port.stop_listening();
//! assert_eq!(ServerEndpoint::parse("tcp:8080")?.to_string(), "tcp:port=8080");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[cfg(unix)]
pub mod endpoints;
#[cfg(unix)]
pub mod prefork;
#[cfg(unix)]
mod sys;
#[cfg(unix)]
pub mod systemd;

/// The guide `docs/guides/writing-a-daemon.md`, its code compiled as doctests.
#[cfg(all(doctest, unix))]
#[doc = include_str!("../../docs/guides/writing-a-daemon.md")]
mod guide {}
