//! async/await on torsion's reactor: TCP and Unix streams, child processes and time as
//! futures, on the reactor's own transports (`torsion::net`).
//!
//! ```
//! use torsion_net::{TcpListener, TcpStream};
//! use torsion_reactor::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let listener = TcpListener::bind(&reactor, "127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let r = reactor.clone();
//! let reply = reactor.block_on(async move {
//!     // An echo server task...
//!     let server = r.spawn_local(async move {
//!         let (mut conn, _peer) = listener.accept().await?;
//!         let mut buf = [0; 64];
//!         let n = conn.read(&mut buf).await?;
//!         conn.write_all(&buf[..n]).await?;
//!         conn.shutdown().await
//!     });
//!     // ... and a client.
//!     let mut client = TcpStream::connect(&r, addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut reply = Vec::new();
//!     let mut buf = [0; 64];
//!     loop {
//!         let n = client.read(&mut buf).await?;
//!         if n == 0 { break; }
//!         reply.extend_from_slice(&buf[..n]);
//!     }
//!     server.await.expect("server task")?;
//!     Ok::<_, std::io::Error>(reply)
//! })??;
//! assert_eq!(reply, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The async guide
//!
//! ## One loop, two styles
//!
//! torsion runs protocols as callbacks and application logic as `async` code **on the
//! same single-threaded loop**. There is no second runtime and no thread: a task is a
//! future the reactor polls from its loop ([`Reactor::spawn_local`], no `Send` bound), and
//! [`Reactor::block_on`] runs the loop until one future completes. Callbacks and tasks
//! meet through [`Deferred`](torsion_transport::defer::Deferred) (a `Future`; and
//! [`Deferred::from_future`](DeferredFromFuture::from_future) runs a future as a task
//! whose result fires a Deferred, Twisted's `Deferred.fromCoroutine`).
//!
//! ## The rules (CONTRACT P4–P6)
//!
//! - **Wakes only schedule.** A task is polled from the loop, at one point of each
//!   iteration, never inside `wake()` or inside a protocol callback. Wakers are
//!   `Send + Sync`: a wake from another thread goes through the reactor's thread queue, so
//!   N wakes are never lost and make one poll.
//! - **A budget** ([`TASK_BUDGET`](torsion_reactor::executor::TASK_BUDGET) polls per
//!   iteration) keeps a busy task from starving I/O.
//! - **Backpressure is real.** The streams are the reactor's transports with a small
//!   protocol: `write_all` waits while the transport's buffer is over its size (a producer
//!   registered with the transport is paused and resumed by it), and a reader that stops
//!   reading pauses the transport once [`READ_HIGH_WATER`] bytes wait. Memory stays
//!   bounded on both sides.
//! - **Lifetimes.** Dropping a stream closes it (after what was written is sent);
//!   dropping a [`JoinHandle`] detaches its task; [`JoinHandle::abort`] drops it on the
//!   next turn; a panicking task resolves its handle with [`JoinError`] and the loop goes
//!   on; shutting the reactor down drops the pending tasks (their destructors run).
//!
//! ## Streams
//!
//! [`TcpStream::connect`], [`TcpListener::bind`] + [`accept`](TcpListener::accept), the
//! same for [`UnixStream`] and [`UnixListener`]; `read`, `write_all`, `shutdown`
//! (half-close), `split` into a [`ReadHalf`] and a [`WriteHalf`] for two tasks, and
//! `lines()` ([`Lines::next_line`]). With the feature `futures-io`, every stream (and
//! half, and a child's pipes) implements `futures_io::AsyncRead`/`AsyncWrite`, so crates
//! written against those traits run on them.
//!
//! ## Processes
//!
//! [`ProcessBuilderAsync`] (in `torsion::prelude`) adds to `ProcessBuilder`:
//!
//! ```
//! # #[cfg(unix)] {
//! use torsion_net::ProcessBuilderAsync;
//! use torsion_reactor::Reactor;
//! use torsion_transport::{ExitReason, ProcessBuilder};
//!
//! let reactor = Reactor::new()?;
//! let out = reactor.block_on(ProcessBuilder::new("sh").args(["-c", "echo hi; echo oops >&2"]).output(&reactor))??;
//! assert_eq!(out.stdout, b"hi\n");
//! assert_eq!(out.stderr, b"oops\n");
//! assert_eq!(out.status, ExitReason::ProcessDone);
//!
//! // A child whose pipes are streams:
//! let r = reactor.clone();
//! let line = reactor.block_on(async move {
//!     let mut child = ProcessBuilder::new("cat").spawn_async(&r)?;
//!     let mut stdin = child.stdin.take().unwrap();
//!     let mut lines = child.stdout.take().unwrap().lines();
//!     stdin.write_all(b"ping\n").await?;
//!     let line = lines.next_line().await?;
//!     drop(stdin); // cat reads EOF and exits
//!     child.wait().await?;
//!     Ok::<_, std::io::Error>(line)
//! })??;
//! assert_eq!(line.as_deref(), Some("ping"));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Time, and testing without waiting
//!
//! [`sleep`] and [`timeout`] (and the [`ReactorTimeExt`] methods) work on any
//! `ReactorTime`: the reactor, or the test kit's `Clock`. A test drives tasks with a
//! [`LocalExecutor`] and advances the clock; nothing really waits:
//!
//! ```
//! use std::time::Duration;
//! use torsion_net::{LocalExecutor, ReactorTimeExt};
//! use torsion_testing::Clock;
//!
//! let clock = Clock::new();
//! let ex = LocalExecutor::new();
//! let c = clock.clone();
//! let t = ex.spawn(async move { c.timeout(Duration::from_secs(30), c.sleep(Duration::from_secs(60))).await });
//! ex.run_until_stalled();
//! clock.advance(Duration::from_secs(30));
//! ex.run_until_stalled();
//! assert!(t.try_take().unwrap().unwrap().is_err()); // timed out, at once
//! ```
//!
//! ## Embedding the reactor in another loop
//!
//! `Reactor` implements `AsFd` (its poller's fd, readable when a watched fd is ready) and
//! [`Reactor::next_timeout`] says how long the host may sleep; the host then calls
//! `reactor.iterate(Duration::ZERO)`. This works inside a raw `poll(2)` loop and inside
//! tokio through `AsyncFd` (see this crate's `tests/embed.rs`).
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "futures-io")]
mod compat;
mod error;
mod lines;
mod pipe;
mod process;
mod socket;
mod stream;
mod tcp;
#[cfg(unix)]
mod unix;

pub use error::NetError;
pub use lines::{Lines, MAX_LINE_LENGTH};
pub use pipe::{READ_HIGH_WATER, WRITE_CHUNK};
pub use process::{Child, ChildStdin, ChildStdout, Output, ProcessBuilderAsync, spawn_error_to_io};
pub use socket::ACCEPT_QUEUE_MAX;
pub use stream::{ReadHalf, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
pub use torsion_reactor::executor::{
    AbortHandle, DeferredFromFuture, Elapsed, JoinError, JoinHandle, LocalExecutor, ReactorTimeExt,
    Sleep, Timeout, deferred_from_future, sleep, timeout,
};
#[cfg(unix)]
pub use unix::{UnixListener, UnixStream};

#[doc(no_inline)]
pub use torsion_reactor::Reactor;
