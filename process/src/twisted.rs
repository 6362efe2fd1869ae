//! Twisted's `reactor.spawnProcess` argument list, for porting code. One definition for
//! every platform: it builds a [`ProcessBuilder`] and spawns it, exactly as
//! `builder.spawn(reactor, protocol)` does.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_transport::{ChildFd, ProcessBuilder, ProcessProtocol, PtyOptions, SpawnError};

/// Spawn with Twisted's argument list (`reactor.spawnProcess`).
///
/// `args` is the whole argv, `args[0]` included (CONTRACT G1). `env: None` inherits the
/// parent's environment (**\[deliberate\]**: Twisted's default is empty; pass
/// `Some(vec![])` for that). On Windows `uid`, `gid` and `use_pty` are refused
/// (CONTRACT M1).
///
/// # Errors
///
/// As [`ProcessBuilderExt::spawn`](crate::ProcessBuilderExt::spawn).
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
) -> Result<Rc<crate::Process>, SpawnError> {
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
    crate::ProcessBuilderExt::spawn(&b, reactor, protocol)
}
