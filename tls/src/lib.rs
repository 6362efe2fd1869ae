//! TLS for torsion, on rustls: a protocol wrapper over any transport.
//!
//! TLS here is Twisted's design (`TLSMemoryBIOProtocol`): a [`TlsProtocol`] is the
//! protocol of an underlying transport — a TCP or Unix connection, a child's pipes, the
//! test kit's loopback pump — and it wraps your protocol, which gets a [`TlsTransport`] and
//! sees plaintext. Nothing here does I/O of its own.
//!
//! - [`TlsServerConfig`] (certificate chain and key from PEM files, SNI among several
//!   certificates, ALPN, optional client-certificate verification) and [`TlsClientConfig`]
//!   (the system's roots by default or given [`TrustRoots`], the server name for SNI and
//!   verification, ALPN, an optional client certificate).
//! - [`TlsServerFactory`] / [`TlsClientFactory`] wrap a user factory.
//! - With torsion's `tls` feature, `torsion::endpoints` understands the `ssl:` server and
//!   `tls:` client endpoint strings (`torsion_daemon::endpoints::tls`).
//! - [`TlsControl::start_tls`] switches a plaintext connection to TLS, keeping the
//!   protocol (STARTTLS).
//! - Failures are values: a failed handshake, a bad certificate or garbage from the peer
//!   closes that connection, and `connection_lost` gets a reason carrying a [`TlsError`]
//!   that names the alert or the verification error.
//!
//! The crypto provider is *ring*.
//!
//! # Example
//!
//! An echo server and a client over the test kit's loopback pump, with a certificate made
//! for the test:
//!
//! ```
//! use std::rc::Rc;
//! use torsion_testing::{AccumulatingProtocol, connect};
//! use torsion_tls::{CertificateKey, TlsClientConfig, TlsProtocol, TlsServerConfig, TrustRoots};
//! use torsion_transport::{Protocol, Transport};
//!
//! struct Echo(Option<Rc<dyn Transport>>);
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Rc<dyn Transport>) { self.0 = Some(t) }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 { t.write(data) }
//!     }
//! }
//!
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
//! let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
//! let server = TlsServerConfig::builder()
//!     .certificate(CertificateKey::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?)
//!     .build()?;
//! let client = TlsClientConfig::builder()
//!     .server_name("localhost")
//!     .trust_roots(TrustRoots::from_pem(cert_pem.as_bytes())?)
//!     .build()?;
//!
//! let (seen, got) = AccumulatingProtocol::new();
//! let pump = connect(
//!     Box::new(TlsProtocol::server(server, Box::new(Echo(None)))),
//!     Box::new(TlsProtocol::client(client, Box::new(seen))),
//! );
//! got.transport().expect("connected").write(b"hello over TLS");
//! pump.flush();
//! assert_eq!(got.data(), b"hello over TLS");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod control;
pub mod error;
pub mod factory;
pub mod protocol;
pub mod transport;

pub use config::{
    CertificateKey, TlsClientConfig, TlsClientConfigBuilder, TlsServerConfig,
    TlsServerConfigBuilder, TlsVersion, TrustRoots,
};
pub use control::{StartTlsError, TlsControl};
pub use error::{ConfigError, TlsError};
pub use factory::{TlsClientFactory, TlsServerFactory};
pub use protocol::{EARLY_BUFFER_SIZE, TlsMode, TlsProtocol};
pub use transport::TlsTransport;

/// The rustls and PKI types that appear in this crate's API.
pub use rustls;
pub use rustls_pki_types as pki_types;
