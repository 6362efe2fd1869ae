//! Server endpoint descriptions (Twisted's `serverFromString`): parsed into a typed value,
//! written back by `Display`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::error::{EndpointError, ParseProblem};
use super::fields::{Bound, Escaped, Fields};
use super::plugin::{self, ServerPlugin};

/// A parsed server endpoint description. `Display` writes it back in the string form
/// (named fields, defaults left out), which parses to the same value.
///
/// ```
/// use torsion_daemon::endpoints::ServerEndpoint;
///
/// let e = ServerEndpoint::parse("tcp:8080:interface=127.0.0.1")?;
/// assert_eq!(e.to_string(), "tcp:port=8080:interface=127.0.0.1");
/// assert_eq!(ServerEndpoint::parse(&e.to_string())?, e);
/// let err = ServerEndpoint::parse("tcp:port=x").unwrap_err();
/// assert_eq!(err.to_string(), r#"endpoint "tcp:port=x": port: "x" is not a port number (0-65535)"#);
/// # Ok::<(), torsion_daemon::endpoints::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEndpoint {
    /// `tcp:PORT[:interface=ADDR][:backlog=N]` and `tcp6:PORT[:backlog=N][:interface=ADDR]`.
    Tcp(TcpServer),
    /// `unix:ADDRESS[:mode=0666][:backlog=N][:lockfile=0|1]`.
    Unix(UnixServer),
    /// `systemd:domain=INET|INET6|UNIX:index=N` or `systemd:domain=..:name=NAME`.
    Systemd(SystemdServer),
    /// `udp:PORT[:interface=ADDR]`: a datagram endpoint, for
    /// [`listen_datagram`](super::listen_datagram).
    Udp(UdpServer),
    /// A type registered with [`register_server_plugin`](super::register_server_plugin)
    /// (the TLS feature's `ssl:` and `tls:`).
    Plugin(PluginServer),
}

/// A `tcp:` or `tcp6:` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpServer {
    /// The port (0 picks a free one).
    pub port: u16,
    /// The address to bind: `0.0.0.0` by default for `tcp:`, `::` for `tcp6:`.
    pub interface: IpAddr,
    /// The listen backlog; `None` is the reactor's default (1024; Twisted's is 50).
    pub backlog: Option<u32>,
    /// Written as `tcp6:` (its positional order is `port:backlog:interface`).
    pub tcp6: bool,
}

/// A `unix:` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixServer {
    /// The socket file.
    pub path: PathBuf,
    /// The permissions the socket file gets (octal in the description; default `0666`).
    pub mode: u32,
    /// The listen backlog; `None` is the reactor's default.
    pub backlog: Option<u32>,
    /// Guard the path with a lock file `PATH.lock` (default on, as Twisted's `wantPID`):
    /// a second server on the same path fails at once, and the socket file a dead server
    /// left behind is replaced (only if nothing answers on it). The lock is an `flock` held
    /// while listening; the lock file itself stays. Without it (`lockfile=0`), as in
    /// Twisted, an existing file at the path is an error.
    pub lockfile: bool,
}

/// The address family of a socket systemd passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Domain {
    /// `INET`: IPv4.
    Inet,
    /// `INET6`: IPv6.
    Inet6,
    /// `UNIX`: a Unix socket.
    Unix,
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Domain::Inet => "INET",
            Domain::Inet6 => "INET6",
            Domain::Unix => "UNIX",
        })
    }
}

/// Which of the sockets systemd passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inherited {
    /// The Nth (from 0), in `LISTEN_FDS` order.
    Index(usize),
    /// The one named so in `LISTEN_FDNAMES` (`FileDescriptorName=` in the socket unit).
    Name(String),
}

/// A `systemd:` endpoint: a socket passed by systemd's socket activation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemdServer {
    /// The socket's address family, checked against the socket.
    pub domain: Domain,
    /// Which socket.
    pub which: Inherited,
}

/// A `udp:` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpServer {
    /// The port (0 picks a free one).
    pub port: u16,
    /// The address to bind (default `0.0.0.0`).
    pub interface: IpAddr,
}

