//! A bounded pool of worker threads for blocking work, whose results come back to the
//! reactor's thread as [`Deferred`]s (Twisted's `reactor.getThreadPool()`,
//! `deferToThread` and `resolve`; CONTRACT Q6, Q7).
//!
//! The pool is per reactor, started lazily by the first [`Reactor::call_in_thread`], with
//! at most [`DEFAULT_THREAD_POOL_SIZE`] threads unless
//! [`Reactor::suggest_thread_pool_size`] says otherwise; a thread is started only when no
//! idle one can take a call. Results are posted through the reactor's [`ThreadHandle`]
//! (CONTRACT A13), so the `Deferred` fires on the reactor's thread, from the loop.
//!
//! At the reactor's shutdown (`during` phase) the pool takes no more work, its threads
//! finish the calls already queued, and they are joined; results that arrived meanwhile
//! are delivered. A reactor dropped without `run` also joins its threads. A call that
//! never returns therefore holds up shutdown, as in Twisted: give blocking work its own
//! timeout.
//!
//! [`ThreadHandle`]: crate::ThreadHandle
//!
//! # Examples
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let got = Rc::new(Cell::new(0u64));
//! let g = got.clone();
//! reactor
//!     .call_in_thread(|| (1..=10u64).product::<u64>())
//!     .add_callback(move |n| g.set(n));
//! reactor.run_until(|| got.get() != 0, Duration::from_secs(10))?;
//! assert_eq!(got.get(), 3_628_800);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use torsion_transport::callback::guard;
use torsion_transport::defer::{Deferred, Failure};

use crate::events::{Event, Phase};
use crate::reactor::Reactor;

/// Threads in a reactor's pool unless [`Reactor::suggest_thread_pool_size`] is called
/// (Twisted's default `maxthreads`).
pub const DEFAULT_THREAD_POOL_SIZE: usize = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A call's `Deferred<T>` (type-erased), and a way to fail it without knowing `T`.
struct Pending {
    deferred: Box<dyn Any>,
    fail: Box<dyn FnOnce(Failure)>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            if st.stopping {
                st.threads -= 1;
                return;
            }
            st.idle += 1;
            st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
            st.idle -= 1;
        }
    }
}

/// A reactor's pool (a reactor extension). Reached through [`Reactor::call_in_thread`].
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
    max: Cell<usize>,
    handles: RefCell<Vec<JoinHandle<()>>>,
    /// Each call not yet delivered, by call number.
    pending: RefCell<HashMap<u64, Pending>>,
    next_id: Cell<u64>,
    hooked: Cell<bool>,
    stopped: Cell<bool>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max", &self.max.get())
            .field("threads", &self.handles.borrow().len())
            .field("pending", &self.pending.borrow().len())
            .finish()
    }
}

impl ThreadPool {
    fn new() -> Self {
        ThreadPool {
            shared: Arc::new(Shared::default()),
            max: Cell::new(DEFAULT_THREAD_POOL_SIZE),
            handles: RefCell::new(Vec::new()),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            hooked: Cell::new(false),
            stopped: Cell::new(false),
        }
    }

    /// Queue `job`, starting a thread if none is idle and the pool is below its size.
    fn submit(&self, job: Job) -> io::Result<()> {
        let spawn = {
            let mut st = self.shared.lock();
            st.jobs.push_back(job);
            let spawn = st.idle < st.jobs.len() && st.threads < self.max.get();
            if spawn {
                st.threads += 1;
            }
            spawn
        };
        self.shared.cond.notify_one();
        if spawn {
            let shared = self.shared.clone();
            let n = self.handles.borrow().len();
            let spawned = std::thread::Builder::new()
                .name(format!("torsion-pool-{n}"))
                .spawn(move || shared.work());
            match spawned {
                Ok(h) => self.handles.borrow_mut().push(h),
                Err(e) => {
                    let mut st = self.shared.lock();
                    st.threads -= 1;
                    if st.threads == 0 {
                        // No thread will ever run the job: take it back.
                        st.jobs.pop_back();
                        return Err(e);
                    }
                    log::warn!(
                        "cannot start another pool thread ({e}); the call waits for a busy one"
                    );
                }
            }
        }
        Ok(())
    }

    /// Take no more work, let the threads finish what is queued, join them.
    fn stop_and_join(&self) {
        self.stopped.set(true);
        self.shared.lock().stopping = true;
        self.shared.cond.notify_all();
        let handles = std::mem::take(&mut *self.handles.borrow_mut());
        if !handles.is_empty() {
            log::debug!("joining {} pool threads", handles.len());
        }
        for h in handles {
            if h.join().is_err() {
                log::error!("a pool thread panicked outside a call");
            }
        }
    }

    fn take<T: 'static>(&self, id: u64) -> Option<Deferred<T>> {
        let found = self.pending.borrow_mut().remove(&id)?;
        found.deferred.downcast::<Deferred<T>>().ok().map(|d| *d)
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if !self.stopped.get() {
            self.stop_and_join();
        }
    }
}

fn shut_down() -> Failure {
    Failure::msg("the reactor's thread pool has shut down; the call did not run")
}

impl Reactor {
    fn thread_pool(&self) -> std::rc::Rc<ThreadPool> {
        let pool = self.extension(ThreadPool::new);
        if !pool.hooked.replace(true) {
            let weak = self.downgrade();
            self.add_system_event_trigger(Phase::During, Event::Shutdown, move || {
                if let Some(r) = weak.upgrade() {
                    r.stop_thread_pool();
                }
            });
        }
        pool
    }

