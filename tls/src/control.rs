//! [`TlsControl`]: what a wrapped protocol holds to switch its connection to TLS
//! (`start_tls`) and to ask about the session.

use std::fmt;
use std::rc::{Rc, Weak};

use rustls_pki_types::CertificateDer;
use torsion_transport::Transport;
use torsion_transport::callback::catch_panic;
use torsion_transport::defer::{Deferred, Failure};

use crate::config::TlsVersion;
use crate::error::TlsError;
use crate::protocol::{Inner, TlsMode, new_connection};

/// Why [`TlsControl::start_tls`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The connection already runs TLS.
    AlreadyTls,
    /// The connection is closing or gone.
    NotConnected,
    /// `start_tls` was given [`TlsMode::Plaintext`].
    PlaintextMode,
    /// The TLS session could not be created.
    Setup(String),
}

impl fmt::Display for StartTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartTlsError::AlreadyTls => f.write_str("start_tls: the connection already runs TLS"),
            StartTlsError::NotConnected => {
                f.write_str("start_tls: the connection is closing or closed")
            }
            StartTlsError::PlaintextMode => {
                f.write_str("start_tls needs a server or client configuration, not Plaintext")
            }
            StartTlsError::Setup(why) => write!(f, "start_tls: {why}"),
        }
    }
}

impl std::error::Error for StartTlsError {}

/// A handle on one [`TlsProtocol`](crate::TlsProtocol) connection, for the protocol it
/// wraps: switch to TLS mid-stream (STARTTLS) and ask about the session. Cheap to clone;
/// holds the connection weakly (a handle outliving its connection answers "no").
///
/// # STARTTLS
///
/// Install the protocol from the start with [`TlsProtocol::plaintext`](crate::TlsProtocol::plaintext)
/// (or [`TlsProtocol::new_with`](crate::TlsProtocol::new_with)), which hands it this
/// handle. Bytes pass through unchanged until it calls [`start_tls`](Self::start_tls):
/// what it wrote before goes out in plaintext, what it writes after is encrypted, and every
/// byte the underlying transport delivers after the call goes to TLS.
///
/// A protocol that has already received bytes beyond its STARTTLS command (a pipelining
/// peer sent the start of its handshake in the same packet) hands them back with
/// [`start_tls_with_received`](Self::start_tls_with_received): they are fed to TLS first,
/// so nothing is lost and nothing is delivered twice.
#[derive(Clone)]
pub struct TlsControl {
    inner: Weak<Inner>,
}

impl fmt::Debug for TlsControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsControl")
            .field("is_tls", &self.is_tls())
            .field("handshake_done", &self.handshake_done())
            .finish()
    }
}

impl TlsControl {
    pub(crate) fn new(inner: Weak<Inner>) -> Self {
        TlsControl { inner }
    }

    fn inner(&self) -> Option<Rc<Inner>> {
        self.inner.upgrade()
    }

    /// Switch the connection to TLS, keeping the protocol (Twisted's `startTLS`). The
    /// handshake begins at once (a client sends its ClientHello now).
    ///
    /// # Errors
    ///
    /// [`StartTlsError`]: already TLS, closing, a plaintext mode, or no session.
    #[doc(alias = "startTLS")]
    pub fn start_tls(&self, mode: TlsMode) -> Result<(), StartTlsError> {
        self.start_tls_with_received(mode, &[])
    }

