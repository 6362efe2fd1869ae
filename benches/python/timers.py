"""B5 for Twisted: reactor.callLater with random delays, cancel half, fire the rest; and
churn (cancel + callLater again) with a fixed number of live calls.

Prints one line: RESULT ns_per_timer=... (mode fire) or RESULT ns_per_op=... (mode churn).
CPU time of this thread (time.thread_time), like the Rust contenders.
"""
import argparse
import random
import time

from twisted.internet import reactor


def fire(n, spread):
    rng = random.Random(1)
    delays = [rng.random() * spread for _ in range(n)]
    state = {"fired": 0}
    want = n - n // 2

    def cb():
        state["fired"] += 1
        if state["fired"] == want:
            reactor.stop()

    t0 = time.thread_time()
    calls = [reactor.callLater(d, cb) for d in delays]
    for c in calls[1::2]:
        c.cancel()
    del calls
    reactor.run(installSignalHandlers=False)
    elapsed = time.thread_time() - t0
    print("RESULT ns_per_timer=%.1f n=%d" % (elapsed * 1e9 / n, n), flush=True)


def churn(live, ops):
    rng = random.Random(2)
    noop = lambda: None  # noqa: E731
    calls = [reactor.callLater(1.0 + rng.random(), noop) for _ in range(live)]
    reactor.runUntilCurrent()
    t0 = time.thread_time()
    for i in range(ops):
        j = rng.randrange(live)
        # A call can fall due and run in runUntilCurrent when the machine is slow (a run
        # over 1 s): cancelling it would raise AlreadyCalled. It is replaced all the same.
        if calls[j].active():
            calls[j].cancel()
        calls[j] = reactor.callLater(1.0 + rng.random(), noop)
        if i % 1000 == 999:
            # What one turn of a running reactor does with new and cancelled calls.
            reactor.runUntilCurrent()
    elapsed = time.thread_time() - t0
    print("RESULT ns_per_op=%.1f ops=%d" % (elapsed * 1e9 / ops, ops), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fire", "churn"])
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--spread", type=float, default=0.1)
    p.add_argument("--live", type=int, default=10000)
    p.add_argument("--ops", type=int, default=200000)
    a = p.parse_args()
    if a.mode == "fire":
        fire(a.n, a.spread)
    else:
        churn(a.live, a.ops)


main()
