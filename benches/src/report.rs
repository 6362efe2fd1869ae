//! The Markdown report: machine, goal summary, one section per benchmark.

use std::fmt::Write as _;

use crate::harness::{Bound, GoalTarget, Outcome, Skipped, fmt_num};
use crate::machine::Machine;

/// Everything a run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// The comparisons, in run order.
    pub outcomes: Vec<Outcome>,
    /// Cases not measured, with the reason.
    pub skipped: Vec<Skipped>,
    /// Notes per benchmark id.
    pub notes: Vec<(String, String)>,
}

/// How the report was produced, for its header.
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    /// Where it ran.
    pub machine: &'a Machine,
    /// The command line.
    pub command: &'a str,
    /// Measured rounds per comparison.
    pub rounds: usize,
    /// Warm-up rounds.
    pub warmup: usize,
    /// `(bench, file)` of the charts written.
    pub charts: &'a [(String, String)],
    /// Path from the report to the chart directory.
    pub chart_prefix: &'a str,
    /// Wall time of the whole run.
    pub total_secs: f64,
}

/// Title and what a benchmark measures, per id.
pub fn describe(bench: &str) -> (&'static str, &'static str) {
    match bench {
        "B1" => (
            "spawn + reap",
            "Sequential children, each with three pipes (stdin, stdout, stderr), the child a \
             static no-libc `true` built at bench time with `gcc -nostdlib -static` (so the \
             parent's cost shows). A sample is children spawned and reaped per second, wall \
             time. torsion: `builder.spawn`, iterate until \
             `process_ended`, then the next spawn. raw posix_spawn: `posix_spawn` with dup2 file actions, \
             blocking `read` to EOF and `waitpid`. tokio: `tokio::process::Command` \
             (`spawn` + `wait`) on a current-thread runtime. Twisted: `reactor.spawnProcess` \
             and the next spawn from `processEnded`.",
        ),
        "B2" => (
            "spawn with a big parent",
            "B1 while the parent holds 1 GiB of touched heap (allocated and written before \
             the timed part, freed after): a fork-based spawn copies the page tables, \
             posix_spawn (vfork) does not. The goal compares torsion with a 1 GiB parent to \
             torsion with an empty parent in the same rounds. The PTY path spawns the same \
             static `true` with `builder.pty(..).spawn` on a fresh PTY (500 children).",
        ),
        "B3" => (
            "bulk data through pipes",
            "The parent writes 1 GiB to `cat`: into `/dev/null` (sink) and back to the \
             parent (echo), with the kernel's default 64 KiB pipes and with 1 MiB pipes \
             (`F_SETPIPE_SZ`). A sample is bytes per second, wall time, spawn to exit. \
             torsion: a pull producer of one reused 256 KiB chunk queued with \
             `write_shared` (no copy, CONTRACT D10) on the child's stdin, \
             `builder.pipe_size(n).spawn(..)`. raw mio: non-blocking pipes, \
             one `Poll`, the same chunks. tokio: `tokio::process` with `write_all` and \
             `read` tasks. The default-pipe sink also shows `write(&[u8])` (a copy per \
             chunk, the path before issue 15), `Process::write_static` (the pipe gets the \
             pages with `vmsplice(2)`, CONTRACT D11) and the raw floor with `vmsplice`.",
        ),
        "B4" => (
            "TCP echo over loopback",
            "An echo server in this process; the load client (`echo_client`, raw mio, one \
             thread) in another process keeps one message in flight per connection and \
             counts echoed messages for a fixed time after a short warm-up. A sample is \
             messages per second. torsion: `listen_tcp` with a `Protocol` that writes back \
             what it receives. raw mio: the same with one `Poll`. tokio: a current-thread \
             runtime, a task per connection. Twisted: `Protocol.dataReceived` → \
             `transport.write` on the epoll reactor. The 1k and 10k cells (64 B, no \
             Twisted) hold that many connections busy at once; every server listens with a \
             backlog of 1,024 and the harness raises `RLIMIT_NOFILE`. The full suite runs \
             the 10k cell, the fast one stops at 1k.",
        ),
        "B5" => (
            "timers",
            "`call_later` with random delays in 0–100 ms, cancel every other one, fire the \
             rest through the real loop (sleeping in `epoll_wait` between deadlines); and \
             churn: cancel a random live timer and schedule a new one (1–2 s), 10k live. \
             Every contender stores a boxed closure per timer and reads the monotonic clock \
             per insertion. A sample is **thread CPU time** per timer or per operation. \
             Raw contenders: an indexed binary heap (O(log n) removal) and a hashed timer \
             wheel (1 ms ticks, 1,024 slots), both in `benches/src`. Twisted: \
             `reactor.callLater` / `cancel` on the epoll reactor.",
        ),
        "B6" => (
            "waking the loop",
            "Ping-pong: another thread hands the loop a call (`call_from_thread`; raw mio: \
             a `Waker` plus an atomic; tokio: an unbounded mpsc channel; calloop: its \
             channel), the loop answers by unparking the thread, which waits for the answer \
             before the next call: round trips per second. Idle iteration: one loop \
             iteration with nothing ready (`iterate(0)`; raw: `poll` with a zero timeout; \
             tokio: `yield_now`, which polls the driver; calloop: `dispatch(0)`). Self-wake: \
             queue a call from the loop's own thread and iterate.",
        ),
        "B7" => (
            "PTY throughput",
            "A child `cat` of 256 MiB of text (80-byte lines) through a PTY: bytes per \
             second read from the master, wall time from spawn to exit (the line discipline \
             turns each `\\n` into `\\r\\n`, so both contenders read ~259 MiB). torsion: \
             `builder.pty(PtyOptions::default()).spawn(..)`, counting \
             `child_data_received`, iterating until `process_ended`. raw mio: a PTY pair, \
             `cat` spawned by `std::process::Command` with the slave on 0/1/2, the \
             non-blocking master in one `Poll`, 16 KiB reads until `EIO`, then `wait`.",
        ),
        "B8" => (
            "memory per connection and per child",
            "A counting global allocator in the report binary measures heap bytes the \
             framework holds per idle accepted TCP connection (1,000 connections held open \
             by the client process) and per live child (200 `sleep` children with three \
             pipes), after the connections or children are set up, minus the bytes held \
             before. Shared I/O buffers (the reactor's read buffer) exist before and are not \
             counted; write buffers are empty when idle. Busy connections: sampled half-way \
             through the B4 1k/10k runs, while every connection has a message in flight \
             (replayed from those runs), minus the heap live before the server accepted; \
             tokio's figure includes the 64 KiB read buffer its echo task owns (idiomatic \
             tokio: a buffer per task), so about 66,000 − 65,536 bytes are the runtime's.",
        ),
        "B14" => (
            "tail latency under a fixed load",
            "100 connections, 64-byte requests echoed by the B4 servers. Each server's \
             closed-loop maximum is measured first (one request in flight per connection); \
             the offered loads are 50% and 90% of the smallest of them, so every server gets \
             the same load and none is past its capacity. An **open-loop** client \
             (`report echo-client --rate R`, another process) sends each request at its \
             scheduled time whether or not earlier ones were answered and measures latency \
             from the scheduled time to the last byte of the echo, so a server that falls \
             behind cannot hide its queueing (no coordinated omission); requests unanswered \
             at the end count at their age. A sample is a percentile of one run (1 s after \
             0.2 s of warm-up in the full suite); p50 and p99.9 are the same runs as p99.",
        ),
        "B10" => (
            "async/await (torsion::net)",
            "Task ping-pong: a task spawns a ponger, hands it a reply sender through a oneshot \
             (one hand-written single-threaded oneshot shared by both contenders) and awaits \
             the answer; round trips per second. Sleepers: 100k tasks each sleeping a \
             pseudo-random 0–100 ms (the same sequence for both), spawned then all awaited; \
             tasks per second of the whole run. torsion: `Reactor::spawn_local` + \
             `block_on`, `Reactor::sleep`; tokio: `LocalSet::spawn_local` on a current-thread \
             runtime, `tokio::time::sleep`. TCP echo: B4's load client against a server \
             written with `torsion::net` (`TcpListener::accept`, a task per connection doing \
             `read` + `write_all`), tokio streams, and B4's callback echo.",
        ),
        "B11" => (
            "UDP echo over loopback",
            "An echo server on a thread of this process; the client, a blocking std \
             `UdpSocket` on another thread, keeps 16 datagrams in flight (re-sending the \
             window after a 50 ms silence, so a drop costs time, never a hang) and counts \
             echoes for a fixed time after a warm-up. A sample is datagrams echoed per \
             second. torsion: `listen_udp` with a `DatagramProtocol` that writes each \
             datagram back to its sender. raw mio: one `Poll`, `recv_from` until \
             `WouldBlock`, `send_to` each back. tokio: a current-thread runtime, one task \
             doing `recv_from`/`send_to`.",
        ),
        "B9" => (
            "line protocol throughput",
            "A line-echo server (LF-ended lines, 16,384-byte maximum) on 10 connections; \
             B4's load client keeps one 64-byte line (63 bytes and `\\n`) in flight per \
             connection, or 64 of them (one 4 KiB write, so the framing cost shows). A \
             sample is lines echoed per second. torsion: `listen_tcp` with \
             `LineReceiver` and `send_line`. raw mio: B4's raw server with framing by hand \
             (a per-connection line buffer, `\\n` search, one write per read). tokio: a \
             current-thread runtime, `Framed` with tokio-util's `LinesCodec`, split and \
             `forward`ed into its own sink (flushed when the input runs dry). Twisted: `LineReceiver.lineReceived` → `sendLine`.",
        ),
        "B12" => (
            "TCP echo on two cores",
            "B4's echo and load client (100 connections), with the server on two cores: \
             torsion as two prefork worker processes adopting one listening socket the \
             parent bound (`torsion::prefork`), and as two reactor threads each with its own \
             `SO_REUSEPORT` listener on the port (`listen_tcp_with`); tokio as a \
             multi-thread runtime with 2 workers, a task per connection. A sample is \
             messages per second.",
        ),
        "B13" => (
            "TLS echo",
            "One rustls configuration for every contender (ring, TLS 1.3, \
             TLS13_AES_128_GCM_SHA256, X25519, no session resumption): torsion \
             (`TlsServerFactory` over `listen_tcp`), tokio + tokio-rustls on a current-thread \
             runtime (a task per connection, `write_all` then `flush`), and rustls driven by \
             hand over raw mio (the floor). The load client, the same for all, is raw mio + \
             rustls on a thread of the report process. Throughput: 10 connections, each \
             sending 16 KiB and waiting for its echo (messages per second). Handshakes: 10 \
             connections at a time, each a full handshake, one byte echoed, the socket \
             dropped, then a new connection (handshakes per second; the client's verification is part \
             of every contender's cost).",
        ),
        _ => ("", ""),
    }
}

