//! Logic shared by the example programs, kept here so it can be tested with the test
//! kit's fakes (`torsion::testing`; see `tests/inetd_kit.rs`).

pub mod chat;
#[cfg(unix)]
pub mod echo;
pub mod inetd;
pub mod parallel;
pub mod tour;

/// The "writing a protocol" guide's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guides/writing-a-protocol.md")]
mod writing_a_protocol_guide {}
