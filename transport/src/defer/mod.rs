//! [`Deferred`]: a one-shot result that callback code completes and callback code — or async
//! code — consumes (Twisted's `twisted.internet.defer`).
//!
//! A `Deferred<T>` is a cheap handle (clone it to keep one for completing). The side that
//! produces the result calls [`callback`](Deferred::callback) or
//! [`errback`](Deferred::errback); the side that wants it chains
//! [`add_callback`](Deferred::add_callback) and friends, or `.await`s it.
//!
//! Differences from Twisted, each deliberate:
//!
//! - **Continuations never run inside the completing call** (CONTRACT P1). `callback(v)`
//!   stores `v` and queues the chained callback on the thread's [soon queue](soon); the
//!   reactor runs it after the current callback returns. So completing a result inside
//!   `data_received` can never re-enter the protocol that is still on the stack. In a test
//!   with no reactor, [`run_soon`] runs what is queued; the test kit's `Clock::advance`
//!   runs it too.
//! - **Each link is typed.** A chaining method consumes the handle and returns the next
//!   link, whose type is the callback's result: `Deferred<Vec<u8>>` →
//!   `add_callback(String::from_utf8_lossy..)` → `Deferred<String>`. A link delivers its
//!   result to one consumer; a second consumer gets [`Failure::Consumed`].
//! - **A second completion is an error value**, [`AlreadyCalled`], never a panic (P2).
//! - **A panic in a callback** becomes [`Failure::Panicked`] down the chain (P3), caught by the
//!   funnel ([`crate::callback::guard`]). A failure nobody handles is logged once
//!   when its last handle goes.
//!
//! # Examples
//!
//! ```
//! use torsion_transport::defer::{Deferred, run_soon};
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! let d: Deferred<u32> = Deferred::new();
//! let seen = Rc::new(Cell::new(0));
//! let s = seen.clone();
//! d.clone()
//!     .add_callback(|n| n * 2)
//!     .add_callback(move |n| s.set(n));
//! d.callback(21).unwrap();
//! assert_eq!(seen.get(), 0, "nothing runs inside callback()");
//! run_soon(); // what the reactor does every iteration
//! assert_eq!(seen.get(), 42);
//! assert!(d.callback(1).is_err(), "a second completion is AlreadyCalled");
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::ReactorTime;
use crate::callback::guard;

mod failure;
mod list;
pub mod soon;

pub use failure::Failure;
pub use list::{DeferredList, deferred_list, gather, race};
pub use soon::{call_soon, has_soon, run_soon, run_soon_batch};

/// A `Deferred` already has its result: the second `callback`/`errback` (CONTRACT P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "AlreadyCalledError")]
pub struct AlreadyCalled;

impl fmt::Display for AlreadyCalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Deferred already has a result")
    }
}

impl std::error::Error for AlreadyCalled {}

type Outcome<T> = Result<T, Failure>;
type Continuation<T> = Box<dyn FnOnce(Outcome<T>)>;

enum State<T> {
    Pending,
    Ready(Outcome<T>),
    /// The result went to its consumer.
    Taken,
}

enum Consumer<T> {
    None,
    Chain(Continuation<T>),
    Waker(Waker),
}

type UserCanceller<T> = Box<dyn FnOnce(&Deferred<T>)>;

enum Canceller<T: 'static> {
    /// The user's: it may complete the Deferred; if it does not, the result is `Cancelled`.
    User(UserCanceller<T>),
    /// A link's: cancel what it waits for; the result then comes down the chain.
    Upstream(Box<dyn FnOnce()>),
}

struct Node<T: 'static> {
    state: State<T>,
    consumer: Consumer<T>,
    canceller: Option<Canceller<T>>,
}

impl<T: 'static> Drop for Node<T> {
    fn drop(&mut self) {
        if let State::Ready(Err(f)) = &self.state {
            match f {
                Failure::Cancelled => log::debug!("a cancelled Deferred was never consumed"),
                f => log::error!("unhandled failure in a Deferred: {f}"),
            }
        }
    }
}

/// A one-shot result (Twisted's `Deferred`); see the [module docs](self).
pub struct Deferred<T: 'static> {
    node: Rc<RefCell<Node<T>>>,
}

