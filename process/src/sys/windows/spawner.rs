//! `ReactorProcess` on Windows: [`install`], [`PipeSpawner`] and Twisted's
//! [`spawn_process`] argument list.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use torsion_reactor::{ProcessSpawner, Reactor};
use torsion_transport::{
    ChildFd, ProcessBuilder, ProcessProtocol, ProcessTransport, PtyOptions, ReactorProcess,
    SpawnError,
};

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

/// Spawn with Twisted's argument list (`reactor.spawnProcess`), as on POSIX. `uid`, `gid`
/// and `use_pty` are refused on Windows (CONTRACT M1).
///
/// # Errors
///
/// As [`spawn`].
#[allow(clippy::too_many_arguments)]
#[doc(alias = "spawnProcess")]
pub fn spawn_process(
    reactor: &Reactor,
    protocol: Box<dyn ProcessProtocol>,
    executable: impl AsRef<OsStr>,
    args: &[OsString],
    env: Option<Vec<(OsString, OsString)>>,
    path: Option<&Path>,
    uid: Option<u32>,
    gid: Option<u32>,
    use_pty: bool,
    child_fds: Option<BTreeMap<i32, ChildFd>>,
) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
    let mut b = ProcessBuilder::new(executable).argv(args);
    if let Some(env) = env {
        b = b.env_clear().envs(env);
    }
    if let Some(p) = path {
        b = b.cwd(p);
    }
    if let Some(u) = uid {
        b = b.uid(u);
    }
    if let Some(g) = gid {
        b = b.gid(g);
    }
    if let Some(map) = child_fds {
        b = b.child_fds(map);
    }
    if use_pty {
        b = b.pty(PtyOptions::default());
    }
    install(reactor);
    reactor.spawn_process(&b, protocol)
}
