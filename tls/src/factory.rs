//! Factories that wrap a user factory's protocols in TLS (Twisted's
//! `TLSMemoryBIOFactory`).

use std::fmt;
use std::rc::Rc;

use torsion_transport::{Address, ClientFactory, Factory, Protocol, Reason};

use crate::config::{TlsClientConfig, TlsServerConfig};
use crate::control::TlsControl;
use crate::protocol::{TlsMode, TlsProtocol};

/// A server factory: each protocol `factory` builds runs as the TLS server side of its
/// connection. Give it to `listen_tcp`, `listen_unix`, or anything that takes a
/// [`Factory`].
///
/// ```no_run
/// # fn demo(config: torsion_tls::TlsServerConfig) -> std::io::Result<()> {
/// use std::rc::Rc;
/// use torsion_reactor::Reactor;
/// use torsion_tls::TlsServerFactory;
/// use torsion_transport::{factory_fn, Protocol, ReactorTcp, Transport};
///
/// struct Echo(Option<Rc<dyn Transport>>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Rc<dyn Transport>) { self.0 = Some(t) }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.0 { t.write(data) }
///     }
/// }
///
/// let reactor = Reactor::new()?;
/// let factory = TlsServerFactory::new(config, factory_fn(|_| Box::new(Echo(None))));
/// reactor.listen_tcp("127.0.0.1:8443".parse().unwrap(), Rc::new(factory))?;
/// # Ok(()) }
/// ```
#[doc(alias = "TLSMemoryBIOFactory")]
pub struct TlsServerFactory {
    config: TlsServerConfig,
    build: ServerBuild,
}

/// A protocol builder that gets the connection's [`TlsControl`].
type WithControl = Box<dyn Fn(&Address, TlsControl) -> Option<Box<dyn Protocol>>>;

enum ServerBuild {
    Factory(Rc<dyn Factory>),
    WithControl(WithControl),
}

impl fmt::Debug for TlsServerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerFactory").finish_non_exhaustive()
    }
}

impl TlsServerFactory {
    /// Wrap `factory`'s protocols with the server side of `config`.
    pub fn new(config: TlsServerConfig, factory: Rc<dyn Factory>) -> Self {
        TlsServerFactory {
            config,
            build: ServerBuild::Factory(factory),
        }
    }

    /// Build each protocol with `build`, which gets the peer and the connection's
    /// [`TlsControl`] (to ask for the ALPN protocol, the SNI name, the client's
    /// certificate); `None` refuses the connection.
    pub fn with_control(
        config: TlsServerConfig,
        build: impl Fn(&Address, TlsControl) -> Option<Box<dyn Protocol>> + 'static,
    ) -> Self {
        TlsServerFactory {
            config,
            build: ServerBuild::WithControl(Box::new(build)),
        }
    }
}

impl Factory for TlsServerFactory {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let mode = TlsMode::Server(self.config.clone());
        match &self.build {
            ServerBuild::Factory(f) => {
                let app = f.build_protocol(peer)?;
                Some(Box::new(TlsProtocol::new(mode, app)))
            }
            ServerBuild::WithControl(build) => {
                // The protocol is built inside `new_with`; a refusal leaves no connection.
                let mut refused = false;
                let p = TlsProtocol::new_with(mode, |control| match build(peer, control) {
                    Some(app) => app,
                    None => {
                        refused = true;
                        Box::new(Refused)
                    }
                });
                (!refused).then(|| Box::new(p) as Box<dyn Protocol>)
            }
        }
    }
}

/// Stands in for a protocol the builder refused (never connected).
struct Refused;

impl Protocol for Refused {
    fn data_received(&mut self, _data: &[u8]) {}
}

/// A client factory: each protocol `factory` builds runs as the TLS client side of its
/// connection, verifying the server named in `config`. Connection failures and losses are
/// passed on to `factory`.
#[doc(alias = "TLSMemoryBIOFactory")]
pub struct TlsClientFactory {
    config: TlsClientConfig,
    factory: Rc<dyn ClientFactory>,
}

impl fmt::Debug for TlsClientFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientFactory")
            .field("server_name", self.config.server_name())
            .finish_non_exhaustive()
    }
}

impl TlsClientFactory {
    /// Wrap `factory`'s protocols with the client side of `config`.
    pub fn new(config: TlsClientConfig, factory: Rc<dyn ClientFactory>) -> Self {
        TlsClientFactory { config, factory }
    }

    /// The wrapped factory.
    pub fn wrapped_factory(&self) -> &Rc<dyn ClientFactory> {
        &self.factory
    }
}

impl Factory for TlsClientFactory {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let app = self.factory.build_protocol(peer)?;
        Some(Box::new(TlsProtocol::client(self.config.clone(), app)))
    }
}

impl ClientFactory for TlsClientFactory {
    fn started_connecting(&self) {
        self.factory.started_connecting();
    }

    fn client_connection_failed(&self, reason: Reason) {
        self.factory.client_connection_failed(reason);
    }

    fn client_connection_lost(&self, reason: Reason) {
        self.factory.client_connection_lost(reason);
    }
}