/// What profiling found behind a benchmark's misses (shown only when one of its goals
/// is missed). Profiles: `perf record -e cpu-clock` (hardware counters are not exposed in
/// this VM, so `perf stat -e instructions` reports "not supported").
pub fn analysis(bench: &str) -> Option<&'static str> {
    Some(match bench {
        "B10" => {
            "Sleepers (0.33× before issue 12's second pass, 0.70× after; 0.98× at 20k tasks): a sleep no longer \
             allocates (its timer wakes the task's waker, `DelayedCall::wake_on_call`), so a \
             task makes 3 allocations (the `JoinHandle` state, the boxed future, the `Arc` \
             waker) where tokio makes one task cell; callgrind on `probe_tasks` went from \
             415M to 350M instructions (tokio: 253M). `perf record` now puts the rest in the \
             executor's poll loop and the waker (cache misses on those three allocations), \
             glibc's `malloc_consolidate` (a big vector reallocated while 100k small \
             blocks just freed wait in its fast bins) and the timer heap's sift at 100k timers (tokio uses a wheel). One \
             allocation per task needs a raw-waker task cell (unsafe, fenced in a `sys` \
             module); an O(1) wheel in `torsion-transport` must keep CONTRACT A's FIFO and \
             at-once cancel: neither is done yet. The echo varies \
             ±30% per round on this loaded machine; its ratios straddle 1.0."
        }
        "B5" => {
            "torsion is an 8-ary indexed heap over a slab (cancel removes at once, reset \
             moves in place, one allocation per call): against the indexed heap it is at \
             about 1.0×; the timer wheel is O(1) per insert and cancel where any heap is \
             O(log n), and at 1M timers (fire) and 10k live (churn) that structural gap is \
             the 1.2–1.4× left. Meeting ≤ 1.2× of the wheel would take a wheel (hashed or \
             hierarchical) inside torsion, with its tick granularity traded for \
             `call_later`'s exact deadlines; not done in issue 15. Twisted is shown for \
             reference only: the ≥ 40× Twisted goal measured Python and is retired."
        }
        "B6" => {
            "Idle iteration (callgrind, per `iterate(0)`): torsion 145 instructions, raw mio's \
             bare `poll` 53 (both include mio's ~45). Issue 15 removed the locked `swap` of \
             the thread-call flag from every iteration (a plain load first), moved the \
             dispatch half out of line, and skips the next-deadline lookup when no timer is \
             scheduled (175 → 155 → 145). What remains is the loop's own \
             bookkeeping: the thread-call flag, the timer heap's emptiness and next deadline, \
             the pending and deferred queues, and the `RefCell` borrows of the poller and \
             its event buffer: about 100 cheap instructions, 25–35 ns against a ~170 ns \
             `epoll_wait`. Ping-pong is dominated by cross-core wake-up latency and is \
             bimodal on this shared machine, so single runs swing either side of the goal."
        }
        "B4" => {
            "Server side, per echoed message (strace -ff, 10 connections): torsion now makes \
             one `recv`, one `send` and about 0.5 `epoll_wait` — the same as tokio — since a \
             read shorter than the buffer ends the read loop unless the peer's close was \
             seen (issue 15; before, a second `recv` per message only said `EAGAIN`). User \
             space is not the bound: callgrind counts about 470 instructions per message in \
             torsion's server, 260 in the raw mio loop and 1,400 in tokio's. The cells are \
             latency-bound with one message in flight per connection and share two cores \
             with the client process, so cells within a few percent of a goal flip between \
             runs: a miss of ≤ 5% here is the spread of the measurement, not a cost found \
             in a profile."
        }
        "B1" => {
            "Per child (strace -c, 1,000 children): torsion makes 24 system calls, raw \
             posix_spawn 23 and tokio 38; torsion's own are 3 `pipe2`, 3 `FIONBIO`, one \
             `clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)`, 4 `EPOLL_CTL_ADD` (3 pipes and the \
             pidfd), one `epoll_wait` that sees both EOFs and the exit, `wait4`, 2 `read`s and \
             7 `close`s. Issue 15 dropped the 4 `EPOLL_CTL_DEL`s (pipes and pidfds are closed \
             right after removal, which takes them out of the epoll set): 8 → 4 `epoll_ctl`. \
             The raw floor's extra calls (`prlimit64`, `mmap`) are cheap; torsion's are \
             epoll work on four fresh fds. User space (callgrind): 18.9k instructions per \
             child for torsion, 2.1k for the raw floor, 12.0k for tokio. A stdin pipe nobody \
             writes cannot be registered lazily: CONTRACT I1 requires noticing a child that \
             closes its stdin. What bounds the goal is that a reactor must register the \
             child's fds with its poller where the raw floor blocks in `read` and `waitpid`."
        }
        "B3" => {
            "Before issue 15 the default-pipe sink copied each 256 KiB chunk into the write \
             buffer (callgrind, 64 MiB: 69.0M instructions, against 0.72M for the raw floor); \
             with `write_shared` the chunk is queued by reference: 1.66M. On the loaded \
             machine the wall-clock rates of `write` and `write_shared` came out the same: \
             with 64 KiB pipes the bound is the kernel's handoff of each 64 KiB between the \
             parent and `cat`, not the parent's copy. The rest of the gap is per-64 KiB loop \
             work (a writable event, a dispatch and a pull-producer \
             resume per drained buffer: about 530 `epoll_wait`s per 256 MiB where the raw \
             loop, writing until `EAGAIN`, needs a handful) and scheduling of `cat` on two \
             shared cores. `write_static` (`vmsplice`) skips the kernel's copy into the pipe \
             and runs 1.4–1.8× faster than `write`-based contenders here, as the raw floor \
             with `vmsplice` does: it is for data handed over for good. Whether 1 MiB pipes \
             beat tokio's default by 2× depends on scheduling (with `cat` and the parent on \
             separate idle cores a 64 KiB pipe stays full), so that goal is not robustly \
             met on this machine."
        }
        "B8" => {
            "Per child: the `Process` (pipes in small `Vec`s), one `ProcessWriter` with its \
             `FileDescriptor` (about 180 bytes), readers, the watched-child record and the \
             reactor's slab entries. Per connection: the `StreamTransport` and its slab \
             entry (write buffers are empty between messages)."
        }
        "B14" => {
            "Tail latency on two cores shared by the server, the open-loop client and other \
             work is dominated by scheduling: a p99 or p99.9 is a handful of requests that \
             waited for a core. The servers' costs per message (B4: one `recv`, one `send`, \
             about 0.5 `epoll_wait`, fewer instructions than tokio) do not explain a \
             difference in the tail; a miss here, if any, is within the spread of the runs."
        }
        "B11" => {
            "Measured on a loaded two-core machine shared with other builds: the client \
             thread, the server thread and unrelated work compete for two cores, and \
             per-round ratios swing by ±30% or more. A `perf record` of a B11 run puts over 90% \
             of the time in the kernel (UDP send/receive, loopback transmit, and above all \
             context switches: `finish_task_switch` alone is 9%); all of torsion's own code \
             (`read_loop`, `recv_datagram`, the protocol call) is under 0.5%. Per datagram \
             torsion makes the raw floor's system calls (`recvmsg` instead of `recvfrom`, to \
             see `MSG_TRUNC`, and `sendto`) and is level with raw mio; tokio is ahead of raw \
             mio as well at 64 B in the same rounds (three runs: torsion / tokio 0.75–0.82×), \
             which points at how its thread is scheduled against the client's rather than at \
             less work per datagram. To be re-measured on a quiet machine."
        }
        "B9" => {
            "With one line in flight every contender waits on system calls and wake-ups, as \
             in B4, so neither the framing cost nor Twisted's per-line Python cost shows: \
             ≥ 5× Twisted is out of reach in that case (B4's echo without framing is about \
             2.6× Twisted). With 64 lines in flight the lines one callback sends are \
             gathered into one write (as the raw server writes once per read and Twisted \
             once per iteration), and the delimiter search reads eight bytes at a time: \
             in-process, `LineReceiver` spends about 25 ns of CPU per echoed line against \
             about 47 ns for the hand-framed loop; what remains against raw mio is B4's \
             per-dispatch bookkeeping, and the cells are noisy on two shared cores."
        }
        _ => return None,
    })
}

