//! Sockets std and mio do not make: binding with options set before `bind`
//! (`SO_REUSEPORT`, `IPV6_V6ONLY`), inspecting an adopted descriptor, datagram receives
//! that report truncation, descriptor passing (`SCM_RIGHTS`), peer credentials, and the
//! multicast options std lacks.

use std::io::{self, IoSlice};
use std::mem;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use torsion_transport::{Address, ListenOptions};

use crate::datagram::Received;

use super::net::{getsockopt_int, setsockopt_int};
use super::syscall;

/// `socket(2)` of `family` and `ty`, close-on-exec and non-blocking.
fn new_socket(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let fd = syscall!(socket(
        family,
        ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        0
    ))?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let fd = syscall!(socket(family, ty, 0))?;
    // SAFETY: socket(2) succeeded: `fd` is open and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK))?;
    }
    Ok(fd)
}

/// A `sockaddr_storage` holding `addr`, and its length.
fn raw_addr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            #[cfg(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "netbsd",
                target_os = "dragonfly"
            ))]
            {
                sin.sin_len = mem::size_of::<libc::sockaddr_in>() as u8;
            }
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            #[cfg(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "netbsd",
                target_os = "dragonfly"
            ))]
            {
                sin6.sin6_len = mem::size_of::<libc::sockaddr_in6>() as u8;
            }
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address in `storage` (`len` bytes of it) as an [`Address`].
fn address_of(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Address {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is that long.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Address::Ipv4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is that long.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Address::Ipv6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            ))
        }
        libc::AF_UNIX => {
            // SAFETY: the family says the storage holds a sockaddr_un (storage is larger).
            let sun =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
            let offset = mem::offset_of!(libc::sockaddr_un, sun_path);
            let path_len = len.saturating_sub(offset).min(sun.sun_path.len());
            let bytes: Vec<u8> = sun.sun_path[..path_len].iter().map(|&c| c as u8).collect();
            // Unnamed (no bytes) and abstract (leading NUL) sockets have no path.
            match bytes.first() {
                None | Some(0) => Address::Unix(None),
                Some(_) => {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    Address::Unix(Some(PathBuf::from(std::ffi::OsStr::from_bytes(
                        &bytes[..end],
                    ))))
                }
            }
        }
        _ => Address::Memory("unknown".into()),
    }
}

/// Set `SO_REUSEPORT`.
#[cfg(not(any(target_os = "solaris", target_os = "illumos")))]
fn set_reuse_port(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
}

#[cfg(any(target_os = "solaris", target_os = "illumos"))]
fn set_reuse_port(_: BorrowedFd<'_>) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this system",
    ))
}

/// A socket of `ty` (`SOCK_STREAM` or `SOCK_DGRAM`) bound to `addr` with `options` set
/// before `bind`; a stream socket is also listening with `options.backlog`. Stream sockets
/// get `SO_REUSEADDR`, as std's listeners do.
///
/// # References
/// `socket(2)`, `setsockopt(2)` (`SO_REUSEADDR`, `SO_REUSEPORT`, `IPV6_V6ONLY`),
/// `bind(2)`, `listen(2)`.
pub(crate) fn bind_inet(
    addr: SocketAddr,
    stream: bool,
    options: &ListenOptions,
) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let ty = if stream {
        libc::SOCK_STREAM
    } else {
        libc::SOCK_DGRAM
    };
    let fd = new_socket(family, ty)?;
    if stream {
        setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    if options.reuse_port {
        set_reuse_port(fd.as_fd())?;
    }
    if let (SocketAddr::V6(_), Some(only)) = (addr, options.ipv6_only) {
        setsockopt_int(
            fd.as_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            i32::from(only),
        )?;
    }
    let (storage, len) = raw_addr(&addr);
    // The pointer is to a live sockaddr_storage holding `len` bytes of address.
    syscall!(bind(fd.as_raw_fd(), (&raw const storage).cast(), len))?;
    if stream {
        syscall!(listen(fd.as_raw_fd(), options.backlog.max(0)))?;
    }
    Ok(fd)
}

use std::os::fd::AsFd;

/// The address family of an adopted descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Inet,
    Unix,
    Other(i32),
}

/// What an adopted descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketKind {
    pub(crate) family: Family,
    /// `SOCK_STREAM`: `Some(true)`; `SOCK_DGRAM`: `Some(false)`; other types: `None`.
    pub(crate) stream: Option<bool>,
    /// The type's name, for messages.
    pub(crate) type_name: &'static str,
    /// A stream socket that is listening.
    pub(crate) listening: bool,
}

