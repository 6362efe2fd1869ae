//! Operating-system back ends. The only place in this crate that looks at the target
//! (docs/ARCHITECTURE.md, "Workspace"); everything public lives in [`crate::raw`].

#[cfg(unix)]
pub(crate) mod unix;

#[cfg(windows)]
pub(crate) mod windows;
