//! An indexed binary min-heap of timers: the textbook floor for `call_later`/`cancel`.
//!
//! Each timer lives in a slab slot that knows its position in the heap, so `cancel` removes
//! it at once (O(log n)) instead of marking it stale. Equal deadlines run in insertion order.

use slab::Slab;

#[derive(Debug, Clone, Copy)]
struct Item {
    deadline: u64,
    seq: u64,
    key: usize,
}

impl Item {
    fn before(&self, other: &Item) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

#[derive(Debug)]
struct Slot<T> {
    pos: usize,
    value: T,
}

/// A min-heap keyed by deadline (nanoseconds), with removal by key.
#[derive(Debug)]
pub struct IndexedHeap<T> {
    heap: Vec<Item>,
    slots: Slab<Slot<T>>,
    seq: u64,
}

impl<T> Default for IndexedHeap<T> {
    fn default() -> Self {
        IndexedHeap {
            heap: Vec::new(),
            slots: Slab::new(),
            seq: 0,
        }
    }
}

impl<T> IndexedHeap<T> {
    /// Number of timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Add `value` due at `deadline`; returns its key.
    pub fn insert(&mut self, deadline: u64, value: T) -> usize {
        let pos = self.heap.len();
        let key = self.slots.insert(Slot { pos, value });
        self.seq += 1;
        self.heap.push(Item {
            deadline,
            seq: self.seq,
            key,
        });
        self.sift_up(pos);
        key
    }

    /// Remove the timer `key`, returning its value.
    pub fn cancel(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.try_remove(key)?;
        self.remove_at(slot.pos);
        Some(slot.value)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|i| i.deadline)
    }

    /// Remove and return the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<T> {
        let top = *self.heap.first()?;
        if top.deadline > now {
            return None;
        }
        self.remove_at(0);
        Some(self.slots.remove(top.key).value)
    }

    fn remove_at(&mut self, pos: usize) {
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        self.heap.pop();
        if pos < self.heap.len() {
            self.slots[self.heap[pos].key].pos = pos;
            if pos > 0 && self.heap[pos].before(&self.heap[(pos - 1) / 2]) {
                self.sift_up(pos);
            } else {
                self.sift_down(pos);
            }
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !item.before(&self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            self.slots[self.heap[pos].key].pos = pos;
            pos = parent;
        }
        self.heap[pos] = item;
        self.slots[item.key].pos = pos;
    }

    fn sift_down(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        let n = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.heap[right].before(&self.heap[left]) {
                right
            } else {
                left
            };
            if !self.heap[child].before(&item) {
                break;
            }
            self.heap[pos] = self.heap[child];
            self.slots[self.heap[pos].key].pos = pos;
            pos = child;
        }
        self.heap[pos] = item;
        self.slots[item.key].pos = pos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn pops_in_deadline_order_after_random_cancels() {
        let mut h = IndexedHeap::default();
        let mut rng = Rng::new(7);
        let keys: Vec<(usize, u64)> = (0..2000)
            .map(|_| {
                let d = rng.below(1000);
                (h.insert(d, d), d)
            })
            .collect();
        for (k, d) in keys.iter().step_by(3) {
            assert_eq!(h.cancel(*k), Some(*d));
        }
        let mut last = 0;
        let mut n = 0;
        while let Some(d) = h.pop_due(u64::MAX) {
            assert!(d >= last);
            last = d;
            n += 1;
        }
        assert_eq!(n, 2000 - 667);
    }
}
