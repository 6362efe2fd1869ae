//! Logic shared by the example programs, kept here so it can be tested with
//! `torsion-testing`'s fakes (see `tests/inetd_kit.rs`).

pub mod inetd;
