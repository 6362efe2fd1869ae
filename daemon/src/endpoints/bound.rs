//! `tcp:...:bindAddress=A`: a connection from a chosen local address. The reactor's
//! connector does not bind before connecting, so this one connects on the reactor's thread
//! pool (blocking, one address after the other, each with the endpoint's timeout) and the
//! reactor adopts the connected socket.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, SockType, SockaddrStorage, bind, connect, setsockopt, sockopt,
};
use nix::sys::time::TimeVal;
use torsion_reactor::Reactor;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{Address, Factory, Protocol, Reason, Transport};

use super::connect::HostnameEndpoint;
use super::error::ConnectError;

fn reason(e: io::Error) -> Reason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectionRefused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Reason::TimedOut,
        _ => Reason::ConnectError(Arc::new(e)),
    }
}

fn attempt(addr: SocketAddr, from: IpAddr, timeout: Option<Duration>) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = super::bind::new_socket(family, SockType::Stream)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(from, 0)),
    )?;
    if let Some(t) = timeout {
        // On Linux SO_SNDTIMEO bounds a blocking connect (it fails with EINPROGRESS).
        let tv = TimeVal::new(
            i64::try_from(t.as_secs()).unwrap_or(i64::MAX) as _,
            t.subsec_micros() as _,
        );
        setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    }
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) => {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        Err(e) => return Err(e.into()),
    }
    // Back to no timeout for the connection itself.
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::new(0, 0))?;
    Ok(fd)
}

/// Resolve and connect from `from`, blocking (on a pool thread).
fn connect_blocking(
    host: &str,
    port: u16,
    from: IpAddr,
    timeout: Option<Duration>,
) -> Result<OwnedFd, ConnectError> {
    let destination = format!("{host} port {port}");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Resolve {
            host: host.to_owned(),
            error: e.to_string(),
        })?
        .filter(|a| a.is_ipv4() == from.is_ipv4())
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::NoAddresses {
            host: format!("{host} (of the family of bindAddress {from})"),
        });
    }
    let mut failures = Vec::new();
    for addr in addrs {
        match attempt(addr, from, timeout) {
            Ok(fd) => return Ok(fd),
            Err(e) => failures.push((addr, reason(e))),
        }
    }
    Err(ConnectError::failed(destination, failures))
}

/// Connect as `endpoint` says, from `from`.
pub(crate) fn connect_from(
    reactor: &Reactor,
    endpoint: &HostnameEndpoint,
    from: IpAddr,
    factory: Rc<dyn Factory>,
) -> Deferred<Rc<dyn Transport>> {
    let (host, port, timeout) = endpoint.parts();
    let destination = format!("{host} port {port}");
    let r = reactor.clone();
    reactor
        .call_in_thread(move || connect_blocking(&host, port, from, timeout))
        .and_then(move |fd| fd.map_err(Failure::new))
        .chain(move |fd: OwnedFd| {
            let result: Deferred<Rc<dyn Transport>> = Deferred::new();
            let wrap = Rc::new(Wrap {
                factory,
                result: result.clone(),
                destination: destination.clone(),
            });
            if let Err(e) = r.adopt_stream_connection(fd, wrap) {
                let _ = result.errback(Failure::new(ConnectError::Io {
                    destination,
                    error: Arc::new(e),
                }));
            }
            result
        })
}

struct Wrap {
    factory: Rc<dyn Factory>,
    result: Deferred<Rc<dyn Transport>>,
    destination: String,
}

impl Factory for Wrap {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        super::connect::build(&self.factory, peer, &self.result, &self.destination)
    }
}
