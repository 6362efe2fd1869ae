//! TLS endpoints in Twisted's string syntax (feature `tls`, which torsion's own `tls`
//! feature turns on): the server type `ssl:` and the client type `tls:`, built in beside
//! `tcp:` and `unix:`, so
//! `endpoints::listen(&reactor, "ssl:8443:privateKey=key.pem:certKey=cert.pem", factory)`
//! and `endpoints::connect(&reactor, "tls:host=example.org:port=443", factory)` just work.
//!
//! # `ssl:` (server)
//!
//! Fields, in positional order (Twisted's): `port`, `privateKey` (default `server.pem`),
//! `certKey` (the certificate chain, PEM; default: the `privateKey` file),
//! `sslmethod` (`TLS_METHOD`/`SSLv23_METHOD`: 1.3 and 1.2, `TLSv1_2_METHOD`: 1.2 only),
//! `interface` (default all), `backlog`, `extraCertChain` (a PEM file of intermediate
//! certificates sent after the leaf). A key or certificate that cannot be read or parsed
//! is an error of `listen` naming the file.
//!
//! # `tls:` (client)
//!
//! Fields, in positional order (Twisted's): `host`, `port`, `timeout`, `bindAddress`,
//! `certificate` and `privateKey` (a client certificate, PEM; together), `trustRoots` (a PEM
//! file or a directory of them; default: the system's roots). The server's certificate
//! is verified for `host`. The connection counts as made once the handshake completed:
//! the Deferred fires with the TLS transport then, or fails with the [`TlsError`] (a
//! certificate that could not be verified, an alert) or the TCP [`ConnectError`].
//!
//! ```
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use torsion_daemon::endpoints::ServerEndpoint;
//! let e = ServerEndpoint::parse("ssl:8443:privateKey=key.pem:certKey=cert.pem")?;
//! assert!(e.to_string().starts_with("ssl:"));
//! assert!(ServerEndpoint::parse("ssl:8443:color=blue").is_err());
//! # Ok(()) }
//! # demo().unwrap();
//! ```

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::endpoints::{
    self, Bound, ClientPlugin, EndpointError, Fields, ParseProblem, ServerPlugin,
};
use torsion_reactor::Reactor;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{Address, Factory, ListeningPort, Protocol, Transport};

#[cfg(doc)]
use crate::endpoints::ConnectError;
#[cfg(doc)]
use torsion_tls::TlsError;

use torsion_tls::{
    CertificateKey, ConfigError, TlsClientConfig, TlsMode, TlsProtocol, TlsServerConfig,
    TlsServerFactory, TlsVersion, TrustRoots,
};

const SERVER_PARAMS: &[&str] = &[
    "port",
    "privateKey",
    "certKey",
    "sslmethod",
    "interface",
    "backlog",
    "extraCertChain",
];

const CLIENT_PARAMS: &[&str] = &[
    "host",
    "port",
    "timeout",
    "bindAddress",
    "certificate",
    "privateKey",
    "trustRoots",
];

/// Escape a value for a description (`\`, `:` and `=` get a backslash).
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ':' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn versions(method: Option<&str>) -> Result<Vec<TlsVersion>, ParseProblem> {
    match method {
        None | Some("TLS_METHOD" | "SSLv23_METHOD") => Ok(Vec::new()),
        Some("TLSv1_2_METHOD") => Ok(vec![TlsVersion::Tls12]),
        Some(other) => Err(ParseProblem::Invalid {
            field: "sslmethod".to_owned(),
            value: other.to_owned(),
            expected: "TLS_METHOD, SSLv23_METHOD or TLSv1_2_METHOD (TLS 1.3 and 1.2 only)",
        }),
    }
}

fn check_port(b: &Bound) -> Result<(), ParseProblem> {
    b.parse_with("port", "a port number (0-65535)", |v| v.parse::<u16>().ok())
        .map(drop)
}

/// The `ssl:` server endpoint type.
#[derive(Debug)]
pub(crate) struct SslServer;

impl SslServer {
    fn config(b: &Bound) -> Result<TlsServerConfig, ConfigError> {
        let key = b.get("privateKey").unwrap_or("server.pem");
        let cert = b.get("certKey").unwrap_or(key);
        let mut certificate = CertificateKey::from_pem_files(cert, key)?;
        if let Some(extra) = b.get("extraCertChain") {
            certificate = certificate.with_extra_chain_file(Path::new(extra))?;
        }
        let versions = versions(b.get("sslmethod")).unwrap_or_default();
        TlsServerConfig::builder()
            .certificate(certificate)
            .versions(&versions)
            .build()
    }
}

impl ServerPlugin for SslServer {
    fn prefix(&self) -> &str {
        "ssl"
    }

    fn check(&self, fields: &Fields) -> Result<(), ParseProblem> {
        let b = fields.bind(SERVER_PARAMS)?;
        b.require("port")?;
        check_port(&b)?;
        versions(b.get("sslmethod"))?;
        b.parse_with("backlog", "a positive number", |v| {
            v.parse::<u32>().ok().filter(|n| *n > 0)
        })?;
        Ok(())
    }

