//! The reactor's errors.

use std::fmt;

/// Errors of reactor control operations (CONTRACT B1, B4, B6): the one reactor-state enum,
/// shared with [`ReactorCore`](torsion_transport::ReactorCore) (and the test kit's
/// `MemoryReactor`), under the name callers of this crate know.
pub use torsion_transport::ReactorStateError as ReactorError;

/// `call_from_thread` on a reactor that no longer exists: the call was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorGone;

impl fmt::Display for ReactorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor this handle belongs to has been dropped; the call was not queued")
    }
}

impl std::error::Error for ReactorGone {}