plugin::plugin_endpoint!(
    /// An endpoint of a plugin type, with the fields it was given.
    PluginServer,
    ServerPlugin
);

/// A whole number written in digits only (Rust's parser would also take "+80"), in `T`'s
/// range.
fn whole_number<T: FromStr>(v: &str) -> Option<T> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn port_number(v: &str) -> Option<u16> {
    whole_number(v)
}

/// The `port` field, which must be given: [`ParseProblem::Missing`] without it,
/// [`ParseProblem::Invalid`] for anything but a port number.
pub(crate) fn required_port(b: &Bound) -> Result<u16, ParseProblem> {
    b.parse_with("port", PORT, port_number)?
        .ok_or(ParseProblem::Missing("port"))
}

fn count(v: &str) -> Option<u32> {
    whole_number(v)
}

fn interface(v: &str, default: IpAddr) -> Option<IpAddr> {
    if v.is_empty() {
        return Some(default);
    }
    v.parse().ok()
}

fn flag(v: &str) -> Option<bool> {
    match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

const PORT: &str = "a port number (0-65535)";
const BACKLOG: &str = "a backlog (a whole number)";
const INTERFACE: &str = "an IP address";

fn parse_tcp(fields: &Fields, tcp6: bool) -> Result<TcpServer, ParseProblem> {
    // Twisted's positional orders: tcp (port, interface, backlog), tcp6 (port, backlog,
    // interface).
    let params: &[&'static str] = if tcp6 {
        &["port", "backlog", "interface"]
    } else {
        &["port", "interface", "backlog"]
    };
    let b = fields.bind(params)?;
    let port = required_port(&b)?;
    let default = if tcp6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let interface = b
        .parse_with("interface", INTERFACE, |v| interface(v, default))?
        .unwrap_or(default);
    let backlog = b.parse_with("backlog", BACKLOG, count)?;
    Ok(TcpServer {
        port,
        interface,
        backlog,
        tcp6,
    })
}

fn parse_unix(fields: &Fields) -> Result<UnixServer, ParseProblem> {
    let b = fields.bind(&["address", "mode", "backlog", "lockfile"])?;
    let path = b.require("address")?;
    if path.is_empty() {
        return Err(ParseProblem::Invalid {
            field: "address".into(),
            value: String::new(),
            expected: "a path",
        });
    }
    let mode = b
        .parse_with("mode", "an octal mode (0000-7777)", |v| {
            // Python's int(mode, 8), which Twisted calls, also takes a 0o prefix.
            let v = v.strip_prefix("0o").unwrap_or(v);
            if v.is_empty() || !v.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return None;
            }
            u32::from_str_radix(v, 8).ok().filter(|m| *m <= 0o7777)
        })?
        .unwrap_or(0o666);
    let backlog = b.parse_with("backlog", BACKLOG, count)?;
    let lockfile = b.parse_with("lockfile", "0 or 1", flag)?.unwrap_or(true);
    Ok(UnixServer {
        path: PathBuf::from(path),
        mode,
        backlog,
        lockfile,
    })
}

fn parse_systemd(fields: &Fields) -> Result<SystemdServer, ParseProblem> {
    let b = fields.bind(&["domain", "index", "name"])?;
    let domain = b.require("domain")?;
    let domain = match domain.to_ascii_uppercase().as_str() {
        "INET" => Domain::Inet,
        "INET6" => Domain::Inet6,
        "UNIX" => Domain::Unix,
        _ => {
            return Err(ParseProblem::Invalid {
                field: "domain".into(),
                value: domain.into(),
                expected: "INET, INET6 or UNIX",
            });
        }
    };
    let index = b.parse_with("index", "an index (0, 1, ...)", |v| {
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        v.parse::<usize>().ok()
    })?;
    let which = match (index, b.get("name")) {
        (Some(i), None) => Inherited::Index(i),
        (None, Some(name)) if !name.is_empty() => Inherited::Name(name.to_owned()),
        (None, Some(_)) => {
            return Err(ParseProblem::Invalid {
                field: "name".into(),
                value: String::new(),
                expected: "a socket name",
            });
        }
        _ => {
            return Err(ParseProblem::Conflict(
                "give exactly one of index= and name=",
            ));
        }
    };
    Ok(SystemdServer { domain, which })
}