    /// [`start_tls`](Self::start_tls), first feeding TLS the bytes `received` that the
    /// protocol already got but that follow its STARTTLS command (the peer's handshake).
    ///
    /// # Errors
    ///
    /// As [`start_tls`](Self::start_tls).
    pub fn start_tls_with_received(
        &self,
        mode: TlsMode,
        received: &[u8],
    ) -> Result<(), StartTlsError> {
        if matches!(mode, TlsMode::Plaintext) {
            return Err(StartTlsError::PlaintextMode);
        }
        let inner = self.inner().ok_or(StartTlsError::NotConnected)?;
        let (lower, out) = {
            let mut s = inner.state.borrow_mut();
            if s.conn.is_some() {
                return Err(StartTlsError::AlreadyTls);
            }
            if s.lower.is_none() || s.lost || s.disconnecting || s.close_sent || s.aborted {
                return Err(StartTlsError::NotConnected);
            }
            let mut conn = match new_connection(&mode) {
                Ok(Some(c)) => c,
                Ok(None) => return Err(StartTlsError::PlaintextMode),
                Err(e) => return Err(StartTlsError::Setup(e.to_string())),
            };
            let mut out = Vec::new();
            while conn.wants_write() {
                match conn.write_tls(&mut out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            s.conn = Some(conn);
            s.handshake_done = false;
            (s.lower.clone(), out)
        };
        inner.send(&lower, &out);
        if !received.is_empty() {
            let got = inner.receive(received);
            // The protocol is most likely on the stack (start_tls from its data_received):
            // `deliver` keeps what it cannot take for when it returns.
            inner.deliver(&got.plain);
        }
        Ok(())
    }

    /// True once the connection runs TLS (from the start, or after `start_tls`).
    pub fn is_tls(&self) -> bool {
        self.inner()
            .is_some_and(|i| i.state.borrow().conn.is_some())
    }

    /// True once the TLS handshake completed.
    pub fn handshake_done(&self) -> bool {
        self.inner()
            .is_some_and(|i| i.state.borrow().handshake_done)
    }

    /// Call `f` when the handshake ends: `Ok(())` when it completed, the failure when the
    /// connection ended before. If it already completed, `f` is called now. Each call goes
    /// through the panic funnel.
    #[doc(alias = "handshakeCompleted")]
    pub fn on_handshake(&self, f: impl FnOnce(Result<(), TlsError>) + 'static) {
        let gone = || Err(TlsError::Setup("the connection is gone".to_owned()));
        let result = match self.inner() {
            None => gone(),
            Some(inner) => {
                let mut s = inner.state.borrow_mut();
                if s.handshake_done {
                    Ok(())
                } else if let Some(e) = &s.handshake_failure {
                    Err(e.clone())
                } else if s.lost {
                    gone()
                } else {
                    s.on_handshake.push(Box::new(f));
                    return;
                }
            }
        };
        catch_panic("TLS handshake callback", || f(result));
    }

    /// A [`Deferred`] that fires when the handshake completes, or fails with the
    /// [`TlsError`] (inside the [`Failure`]) when the
    /// connection ends before.
    pub fn when_handshake_done(&self) -> Deferred<()> {
        let d = Deferred::new();
        let out = d.clone();
        self.on_handshake(move |r| {
            let _ = match r {
                Ok(()) => d.callback(()),
                Err(e) => d.errback(Failure::new(e)),
            };
        });
        out
    }

    /// The connection's [`TlsTransport`](crate::TlsTransport), the one the wrapped
    /// protocol got; `None` once the connection is gone.
    pub fn transport(&self) -> Option<Rc<dyn Transport>> {
        let inner = self.inner()?;
        if inner.state.borrow().lost {
            return None;
        }
        Some(inner.transport.clone() as Rc<dyn Transport>)
    }

    fn with_conn<R>(&self, f: impl FnOnce(&rustls::Connection) -> Option<R>) -> Option<R> {
        let inner = self.inner()?;
        let s = inner.state.borrow();
        s.conn.as_ref().and_then(f)
    }

    /// The application protocol agreed by ALPN.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.with_conn(|c| c.alpn_protocol().map(<[u8]>::to_vec))
    }

    /// The peer's certificate chain (leaf first), once verified: the server's, or a
    /// client's when it presented one.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.with_conn(|c| {
            c.peer_certificates()
                .map(<[CertificateDer<'static>]>::to_vec)
        })
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> Option<TlsVersion> {
        self.with_conn(|c| c.protocol_version().and_then(TlsVersion::from_rustls))
    }

    /// The negotiated cipher suite's name (`TLS13_AES_128_GCM_SHA256`).
    pub fn cipher_suite(&self) -> Option<String> {
        self.with_conn(|c| {
            c.negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
        })
    }

    /// On a server: the name the client asked for by SNI.
    pub fn sni_server_name(&self) -> Option<String> {
        self.with_conn(|c| match c {
            rustls::Connection::Server(s) => s.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        })
    }
}
