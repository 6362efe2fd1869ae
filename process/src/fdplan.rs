//! Planning the child's fd table (CONTRACT G6, H1). Pure logic: no system calls, so the
//! plan can be checked against a model fd table in unit tests.
//!
//! The child must end up with `source` at `target` for every entry of the map, and with
//! nothing else open. Placing fds one after another with `dup2` can clobber a source that
//! another entry still needs (`{0: Inherit(1), 1: Inherit(0)}` is a swap). The plan moves
//! exactly those sources out of the way first — to a number at or above
//! [`FdPlan::high`], which is above every target and every source — and then places every
//! entry:
//!
//! 1. for each placement with `move_first`: `tmp = fcntl(source, F_DUPFD_CLOEXEC, high)`;
//! 2. for each placement: `dup2(tmp or source, target)`, or, when the source already sits
//!    at its target, clear `FD_CLOEXEC` on it with `fcntl(F_SETFD, 0)`;
//! 3. close every fd that is not a target ([`FdPlan::close_ranges`]).
//!
//! Why this is safe: a `dup2` into `t` destroys only fd `t`. The only entry whose source is
//! `t` and that is not the entry targeting `t` itself has `source ∈ targets` and
//! `source != target`, so it was moved in step 1. Moved copies live at `>= high`, which no
//! `dup2` of step 2 touches.

use std::collections::BTreeMap;

/// One fd of the child: `source` (open in the parent when the child is created) appears
/// at `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdPlacement {
    /// The fd number in the child.
    pub(crate) target: i32,
    /// The fd number in the parent (and so in the child before placement).
    pub(crate) source: i32,
    /// The source is another entry's target: copy it to `>= high` before any `dup2`.
    pub(crate) move_first: bool,
}

/// The whole plan for one child: see the module docs for how the child executes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FdPlan {
    /// Sorted by target; targets are unique.
    pub(crate) placements: Vec<FdPlacement>,
    /// Lowest number a moved source may take: above every target and every source.
    pub(crate) high: i32,
    /// The targets, sorted, for membership tests in the child (`binary_search`).
    pub(crate) targets: Vec<i32>,
    /// Inclusive ranges `(first, last)` covering every fd number that is not a target, in
    /// the form `close_range(2)` takes them; the last range ends at `u32::MAX`.
    pub(crate) close_ranges: Vec<(u32, u32)>,
}

impl FdPlan {
    /// How many moved copies step 1 makes (the size of the child's scratch array).
    pub(crate) fn moves(&self) -> usize {
        self.placements.iter().filter(|p| p.move_first).count()
    }
}

/// Plan the child's fd table for `map` (target → source). Fd numbers are non-negative
/// (`ProcessBuilder::validate` and the caller guarantee it).
pub(crate) fn plan(map: &BTreeMap<i32, i32>) -> FdPlan {
    let targets: Vec<i32> = map.keys().copied().collect();
    let placements = map
        .iter()
        .map(|(&target, &source)| FdPlacement {
            target,
            source,
            move_first: source != target && map.contains_key(&source),
        })
        .collect();
    let top = map.iter().map(|(&t, &s)| t.max(s)).max().unwrap_or(-1);
    let high = top.saturating_add(1);
    FdPlan {
        close_ranges: close_ranges(&targets),
        placements,
        high,
        targets,
    }
}

