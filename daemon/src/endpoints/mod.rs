//! Endpoints in Twisted's string syntax: `tcp:8080`, `unix:/run/app.sock`,
//! `systemd:domain=INET:index=0`, `udp:5353` to listen; `tcp:host=example.com:port=80` and
//! `unix:path=/run/app.sock` to connect.
//!
//! # Server descriptions (Twisted's `serverFromString`)
//!
//! | Type | Fields, in positional order | Defaults |
//! |---|---|---|
//! | `tcp` | `port`, `interface`, `backlog` | interface `0.0.0.0`, backlog 1024 |
//! | `tcp6` | `port`, `backlog`, `interface` | interface `::` |
//! | `unix` | `address`, `mode`, `backlog`, `lockfile` | mode `0666`, lockfile `1` |
//! | `systemd` | `domain` (`INET`, `INET6`, `UNIX`), `index` or `name` | exactly one of `index`, `name` |
//! | `udp` | `port`, `interface` | interface `0.0.0.0` |
//!
//! Fields are separated by `:`; a field is given by position or by name (`tcp:8080` is
//! `tcp:port=8080`), a backslash escapes the next character (`tcp6:80:interface=\:\:1`,
//! `unix:/tmp/a\:b`). See [`Fields`] for the exact grammar, which is Twisted's.
//!
//! # Client descriptions (Twisted's `clientFromString`)
//!
//! - `tcp:host=H:port=P[:timeout=S][:bindAddress=A]` (also `tcp:H:P`): a host name is
//!   resolved on the reactor's thread pool and every address tried with Happy Eyeballs
//!   ([`HostnameEndpoint`]); the timeout (default 30 s) bounds each attempt.
//! - `unix:path=P[:timeout=S][:lockfile=0|1]` (also `unix:P`).
//!
//! # Calls
//!
//! - [`listen`]`(&reactor, "tcp:8080", factory)` → a [`ListeningPort`] for stream
//!   endpoints (`tcp`, `tcp6`, `unix`, `systemd`, plugins).
//! - [`listen_datagram`]`(&reactor, "udp:5353", protocol)` → a [`UdpPort`] for datagram
//!   endpoints (`udp`, and `systemd` for a datagram socket): a separate call because a
//!   datagram socket has one protocol, not a factory.
//! - [`connect`]`(&reactor, "tcp:host=localhost:port=80", factory)` → a
//!   [`Deferred`](torsion_transport::defer::Deferred) of the connected transport.
//! - [`ServerEndpoint::bind`] binds without a reactor: for prefork parents and one
//!   reactor per thread (`SO_REUSEPORT`).
//!
//! Every error is typed: [`EndpointError`] (parse, activation, listen) names the
//! description and what is wrong (`endpoint "tcp:port=x": port: "x" is not a port number
//! (0-65535)`); a failed connection is a [`ConnectError`] inside the Deferred's failure.
//!
//! # Extension: `ssl:` and `tls:`
//!
//! Types not built in are looked up in a process-wide plugin table:
//! [`register_server_plugin`] and [`register_client_plugin`] add a [`ServerPlugin`] or
//! [`ClientPlugin`] under its prefix; the parser hands it the [`Fields`] to check, and the
//! parsed [`ServerEndpoint::Plugin`] / [`ClientEndpoint::Plugin`] calls it to listen or
//! connect. Until the TLS feature registers `ssl` and `tls`, they are an
//! [`ParseProblem::UnknownType`] whose message says TLS is not available.
//!
//! # Example
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_daemon::endpoints;
//! use torsion_reactor::Reactor;
//! use torsion_transport::{Protocol, Transport, factory_fn};
//!
//! struct Echo(Option<Rc<dyn Transport>>);
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Rc<dyn Transport>) { self.0 = Some(t) }
//!     fn data_received(&mut self, d: &[u8]) { if let Some(t) = &self.0 { t.write(d) } }
//! }
//!
//! let reactor = Reactor::new()?;
//! let port = endpoints::listen(&reactor, "tcp:0:interface=127.0.0.1", factory_fn(|_| Box::new(Echo(None))))?;
//! let n = port.host().port().unwrap_or(0);
//! let connected = endpoints::connect(&reactor, &format!("tcp:host=127.0.0.1:port={n}"), factory_fn(|_| Box::new(Echo(None))));
//! let done = Rc::new(std::cell::Cell::new(false));
//! let d = done.clone();
//! connected.add_callback(move |t| { t.lose_connection(); d.set(true) });
//! reactor.run_until(|| done.get(), Duration::from_secs(5))?;
//! assert!(done.get());
//! let err = endpoints::listen(&reactor, "tcp:port=x", factory_fn(|_| Box::new(Echo(None)))).unwrap_err();
//! assert_eq!(err.to_string(), r#"endpoint "tcp:port=x": port: "x" is not a port number (0-65535)"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bind;
mod bound;
mod client;
mod connect;
mod error;
mod fields;
mod plugin;
mod server;
#[cfg(feature = "tls")]
pub mod tls;