fn parse_udp(fields: &Fields) -> Result<UdpServer, ParseProblem> {
    let b = fields.bind(&["port", "interface"])?;
    let port = required_port(&b)?;
    let default = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let interface = b
        .parse_with("interface", INTERFACE, |v| interface(v, default))?
        .unwrap_or(default);
    Ok(UdpServer { port, interface })
}

impl ServerEndpoint {
    /// Parse a server endpoint description (Twisted's `serverFromString`, without the
    /// reactor). Type names are matched without regard to case; field names exactly.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Parse`] naming the description and what is wrong with it.
    #[doc(alias = "serverFromString")]
    pub fn parse(description: &str) -> Result<ServerEndpoint, EndpointError> {
        Self::parse_fields(description).map_err(|p| EndpointError::parse(description, p))
    }

    fn parse_fields(description: &str) -> Result<ServerEndpoint, ParseProblem> {
        let fields = Fields::split(description)?;
        match fields.kind().to_ascii_lowercase().as_str() {
            "tcp" => parse_tcp(&fields, false).map(ServerEndpoint::Tcp),
            "tcp6" => parse_tcp(&fields, true).map(ServerEndpoint::Tcp),
            "unix" => parse_unix(&fields).map(ServerEndpoint::Unix),
            "systemd" => parse_systemd(&fields).map(ServerEndpoint::Systemd),
            "udp" => parse_udp(&fields).map(ServerEndpoint::Udp),
            _ => match plugin::server_plugin(fields.kind()) {
                Some(plugin) => {
                    // User code: through the funnel, a panic becomes a parse problem.
                    torsion_reactor::guard("check", || plugin.check(&fields))
                        .map_err(|p| ParseProblem::PluginPanicked(p.to_string()))??;
                    Ok(ServerEndpoint::Plugin(PluginServer { plugin, fields }))
                }
                None => Err(ParseProblem::UnknownType(fields.kind().to_owned())),
            },
        }
    }

    /// True for datagram endpoints, which [`listen_datagram`](super::listen_datagram)
    /// takes: `udp:`, and a `systemd:` endpoint whose inherited socket is a datagram socket
    /// (looked up in [`ListenFds`](crate::systemd::ListenFds); false when it cannot be
    /// found, so that `listen` reports why). The others are stream endpoints, which
    /// [`listen`](super::listen) takes.
    pub fn is_datagram(&self) -> bool {
        match self {
            ServerEndpoint::Udp(_) => true,
            ServerEndpoint::Systemd(s) => crate::systemd::ListenFds::from_env()
                .ok()
                .and_then(|fds| match &s.which {
                    Inherited::Index(i) => fds.get(*i).ok(),
                    Inherited::Name(n) => fds.by_name(n).ok(),
                })
                .and_then(|fd| {
                    nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SockType).ok()
                })
                .is_some_and(|t| t == nix::sys::socket::SockType::Datagram),
            _ => false,
        }
    }
}

impl FromStr for ServerEndpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerEndpoint::parse(s)
    }
}

