//! The extension point for endpoint types this crate does not build in (TLS's `ssl:` and
//! `tls:`, with feature `tls`, sit in the same tables).
//!
//! A plugin is an object with a prefix (the type name before the first `:`). When a
//! description's type is none of the built-in ones (`tcp`, `tcp6`, `unix`, `systemd`,
//! `udp` for servers; `tcp`, `unix` for clients), the registered plugins are looked up by
//! prefix, without regard to case (as Twisted's `_matchPluginToPrefix`). At parse time the
//! plugin [checks](ServerPlugin::check) the [`Fields`] (so a bad description fails when it
//! is parsed, with a [`ParseProblem`] naming the field); the parsed endpoint
//! ([`ServerEndpoint::Plugin`](super::ServerEndpoint::Plugin)) keeps the plugin and the
//! fields and calls the plugin to listen or connect.
//!
//! ```
//! use std::rc::Rc;
//! use std::sync::Arc;
//! use torsion_daemon::endpoints::{self, EndpointError, Fields, ParseProblem, ServerPlugin};
//! use torsion_reactor::Reactor;
//! use torsion_transport::{Factory, ListeningPort};
//!
//! /// `echo4:PORT`: TCP on 127.0.0.1 only.
//! #[derive(Debug)]
//! struct Loopback;
//! impl ServerPlugin for Loopback {
//!     fn prefix(&self) -> &str { "loopback" }
//!     fn check(&self, fields: &Fields) -> Result<(), ParseProblem> {
//!         fields.bind(&["port"])?.require("port").map(drop)
//!     }
//!     fn listen(&self, reactor: &Reactor, fields: &Fields, factory: Rc<dyn Factory>)
//!         -> Result<Rc<dyn ListeningPort>, EndpointError> {
//!         let port = fields.bind(&["port"]).and_then(|b| b.require("port").map(str::to_owned))
//!             .map_err(|p| EndpointError::parse(fields.kind(), p))?;
//!         endpoints::listen(reactor, &format!("tcp:{port}:interface=127.0.0.1"), factory)
//!     }
//! }
//!
//! endpoints::register_server_plugin(Arc::new(Loopback)).expect("a new prefix");
//! let e = endpoints::ServerEndpoint::parse("loopback:0")?;
//! assert_eq!(e.to_string(), "loopback:0");
//! assert!(endpoints::ServerEndpoint::parse("loopback:port=1:x=2").is_err());
//! # Ok::<(), EndpointError>(())
//! ```

use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, PoisonError, RwLock};

use torsion_reactor::Reactor;
use torsion_transport::defer::Deferred;
use torsion_transport::{Factory, ListeningPort, Transport};

use super::error::{EndpointError, ParseProblem};
use super::fields::Fields;

/// The endpoint of a plugin type (`PluginServer`, `PluginClient`): the plugin that parsed
/// it and the fields as given. Two endpoints are equal when they hold the same plugin
/// object and equal fields; `Debug` shows the plugin by its prefix.
macro_rules! plugin_endpoint {
    ($(#[$doc:meta])* $name:ident, $plugin:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pub(crate) plugin: Arc<dyn $plugin>,
            pub(crate) fields: Fields,
        }

        impl $name {
            /// The plugin that parsed it.
            pub fn plugin(&self) -> &Arc<dyn $plugin> {
                &self.plugin
            }

            /// The fields as given.
            pub fn fields(&self) -> &Fields {
                &self.fields
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("prefix", &self.plugin.prefix())
                    .field("fields", &self.fields)
                    .finish()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.plugin, &other.plugin) && self.fields == other.fields
            }
        }

        impl Eq for $name {}
    };
}
pub(super) use plugin_endpoint;

/// A server endpoint type added from outside (TLS's `ssl:`/`tls:`).
pub trait ServerPlugin: Send + Sync + fmt::Debug {
    /// The type name, as written before the first `:`.
    fn prefix(&self) -> &str;

    /// Check the fields when the description is parsed.
    ///
    /// # Errors
    ///
    /// The problem, naming the field ([`Fields::bind`] and [`Bound`](super::Bound) do the
    /// usual checks).
    fn check(&self, fields: &Fields) -> Result<(), ParseProblem>;

