"""B1 for Twisted: N sequential reactor.spawnProcess children with the default three
pipes ({0: 'w', 1: 'r', 2: 'r'}), the next spawned from processEnded.

Prints: RESULT per_sec=... n=..."""
import argparse
import os
import time

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("program")
    p.add_argument("--n", type=int, default=2000)
    a = p.parse_args()
    state = {"left": a.n, "t0": 0.0}
    env = dict(os.environ)

    class Child(protocol.ProcessProtocol):
        def processEnded(self, reason):
            state["left"] -= 1
            if state["left"] == 0:
                elapsed = time.perf_counter() - state["t0"]
                print("RESULT per_sec=%.1f n=%d" % (a.n / elapsed, a.n), flush=True)
                reactor.stop()
            else:
                spawn()

    def spawn():
        reactor.spawnProcess(Child(), a.program, [a.program], env)

    def start():
        state["t0"] = time.perf_counter()
        spawn()

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=True)


main()