/// The cause of a miss in one line, for the goal table (the benchmark's section has the
/// profile figures behind it).
pub fn miss_cause(bench: &str, goal: &str) -> &'static str {
    match (bench, goal) {
        ("B1", g) if g.contains("raw") => {
            "4 epoll registrations + FIONBIO per child the blocking floor does not make"
        }
        ("B1", g) if g.contains("tokio") => {
            "tokio makes 38 syscalls per child to torsion's 24: loaded-machine noise"
        }
        ("B1", _) => "the child's exec and exit dominate; see B1",
        ("B3", g) if g.contains("tokio") => "scheduling: a 64 KiB pipe stays full on idle cores",
        ("B3", _) => "a loop iteration per 64 KiB drained; `cat` scheduling on shared cores",
        ("B4", g) if g.contains("Twisted") => {
            "with 1 connection the round trip through the client and the kernel bounds both"
        }
        ("B4", _) => "latency-bound cells on 2 shared cores: within the run-to-run spread",
        ("B2", _) => "both sides run the same spawn; vfork copies no page tables: noise",
        ("B5", _) => "O(log n) heap vs the wheel's O(1): structural, see B5",
        ("B6", _) => "~90 instructions of loop bookkeeping around epoll_wait, see B6",
        ("B7", _) => "run-to-run spread: both read the same `cat` through the same line discipline",
        ("B8", _) => "see B8",
        ("B14", _) => "scheduling on 2 shared cores dominates the tail, see B14",
        _ => "see the benchmark's section",
    }
}