fn write_ip(f: &mut fmt::Formatter<'_>, name: &str, ip: IpAddr) -> fmt::Result {
    write!(f, ":{name}={}", Escaped(&ip.to_string()))
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEndpoint::Tcp(t) => {
                write!(f, "{}:port={}", if t.tcp6 { "tcp6" } else { "tcp" }, t.port)?;
                let default = if t.tcp6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                if t.interface != default {
                    write_ip(f, "interface", t.interface)?;
                }
                if let Some(b) = t.backlog {
                    write!(f, ":backlog={b}")?;
                }
                Ok(())
            }
            ServerEndpoint::Unix(u) => {
                write!(f, "unix:address={}", Escaped(&u.path.to_string_lossy()))?;
                if u.mode != 0o666 {
                    write!(f, ":mode={:04o}", u.mode)?;
                }
                if let Some(b) = u.backlog {
                    write!(f, ":backlog={b}")?;
                }
                if !u.lockfile {
                    f.write_str(":lockfile=0")?;
                }
                Ok(())
            }
            ServerEndpoint::Systemd(s) => {
                write!(f, "systemd:domain={}", s.domain)?;
                match &s.which {
                    Inherited::Index(i) => write!(f, ":index={i}"),
                    Inherited::Name(n) => write!(f, ":name={}", Escaped(n)),
                }
            }
            ServerEndpoint::Udp(u) => {
                write!(f, "udp:port={}", u.port)?;
                if u.interface != IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
                    write_ip(f, "interface", u.interface)?;
                }
                Ok(())
            }
            ServerEndpoint::Plugin(p) => write_fields(f, &p.fields),
        }
    }
}

