//! Errors as values: building a configuration ([`ConfigError`]) and a connection's TLS
//! failure ([`TlsError`], the error inside the [`Reason`] a protocol's `connection_lost`
//! gets).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::{AlertDescription, CertificateError};
use torsion_transport::Reason;

/// Why a [`TlsServerConfig`](crate::TlsServerConfig) or
/// [`TlsClientConfig`](crate::TlsClientConfig) could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file (certificate, key, trust roots) could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A PEM document could not be parsed.
    Pem {
        /// Where it came from (a path, or `"memory"`).
        source: String,
        /// What was wrong with it.
        error: String,
    },
    /// A PEM document held no certificate where a certificate chain or a root was needed.
    NoCertificates {
        /// Where it came from (a path, or `"memory"`).
        source: String,
    },
    /// A PEM document held no private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY`).
    NoPrivateKey {
        /// Where it came from (a path, or `"memory"`).
        source: String,
    },
    /// The private key's algorithm is not supported, or it does not parse.
    BadPrivateKey(String),
    /// The server name is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// A client configuration has no server name (needed for SNI and verification).
    NoServerName,
    /// A server configuration has no certificate at all (neither a default nor an SNI one).
    NoServerCertificate,
    /// The system's trust store held no usable root (install `ca-certificates`, or set
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`, or give the roots explicitly).
    NoSystemRoots(String),
    /// A trust root was rejected (not a CA certificate rustls can use).
    BadRoot(String),
    /// rustls refused the configuration (versions, client-verifier roots, ...).
    Rustls(rustls::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ConfigError::Pem { source, error } => {
                write!(f, "{source} is not valid PEM: {error}")
            }
            ConfigError::NoCertificates { source } => {
                write!(f, "{source} holds no PEM certificate (BEGIN CERTIFICATE)")
            }
            ConfigError::NoPrivateKey { source } => write!(
                f,
                "{source} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
            ),
            ConfigError::BadPrivateKey(e) => write!(f, "unusable private key: {e}"),
            ConfigError::InvalidServerName(n) => {
                write!(f, "{n:?} is not a valid DNS name or IP address")
            }
            ConfigError::NoServerName => f.write_str(
                "a TLS client needs a server name (for SNI and to verify the certificate)",
            ),
            ConfigError::NoServerCertificate => {
                f.write_str("a TLS server needs at least one certificate and key")
            }
            ConfigError::NoSystemRoots(why) => write!(
                f,
                "no trust roots found in the system store ({why}); install ca-certificates, set SSL_CERT_FILE, or give the roots explicitly"
            ),
            ConfigError::BadRoot(e) => write!(f, "unusable trust root: {e}"),
            ConfigError::Rustls(e) => write!(f, "invalid TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { error, .. } => Some(error),
            ConfigError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for ConfigError {
    fn from(e: rustls::Error) -> Self {
        ConfigError::Rustls(e)
    }
}

/// Why a TLS connection failed. It reaches the protocol's `connection_lost` inside
/// [`Reason::ConnectionLost`]; [`TlsError::from_reason`] gets it back out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsError {
    /// The handshake failed: a bad certificate, an alert from the peer, no common
    /// version or cipher suite, garbage where a handshake message was expected.
    Handshake(rustls::Error),
    /// The established connection failed (a bad record, a decryption error, an alert).
    Protocol(rustls::Error),
    /// The peer closed the underlying connection without a TLS `close_notify`: the data
    /// may have been cut short.
    Truncated,
    /// The peer closed the underlying connection before the handshake completed.
    ClosedDuringHandshake,
    /// The TLS session could not be set up for this connection.
    Setup(String),
}

impl TlsError {
    /// The rustls error behind this failure, if any.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            TlsError::Handshake(e) | TlsError::Protocol(e) => Some(e),
            _ => None,
        }
    }

    /// The certificate verification error, if the peer's certificate was rejected.
    pub fn certificate_error(&self) -> Option<&CertificateError> {
        match self.rustls_error() {
            Some(rustls::Error::InvalidCertificate(e)) => Some(e),
            _ => None,
        }
    }

    /// The alert the peer sent, if the failure was an alert from the peer.
    pub fn alert_received(&self) -> Option<AlertDescription> {
        match self.rustls_error() {
            Some(rustls::Error::AlertReceived(a)) => Some(*a),
            _ => None,
        }
    }

    /// The [`TlsError`] carried by a `connection_lost` reason, if the connection ended
    /// because of TLS.
    pub fn from_reason(reason: &Reason) -> Option<&TlsError> {
        reason.io_error()?.get_ref()?.downcast_ref::<TlsError>()
    }

    /// This error as a `connection_lost` reason.
    pub fn into_reason(self) -> Reason {
        Reason::ConnectionLost(Arc::new(io::Error::new(io::ErrorKind::InvalidData, self)))
    }
}

/// What a certificate error means, in words a user can act on.
fn describe_certificate_error(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "it is not signed by a trusted certificate authority (unknown issuer)".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".to_owned()
        }
        CertificateError::NotValidForName => "it is not valid for the server name".to_owned(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "it is not valid for the name {expected:?} (it names {})",
            presented.join(", ")
        ),
        CertificateError::BadSignature => "its signature is bad".to_owned(),
        CertificateError::Revoked => "it has been revoked".to_owned(),
        CertificateError::BadEncoding => "it does not parse".to_owned(),
        other => format!("{other:?}"),
    }
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!(
            "the peer's certificate could not be verified: {}",
            describe_certificate_error(c)
        ),
        rustls::Error::AlertReceived(a) => format!("the peer sent the TLS alert {a:?}"),
        rustls::Error::NoCertificatesPresented => {
            "the peer presented no certificate (a client certificate is required)".to_owned()
        }
        rustls::Error::InvalidMessage(m) => {
            format!("the peer sent something that is not TLS ({m:?})")
        }
        other => other.to_string(),
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {}", describe(e)),
            TlsError::Protocol(e) => write!(f, "TLS connection failed: {}", describe(e)),
            TlsError::Truncated => f.write_str(
                "the peer closed the connection without a TLS close_notify (the data may be truncated)",
            ),
            TlsError::ClosedDuringHandshake => {
                f.write_str("TLS handshake failed: the peer closed the connection during the handshake")
            }
            TlsError::Setup(why) => write!(f, "TLS session could not be set up: {why}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.rustls_error()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_carries_the_tls_error_and_names_it() {
        let e = TlsError::Handshake(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let reason = e.into_reason();
        assert!(!reason.is_clean());
        assert!(
            reason
                .to_string()
                .contains("certificate could not be verified"),
            "{reason}"
        );
        let back = TlsError::from_reason(&reason).expect("a TlsError inside");
        assert!(matches!(
            back.certificate_error(),
            Some(CertificateError::UnknownIssuer)
        ));
        let alert = TlsError::Handshake(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert!(alert.to_string().contains("CertificateRequired"));
        assert_eq!(
            alert.alert_received(),
            Some(AlertDescription::CertificateRequired)
        );
        assert!(TlsError::from_reason(&Reason::ConnectionDone).is_none());
    }
}
