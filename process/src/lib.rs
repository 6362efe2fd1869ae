//! Child processes on torsion's reactor: spawning with any child fd map, typed spawn
//! errors, pipes with flow control, and reaping without zombies or stolen children
//! (docs/ARCHITECTURE.md, "Processes"; CONTRACT F–J).
//!
//! # `process_exited` and `process_ended`
//!
//! A [`ProcessProtocol`](torsion_transport::ProcessProtocol) hears about the end of a child
//! twice, as in Twisted:
//!
//! - `process_exited(reason)` when the child is **reaped**: it is gone, and
//!   [`pid()`](torsion_transport::ProcessTransport::pid) is `None` from then on. Output may
//!   still be on its way: a grandchild that inherited the child's stdout can keep writing.
//! - `process_ended(reason)` when the child is reaped **and** every pipe the reactor created
//!   for it is closed: nothing more can arrive. It is always the last callback.
//!
//! Use `process_exited` to react to the exit (restart a worker); use `process_ended` to act
//! on the complete output (parse it, close the connection it was feeding).
//!
//! ```
//! # #[cfg(unix)] { // POSIX programs (sh, echo, true)
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//! use torsion_process::ProcessBuilderExt;
//! use torsion_transport::{ExitReason, ProcessBuilder, ProcessProtocol};
//!
//! #[derive(Default)]
//! struct Log(Rc<RefCell<Vec<String>>>);
//!
//! impl ProcessProtocol for Log {
//!     fn out_received(&mut self, data: &[u8]) {
//!         self.0.borrow_mut().push(format!("out {}", String::from_utf8_lossy(data).trim()));
//!     }
//!     fn process_exited(&mut self, reason: ExitReason) {
//!         self.0.borrow_mut().push(format!("exited: {reason}"));
//!     }
//!     fn process_ended(&mut self, reason: ExitReason) {
//!         self.0.borrow_mut().push(format!("ended: {reason}"));
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! let log = Rc::new(RefCell::new(Vec::new()));
//! // The child exits at once; the grandchild it leaves behind holds stdout for a moment.
//! let child = ProcessBuilder::new("sh").args(["-c", "(sleep 0.2; echo late) & exit 3"]);
//! child.spawn(&reactor, Box::new(Log(log.clone())))?;
//! let l = log.clone();
//! reactor.run_until(|| l.borrow().iter().any(|e| e.starts_with("ended")), Duration::from_secs(10))?;
//! assert_eq!(
//!     *log.borrow(),
//!     [
//!         "exited: process ended with exit code 3",
//!         "out late",
//!         "ended: process ended with exit code 3",
//!     ]
//! );
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One way to spawn
//!
//! [`ProcessBuilder`](torsion_transport::ProcessBuilder) describes everything — program,
//! arguments, environment, cwd, uid/gid, the child fd map, a pseudo-terminal
//! ([`pty`](torsion_transport::ProcessBuilder::pty)), the pipe size — and
//! `builder.spawn(&reactor, protocol)` ([`ProcessBuilderExt`]) spawns it, on pipes or a PTY,
//! on any [`Reactor`](torsion_reactor::Reactor), returning a [`Process`] (CONTRACT G9).
//! [`ReactorProcess::spawn_process`] (for code generic over the real reactor and the test
//! kit's `MemoryReactor`) and Twisted's [`spawn_process`] are aliases of it.
//!
//! # The layers, bottom up
//!
//! 1. [`raw`] — no reactor: waiting, signalling and wait statuses
//!    ([`raw::try_wait`], [`raw::send_signal`]); the vfork-style spawn underneath
//!    (`clone(CLONE_VM|CLONE_VFORK)` on Linux, fork/exec elsewhere, every failure a
//!    [`SpawnError`](torsion_transport::SpawnError) naming the step).
//! 2. [`pipes`] — the parent's pipe ends as selectables: [`pipes::ProcessReader`] and
//!    [`pipes::ProcessWriter`] (a [`FileDescriptor`](torsion_reactor::FileDescriptor) write
//!    side that notices a child closing its stdin, CONTRACT I1). A PTY child's channel is
//!    `torsion-pty`'s master.
//! 3. [`reaper`] — one [`ChildWatcher`] per reactor: a pidfd per child in the loop, or
//!    SIGCHLD with `wait4` per owned child (never `waitpid(-1)`), shutdown policies.
//! 4. [`Process`] — the process transport: one process core (pid, exit, end, signals,
//!    delivery to the protocol through one guarded funnel) and its channels.
//! 5. [`StandardIo`] — a `Transport` over any read/write fd pair, such as our own stdin and
//!    stdout (Twisted's `StandardIO`).
//!
//! Errors are synchronous: a missing program, a bad cwd, a NUL byte or a bad fd map is an
//! `Err` from `spawn`, never a child that prints a traceback:
//!
//! ```
//! # #[cfg(unix)] { // POSIX programs (sh, echo, true)
//! use torsion_process::ProcessBuilderExt;
//! use torsion_reactor::Reactor;
//! use torsion_transport::{ChildFd, ProcessBuilder, ProcessProtocol, SpawnStep};
//!
//! struct Quiet;
//! impl ProcessProtocol for Quiet {}
//!
//! let reactor = Reactor::new()?;
//! let err = ProcessBuilder::new("/nonexistent/program")
//!     .spawn(&reactor, Box::new(Quiet))
//!     .unwrap_err();
//! assert_eq!(err.step, SpawnStep::Exec);
//! assert_eq!(err.errno(), Some(libc::ENOENT));
//!
//! let twice = ProcessBuilder::new("echo")
//!     .child_fd(1, ChildFd::Read)
//!     .child_fd(1, ChildFd::Write);
//! let err = twice.spawn(&reactor, Box::new(Quiet)).unwrap_err();
//! assert_eq!(err.step, SpawnStep::InvalidInput);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod core;
#[cfg(unix)]
mod fdplan;
#[cfg(unix)]
pub mod pipes;
#[cfg(unix)]
mod process;
pub mod protocol_cell;
#[cfg(unix)]
pub mod raw;
#[cfg(unix)]
pub mod reaper;
mod spawn;
#[cfg(unix)]
pub mod stdio;
mod sys;
mod twisted;
#[cfg(unix)]
mod wire;

pub use core::ExitInfo;
#[cfg(unix)]
pub use process::Process;
pub use protocol_cell::ProtocolCell;
#[cfg(unix)]
pub use reaper::{ChildWatcher, ReapMode, set_reap_mode};
pub use spawn::{ProcessBuilderExt, ReactorProcess};
#[cfg(unix)]
pub use stdio::{StandardIo, StdoutWriter};

#[cfg(windows)]
pub use sys::windows::{Process, StdinWriter};
pub use twisted::spawn_process;
