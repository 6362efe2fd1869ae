//! Child processes for torsion: spawning with any child fd map, typed spawn errors, and
//! waiting for and signalling children (DESIGN.md, "Processes").
//!
//! The layers, bottom up:
//!
//! 1. [`raw`] — the POSIX spawn layer with no reactor: a
//!    [`ProcessBuilder`](torsion_transport::ProcessBuilder) becomes a running child plus
//!    the parent's fds ([`raw::spawn_child`]); [`raw::try_wait`], [`raw::send_signal`] and
//!    the PTY window-size helpers.
//! 2. The reactor-driven process transport (pipes as selectables, reaping in the loop,
//!    `ProcessProtocol` callbacks) is built on [`raw`].
//!
//! ```
//! use torsion_process::raw::{self, RawSpawnOptions};
//! use torsion_transport::{ProcessBuilder, SpawnStep};
//!
//! let err = raw::spawn_child(
//!     &ProcessBuilder::new("/nonexistent/program").child_fds(Default::default()),
//!     &RawSpawnOptions::default(),
//! )
//! .unwrap_err();
//! assert_eq!(err.step, SpawnStep::Exec);
//! assert_eq!(err.errno(), Some(libc::ENOENT));
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

#[cfg(unix)]
mod fdplan;
#[cfg(unix)]
pub mod pipes;
#[cfg(unix)]
mod process;
#[cfg(unix)]
pub mod raw;
#[cfg(unix)]
pub mod reaper;
#[cfg(unix)]
mod spawn;
#[cfg(unix)]
pub mod stdio;
mod sys;

#[cfg(unix)]
pub use process::Process;
#[cfg(unix)]
pub use reaper::{ChildWatcher, ExitInfo, ReapMode, set_reap_mode};
#[cfg(unix)]
pub use spawn::{PipeSpawner, SpawnOptions, install, spawn, spawn_process, spawn_with};
#[cfg(unix)]
pub use stdio::StandardIo;

#[cfg(windows)]
pub use sys::windows::{PipeSpawner, Process, StdinWriter, install, spawn, spawn_process};
