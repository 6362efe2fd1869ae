//! Tests that count or exhaust this process's fds. They hold one lock so that no other test
//! in this binary opens or closes fds meanwhile (other test binaries are other processes).
//!
//! Unix only: they count fds in `/proc/self/fd` and exhaust `RLIMIT_NOFILE`, neither of
//! which Windows has, and one listens on a Unix socket.
#![cfg(unix)]

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use torsion_reactor::Reactor;
use torsion_reactor::tcp::{self, TcpOptions};
use torsion_transport::{ListeningPort, ReactorTcp, ReactorUnix, UnixListenOptions, factory_fn};
use util::*;

static FDS: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    FDS.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn b5_shutdown_with_open_connections_loses_each_once_and_closes_every_fd() {
    let _g = lock();
    let dir = TempDir::new("shutdown");
    let before = open_fds();
    {
        let r = Reactor::new().unwrap();
        r.set_install_signal_handlers(false);
        let server_lost = Rc::new(Cell::new(0usize));
        let server_made = Rc::new(Cell::new(0usize));
        let (sl, sm) = (server_lost.clone(), server_made.clone());
        let factory = factory_fn(move |_| {
            sm.set(sm.get() + 1);
            let sl = sl.clone();
            Recorder::new(&shared())
                .echo()
                .on_lost(move |_, _| sl.set(sl.get() + 1))
                .boxed()
        });
        let port = r
            .listen_tcp("127.0.0.1:0".parse().unwrap(), factory.clone())
            .unwrap();
        let mut opts = UnixListenOptions::default();
        opts.unlink_on_stop = true;
        let uport = r.listen_unix(&dir.join("s"), factory, opts).unwrap();
        let addr = port.host().socket_addr().unwrap();
        let n = 20;
        let mut logs = Vec::new();
        let mut clients = Vec::new();
        for i in 0..n {
            let log = shared();
            let l2 = log.clone();
            let client =
                Client::new(move || Recorder::new(&l2).on_made(|t, _| t.write(b"hi")).boxed());
            if i % 2 == 0 {
                r.connect_tcp(addr, client.clone(), None);
            } else {
                r.connect_unix(dir.join("s"), client.clone(), None);
            }
            logs.push(log);
            clients.push(client);
        }
        // One attempt still connecting at shutdown (to a listener that never accepts).
        let idle = Reactor::new().unwrap();
        let full = tcp::listen_tcp(
            &idle,
            "127.0.0.1:0".parse().unwrap(),
            factory_fn(|_| Recorder::new(&shared()).boxed()),
            &TcpOptions::new().with_backlog(0),
        )
        .unwrap();
        let full_addr = full.host().socket_addr().unwrap();
        let mut pending = Vec::new();
        for _ in 0..4 {
            let c = Client::new(|| Recorder::new(&shared()).boxed());
            r.connect_tcp(full_addr, c.clone(), None);
            pending.push(c);
        }
        r.run_until(
            || logs.iter().all(|l| l.borrow().data == b"hi") && server_made.get() == n,
            DEADLINE,
        )
        .unwrap();
        let r2 = r.clone();
        r.call_later(Duration::ZERO, move || r2.stop().unwrap());
        r.run().unwrap();
        for log in &logs {
            assert_eq!(log.borrow().lost.len(), 1, "each client lost exactly once");
        }
        assert_eq!(
            server_lost.get(),
            n,
            "each server protocol lost exactly once"
        );
        assert!(clients.iter().all(|c| c.lost.borrow().len() == 1));
        // Attempts that never completed fail once; ones the kernel completed are lost once.
        for c in &pending {
            assert_eq!(c.failed_count() + c.lost.borrow().len(), 1);
        }
        assert!(!port.host().to_string().is_empty());
        assert!(!dir.join("s").exists(), "the Unix port closed at shutdown");
        assert_eq!(r.selectable_count(), 0);
        port.stop_listening();
        uport.stop_listening();
        full.stop_listening();
    }
    assert_eq!(open_fds(), before, "no fd left open");
}

struct Restore {
    old: libc::rlimit,
    files: Vec<std::fs::File>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        self.files.clear();
        // SAFETY: `old` is the valid limit read before it was lowered.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
    }
}

fn max_open_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(1024)
}

/// With no fd left, `accept` fails with EMFILE: the port must stop reading and retry after
/// a back-off, not spin, and it must recover by itself once fds are free again.
#[test]
fn accept_out_of_fds_backs_off_without_spinning_and_recovers() {
    let _g = lock();
    let r = Reactor::new().unwrap();
    let made = Rc::new(Cell::new(0usize));
    let m = made.clone();
    let port = tcp::listen_tcp(
        &r,
        "127.0.0.1:0".parse().unwrap(),
        factory_fn(move |_| {
            m.set(m.get() + 1);
            Recorder::new(&shared()).boxed()
        }),
        &TcpOptions::new(),
    )
    .unwrap();
    let addr = port.host().socket_addr().unwrap();
    // Three connections wait in the accept queue.
    let peers: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();

    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid rlimit to write into.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let mut guard = Restore {
        old,
        files: Vec::new(),
    };
    let low = libc::rlimit {
        rlim_cur: (max_open_fd() + 16) as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `low` is a valid rlimit under the hard limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => guard.files.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                break;
            }
        }
    }

    for _ in 0..200 {
        r.iterate(Duration::ZERO).unwrap();
    }
    assert_eq!(made.get(), 0);
    assert!(port.is_backing_off(), "accepting paused");
    let calls = port.accept_calls();
    assert!(
        calls <= 2,
        "{calls} accept calls in 200 iterations: the loop spins"
    );
    // The back-off timer retries (and fails again) without spinning either.
    r.run_until(|| port.accept_calls() > calls, DEADLINE)
        .unwrap();
    assert!(port.accept_calls() <= calls + 2);
    assert!(port.is_backing_off());

    drop(guard);
    // No new connection arrives: the retry alone must pick up the queued ones.
    r.run_until(|| made.get() == 3, DEADLINE).unwrap();
    assert!(!port.is_backing_off());
    drop(peers);
    port.stop_listening();
}
