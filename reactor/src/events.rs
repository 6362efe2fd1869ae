//! System event triggers (CONTRACT B1, B2).

use std::collections::VecDeque;
use std::fmt;

/// A system event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// Fired by `run` before the first iteration.
    Startup,
    /// Fired when the reactor shuts down after `stop`.
    Shutdown,
}

/// The phase of a system event a trigger runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First. For shutdown: before transports are flushed and disconnected.
    Before,
    /// Second. For shutdown: after every selectable got `connection_lost`.
    During,
    /// Last.
    After,
}

/// Identifies a trigger, for [`Reactor::remove_system_event_trigger`](crate::Reactor::remove_system_event_trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TriggerId(u64);

type Trigger = (TriggerId, Phase, Event, Box<dyn FnOnce()>);

#[derive(Default)]
pub(crate) struct Triggers {
    next: u64,
    list: VecDeque<Trigger>,
}

impl fmt::Debug for Triggers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Triggers")
            .field("pending", &self.list.len())
            .finish()
    }
}

impl Triggers {
    pub(crate) fn add(&mut self, phase: Phase, event: Event, f: Box<dyn FnOnce()>) -> TriggerId {
        self.next += 1;
        let id = TriggerId(self.next);
        self.list.push_back((id, phase, event, f));
        id
    }

    pub(crate) fn remove(&mut self, id: TriggerId) -> bool {
        match self.list.iter().position(|t| t.0 == id) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }

    /// The first trigger for `(phase, event)`, removed: each runs at most once.
    pub(crate) fn pop(&mut self, phase: Phase, event: Event) -> Option<Box<dyn FnOnce()>> {
        let i = self
            .list
            .iter()
            .position(|t| t.1 == phase && t.2 == event)?;
        self.list.remove(i).map(|t| t.3)
    }
}
