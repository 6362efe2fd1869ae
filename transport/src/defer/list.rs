//! Waiting for several Deferreds: [`gather`], [`deferred_list`], [`race`].

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::{Canceller, Deferred, Failure, Node};

/// Cancel every Deferred in `ds` (the combined Deferred's canceller). Weak: a member that
/// is gone has nothing left to cancel, and no cycle keeps members alive.
fn cancel_all<T: 'static>(ds: &[Deferred<T>]) -> impl FnOnce() + 'static + use<T> {
    let cancels: Vec<Box<dyn FnOnce()>> = ds.iter().map(Deferred::weak_cancel).collect();
    move || cancels.into_iter().for_each(|c| c())
}

/// Results arriving in any order, kept in the order given.
struct Slots<T> {
    slots: Vec<Option<T>>,
    left: usize,
}

impl<T> Slots<T> {
    fn new(n: usize) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Slots {
            slots: (0..n).map(|_| None).collect(),
            left: n,
        }))
    }

    /// Fill slot `i`; every value, in order, once the last one arrives.
    fn fill(&mut self, i: usize, v: T) -> Option<Vec<T>> {
        self.slots[i] = Some(v);
        self.left -= 1;
        (self.left == 0).then(|| {
            std::mem::take(&mut self.slots)
                .into_iter()
                .flatten()
                .collect()
        })
    }
}

/// A combined Deferred over `ds`: cancelling it cancels each member, and `each(out, i, r)`
/// receives member `i`'s outcome. An empty `ds` gives `empty` at once.
fn combine<T: 'static, U: 'static>(
    ds: Vec<Deferred<T>>,
    empty: Result<U, Failure>,
    each: impl Fn(&Deferred<U>, usize, Result<T, Failure>) + 'static,
) -> Deferred<U> {
    let cancel = cancel_all(&ds);
    let out = Deferred::with_node(Some(Canceller::Upstream(Box::new(cancel))));
    if ds.is_empty() {
        let _ = out.complete(empty);
        return out;
    }
    let each = Rc::new(each);
    for (i, d) in ds.into_iter().enumerate() {
        let (each, out) = (each.clone(), out.clone());
        d.set_consumer(Box::new(move |r| each(&out, i, r)));
    }
    out
}

/// Every result, in the order given, once all have one: `Ok` or `Err` each (Twisted's
/// `DeferredList` with `consumeErrors=True`: the failures are handed to the list, so none
/// is logged as unhandled). An empty list succeeds at once. Cancelling the list cancels
/// each member; the list then completes with what they give.
#[doc(alias = "DeferredList")]
pub fn deferred_list<T: 'static>(ds: Vec<Deferred<T>>) -> Deferred<Vec<Result<T, Failure>>> {
    let slots = Slots::new(ds.len());
    combine(ds, Ok(Vec::new()), move |out, i, r| {
        let all = slots.borrow_mut().fill(i, r);
        if let Some(all) = all {
            let _ = out.callback(all);
        }
    })
}

/// Twisted's `DeferredList(deferreds, consumeErrors=True)` spelled as a constructor:
/// `DeferredList::new(ds)` is [`deferred_list`]`(ds)`.
#[derive(Debug)]
pub struct DeferredList(());

impl DeferredList {
    /// [`deferred_list`]: every outcome, in the order given, once all have one.
    // Twisted's `DeferredList(...)` is a constructor call that gives a Deferred.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: 'static>(ds: Vec<Deferred<T>>) -> Deferred<Vec<Result<T, Failure>>> {
        deferred_list(ds)
    }
}

/// Every value, in the order given; the first failure fails the whole (the later failures
/// are consumed, not logged). Twisted's `gatherResults(consumeErrors=True)`. Cancelling it
/// cancels each member.
#[doc(alias = "gatherResults")]
pub fn gather<T: 'static>(ds: Vec<Deferred<T>>) -> Deferred<Vec<T>> {
    let slots = Slots::new(ds.len());
    combine(ds, Ok(Vec::new()), move |out, i, r| match r {
        Ok(v) => {
            let all = slots.borrow_mut().fill(i, v);
            if let Some(all) = all {
                let _ = out.callback(all);
            }
        }
        // The first failure wins; later ones are AlreadyCalled and dropped here.
        Err(f) => {
            let _ = out.errback(f);
        }
    })
}

/// The first value among `ds`, with its index; the others are cancelled then (Twisted's
/// `race`). Fails only when all fail, with the last failure. An empty list fails at once.
pub fn race<T: 'static>(ds: Vec<Deferred<T>>) -> Deferred<(usize, T)> {
    let members: Vec<Weak<RefCell<Node<T>>>> = ds.iter().map(|d| Rc::downgrade(&d.node)).collect();
    let left = std::cell::Cell::new(ds.len());
    combine(
        ds,
        Err(Failure::msg("race of no Deferreds")),
        move |out, i, r| {
            left.set(left.get() - 1);
            match r {
                Ok(v) => {
                    if out.callback((i, v)).is_ok() {
                        for (j, m) in members.iter().enumerate() {
                            if let (true, Some(node)) = (j != i, m.upgrade()) {
                                Deferred { node }.cancel();
                            }
                        }
                    }
                }
                Err(f) if left.get() == 0 => {
                    let _ = out.errback(f);
                }
                Err(_) => {}
            }
        },
    )
}