/// Inspect `fd` for adoption: a socket? of which family and type? listening? `None` for
/// a descriptor that is not a socket.
///
/// # References
/// `getsockopt(2)` with `SO_TYPE` (`ENOTSOCK` for a non-socket) and `SO_ACCEPTCONN`,
/// `getsockname(2)`.
pub(crate) fn inspect(fd: BorrowedFd<'_>) -> io::Result<Option<SocketKind>> {
    let ty = match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) {
        Ok(ty) => ty,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (stream, type_name) = match ty {
        libc::SOCK_STREAM => (Some(true), "stream"),
        libc::SOCK_DGRAM => (Some(false), "datagram"),
        libc::SOCK_SEQPACKET => (None, "sequenced-packet"),
        libc::SOCK_RAW => (None, "raw"),
        _ => (None, "unknown-type"),
    };
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // The pointers are to live locals; `len` holds the storage's size.
    syscall!(getsockname(
        fd.as_raw_fd(),
        (&raw mut storage).cast(),
        &raw mut len
    ))?;
    let family = match i32::from(storage.ss_family) {
        libc::AF_INET | libc::AF_INET6 => Family::Inet,
        libc::AF_UNIX => Family::Unix,
        other => Family::Other(other),
    };
    let listening =
        stream == Some(true) && getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0;
    Ok(Some(SocketKind {
        family,
        stream,
        type_name,
        listening,
    }))
}

/// Make an adopted descriptor non-blocking and close-on-exec (it may be neither: systemd
/// and a prefork parent hand descriptors over by inheritance).
///
/// # References
/// `fcntl(2)` (`F_GETFL`/`F_SETFL`, `F_SETFD`).
pub(crate) fn prepare_adopted(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            flags | libc::O_NONBLOCK
        ))?;
    }
    syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
    Ok(())
}

/// Receive one datagram into `buf`, saying whether it was cut short.
///
/// # Implementation notes
/// `recvmsg` and `MSG_TRUNC` in `msg_flags` (POSIX); on Linux `MSG_TRUNC` is also passed in
/// the flags, so the return value is the datagram's real length.
///
/// # References
/// `recvmsg(2)`, `udp(7)`, `unix(7)`.
fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: an all-zero sockaddr_storage and msghdr are valid values.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut storage).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_TRUNC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // `msg` points at the live `storage` and `iov`, which points at `buf`.
    let n = syscall!(recvmsg(fd.as_raw_fd(), &raw mut msg, flags))? as usize;
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    let linux = cfg!(any(target_os = "linux", target_os = "android"));
    Ok(Received {
        len: n.min(buf.len()),
        truncated,
        size: (truncated && linux).then_some(n),
        from: address_of(&storage, msg.msg_namelen),
    })
}

/// Space for the control message of `n` descriptors.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation.
    unsafe { libc::CMSG_SPACE((n * mem::size_of::<RawFd>()) as u32) as usize }
}

/// `sendmsg(2)` of `bufs` with `fds` as `SCM_RIGHTS`; returns the bytes sent (the
/// descriptors went with the first of them). `MSG_NOSIGNAL` where there is one.
///
/// # References
/// `sendmsg(2)`, `unix(7)` (`SCM_RIGHTS`), `cmsg(3)`.
pub(crate) fn send_with_fds(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[OwnedFd],
) -> io::Result<usize> {
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; cmsg_space(fds.len()).div_ceil(8).max(1)];
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len()) as _;
        // SAFETY: msg_control points at `control`, large enough for one header and
        // `fds.len()` descriptors; CMSG_FIRSTHDR is non-null for a non-empty buffer.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * mem::size_of::<RawFd>()) as u32) as _;
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(f.as_raw_fd());
            }
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = 0;
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; `msg` points at live data.
    let n = syscall!(sendmsg(fd.as_raw_fd(), &raw const msg, flags))?;
    Ok(n as usize)
}

/// What [`recv_with_fds`] got.
#[derive(Debug, Default)]
pub(crate) struct WithFds {
    /// Bytes read (0 is end-of-file).
    pub(crate) len: usize,
    /// Descriptors received, close-on-exec.
    pub(crate) fds: Vec<OwnedFd>,
    /// The kernel dropped descriptors for lack of control space (`MSG_CTRUNC`).
    pub(crate) truncated: bool,
}

