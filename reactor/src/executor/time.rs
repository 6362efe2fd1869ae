//! Time as futures: [`Sleep`], [`Timeout`] and [`ReactorTimeExt`], on any
//! [`ReactorTime`] — the reactor's monotonic timers, or the test kit's `Clock` (so async
//! code is tested with no real waiting).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use torsion_transport::{DelayedCall, ReactorTime};

/// A future that completes `delay` after it was made: a [`DelayedCall`] on the clock it was
/// made from, which wakes the task when due ([`DelayedCall::wake_on_call`]: no closure and
/// no shared state are allocated). Dropping it cancels the call.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    call: DelayedCall,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("fired", &self.call.called())
            .field("deadline", &self.call.time())
            .finish()
    }
}

/// A future that completes `delay` from now on `clock` (the deadline is fixed here, not at
/// the first poll).
pub fn sleep<C: ReactorTime + ?Sized>(clock: &C, delay: Duration) -> Sleep {
    // A closure that captures nothing is not allocated; the first poll makes the call
    // wake the task instead.
    let call = clock.call_later_boxed(delay, Box::new(|| {}));
    Sleep { call }
}

impl Sleep {
    /// True once the deadline has passed (the timer ran).
    pub fn is_elapsed(&self) -> bool {
        self.call.called()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.call.wake_on_call(cx.waker()) || !self.call.called() {
            // Pending; or cancelled (the clock was dropped), and then it never ends.
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.call.active() {
            let _ = self.call.cancel();
        }
    }
}

/// The deadline of a [`Timeout`] passed before its future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.0)
    }
}

impl std::error::Error for Elapsed {}

/// `fut`, or [`Elapsed`] if `delay` passes on `clock` first; the future is dropped then.
pub fn timeout<C: ReactorTime + ?Sized, F: Future>(
    clock: &C,
    delay: Duration,
    fut: F,
) -> Timeout<F> {
    Timeout {
        fut: Box::pin(fut),
        sleep: sleep(clock, delay),
        delay,
    }
}

/// The future of [`timeout`]: the inner future's output, or [`Elapsed`].
#[must_use = "a Timeout does nothing unless awaited"]
pub struct Timeout<F> {
    fut: Pin<Box<F>>,
    sleep: Sleep,
    delay: Duration,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let delay = self.delay;
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(delay))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `sleep` and `timeout` as methods of every [`ReactorTime`] — the reactor, the test kit's
/// `Clock` and `MemoryReactor` — in `torsion::prelude`.
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::Reactor;
/// use torsion_reactor::executor::ReactorTimeExt;
///
/// let reactor = Reactor::new()?;
/// let clock = reactor.clone();
/// let r = reactor.block_on(async move {
///     ReactorTimeExt::timeout(&clock, Duration::from_millis(1), std::future::pending::<()>()).await
/// })?;
/// assert!(r.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ReactorTimeExt: ReactorTime {
    /// A future that completes `delay` from now on this clock.
    fn sleep(&self, delay: Duration) -> Sleep {
        sleep(self, delay)
    }

    /// `fut`, or [`Elapsed`] if `delay` passes on this clock first.
    fn timeout<F: Future>(&self, delay: Duration, fut: F) -> Timeout<F> {
        timeout(self, delay, fut)
    }
}

impl<T: ReactorTime + ?Sized> ReactorTimeExt for T {}