impl<T: 'static> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred {
            node: self.node.clone(),
        }
    }
}

impl<T: 'static> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.node.try_borrow() {
            Ok(n) => match &n.state {
                State::Pending => "pending",
                State::Ready(Ok(_)) => "called (value)",
                State::Ready(Err(_)) => "called (failure)",
                State::Taken => "consumed",
            },
            Err(_) => "busy",
        };
        f.debug_struct("Deferred").field("state", &state).finish()
    }
}

impl<T: 'static> Default for Deferred<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a link's callback gives: a result now, or a Deferred to wait for.
enum Step<U: 'static> {
    Now(Outcome<U>),
    Wait(Deferred<U>),
}

impl<T: 'static> Deferred<T> {
    fn with_node(canceller: Option<Canceller<T>>) -> Self {
        Deferred {
            node: Rc::new(RefCell::new(Node {
                state: State::Pending,
                consumer: Consumer::None,
                canceller,
            })),
        }
    }

    /// A Deferred with no result yet and no canceller: [`cancel`](Self::cancel) fails it with
    /// [`Failure::Cancelled`].
    pub fn new() -> Self {
        Self::with_node(None)
    }

    /// A Deferred whose [`cancel`](Self::cancel) first runs `canceller` (once, through the
    /// funnel). The canceller may complete the Deferred (say, with a partial result); if it
    /// does not, the result is [`Failure::Cancelled`] (CONTRACT P2).
    pub fn with_canceller(canceller: impl FnOnce(&Deferred<T>) + 'static) -> Self {
        Self::with_node(Some(Canceller::User(Box::new(canceller))))
    }

    /// A Deferred that already has the value `v` (Twisted's `succeed`).
    pub fn succeed(v: T) -> Self {
        Self::from_result(Ok(v))
    }

    /// A Deferred that already failed (Twisted's `fail`).
    pub fn fail(f: impl Into<Failure>) -> Self {
        Self::from_result(Err(f.into()))
    }

    /// A Deferred that already has `r`.
    pub fn from_result(r: Result<T, Failure>) -> Self {
        let d = Self::new();
        let _ = d.complete(r);
        d
    }

    /// Give the Deferred its value. Chained callbacks run later, from the loop (CONTRACT
    /// P1); an awaiting task is woken.
    ///
    /// # Errors
    ///
    /// [`AlreadyCalled`] if it already has a result; `v` is dropped and the first result kept.
    pub fn callback(&self, v: T) -> Result<(), AlreadyCalled> {
        self.complete(Ok(v))
    }

    /// Fail the Deferred with `f`; see [`callback`](Self::callback).
    ///
    /// # Errors
    ///
    /// [`AlreadyCalled`] if it already has a result.
    pub fn errback(&self, f: impl Into<Failure>) -> Result<(), AlreadyCalled> {
        self.complete(Err(f.into()))
    }

    /// Complete with `r` (value or failure); see [`callback`](Self::callback).
    ///
    /// # Errors
    ///
    /// [`AlreadyCalled`] if it already has a result.
    pub fn complete(&self, r: Result<T, Failure>) -> Result<(), AlreadyCalled> {
        enum Then<T> {
            Schedule(Continuation<T>, Outcome<T>),
            Wake(Waker),
            Nothing,
        }
        let then = {
            let Ok(mut n) = self.node.try_borrow_mut() else {
                // Only this module borrows the node, and never across user code.
                return Err(AlreadyCalled);
            };
            if !matches!(n.state, State::Pending) {
                return Err(AlreadyCalled);
            }
            n.canceller = None;
            match std::mem::replace(&mut n.consumer, Consumer::None) {
                Consumer::Chain(c) => {
                    n.state = State::Taken;
                    Then::Schedule(c, r)
                }
                Consumer::Waker(w) => {
                    n.state = State::Ready(r);
                    Then::Wake(w)
                }
                Consumer::None => {
                    n.state = State::Ready(r);
                    Then::Nothing
                }
            }
        };
        match then {
            Then::Schedule(c, r) => call_soon(move || c(r)),
            Then::Wake(w) => w.wake(),
            Then::Nothing => {}
        }
        Ok(())
    }

    /// Whether it has a result (or had one that was consumed). Twisted's `called`.
    #[doc(alias = "called")]
    pub fn is_called(&self) -> bool {
        self.node
            .try_borrow()
            .map(|n| !matches!(n.state, State::Pending))
            .unwrap_or(true)
    }

    /// Cancel: if there is no result yet, run the canceller (a link cancels what it waits
    /// for); if that did not complete it, fail it with [`Failure::Cancelled`]. Nothing
    /// happens once it has a result.
    pub fn cancel(&self) {
        let canceller = match self.node.try_borrow_mut() {
            Ok(mut n) if matches!(n.state, State::Pending) => n.canceller.take(),
            _ => return,
        };
        match canceller {
            Some(Canceller::Upstream(up)) => {
                let _ = guard("a Deferred canceller", up);
            }
            Some(Canceller::User(c)) => {
                let _ = guard("a Deferred canceller", || c(self));
                let _ = self.errback(Failure::Cancelled);
            }
            None => {
                let _ = self.errback(Failure::Cancelled);
            }
        }
    }

    /// Hand the result to `c` (from the soon queue). One consumer per link.
    fn set_consumer(&self, c: Continuation<T>) {
        let now = {
            let Ok(mut n) = self.node.try_borrow_mut() else {
                call_soon(move || c(Err(Failure::Consumed)));
                return;
            };
            match std::mem::replace(&mut n.state, State::Taken) {
                State::Pending => {
                    n.state = State::Pending;
                    if matches!(n.consumer, Consumer::Chain(_)) {
                        Some(Err(Failure::Consumed))
                    } else {
                        // A waker left by a dropped future is replaced.
                        n.consumer = Consumer::Chain(c);
                        return;
                    }
                }
                State::Ready(r) => Some(Ok(r)),
                State::Taken => Some(Err(Failure::Consumed)),
            }
        };
        match now {
            Some(Ok(r)) => call_soon(move || c(r)),
            Some(Err(f)) => call_soon(move || c(Err(f))),
            None => {}
        }
    }

    fn weak_cancel(&self) -> Box<dyn FnOnce()> {
        let weak: Weak<RefCell<Node<T>>> = Rc::downgrade(&self.node);
        Box::new(move || {
            if let Some(node) = weak.upgrade() {
                Deferred { node }.cancel();
            }
        })
    }

    /// The general link: `f` maps this link's outcome to the next's, now or later.
    fn link<U: 'static>(self, f: impl FnOnce(Outcome<T>) -> Step<U> + 'static) -> Deferred<U> {
        let next: Deferred<U> = Deferred::with_node(Some(Canceller::Upstream(self.weak_cancel())));
        let out = next.clone();
        self.set_consumer(Box::new(move |r| {
            match guard("a Deferred callback", || f(r)) {
                Ok(Step::Now(r)) => {
                    let _ = out.complete(r);
                }
                Ok(Step::Wait(inner)) => {
                    if let Ok(mut n) = out.node.try_borrow_mut() {
                        if matches!(n.state, State::Pending) {
                            n.canceller = Some(Canceller::Upstream(inner.weak_cancel()));
                        }
                    }
                    let out2 = out.clone();
                    inner.set_consumer(Box::new(move |r| {
                        let _ = out2.complete(r);
                    }));
                }
                Err(p) => {
                    let _ = out.complete(Err(Failure::Panicked(p.message)));
                }
            }
        }));
        next
    }

    /// Chain `f` on the value; a failure passes by (Twisted's `addCallback`).
    #[doc(alias = "addCallback")]
    pub fn add_callback<U: 'static>(self, f: impl FnOnce(T) -> U + 'static) -> Deferred<U> {
        self.link(move |r| Step::Now(r.map(f)))
    }

    /// Chain `f` on the value; `f` may fail (Twisted's `addCallback` raising).
    pub fn and_then<U: 'static>(
        self,
        f: impl FnOnce(T) -> Result<U, Failure> + 'static,
    ) -> Deferred<U> {
        self.link(move |r| Step::Now(r.and_then(f)))
    }

    /// Chain `f` on the value; the chain waits for the Deferred `f` returns (Twisted's
    /// callback returning a Deferred).
    pub fn chain<U: 'static>(self, f: impl FnOnce(T) -> Deferred<U> + 'static) -> Deferred<U> {
        self.link(move |r| match r {
            Ok(v) => Step::Wait(f(v)),
            Err(e) => Step::Now(Err(e)),
        })
    }

    /// Chain `f` on a failure; it may recover with a value or fail again (Twisted's
    /// `addErrback`). A value passes by.
    #[doc(alias = "addErrback")]
    pub fn add_errback(
        self,
        f: impl FnOnce(Failure) -> Result<T, Failure> + 'static,
    ) -> Deferred<T> {
        self.link(move |r| Step::Now(r.or_else(f)))
    }

    /// Chain `ok` on a value and `err` on a failure (Twisted's `addCallbacks`).
    #[doc(alias = "addCallbacks")]
    pub fn add_callbacks<U: 'static>(
        self,
        ok: impl FnOnce(T) -> Result<U, Failure> + 'static,
        err: impl FnOnce(Failure) -> Result<U, Failure> + 'static,
    ) -> Deferred<U> {
        self.link(move |r| Step::Now(r.map_or_else(err, ok)))
    }

    /// Chain `f` on either outcome (Twisted's `addBoth`).
    #[doc(alias = "addBoth")]
    pub fn add_both<U: 'static>(
        self,
        f: impl FnOnce(Result<T, Failure>) -> Result<U, Failure> + 'static,
    ) -> Deferred<U> {
        self.link(move |r| Step::Now(f(r)))
    }

    /// Fail with [`Failure::TimedOut`] if there is no result within `timeout` on `clock`:
    /// this link is cancelled (so its canceller runs), and a `Cancelled` that results is
    /// reported as the timeout (Twisted's `addTimeout`). A result in time cancels the timer.
    #[doc(alias = "addTimeout")]
    pub fn add_timeout(
        self,
        clock: &(impl ReactorTime + ?Sized),
        timeout: Duration,
    ) -> Deferred<T> {
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let cancel = self.weak_cancel();
        let call = clock.call_later_boxed(
            timeout,
            Box::new(move || {
                f.set(true);
                cancel();
            }),
        );
        self.add_both(move |r| {
            let _ = call.cancel();
            match r {
                Err(Failure::Cancelled) if fired.get() => Err(Failure::TimedOut(timeout)),
                r => r,
            }
        })
    }

    /// Poll for the result (the `Future` impl's body).
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let Ok(mut n) = self.node.try_borrow_mut() else {
            return Poll::Ready(Err(Failure::Consumed));
        };
        match std::mem::replace(&mut n.state, State::Taken) {
            State::Ready(r) => Poll::Ready(r),
            State::Taken => Poll::Ready(Err(Failure::Consumed)),
            State::Pending => {
                n.state = State::Pending;
                match &mut n.consumer {
                    Consumer::Chain(_) => Poll::Ready(Err(Failure::Consumed)),
                    Consumer::Waker(w) => {
                        w.clone_from(cx.waker());
                        Poll::Pending
                    }
                    c @ Consumer::None => {
                        *c = Consumer::Waker(cx.waker().clone());
                        Poll::Pending
                    }
                }
            }
        }
    }
}

/// [`Deferred::add_timeout`] as a function: `d` fails with [`Failure::TimedOut`] unless it
/// has a result within `timeout` on `reactor`'s clock (Twisted's `addTimeout`).
#[doc(alias = "addTimeout")]
pub fn add_timeout<T: 'static>(
    reactor: &(impl ReactorTime + ?Sized),
    d: Deferred<T>,
    timeout: Duration,
) -> Deferred<T> {
    d.add_timeout(reactor, timeout)
}

/// Awaiting a Deferred takes its result (DESIGN rule 6). Completion wakes the task; the
/// task is polled from its executor's loop, never inside `callback()`.
impl<T: 'static> Future for Deferred<T> {
    type Output = Result<T, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_result(cx)
    }
}

#[cfg(test)]
mod tests;