/// `recvmsg(2)` into `buf`, taking up to `max_fds` descriptors (`MSG_CMSG_CLOEXEC` where
/// there is one, else `FD_CLOEXEC` set at once after).
///
/// # References
/// `recvmsg(2)`, `unix(7)`, `cmsg(3)`.
pub(crate) fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<WithFds> {
    let space = cmsg_space(max_fds);
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let flags = libc::MSG_CMSG_CLOEXEC;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let flags = 0;
    // `msg` points at the live `iov` (at `buf`) and `control`, with their sizes.
    let n = syscall!(recvmsg(fd.as_raw_fd(), &raw mut msg, flags))? as usize;
    let mut out = WithFds {
        len: n,
        fds: Vec::new(),
        truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    };
    // SAFETY: the kernel filled `msg_controllen` bytes of `control` with well-formed
    // control messages; CMSG_FIRSTHDR/NXTHDR walk them within that length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let header = data.cast::<u8>().offset_from(cmsg.cast::<u8>()) as usize;
                let count =
                    ((*cmsg).cmsg_len as usize).saturating_sub(header) / mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw = data.add(i).read_unaligned();
                    // The kernel installed `raw` in our table for us: we own it.
                    out.fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    for f in &out.fds {
        syscall!(fcntl(f.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
    }
    Ok(out)
}

/// The peer's credentials.
///
/// # References
/// `unix(7)` (`SO_PEERCRED`) on Linux; `getpeereid(3)` and `LOCAL_PEERPID` elsewhere.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<torsion_transport::Credentials> {
    let mut cred = mem::MaybeUninit::<libc::ucred>::zeroed();
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // The pointers are to live locals; `len` holds the size of `cred`.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        cred.as_mut_ptr().cast(),
        &raw mut len
    ))?;
    // SAFETY: zero-initialised and then filled by the kernel.
    let cred = unsafe { cred.assume_init() };
    Ok(torsion_transport::Credentials {
        pid: u32::try_from(cred.pid).ok().filter(|&p| p != 0),
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The peer's credentials.
///
/// # References
/// `getpeereid(3)`; `LOCAL_PEERPID` in `unix(4)` on macOS.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<torsion_transport::Credentials> {
    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // The pointers are to live locals.
    syscall!(getpeereid(fd.as_raw_fd(), &raw mut uid, &raw mut gid))?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let pid = {
        let mut pid: libc::pid_t = 0;
        let mut len = mem::size_of::<libc::pid_t>() as libc::socklen_t;
        // The pointers are to live locals; `len` holds the size of `pid`.
        syscall!(getsockopt(
            fd.as_raw_fd(),
            libc::SOL_LOCAL,
            libc::LOCAL_PEERPID,
            (&raw mut pid).cast(),
            &raw mut len
        ))
        .ok()
        .and_then(|_| u32::try_from(pid).ok())
    };
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let pid = None;
    Ok(torsion_transport::Credentials { pid, uid, gid })
}

/// `IPV6_MULTICAST_HOPS`.
pub(crate) fn set_multicast_hops_v6(sock: &mio::net::UdpSocket, hops: u32) -> io::Result<()> {
    let fd = sock.as_fd();
    let hops = i32::try_from(hops).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, hops)
}

/// `IPV6_MULTICAST_HOPS`.
pub(crate) fn multicast_hops_v6(sock: &mio::net::UdpSocket) -> io::Result<u32> {
    getsockopt_int(sock.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS)
        .map(|h| h.max(0) as u32)
}

/// `IP_MULTICAST_IF` with the interface's address.
///
/// # References
/// `ip(7)`.
pub(crate) fn set_multicast_if_v4(
    sock: &mio::net::UdpSocket,
    interface: Ipv4Addr,
) -> io::Result<()> {
    let fd = sock.as_fd();
    let addr = libc::in_addr {
        s_addr: u32::from_ne_bytes(interface.octets()),
    };
    let len = mem::size_of::<libc::in_addr>() as libc::socklen_t;
    // The pointer is to a live in_addr and `len` is its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        (&raw const addr).cast(),
        len
    ))?;
    Ok(())
}

/// `IPV6_MULTICAST_IF` with the interface's index.
///
/// # References
/// `ipv6(7)`.
pub(crate) fn set_multicast_if_v6(sock: &mio::net::UdpSocket, index: u32) -> io::Result<()> {
    let fd = sock.as_fd();
    let index = i32::try_from(index).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, index)
}

/// Receive one datagram from a UDP socket; see `recv_datagram`.
pub(crate) fn recv_udp(sock: &mio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    recv_datagram(sock.as_fd(), buf)
}

/// Receive one datagram from a Unix datagram socket; see `recv_datagram`.
pub(crate) fn recv_unix_datagram(
    sock: &mio::net::UnixDatagram,
    buf: &mut [u8],
) -> io::Result<Received> {
    let mut r = recv_datagram(sock.as_fd(), buf)?;
    if !matches!(r.from, Address::Unix(_)) {
        // An unbound sender: Linux reports no address at all.
        r.from = Address::Unix(None);
    }
    Ok(r)
}

/// A non-blocking UDP socket bound to `addr` with `options`.
pub(crate) fn bind_udp(
    addr: SocketAddr,
    options: &ListenOptions,
) -> io::Result<mio::net::UdpSocket> {
    let fd = bind_inet(addr, false, options)?;
    Ok(mio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)))
}

/// A non-blocking TCP listener on `addr` with `options`.
pub(crate) fn bind_tcp(
    addr: SocketAddr,
    options: &ListenOptions,
) -> io::Result<mio::net::TcpListener> {
    let fd = bind_inet(addr, true, options)?;
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(fd),
    ))
}
