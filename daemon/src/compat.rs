//! Stand-ins for `Reactor::call_in_thread` and `Reactor::resolve` until the reactor's
//! thread pool lands (issue 13, branch netcore): a thread per call, the result handed back
//! through `ThreadHandle::call_from_thread`. The reactor's inherent methods take precedence
//! over these trait methods once they exist.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use torsion_reactor::Reactor;
use torsion_transport::defer::{Deferred, Failure};

pub(crate) trait PoolExt {
    fn call_in_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Deferred<T>;
    fn resolve(&self, host: &str, port: u16) -> Deferred<Vec<SocketAddr>>;
}

impl PoolExt for Reactor {
    fn call_in_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Deferred<T> {
        let d = Deferred::new();
        let handle = self.thread_handle();
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s = slot.clone();
        let d2 = d.clone();
        // The Deferred is !Send: it stays here; the thread sends back only the value.
        let id = crate::compat::register(d2);
        let spawned = std::thread::Builder::new()
            .name("torsion-pool".into())
            .spawn(move || {
                let v = f();
                *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
                let _ = handle.call_from_thread_with(move |_| {
                    let v = slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    if let (Some(v), Some(d)) = (v, crate::compat::take::<T>(id)) {
                        let _ = d.callback(v);
                    }
                });
            });
        if let Err(e) = spawned {
            if let Some(d) = crate::compat::take::<T>(id) {
                let _ = d.errback(Failure::from(e));
            }
        }
        d
    }

    fn resolve(&self, host: &str, port: u16) -> Deferred<Vec<SocketAddr>> {
        let host = host.to_owned();
        self.call_in_thread(move || -> io::Result<Vec<SocketAddr>> {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        })
        .and_then(|r| r.map_err(Failure::from))
    }
}

thread_local! {
    static PENDING: std::cell::RefCell<std::collections::HashMap<u64, Box<dyn std::any::Any>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn register<T: 'static>(d: Deferred<T>) -> u64 {
    let id = NEXT.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    PENDING.with(|p| p.borrow_mut().insert(id, Box::new(d)));
    id
}

fn take<T: 'static>(id: u64) -> Option<Deferred<T>> {
    PENDING
        .with(|p| p.borrow_mut().remove(&id))
        .and_then(|b| b.downcast::<Deferred<T>>().ok())
        .map(|b| *b)
}
