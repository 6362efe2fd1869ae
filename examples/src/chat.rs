//! The chat-server's room: every line a member sends goes to every other member, and a
//! member that cannot keep up is cut. Plain protocol code on [`LineReceiver`], so the test
//! kit's `StringTransport` tests it (`tests/chat_kit.rs`) and the reactor runs it
//! (`src/bin/chat-server.rs`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use torsion::framing::{Delimiter, LineControl, LineHandler, LineReceiver, LineSender};
use torsion::prelude::*;

/// The longest line accepted, in bytes (without its LF or CR LF); a longer one closes the
/// sender's connection.
pub const MAX_LINE: usize = 16_384;

/// The unsent backlog (bytes the kernel has not taken) over which a member is cut.
pub const MAX_BACKLOG: usize = 1024 * 1024;

/// The members of one chat, shared by their protocols.
#[derive(Clone, Default)]
pub struct Room {
    members: Rc<RefCell<Members>>,
}

#[derive(Default)]
struct Members {
    next_id: u64,
    senders: BTreeMap<u64, LineSender>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.len())
            .finish()
    }
}

impl Room {
    /// An empty room.
    pub fn new() -> Self {
        Room::default()
    }

    /// The protocol for one new connection: lines end with LF, an optional CR before it
    /// is stripped, and a line over [`MAX_LINE`] bytes closes the connection (the
    /// default `line_length_exceeded`).
    pub fn protocol(&self) -> LineReceiver<Member> {
        LineReceiver::new(Member {
            room: self.clone(),
            id: None,
        })
        .with_delimiter(Delimiter::lf_optional_cr())
        .with_max_length(MAX_LINE)
    }

    /// How many members are in the room.
    pub fn len(&self) -> usize {
        self.members.borrow().senders.len()
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn join(&self, sender: LineSender) -> u64 {
        let mut m = self.members.borrow_mut();
        let id = m.next_id;
        m.next_id += 1;
        m.senders.insert(id, sender);
        id
    }

    fn leave(&self, id: u64) {
        self.members.borrow_mut().senders.remove(&id);
    }

    /// Send `line` to everyone but `from`; cut whoever is now too far behind.
    fn broadcast(&self, from: u64, line: &[u8]) {
        // Copy the recipients out: no borrow of the room is held while writing.
        let recipients: Vec<(u64, LineSender)> = self
            .members
            .borrow()
            .senders
            .iter()
            .filter(|(id, _)| **id != from)
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (id, sender) in recipients {
            sender.send_line(line);
            let backlog = sender.unsent_bytes();
            if backlog > MAX_BACKLOG {
                log::info!(
                    "cutting {}: {backlog} bytes unsent (over {MAX_BACKLOG})",
                    sender.transport().peer()
                );
                self.leave(id);
                // Drop the backlog and close now: flushing it would wait on the very
                // client that does not read.
                sender.transport().abort_connection();
            }
        }
    }
}

/// One connection's [`LineHandler`]: joins the room, relays each line, leaves.
#[derive(Debug)]
pub struct Member {
    room: Room,
    id: Option<u64>,
}

impl LineHandler for Member {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        self.id = Some(self.room.join(ctl.sender()));
    }

    fn line_received(&mut self, line: &[u8], _ctl: &mut LineControl<'_>) {
        if let Some(id) = self.id {
            self.room.broadcast(id, line);
        }
    }

    fn connection_lost(&mut self, _reason: Reason) {
        if let Some(id) = self.id.take() {
            self.room.leave(id);
        }
    }
}
