//! Logic shared by the example programs, kept here so it can be tested with the test
//! kit's fakes (`torsion::testing`; see `tests/inetd_kit.rs`).

pub mod chat;
#[cfg(unix)]
pub mod echo;
pub mod inetd;
pub mod parallel;
pub mod tour;

use std::fmt::Display;
use std::process::ExitCode;

/// The tail of every example's `main`: `Ok` exits 0; an error is printed to stderr as
/// `NAME: error: MESSAGE` and exits 1.
///
/// The message is the error's `Display` form, never its `Debug` form: a user reads
/// "Address already in use (os error 98)", not `Os { code: 98, .. }`. Bad arguments and
/// `--help` never get here: clap prints the usage and exits (2, or 0 for help) first.
pub fn exit_code<E: Display>(name: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The "writing a protocol" guide's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guides/writing-a-protocol.md")]
mod writing_a_protocol_guide {}