    /// Stop the pool: join its threads, deliver the results that came meanwhile, and fail
    /// the calls that got none.
    fn stop_thread_pool(&self) {
        let pool = self.extension(ThreadPool::new);
        pool.stop_and_join();
        self.inner.thread.run_queued(self);
        let left: Vec<Pending> = pool.pending.borrow_mut().drain().map(|(_, p)| p).collect();
        if !left.is_empty() {
            log::warn!("{} thread calls had no result at shutdown", left.len());
        }
        for p in left {
            (p.fail)(shut_down());
        }
    }

    /// Run `f` on a thread of this reactor's pool and get its result on the reactor's
    /// thread (Twisted's `deferToThread`; CONTRACT Q6). The `Deferred` fires from the loop
    /// once `f` returns; a panic in `f` fails it with [`Failure::Panicked`] (the panic is
    /// logged and the thread goes on serving). Calls run in submission order as threads
    /// free up; `f` must not assume it runs on any particular thread.
    ///
    /// Cancelling the `Deferred` does not stop `f` (a thread cannot be interrupted); its
    /// result is then dropped.
    ///
    /// After the reactor's shutdown the `Deferred` is failed at once.
    #[doc(alias = "deferToThread")]
    #[doc(alias = "callInThread")]
    pub fn call_in_thread<T, F>(&self, f: F) -> Deferred<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let pool = self.thread_pool();
        if pool.stopped.get() {
            return Deferred::fail(shut_down());
        }
        let id = pool.next_id.get();
        pool.next_id.set(id + 1);
        let d = Deferred::<T>::new();
        let failing = d.clone();
        pool.pending.borrow_mut().insert(
            id,
            Pending {
                deferred: Box::new(d.clone()),
                fail: Box::new(move |f| {
                    let _ = failing.errback(f);
                }),
            },
        );
        let handle = self.thread_handle();
        let job: Job = Box::new(move || {
            let result = guard("a call in a pool thread", f).map_err(|p| p.message);
            let posted = handle.call_from_thread_with(move |reactor: &Reactor| {
                let pool = reactor.extension(ThreadPool::new);
                if let Some(d) = pool.take::<T>(id) {
                    let _ = d.complete(result.map_err(Failure::Panicked));
                }
            });
            if posted.is_err() {
                log::debug!("a pool call finished after its reactor was dropped");
            }
        });
        if let Err(e) = pool.submit(job) {
            pool.pending.borrow_mut().remove(&id);
            let _ = d.errback(e);
        }
        d
    }

    /// Set the most threads this reactor's pool runs (Twisted's
    /// `suggestThreadPoolSize`; default [`DEFAULT_THREAD_POOL_SIZE`]). At least 1. Threads
    /// already running above a smaller size finish their calls and stay until shutdown.
    #[doc(alias = "suggestThreadPoolSize")]
    pub fn suggest_thread_pool_size(&self, size: usize) {
        self.extension(ThreadPool::new).max.set(size.max(1));
    }

    /// The most threads this reactor's pool runs.
    pub fn thread_pool_size(&self) -> usize {
        self.extension(ThreadPool::new).max.get()
    }

    /// Threads the pool has started (for monitoring and tests).
    pub fn thread_pool_threads(&self) -> usize {
        self.extension(ThreadPool::new).handles.borrow().len()
    }

    /// Resolve `host` to its IP addresses, in the resolver's order without repeats
    /// (Twisted's `reactor.resolve`, which gives the first; here all of them, so a client
    /// can try each). A numeric address is answered at once; a name is looked up on the
    /// pool. See [`resolve_addrs`](Self::resolve_addrs) for socket addresses with a port.
    ///
    /// # Errors
    ///
    /// The `Deferred` fails as [`resolve_addrs`](Self::resolve_addrs) does.
    pub fn resolve(&self, host: &str) -> Deferred<Vec<IpAddr>> {
        self.resolve_addrs(host, 0).add_callback(|addrs| {
            let mut ips: Vec<IpAddr> = Vec::with_capacity(addrs.len());
            for a in addrs {
                if !ips.contains(&a.ip()) {
                    ips.push(a.ip());
                }
            }
            ips
        })
    }

    /// Resolve `host` to its socket addresses with `port` (Twisted's `resolve`, through the
    /// system resolver: `getaddrinfo` via std's `ToSocketAddrs`; CONTRACT Q7). A numeric
    /// IPv4 or IPv6 address (brackets allowed) is answered at once, without a thread; a
    /// name is looked up on the pool.
    ///
    /// # Errors
    ///
    /// The `Deferred` fails with the resolver's error (an `io::Error` inside the
    /// [`Failure`]), or a `NotFound` one when the name has no addresses.
    #[doc(alias = "getHostByName")]
    pub fn resolve_addrs(&self, host: &str, port: u16) -> Deferred<Vec<SocketAddr>> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Deferred::succeed(vec![SocketAddr::new(ip, port)]);
        }
        let name = host.to_owned();
        self.call_in_thread(move || -> io::Result<Vec<SocketAddr>> {
            let found: Vec<SocketAddr> = (name.as_str(), port).to_socket_addrs()?.collect();
            if found.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name}: the name has no addresses"),
                ));
            }
            Ok(found)
        })
        .and_then(|r| r.map_err(Failure::from))
    }
}
