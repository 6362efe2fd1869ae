//! Client endpoint descriptions (Twisted's `clientFromString`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::error::{EndpointError, ParseProblem};
use super::fields::{Escaped, Fields};
use super::plugin::{self, ClientPlugin};
use super::server::{required_port, write_fields};

/// The connection timeout when a description gives none (Twisted's 30 seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed client endpoint description; `Display` writes it back.
///
/// ```
/// use std::time::Duration;
/// use torsion_daemon::endpoints::{ClientEndpoint, TcpClient};
///
/// let e = ClientEndpoint::parse("tcp:host=example.com:port=80:timeout=5")?;
/// let ClientEndpoint::Tcp(t) = &e else { unreachable!() };
/// assert_eq!((t.host.as_str(), t.port, t.timeout), ("example.com", 80, Some(Duration::from_secs(5))));
/// assert_eq!(e.to_string(), "tcp:host=example.com:port=80:timeout=5");
/// # Ok::<(), torsion_daemon::endpoints::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEndpoint {
    /// `tcp:host=H:port=P[:timeout=S][:bindAddress=A]` (also `tcp:H:P`). A host name is
    /// resolved and every address tried with Happy Eyeballs (Twisted's `HostnameEndpoint`).
    Tcp(TcpClient),
    /// `unix:path=P[:timeout=S][:lockfile=0|1]` (also `unix:P`).
    Unix(UnixClient),
    /// A type registered with [`register_client_plugin`](super::register_client_plugin).
    Plugin(PluginClient),
}

/// A `tcp:` client endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpClient {
    /// A host name or an IP address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How long each connection attempt may take; `None` (written `timeout=0`, as in
    /// Twisted) waits for the OS.
    pub timeout: Option<Duration>,
    /// The local address to connect from (port 0).
    pub bind_address: Option<IpAddr>,
}

/// A `unix:` client endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixClient {
    /// The socket file.
    pub path: PathBuf,
    /// As [`TcpClient::timeout`].
    pub timeout: Option<Duration>,
    /// Connect only if a server holds the lock file `PATH.lock` (Twisted's `checkPID`);
    /// default off.
    pub lockfile: bool,
}

plugin::plugin_endpoint!(
    /// A client endpoint of a plugin type.
    PluginClient,
    ClientPlugin
);

/// Seconds, whole or decimal (Twisted takes whole seconds only); 0 is no timeout.
fn timeout(v: &str) -> Option<Option<Duration>> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    let secs: f64 = v.parse().ok()?;
    let d = Duration::try_from_secs_f64(secs).ok()?;
    Some((!d.is_zero()).then_some(d))
}

const TIMEOUT: &str = "a timeout in seconds";

fn parse_tcp(fields: &Fields) -> Result<TcpClient, ParseProblem> {
    // Twisted's `_parseClientTCP`: `tcp:H:P`, and `tcp:P:host=H` (one positional with a
    // named host is the port).
    let named_host = fields.named().iter().any(|(n, _)| n == "host");
    let params: &[&'static str] = if named_host && fields.positional().len() == 1 {
        &["port", "host", "timeout", "bindAddress"]
    } else {
        &["host", "port", "timeout", "bindAddress"]
    };
    let b = fields.bind(params)?;
    let host = b.require("host")?;
    if host.is_empty() {
        return Err(ParseProblem::Invalid {
            field: "host".into(),
            value: String::new(),
            expected: "a host name or an IP address",
        });
    }
    let port = required_port(&b)?;
    Ok(TcpClient {
        host: host.to_owned(),
        port,
        timeout: b
            .parse_with("timeout", TIMEOUT, timeout)?
            .unwrap_or(Some(DEFAULT_TIMEOUT)),
        bind_address: b.parse_with("bindAddress", "an IP address", |v| v.parse().ok())?,
    })
}

fn parse_unix(fields: &Fields) -> Result<UnixClient, ParseProblem> {
    let b = fields.bind(&["path", "timeout", "lockfile"])?;
    let path = b.require("path")?;
    if path.is_empty() {
        return Err(ParseProblem::Invalid {
            field: "path".into(),
            value: String::new(),
            expected: "a path",
        });
    }
    Ok(UnixClient {
        path: PathBuf::from(path),
        timeout: b
            .parse_with("timeout", TIMEOUT, timeout)?
            .unwrap_or(Some(DEFAULT_TIMEOUT)),
        lockfile: b
            .parse_with("lockfile", "0 or 1", |v| match v {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            })?
            .unwrap_or(false),
    })
}

impl ClientEndpoint {
    /// Parse a client endpoint description (Twisted's `clientFromString`, without the
    /// reactor). Type names are matched without regard to case; field names exactly.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Parse`] naming the description and what is wrong with it.
    #[doc(alias = "clientFromString")]
    pub fn parse(description: &str) -> Result<ClientEndpoint, EndpointError> {
        Self::parse_fields(description).map_err(|p| EndpointError::parse(description, p))
    }

