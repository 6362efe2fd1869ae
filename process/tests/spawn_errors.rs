//! CONTRACT G8: a failed spawn is a typed error and leaks nothing. In a test binary of its
//! own: it counts the process's open descriptors, which tests spawning children on other
//! threads of the same binary would change meanwhile.

#![cfg(unix)]

mod util;

use torsion_process::{ProcessBuilderExt, ReapMode};
use torsion_transport::{ChildFd, ProcessBuilder, SpawnStep};
use util::{Recorder, reactor};

#[test]
fn g8_spawn_errors_are_typed_and_leak_nothing() {
    let r = reactor(ReapMode::Auto);
    let before = util::open_fds();
    let cases: Vec<(ProcessBuilder, SpawnStep)> = vec![
        (ProcessBuilder::new("/nonexistent/program"), SpawnStep::Exec),
        (ProcessBuilder::new("/etc/hostname"), SpawnStep::Exec),
        (
            ProcessBuilder::new("true").cwd("/nonexistent/dir"),
            SpawnStep::Chdir,
        ),
        (
            ProcessBuilder::new("echo").arg("a\0b"),
            SpawnStep::InvalidInput,
        ),
        (
            ProcessBuilder::new("true").child_fd(0, ChildFd::Inherit(9999)),
            SpawnStep::Setup,
        ),
    ];
    for (b, step) in cases {
        let (proto, s) = Recorder::new();
        let e = match b.spawn(&r, proto) {
            Err(e) => e,
            Ok(_) => panic!("{b:?} spawned"),
        };
        let ok = e.step == step || (step == SpawnStep::Exec && e.step == SpawnStep::Lookup);
        assert!(ok, "{b:?}: got {e} ({:?}), want {step:?}", e.step);
        assert!(
            s.borrow().events.is_empty(),
            "no callback for a failed spawn"
        );
        assert!(!e.to_string().is_empty());
        if step == SpawnStep::Setup {
            assert_eq!(e.errno(), Some(libc::EBADF), "{e}");
        }
    }
    r.iterate(std::time::Duration::ZERO).unwrap();
    assert_eq!(
        util::open_fds(),
        before,
        "a failed spawn leaves no fd behind"
    );
}