use std::rc::Rc;

use torsion_reactor::{Reactor, UdpPort};
use torsion_transport::{DatagramProtocol, Factory, ListeningPort};

pub use bind::{BindOptions, BoundSocket};
pub use client::{ClientEndpoint, DEFAULT_TIMEOUT, PluginClient, TcpClient, UnixClient};
pub use connect::{CONNECTION_ATTEMPT_DELAY, HostnameEndpoint, connect, interleave};
pub use error::{ConnectError, EndpointError, ParseProblem};
pub use fields::{Bound, Fields};
pub use plugin::{
    ClientPlugin, PrefixTaken, ServerPlugin, register_client_plugin, register_server_plugin,
};
pub use server::{
    Domain, Inherited, PluginServer, ServerEndpoint, SystemdServer, TcpServer, UdpServer,
    UnixServer,
};

/// Listen on the stream endpoint `description` with `factory` (Twisted's
/// `serverFromString(reactor, description).listen(factory)`).
///
/// # Errors
///
/// [`EndpointError`]: the description does not parse or is a datagram endpoint
/// ([`ParseProblem::WrongKind`]), a `systemd:` socket is missing or of the wrong kind, or
/// the OS refuses (`AddrInUse`, ...). Each names `description`.
#[doc(alias = "serverFromString")]
pub fn listen(
    reactor: &Reactor,
    description: &str,
    factory: Rc<dyn Factory>,
) -> Result<Rc<dyn ListeningPort>, EndpointError> {
    ServerEndpoint::parse(description)?
        .listen(reactor, factory)
        .map_err(|e| e.for_description(description))
}

/// Listen on the datagram endpoint `description` (`udp:PORT`, or a `systemd:` datagram
/// socket) with `protocol`.
///
/// # Errors
///
/// As [`listen`]; a stream endpoint is [`ParseProblem::WrongKind`].
pub fn listen_datagram(
    reactor: &Reactor,
    description: &str,
    protocol: Box<dyn DatagramProtocol>,
) -> Result<Rc<UdpPort>, EndpointError> {
    ServerEndpoint::parse(description)?
        .listen_datagram(reactor, protocol)
        .map_err(|e| e.for_description(description))
}

impl ServerEndpoint {
    /// Listen, as [`listen`].
    ///
    /// # Errors
    ///
    /// As [`listen`].
    pub fn listen(
        &self,
        reactor: &Reactor,
        factory: Rc<dyn Factory>,
    ) -> Result<Rc<dyn ListeningPort>, EndpointError> {
        match self {
            ServerEndpoint::Udp(_) => Err(EndpointError::parse(
                &self.to_string(),
                ParseProblem::WrongKind {
                    expected: "a stream endpoint (udp: is a datagram endpoint: use listen_datagram)",
                },
            )),
            ServerEndpoint::Plugin(p) => {
                // User code: through the funnel; a panic is a listen error.
                torsion_reactor::guard("listen", || p.plugin.listen(reactor, &p.fields, factory))
                    .unwrap_or_else(|panicked| {
                        Err(EndpointError::Listen {
                            endpoint: self.to_string(),
                            source: std::io::Error::other(format!(
                                "the endpoint plugin {panicked}"
                            )),
                        })
                    })
            }
            _ => self.bind(&BindOptions::default())?.listen(reactor, factory),
        }
    }

    /// Listen on a datagram endpoint, as [`listen_datagram`].
    ///
    /// # Errors
    ///
    /// As [`listen_datagram`].
    pub fn listen_datagram(
        &self,
        reactor: &Reactor,
        protocol: Box<dyn DatagramProtocol>,
    ) -> Result<Rc<UdpPort>, EndpointError> {
        let endpoint = self.to_string();
        let fd = match self {
            ServerEndpoint::Udp(_) => self.bind(&BindOptions::default())?.into_parts().0,
            ServerEndpoint::Systemd(s) => {
                ServerEndpoint::systemd_datagram(s).map_err(|source| EndpointError::Activation {
                    endpoint: endpoint.clone(),
                    source,
                })?
            }
            _ => {
                return Err(EndpointError::parse(
                    &endpoint,
                    ParseProblem::WrongKind {
                        expected: "a datagram endpoint (udp:, or systemd: with a datagram socket)",
                    },
                ));
            }
        };
        reactor
            .adopt_datagram_port(fd, protocol)
            .map_err(|source| EndpointError::Listen { endpoint, source })
    }
}

impl EndpointError {
    /// The same error about `description` (as the user wrote it).
    fn for_description(mut self, description: &str) -> Self {
        match &mut self {
            EndpointError::Parse { endpoint, .. }
            | EndpointError::Listen { endpoint, .. }
            | EndpointError::Activation { endpoint, .. } => *endpoint = description.to_owned(),
        }
        self
    }
}