    /// Listen on the endpoint `fields` describe (already checked).
    ///
    /// # Errors
    ///
    /// As [`listen`](super::listen).
    fn listen(
        &self,
        reactor: &Reactor,
        fields: &Fields,
        factory: Rc<dyn Factory>,
    ) -> Result<Rc<dyn ListeningPort>, EndpointError>;
}

/// A client endpoint type added from outside.
pub trait ClientPlugin: Send + Sync + fmt::Debug {
    /// The type name.
    fn prefix(&self) -> &str;

    /// As [`ServerPlugin::check`].
    ///
    /// # Errors
    ///
    /// The problem, naming the field.
    fn check(&self, fields: &Fields) -> Result<(), ParseProblem>;

    /// Connect as [`connect`](super::connect) does: the Deferred fires with the transport
    /// once the factory's protocol is connected, or fails with a
    /// [`ConnectError`](super::ConnectError).
    fn connect(
        &self,
        reactor: &Reactor,
        fields: &Fields,
        factory: Rc<dyn Factory>,
    ) -> Deferred<Rc<dyn Transport>>;
}

/// A prefix is built in or already registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTaken(pub String);

impl fmt::Display for PrefixTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the endpoint type \"{}\" is already defined", self.0)
    }
}

impl std::error::Error for PrefixTaken {}

static SERVER_PLUGINS: RwLock<Vec<Arc<dyn ServerPlugin>>> = RwLock::new(Vec::new());
static CLIENT_PLUGINS: RwLock<Vec<Arc<dyn ClientPlugin>>> = RwLock::new(Vec::new());

const SERVER_BUILTIN: &[&str] = &["tcp", "tcp6", "unix", "systemd", "udp"];
const CLIENT_BUILTIN: &[&str] = &["tcp", "unix"];

/// Add a server endpoint type, for every reactor of the process.
///
/// # Errors
///
/// [`PrefixTaken`] if the prefix is built in or registered already.
pub fn register_server_plugin(plugin: Arc<dyn ServerPlugin>) -> Result<(), PrefixTaken> {
    ensure_builtin();
    let prefix = plugin.prefix().to_ascii_lowercase();
    let mut list = SERVER_PLUGINS
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    if SERVER_BUILTIN.contains(&prefix.as_str())
        || list
            .iter()
            .any(|p| p.prefix().eq_ignore_ascii_case(&prefix))
    {
        return Err(PrefixTaken(prefix));
    }
    list.push(plugin);
    Ok(())
}

/// Add a client endpoint type, for every reactor of the process.
///
/// # Errors
///
/// [`PrefixTaken`] if the prefix is built in or registered already.
pub fn register_client_plugin(plugin: Arc<dyn ClientPlugin>) -> Result<(), PrefixTaken> {
    ensure_builtin();
    let prefix = plugin.prefix().to_ascii_lowercase();
    let mut list = CLIENT_PLUGINS
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    if CLIENT_BUILTIN.contains(&prefix.as_str())
        || list
            .iter()
            .any(|p| p.prefix().eq_ignore_ascii_case(&prefix))
    {
        return Err(PrefixTaken(prefix));
    }
    list.push(plugin);
    Ok(())
}

/// Put the plugins this build has built in (TLS's `ssl:`/`tls:` with feature `tls`) in the
/// tables, once, before anything reads or adds to them.
fn ensure_builtin() {
    #[cfg(feature = "tls")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            SERVER_PLUGINS
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::new(super::tls::SslServer));
            CLIENT_PLUGINS
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::new(super::tls::TlsClient));
        });
    }
}

pub(crate) fn server_plugin(kind: &str) -> Option<Arc<dyn ServerPlugin>> {
    ensure_builtin();
    let list = SERVER_PLUGINS
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    list.iter()
        .find(|p| p.prefix().eq_ignore_ascii_case(kind))
        .cloned()
}

pub(crate) fn client_plugin(kind: &str) -> Option<Arc<dyn ClientPlugin>> {
    ensure_builtin();
    let list = CLIENT_PLUGINS
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    list.iter()
        .find(|p| p.prefix().eq_ignore_ascii_case(kind))
        .cloned()
}