    fn parse_fields(description: &str) -> Result<ClientEndpoint, ParseProblem> {
        let fields = Fields::split(description)?;
        match fields.kind().to_ascii_lowercase().as_str() {
            "tcp" => parse_tcp(&fields).map(ClientEndpoint::Tcp),
            "unix" => parse_unix(&fields).map(ClientEndpoint::Unix),
            _ => match plugin::client_plugin(fields.kind()) {
                Some(plugin) => {
                    // User code: through the funnel, a panic becomes a parse problem.
                    torsion_reactor::guard("check", || plugin.check(&fields))
                        .map_err(|p| ParseProblem::PluginPanicked(p.to_string()))??;
                    Ok(ClientEndpoint::Plugin(PluginClient { plugin, fields }))
                }
                None => Err(ParseProblem::UnknownType(fields.kind().to_owned())),
            },
        }
    }
}

impl FromStr for ClientEndpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientEndpoint::parse(s)
    }
}

fn write_timeout(f: &mut fmt::Formatter<'_>, t: Option<Duration>) -> fmt::Result {
    match t {
        Some(d) if d == DEFAULT_TIMEOUT => Ok(()),
        Some(d) => write!(f, ":timeout={}", d.as_secs_f64()),
        None => f.write_str(":timeout=0"),
    }
}

impl fmt::Display for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEndpoint::Tcp(t) => {
                write!(f, "tcp:host={}:port={}", Escaped(&t.host), t.port)?;
                write_timeout(f, t.timeout)?;
                if let Some(a) = t.bind_address {
                    write!(f, ":bindAddress={}", Escaped(&a.to_string()))?;
                }
                Ok(())
            }
            ClientEndpoint::Unix(u) => {
                write!(f, "unix:path={}", Escaped(&u.path.to_string_lossy()))?;
                write_timeout(f, u.timeout)?;
                if u.lockfile {
                    f.write_str(":lockfile=1")?;
                }
                Ok(())
            }
            ClientEndpoint::Plugin(p) => write_fields(f, &p.fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ClientEndpoint {
        match ClientEndpoint::parse(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match ClientEndpoint::parse(s) {
            Ok(e) => panic!("{s} parsed: {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tcp_forms() {
        let e = ok("tcp:host=a:port=1");
        assert_eq!(ok("tcp:a:1"), e);
        assert_eq!(ok("tcp:1:host=a"), e);
        assert_eq!(ok("TCP:host=a:port=1"), e);
        let ClientEndpoint::Tcp(t) = e else { panic!() };
        assert_eq!(t.timeout, Some(DEFAULT_TIMEOUT));
        let ClientEndpoint::Tcp(t) = ok("tcp:host=a:port=1:bindAddress=1.2.3.4:timeout=0") else {
            panic!()
        };
        assert_eq!(t.bind_address, Some(IpAddr::from([1, 2, 3, 4])));
        assert_eq!(t.timeout, None);
        let ClientEndpoint::Tcp(t) = ok(r"tcp:host=\:\:1:port=1:timeout=1.5") else {
            panic!()
        };
        assert_eq!(
            (t.host.as_str(), t.timeout),
            ("::1", Some(Duration::from_millis(1500)))
        );
    }

    #[test]
    fn tcp_errors() {
        assert_eq!(err("tcp:host=a"), r#"endpoint "tcp:host=a": port: missing"#);
        assert_eq!(
            err("tcp:host=a:port=b"),
            r#"endpoint "tcp:host=a:port=b": port: "b" is not a port number (0-65535)"#
        );
        assert!(
            err("tcp:host=a:port=1:timeout=soon")
                .contains(r#"timeout: "soon" is not a timeout in seconds"#)
        );
        assert!(err("tcp:host=a:port=1:bindAddress=here").contains("bindAddress: \"here\""));
        assert!(err("tcp:host=a:port=1:foo=2").contains("foo: unknown field"));
        assert!(err("udp:host=a:port=1").contains("unknown endpoint type \"udp\""));
    }

    #[test]
    fn unix() {
        assert_eq!(ok("unix:/x"), ok("unix:path=/x"));
        let ClientEndpoint::Unix(u) = ok("unix:path=/x:timeout=2:lockfile=1") else {
            panic!()
        };
        assert_eq!(
            (u.timeout, u.lockfile),
            (Some(Duration::from_secs(2)), true)
        );
        assert!(err("unix:timeout=1").contains("path: missing"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp:host=a:port=1",
            r"tcp:host=\:\:1:port=1:timeout=0.25:bindAddress=\:\:1",
            "tcp:host=a:port=1:timeout=0",
            r"unix:path=/a\:b:timeout=3:lockfile=1",
        ] {
            let e = ok(s);
            assert_eq!(ok(&e.to_string()), e, "{s} -> {e}");
        }
    }
}
