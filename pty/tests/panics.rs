//! A panic in each protocol callback of a `PtyTransport` is caught and closes that
//! transport only; `connection_lost` still comes, the master is closed and the reactor keeps
//! nothing (CONTRACT C5).

// Unix only: pseudo-terminals are POSIX.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use torsion_pty::{PtyTransport, open_pty};
use torsion_reactor::Reactor;
use torsion_transport::{Protocol, Reason, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    ConnectionMade,
    DataReceived,
    ConnectionLost,
}

struct Panicker {
    at: At,
    lost: Rc<RefCell<Option<Reason>>>,
    dropped: Rc<Cell<bool>>,
}

impl Drop for Panicker {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

impl Protocol for Panicker {
    fn connection_made(&mut self, _t: Rc<dyn Transport>) {
        if self.at == At::ConnectionMade {
            panic!("test panic in connection_made");
        }
    }
    fn data_received(&mut self, _data: &[u8]) {
        if self.at == At::DataReceived {
            panic!("test panic in data_received");
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        *self.lost.borrow_mut() = Some(reason);
        if self.at == At::ConnectionLost {
            panic!("test panic in connection_lost");
        }
    }
}

#[test]
fn c5_panic_in_each_callback_closes_only_that_transport() {
    for at in [At::ConnectionMade, At::DataReceived, At::ConnectionLost] {
        let r = Reactor::new().unwrap();
        let (master, slave) = open_pty().unwrap();
        let (lost, dropped) = (Rc::new(RefCell::new(None)), Rc::new(Cell::new(false)));
        let protocol = Panicker {
            at,
            lost: lost.clone(),
            dropped: dropped.clone(),
        };
        let t = PtyTransport::start(&r, master, Box::new(protocol)).unwrap();
        let mut slave = Some(File::from(slave));
        if let Some(s) = slave.as_mut() {
            s.write_all(b"data\n").unwrap();
        }
        if at == At::ConnectionLost {
            slave = None; // every slave fd closed: the end of output, a clean close
        }
        let d = dropped.clone();
        r.run_until(|| d.get(), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{at:?}: {e}"));
        assert!(
            lost.borrow().is_some(),
            "{at:?}: connection_lost still comes"
        );
        assert!(t.is_closed(), "{at:?}: the master is closed");
        assert_eq!(
            r.selectable_count(),
            0,
            "{at:?}: nothing left in the reactor"
        );
        drop(slave);
    }
}
