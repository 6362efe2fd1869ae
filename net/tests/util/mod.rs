//! Helpers shared by torsion-net's tests.

#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::time::Duration;

use torsion_reactor::Reactor;

/// How long a test's future may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Run `fut` on the loop, failing the test if it does not finish within [`DEADLINE`].
pub fn run<T>(reactor: &Reactor, fut: impl Future<Output = T>) -> T {
    reactor
        .block_on(reactor.timeout(DEADLINE, fut))
        .expect("block_on")
        .expect("the test's future did not finish before the deadline")
}
