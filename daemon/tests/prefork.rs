//! The prefork supervisor with real processes: a crash loop is slowed by the restart
//! back-off; shutting the reactor down ends the workers.
#![cfg(unix)]

use std::time::Duration;

use torsion_daemon::prefork::{PreforkOptions, Supervisor};
use torsion_reactor::Reactor;
use torsion_transport::ProcessBuilder;

#[test]
fn a_crash_loop_backs_off() {
    let reactor = Reactor::new().unwrap();
    // A worker that dies at once, forever.
    let sup = Supervisor::start(
        &reactor,
        ProcessBuilder::new("sh").args(["-c", "exit 3"]),
        Vec::new(),
        PreforkOptions::new(1)
            .with_restart_delays(Duration::from_millis(50), Duration::from_millis(400)),
    )
    .unwrap();
    // Restarts at about 50, 150, 350, 750, 1150 ms: 6 spawns in 1.2 s (without the
    // back-off, hundreds).
    let _ = reactor.run_until(|| false, Duration::from_millis(1_200));
    let spawned = sup.spawned();
    assert!(
        (3..=7).contains(&spawned),
        "spawned {spawned} times in 1.2 s"
    );
}

#[test]
fn shutdown_ends_the_workers_and_reaps_them() {
    let reactor = Reactor::new().unwrap();
    let sup = Supervisor::start(
        &reactor,
        ProcessBuilder::new("sleep").arg("60"),
        Vec::new(),
        PreforkOptions::new(2).with_grace(Duration::from_secs(2)),
    )
    .unwrap();
    let pids: Vec<u32> = sup.pids().into_iter().flatten().collect();
    assert_eq!(pids.len(), 2);
    let r = reactor.clone();
    reactor.call_when_running(move || {
        let _ = r.stop();
    });
    reactor.run().unwrap();
    for pid in pids {
        // Signal 0 only checks whether the pid exists (a zombie would).
        let exists = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
        assert!(!exists, "worker {pid} is still there after run returned");
    }
    assert_eq!(sup.pids(), vec![None, None]);
    assert_eq!(sup.spawned(), 2, "no restart during shutdown");
}
