//! A hashed timer wheel (Varghese and Lauck, scheme 6): the other textbook floor.
//!
//! `SLOTS` buckets of one tick each; a timer goes into bucket `tick % SLOTS` of its deadline
//! tick, in a doubly linked list threaded through a slab, so insert and cancel are O(1).
//! Advancing walks the buckets tick by tick and fires the entries whose tick has come
//! (entries for a later turn of the wheel stay). Within one tick, order is not kept: that
//! is the wheel's trade against the heap.

use slab::Slab;

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node<T> {
    tick: u64,
    prev: usize,
    next: usize,
    value: T,
}

/// A hashed wheel of `slots` buckets, `tick_ns` nanoseconds each.
#[derive(Debug)]
pub struct TimerWheel<T> {
    heads: Vec<usize>,
    nodes: Slab<Node<T>>,
    mask: u64,
    tick_ns: u64,
    /// The next tick to fire.
    current: u64,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` (a power of two) buckets of `tick_ns` each.
    pub fn new(slots: usize, tick_ns: u64) -> Self {
        let slots = slots.next_power_of_two();
        TimerWheel {
            heads: vec![NIL; slots],
            nodes: Slab::new(),
            mask: slots as u64 - 1,
            tick_ns,
            current: 0,
        }
    }

    /// Number of timers.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Add `value` due at `deadline` (ns); it fires at the first tick boundary at or after it.
    pub fn insert(&mut self, deadline: u64, value: T) -> usize {
        let tick = deadline.div_ceil(self.tick_ns).max(self.current);
        let bucket = (tick & self.mask) as usize;
        let head = self.heads[bucket];
        let key = self.nodes.insert(Node {
            tick,
            prev: NIL,
            next: head,
            value,
        });
        if head != NIL {
            self.nodes[head].prev = key;
        }
        self.heads[bucket] = key;
        key
    }

    fn unlink(&mut self, key: usize) -> T {
        let node = self.nodes.remove(key);
        if node.prev == NIL {
            self.heads[(node.tick & self.mask) as usize] = node.next;
        } else {
            self.nodes[node.prev].next = node.next;
        }
        if node.next != NIL {
            self.nodes[node.next].prev = node.prev;
        }
        node.value
    }

    /// Remove the timer `key`, returning its value.
    pub fn cancel(&mut self, key: usize) -> Option<T> {
        self.nodes.contains(key).then(|| self.unlink(key))
    }

    /// The deadline of the earliest non-empty tick within one turn of the wheel (ns), or
    /// one full turn ahead if every bucket in reach is empty.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.nodes.is_empty() {
            return None;
        }
        let turn = self.mask + 1;
        for t in self.current..self.current + turn {
            let mut k = self.heads[(t & self.mask) as usize];
            while k != NIL {
                if self.nodes[k].tick <= t {
                    return Some(t * self.tick_ns);
                }
                k = self.nodes[k].next;
            }
        }
        Some((self.current + turn) * self.tick_ns)
    }

    /// Fire, through `fire`, every timer due at `now` (ns); returns how many fired.
    pub fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) -> usize {
        let target = now / self.tick_ns;
        let mut fired = 0;
        while self.current <= target {
            let bucket = (self.current & self.mask) as usize;
            let mut k = self.heads[bucket];
            while k != NIL {
                let next = self.nodes[k].next;
                if self.nodes[k].tick <= self.current {
                    fire(self.unlink(k));
                    fired += 1;
                }
                k = next;
            }
            self.current += 1;
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_the_right_tick_and_cancels() {
        let mut w = TimerWheel::new(8, 10);
        let a = w.insert(5, 'a'); // tick 1
        w.insert(100, 'b'); // tick 10: bucket 2, second turn
        w.insert(20, 'c'); // tick 2
        assert_eq!(w.cancel(a), Some('a'));
        let mut got = Vec::new();
        w.advance(25, |v| got.push(v));
        assert_eq!(got, vec!['c']);
        assert_eq!(w.next_deadline(), Some(100));
        w.advance(100, |v| got.push(v));
        assert_eq!(got, vec!['c', 'b']);
        assert!(w.is_empty());
    }
}
