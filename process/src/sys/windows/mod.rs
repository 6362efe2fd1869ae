//! The Windows back end (CONTRACT M): `CreateProcessW` with three pipes driven by threads
//! that post through the reactor's waker, a waiter thread per child, `TerminateProcess`
//! for INT/TERM/KILL. All of this crate's Windows `unsafe` lives under this module; every
//! block says why it is sound.

#![allow(unsafe_code)]

mod command;
mod create;
mod process;

pub(crate) use process::spawn;
pub use process::{Process, StdinWriter};
