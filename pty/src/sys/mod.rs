//! Operating-system back ends. The only place in this crate that looks at the target
//! (docs/ARCHITECTURE.md, "Workspace") and the only place with `unsafe`.

#[cfg(unix)]
pub(crate) mod unix;