pub(crate) fn write_fields(f: &mut fmt::Formatter<'_>, fields: &Fields) -> fmt::Result {
    write!(f, "{}", Escaped(fields.kind()))?;
    for v in fields.positional() {
        write!(f, ":{}", Escaped(v))?;
    }
    for (n, v) in fields.named() {
        write!(f, ":{}={}", Escaped(n), Escaped(v))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ServerEndpoint {
        match ServerEndpoint::parse(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match ServerEndpoint::parse(s) {
            Ok(e) => panic!("{s} parsed: {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn tcp(s: &str) -> TcpServer {
        match ok(s) {
            ServerEndpoint::Tcp(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tcp_positional_and_named() {
        assert_eq!(tcp("tcp:8080"), tcp("tcp:port=8080"));
        let t = tcp("tcp:80:interface=127.0.0.1:backlog=5");
        assert_eq!(t.port, 80);
        assert_eq!(t.interface, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(t.backlog, Some(5));
        // Twisted: a positional field may follow named ones.
        let t = tcp("tcp:interface=1.2.3.4:80");
        assert_eq!((t.port, t.interface), (80, IpAddr::from([1, 2, 3, 4])));
        // tcp's second positional is the interface; tcp6's is the backlog.
        assert_eq!(tcp("tcp:80:1.2.3.4").interface, IpAddr::from([1, 2, 3, 4]));
        let t = tcp("tcp6:80:5");
        assert_eq!(t.backlog, Some(5));
        assert_eq!(t.interface, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(tcp("TCP:80").port, 80);
        assert_eq!(
            tcp(r"tcp6:80:interface=\:\:1").interface,
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            tcp("tcp:80:interface=").interface,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn tcp_errors_name_field_and_value() {
        assert_eq!(
            err("tcp:port=x"),
            r#"endpoint "tcp:port=x": port: "x" is not a port number (0-65535)"#
        );
        assert_eq!(
            err("tcp:70000"),
            r#"endpoint "tcp:70000": port: "70000" is not a port number (0-65535)"#
        );
        assert_eq!(err("tcp"), r#"endpoint "tcp": port: missing"#);
        assert_eq!(
            err("tcp:"),
            r#"endpoint "tcp:": port: "" is not a port number (0-65535)"#
        );
        assert_eq!(
            err("tcp:port=80:80"),
            r#"endpoint "tcp:port=80:80": port: given more than once"#
        );
        assert_eq!(
            err("tcp:80:foo=1"),
            r#"endpoint "tcp:80:foo=1": foo: unknown field (known: port, interface, backlog)"#
        );
        assert_eq!(
            err("tcp:80:interface=localhost"),
            r#"endpoint "tcp:80:interface=localhost": interface: "localhost" is not an IP address"#
        );
        assert_eq!(
            err("tcp:80:backlog=-1"),
            r#"endpoint "tcp:80:backlog=-1": backlog: "-1" is not a backlog (a whole number)"#
        );
        // An unescaped IPv6 address: its colons split it into fields.
        assert!(err("tcp:80:::1").contains("one value too many"));
        assert_eq!(
            err("bogus:1"),
            r#"endpoint "bogus:1": unknown endpoint type "bogus""#
        );
        #[cfg(not(feature = "tls"))]
        assert!(err("ssl:443").contains("TLS endpoints are not available"));
        #[cfg(feature = "tls")]
        assert!(err("ssl:443:color=blue").contains("color"));
        assert!(err("").contains("empty"));
        assert!(err(r"tcp:80\").contains("backslash"));
    }

    #[test]
    fn unix() {
        let ServerEndpoint::Unix(u) = ok(r"unix:/tmp/a\:b") else {
            panic!()
        };
        assert_eq!(u.path, PathBuf::from("/tmp/a:b"));
        assert_eq!(u.mode, 0o666);
        assert!(u.lockfile);
        assert_eq!(ok("unix:/run/x.sock"), ok("unix:address=/run/x.sock"));
        let ServerEndpoint::Unix(u) = ok("unix:address=/x:mode=0660:lockfile=0") else {
            panic!()
        };
        assert_eq!((u.mode, u.lockfile), (0o660, false));
        let ServerEndpoint::Unix(u) = ok("unix:/x:mode=0o640") else {
            panic!()
        };
        assert_eq!(u.mode, 0o640);
        assert_eq!(
            err("unix:/x:mode=999"),
            r#"endpoint "unix:/x:mode=999": mode: "999" is not an octal mode (0000-7777)"#
        );
        assert_eq!(
            err("unix:/x:lockfile=yes"),
            r#"endpoint "unix:/x:lockfile=yes": lockfile: "yes" is not 0 or 1"#
        );
        assert!(err("unix").contains("address: missing"));
    }

    #[test]
    fn systemd() {
        assert_eq!(
            ok("systemd:domain=INET:index=0"),
            ServerEndpoint::Systemd(SystemdServer {
                domain: Domain::Inet,
                which: Inherited::Index(0)
            })
        );
        assert_eq!(
            ok("systemd:INET6:index=2"),
            ok("systemd:domain=inet6:index=2")
        );
        let ServerEndpoint::Systemd(s) = ok("systemd:domain=UNIX:name=web") else {
            panic!()
        };
        assert_eq!(s.which, Inherited::Name("web".into()));
        assert!(err("systemd:domain=INET").contains("exactly one of index= and name="));
        assert!(err("systemd:domain=INET:index=0:name=x").contains("exactly one"));
        assert!(
            err("systemd:domain=IPX:index=0")
                .contains(r#"domain: "IPX" is not INET, INET6 or UNIX"#)
        );
        assert!(err("systemd:domain=INET:index=-1").contains("index: \"-1\""));
    }

    #[test]
    fn udp() {
        let ServerEndpoint::Udp(u) = ok("udp:5353:interface=127.0.0.1") else {
            panic!()
        };
        assert_eq!((u.port, u.interface), (5353, IpAddr::from([127, 0, 0, 1])));
        assert!(ok("udp:port=53").is_datagram());
        assert!(!ok("tcp:53").is_datagram());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp:8080",
            "tcp:0:interface=127.0.0.1:backlog=7",
            r"tcp6:80:interface=\:\:1",
            "tcp6:80:5",
            r"unix:/tmp/a\:b\=c:mode=0600:lockfile=0:backlog=3",
            "systemd:domain=INET:index=1",
            r"systemd:domain=UNIX:name=a\:b",
            "udp:53:interface=::",
            r"udp:53:interface=\:\:",
        ] {
            let Ok(e) = ServerEndpoint::parse(s) else {
                continue; // "udp:53:interface=::" is an error; checked below.
            };
            let written = e.to_string();
            assert_eq!(ok(&written), e, "{s} -> {written}");
        }
        assert!(err("udp:53:interface=::").contains("one value too many"));
        assert_eq!(ok("tcp:8080").to_string(), "tcp:port=8080");
        assert_eq!(
            ok(r"tcp6:80:interface=\:\:1").to_string(),
            r"tcp6:port=80:interface=\:\:1"
        );
    }
}