/// The complement of the sorted, non-negative `targets` in `0..=u32::MAX`, as inclusive
/// ranges.
fn close_ranges(targets: &[i32]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(targets.len() + 1);
    let mut lo: u32 = 0;
    for &t in targets {
        let Ok(t) = u32::try_from(t) else { continue };
        if t > lo {
            out.push((lo, t - 1));
        }
        lo = t.saturating_add(1);
    }
    out.push((lo, u32::MAX));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A model fd table: fd → (open file description id, cloexec).
    #[derive(Debug, Clone, Default)]
    struct Table(HashMap<i32, (u32, bool)>);

    impl Table {
        fn lowest_free_from(&self, from: i32) -> i32 {
            (from..).find(|fd| !self.0.contains_key(fd)).unwrap()
        }

        /// Run the plan the way the child does; `Err` if a step hits a closed fd.
        fn run(&mut self, plan: &FdPlan) -> Result<(), String> {
            let mut scratch = Vec::new();
            for p in plan.placements.iter().filter(|p| p.move_first) {
                let (ofd, _) = *self.0.get(&p.source).ok_or("move of a closed fd")?;
                let tmp = self.lowest_free_from(plan.high);
                self.0.insert(tmp, (ofd, true));
                scratch.push(tmp);
            }
            let mut moved = scratch.into_iter();
            for p in &plan.placements {
                let src = if p.move_first {
                    moved.next().ok_or("scratch underflow")?
                } else {
                    p.source
                };
                let (ofd, _) = *self.0.get(&src).ok_or(format!("dup2 from closed {src}"))?;
                self.0.insert(p.target, (ofd, false));
            }
            for &(lo, hi) in &plan.close_ranges {
                self.0
                    .retain(|&fd, _| !(fd as u32 >= lo && fd as u32 <= hi));
            }
            Ok(())
        }
    }

    /// Check `plan(map)` against the model, with the parent's fds `parent` (fd → ofd).
    fn check(map: &[(i32, i32)], parent: &[i32]) {
        let map: BTreeMap<i32, i32> = map.iter().copied().collect();
        let mut table = Table::default();
        for &fd in parent {
            table.0.insert(fd, (fd as u32 + 1000, fd > 2));
        }
        let before = table.clone();
        let plan = plan(&map);
        table.run(&plan).unwrap();
        let keys: Vec<i32> = {
            let mut k: Vec<i32> = table.0.keys().copied().collect();
            k.sort_unstable();
            k
        };
        assert_eq!(keys, plan.targets, "exactly the targets stay open: {map:?}");
        for (t, s) in &map {
            let want = before.0[s].0;
            assert_eq!(
                table.0[t],
                (want, false),
                "target {t} holds source {s}: {map:?}"
            );
        }
    }

    #[test]
    fn h1_default_map_needs_no_moves() {
        let map = BTreeMap::from([(0, 5), (1, 6), (2, 8)]);
        let p = plan(&map);
        assert_eq!(p.moves(), 0);
        assert_eq!(p.close_ranges, vec![(3, u32::MAX)]);
        check(&[(0, 5), (1, 6), (2, 8)], &[0, 1, 2, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn h1_swap_moves_both_sources() {
        let map = BTreeMap::from([(0, 1), (1, 0)]);
        let p = plan(&map);
        assert_eq!(p.moves(), 2);
        assert_eq!(p.high, 2);
        check(&[(0, 1), (1, 0)], &[0, 1, 2]);
    }

    #[test]
    fn h1_rotation_chain_and_identity() {
        check(&[(0, 1), (1, 2), (2, 0)], &[0, 1, 2]);
        check(&[(3, 4), (4, 5), (5, 3), (7, 7)], &[0, 1, 2, 3, 4, 5, 7, 9]);
        check(&[(1, 1), (2, 1), (0, 1)], &[1]);
        let p = plan(&BTreeMap::from([(7, 7)]));
        assert!(
            !p.placements[0].move_first,
            "a source at its own target stays"
        );
    }

    #[test]
    fn h1_unmapped_fds_are_all_closed_including_stdio() {
        let p = plan(&BTreeMap::from([(1, 9), (5, 9)]));
        assert_eq!(p.close_ranges, vec![(0, 0), (2, 4), (6, u32::MAX)]);
        let empty = plan(&BTreeMap::new());
        assert_eq!(empty.close_ranges, vec![(0, u32::MAX)]);
        check(&[(1, 9), (5, 9)], &[0, 1, 2, 3, 9, 10]);
    }

    #[test]
    fn h1_high_is_above_every_target_and_source() {
        let p = plan(&BTreeMap::from([(100, 3), (4, 200)]));
        assert_eq!(p.high, 201);
        assert_eq!(plan(&BTreeMap::from([(0, 1)])).high, 2);
    }

    #[test]
    fn h1_random_maps_against_the_model() {
        // A small deterministic generator: no dependency, same cases every run.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as i32
        };
        for _ in 0..2000 {
            let parent: Vec<i32> = (0..12).filter(|_| next(3) != 0).collect();
            if parent.is_empty() {
                continue;
            }
            let mut map = Vec::new();
            for _ in 0..next(7) {
                let source = parent[next(parent.len() as u64) as usize];
                map.push((next(12), source));
            }
            check(&map, &parent);
        }
    }
}
