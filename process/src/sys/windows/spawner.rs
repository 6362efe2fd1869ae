//! `ReactorProcess` on Windows: [`install`] and [`PipeSpawner`].

use std::fmt;
use std::rc::Rc;

use torsion_reactor::{ProcessSpawner, Reactor};
use torsion_transport::{ProcessBuilder, ProcessProtocol, ProcessTransport, SpawnError};

use super::process::spawn;

/// The process back end of a reactor on Windows.
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeSpawner;

impl ProcessSpawner for PipeSpawner {
    fn spawn(
        &self,
        reactor: &Reactor,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
        spawn(reactor, builder, protocol).map(|p| p as Rc<dyn ProcessTransport>)
    }
}

impl fmt::Display for PipeSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pipe spawner (Windows)")
    }
}

/// Install the Windows back end on `reactor` so `ReactorProcess::spawn_process` works,
/// unless a back end is installed already.
pub fn install(reactor: &Reactor) {
    if !reactor.has_process_spawner() {
        reactor.set_process_spawner(Rc::new(PipeSpawner));
    }
}
