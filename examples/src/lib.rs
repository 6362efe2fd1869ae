//! Logic shared by the example programs, kept here so it can be tested with the test
//! kit's fakes (`torsion::testing`; see `tests/inetd_kit.rs`).

#[cfg(unix)]
pub mod echo;
pub mod inetd;