    fn listen(
        &self,
        reactor: &Reactor,
        fields: &Fields,
        factory: Rc<dyn Factory>,
    ) -> Result<Rc<dyn ListeningPort>, EndpointError> {
        let b = fields
            .bind(SERVER_PARAMS)
            .map_err(|p| EndpointError::parse(fields.kind(), p))?;
        let port = b
            .require("port")
            .map_err(|p| EndpointError::parse(fields.kind(), p))?;
        let config = Self::config(&b).map_err(|e| EndpointError::Listen {
            endpoint: describe(fields),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        let mut tcp = format!("tcp:port={}", escaped(port));
        if let Some(i) = b.get("interface") {
            tcp.push_str(&format!(":interface={}", escaped(i)));
        }
        if let Some(n) = b.get("backlog") {
            tcp.push_str(&format!(":backlog={}", escaped(n)));
        }
        endpoints::listen(
            reactor,
            &tcp,
            Rc::new(TlsServerFactory::new(config, factory)),
        )
    }
}

/// The description, rebuilt from its fields (for messages).
fn describe(fields: &Fields) -> String {
    let mut s = fields.kind().to_owned();
    for v in fields.positional() {
        s.push(':');
        s.push_str(&escaped(v));
    }
    for (k, v) in fields.named() {
        s.push_str(&format!(":{k}={}", escaped(v)));
    }
    s
}

/// The `tls:` client endpoint type.
#[derive(Debug)]
pub(crate) struct TlsClient;

impl TlsClient {
    fn config(b: &Bound, host: &str) -> Result<TlsClientConfig, ConfigError> {
        let mut builder = TlsClientConfig::builder().server_name(host);
        if let Some(roots) = b.get("trustRoots") {
            builder = builder.trust_roots(TrustRoots::from_path(roots)?);
        }
        if let Some(cert) = b.get("certificate") {
            let key = b.get("privateKey").unwrap_or(cert);
            builder = builder.client_certificate(CertificateKey::from_pem_files(cert, key)?);
        }
        builder.build()
    }
}

impl ClientPlugin for TlsClient {
    fn prefix(&self) -> &str {
        "tls"
    }

    fn check(&self, fields: &Fields) -> Result<(), ParseProblem> {
        let b = fields.bind(CLIENT_PARAMS)?;
        b.require("host")?;
        b.require("port")?;
        check_port(&b)?;
        b.parse_with("timeout", "a number of seconds", |v| {
            v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
        })?;
        if b.get("privateKey").is_some() && b.get("certificate").is_none() {
            return Err(ParseProblem::Conflict(
                "privateKey needs certificate (the client certificate it belongs to)",
            ));
        }
        Ok(())
    }

    fn connect(
        &self,
        reactor: &Reactor,
        fields: &Fields,
        factory: Rc<dyn Factory>,
    ) -> Deferred<Rc<dyn Transport>> {
        let b = match fields.bind(CLIENT_PARAMS) {
            Ok(b) => b,
            Err(p) => return Deferred::fail(Failure::new(EndpointError::parse(fields.kind(), p))),
        };
        let (Some(host), Some(port)) = (b.get("host"), b.get("port")) else {
            return Deferred::fail(Failure::new(EndpointError::parse(
                fields.kind(),
                ParseProblem::Missing("host"),
            )));
        };
        let config = match Self::config(&b, host) {
            Ok(c) => c,
            Err(e) => return Deferred::fail(Failure::new(e)),
        };
        let mut tcp = format!("tcp:host={}:port={}", escaped(host), escaped(port));
        for field in ["timeout", "bindAddress"] {
            if let Some(v) = b.get(field) {
                tcp.push_str(&format!(":{field}={}", escaped(v)));
            }
        }
        let handshake: PendingHandshake = Rc::default();
        let wrapped = Rc::new(ClientWrap {
            config,
            factory,
            handshake: handshake.clone(),
        });
        endpoints::connect(reactor, &tcp, wrapped).chain(move |_tcp| {
            handshake
                .borrow_mut()
                .take()
                .unwrap_or_else(|| Deferred::fail(Failure::msg("the TLS connection was not built")))
        })
    }
}

/// The handshake of the connection a client endpoint's factory built.
type PendingHandshake = Rc<RefCell<Option<Deferred<Rc<dyn Transport>>>>>;

/// Wraps each protocol of a client endpoint's factory in TLS, and keeps the Deferred of
/// its handshake: taken from the start, so a handshake that fails before the TCP
/// connection is reported still reports its error.
struct ClientWrap {
    config: TlsClientConfig,
    factory: Rc<dyn Factory>,
    handshake: PendingHandshake,
}

impl fmt::Debug for ClientWrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientWrap").finish_non_exhaustive()
    }
}

impl Factory for ClientWrap {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let app = self.factory.build_protocol(peer)?;
        let p = TlsProtocol::new(TlsMode::Client(self.config.clone()), app);
        let control = p.control();
        let done = control.when_handshake_done().and_then(move |()| {
            control
                .transport()
                .ok_or_else(|| Failure::msg("the TLS connection closed right after its handshake"))
        });
        *self.handshake.borrow_mut() = Some(done);
        Some(Box::new(p))
    }
}
