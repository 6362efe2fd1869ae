//! Helpers shared by the daemon crate's tests: a protocol that ignores what it gets, a
//! real connect through an endpoint description, and a temporary directory for socket
//! files.

#![allow(dead_code)] // each test file uses a different subset

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use torsion_daemon::endpoints::{self, ConnectError};
use torsion_reactor::Reactor;
use torsion_transport::defer::Failure;
use torsion_transport::{ListeningPort, Protocol, Transport, factory_fn};

/// A protocol that ignores what it receives.
pub struct Quiet;

impl Protocol for Quiet {
    fn data_received(&mut self, _: &[u8]) {}
}

/// Where a connect's result lands.
pub type Outcome = Rc<RefCell<Option<Result<Rc<dyn Transport>, Failure>>>>;

/// Listen with a [`Quiet`] protocol on the server endpoint `description`.
pub fn listen_quiet(reactor: &Reactor, description: &str) -> Rc<dyn ListeningPort> {
    endpoints::listen(reactor, description, factory_fn(|_| Box::new(Quiet)))
        .unwrap_or_else(|e| panic!("listen on {description}: {e}"))
}

/// Connect a [`Quiet`] protocol to the client endpoint `description` on the real
/// `reactor`, running it until the result (10 s at the most).
pub fn connect(reactor: &Reactor, description: &str) -> Result<Rc<dyn Transport>, Failure> {
    let got: Outcome = Rc::new(RefCell::new(None));
    let g = got.clone();
    endpoints::connect(reactor, description, factory_fn(|_| Box::new(Quiet))).add_both(move |r| {
        *g.borrow_mut() = Some(r);
        Ok(())
    });
    reactor
        .run_until(|| got.borrow().is_some(), Duration::from_secs(10))
        .expect("a result within the deadline");
    let r = got.borrow_mut().take();
    r.expect("a result")
}

/// Connecting to `description` fails with a [`ConnectError`] that says the connection
/// was refused.
pub fn assert_refused(reactor: &Reactor, description: &str) {
    let f = connect(reactor, description).err().expect("refused");
    assert!(
        f.downcast_ref::<ConnectError>()
            .is_some_and(ConnectError::is_refused),
        "{f}"
    );
}

/// A unique temporary directory for socket files, removed on drop (also when the test
/// fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("torsion-daemon-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
