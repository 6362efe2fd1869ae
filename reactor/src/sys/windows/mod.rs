//! Windows back end: mio's IOCP/AFD poller does the I/O; this module adds what neither std
//! nor mio exposes — socket options through Winsock, and console control events standing
//! in for POSIX signals.

pub(crate) mod net;
pub(crate) mod signal;
pub(crate) mod socket;