impl Report {
    /// Record a comparison.
    pub fn add(&mut self, o: Outcome) {
        self.outcomes.push(o);
    }

    /// Record a note for benchmark `bench`.
    pub fn note(&mut self, bench: &str, text: &str) {
        self.notes.push((bench.to_owned(), text.to_owned()));
    }

    /// Record a case that was not measured.
    pub fn skip(&mut self, bench: &str, case: &str, reason: &str, goal: &str) {
        eprintln!("  {bench} {case}: not measured: {reason}");
        self.skipped.push(Skipped {
            bench: bench.to_owned(),
            case: case.to_owned(),
            reason: reason.to_owned(),
            goal: goal.to_owned(),
        });
    }

    fn benches(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .outcomes
            .iter()
            .map(|o| o.bench.clone())
            .chain(self.skipped.iter().map(|s| s.bench.clone()))
            .collect();
        // B1, B2, ..., B10, B14: by number, not as text.
        ids.sort_by_key(|id| {
            let n: u32 = id.trim_start_matches('B').parse().unwrap_or(u32::MAX);
            (n, id.clone())
        });
        ids.dedup();
        ids
    }

    /// Write one chart per benchmark into `dir`; returns `(bench, file name)` pairs.
    #[cfg(feature = "compare")]
    pub fn write_charts(&self, dir: &std::path::Path) -> Vec<(String, String)> {
        let mut written = Vec::new();
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return written;
        }
        for id in self.benches() {
            let outcomes: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.bench == id).collect();
            if outcomes.is_empty() {
                continue;
            }
            let file = format!("{}.svg", id.to_ascii_lowercase());
            let (title, _) = describe(&id);
            let rounds = outcomes[0]
                .series
                .first()
                .map(|s| s.samples.len())
                .unwrap_or(0);
            let heading = format!("{id} — {title}: median, whisker = min–max of {rounds} rounds");
            match crate::chart::write(&dir.join(&file), &heading, &outcomes) {
                Ok(()) => written.push((id, file)),
                Err(e) => eprintln!("chart {file}: {e}"),
            }
        }
        written
    }

    /// The Markdown text.
    pub fn markdown(&self, run: &RunInfo<'_>) -> String {
        let RunInfo {
            machine,
            command,
            rounds,
            warmup,
            charts,
            chart_prefix,
            total_secs,
        } = *run;
        let mut md = String::new();
        let _ = writeln!(md, "# torsion benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `{command}` ({} s). Each comparison ran its contenders \
             **alternately** in one process, {warmup} warm-up round then {rounds} measured \
             rounds (the order rotates each round). Medians and min … max are over the \
             measured rounds; the ratio column is torsion / contender **computed per round**, \
             shown as its median (min … max). Goals are judged on those median ratios. \
             What each benchmark measures, its goal and the cause of every miss are below; \
             the method is in `benches/src/harness.rs`.\n",
            total_secs.round()
        );
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| CPU | {} |", machine.cpu);
        let _ = writeln!(md, "| cores | {} |", machine.cores_text());
        let _ = writeln!(md, "| memory | {} |", machine.memory);
        let _ = writeln!(md, "| kernel | {} |", machine.kernel);
        let _ = writeln!(md, "| rustc | {} |", machine.rustc);
        let _ = writeln!(md, "| Twisted | {} |\n", machine.twisted);

        let _ = writeln!(md, "## Goals\n");
        let _ = writeln!(
            md,
            "| # | case | goal | measured | status | cause of a miss |\n|---|---|---|---|---|---|"
        );
        for o in &self.outcomes {
            for v in &o.verdicts {
                let status = status_text(v);
                let cause = match v.met {
                    Some(true) => "—",
                    Some(false) => miss_cause(&o.bench, &v.goal.text),
                    None => "a contender failed (see the status)",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {status} | {cause} |",
                    o.bench,
                    o.case,
                    v.goal.text,
                    measured_text(o, v.measured, &v.goal.target, v.goal.bound)
                );
            }
        }
        for s in &self.skipped {
            let _ = writeln!(
                md,
                "| {} | {} | {} | — | not yet measured | {} |",
                s.bench, s.case, s.goal, s.reason
            );
        }
        md.push('\n');

        for id in self.benches() {
            let (title, what) = describe(&id);
            let _ = writeln!(md, "## {id} — {title}\n\n{what}\n");
            if let Some((_, file)) = charts.iter().find(|(b, _)| *b == id) {
                let _ = writeln!(md, "![{id} chart]({chart_prefix}{file})\n");
            }
            for o in self.outcomes.iter().filter(|o| o.bench == id) {
                let _ = writeln!(md, "### {}\n", o.case);
                let _ = writeln!(
                    md,
                    "| contender | median {unit} | min … max | spread | torsion / contender |\n|---|---:|---:|---:|---:|",
                    unit = o.metric.unit
                );
                for s in &o.series {
                    let (median, range, spread) = match (s.median(), s.min_max()) {
                        (Some(m), Some((lo, hi))) => (
                            fmt_num(m),
                            format!("{} … {}", fmt_num(lo), fmt_num(hi)),
                            if m != 0.0 {
                                format!("±{:.1}%", (hi - lo) / 2.0 / m * 100.0)
                            } else {
                                "—".to_owned()
                            },
                        ),
                        _ => (
                            format!("failed: {}", s.error.clone().unwrap_or_default()),
                            "—".to_owned(),
                            "—".to_owned(),
                        ),
                    };
                    let ratio = if s.name == o.subject {
                        "—".to_owned()
                    } else {
                        o.ratios
                            .iter()
                            .find(|r| r.against == s.name)
                            .and_then(|r| {
                                let m = r.median()?;
                                let lo = r.per_round.iter().copied().reduce(f64::min)?;
                                let hi = r.per_round.iter().copied().reduce(f64::max)?;
                                Some(format!("{} ({} … {})", ratio(m), ratio(lo), ratio(hi)))
                            })
                            .unwrap_or_else(|| "—".to_owned())
                    };
                    let name = if s.name == o.subject {
                        format!("**{}**", s.name)
                    } else {
                        s.name.clone()
                    };
                    let _ = writeln!(md, "| {name} | {median} | {range} | {spread} | {ratio} |");
                }
                md.push('\n');
                // A contender that erred is said so, with its error and how many rounds it
                // lost, never dropped silently (issue 15).
                let mut erred = false;
                for s in o.series.iter().filter(|s| !s.values().is_empty()) {
                    if let Some(text) = s.failure_text() {
                        let _ = writeln!(md, "- **{}** {text}", s.name);
                        erred = true;
                    }
                }
                if erred {
                    md.push('\n');
                }
                for v in &o.verdicts {
                    let status = status_text(v);
                    let _ = writeln!(
                        md,
                        "- Goal {}: {} → {status}",
                        v.goal.text,
                        measured_text(o, v.measured, &v.goal.target, v.goal.bound)
                    );
                }
                if !o.verdicts.is_empty() {
                    md.push('\n');
                }
            }
            for s in self.skipped.iter().filter(|s| s.bench == id) {
                let _ = writeln!(
                    md,
                    "### {}\n\nNot yet measured: {}. Goal: {}.\n",
                    s.case, s.reason, s.goal
                );
            }
            for (_, note) in self.notes.iter().filter(|(b, _)| *b == id) {
                let _ = writeln!(md, "> {note}\n");
            }
            let missed = self
                .outcomes
                .iter()
                .filter(|o| o.bench == id)
                .flat_map(|o| &o.verdicts)
                .any(|v| v.met == Some(false));
            if let (true, Some(text)) = (missed, analysis(&id)) {
                let _ = writeln!(md, "**Misses.** {text}\n");
            }
        }
        md
    }
}

/// MET / **MISSED** / **NOT MEASURED**, plus which contender failed in how many rounds.
fn status_text(v: &crate::harness::Verdict) -> String {
    let mut status = match v.met {
        Some(true) => "MET".to_owned(),
        Some(false) => "**MISSED**".to_owned(),
        None => "**NOT MEASURED**".to_owned(),
    };
    if !v.failed.is_empty() {
        let (used, total) = v.rounds;
        let who: Vec<String> = v
            .failed
            .iter()
            .map(|(name, text)| format!("{name} {text}"))
            .collect();
        let _ = write!(
            status,
            " (on {used} of {total} rounds; {})",
            who.join("; ").replace('|', "\\|")
        );
    }
    status
}

fn ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}×")
    } else if v >= 0.1 {
        format!("{v:.2}×")
    } else {
        format!("{v:.4}×")
    }
}

fn measured_text(o: &Outcome, m: Option<f64>, target: &GoalTarget, bound: Bound) -> String {
    let Some(m) = m else {
        return "—".to_owned();
    };
    match target {
        GoalTarget::Value => format!("{} {} (bound {bound})", fmt_num(m), o.metric.unit),
        GoalTarget::RatioToBest(names) => {
            let who = if names.len() == 1 {
                names[0].clone()
            } else {
                format!("best of {}", names.join(", "))
            };
            let bound = match bound {
                Bound::AtLeast(b) => format!("≥ {}", ratio(b)),
                Bound::AtMost(b) => format!("≤ {}", ratio(b)),
            };
            format!("{} / {who} = {} (needs {bound})", o.subject, ratio(m))
        }
    }
}
