"""B9 for Twisted: a line echo server (LineReceiver, delimiter LF) on 127.0.0.1 (port 0),
epoll reactor, TCP_NODELAY like the Rust servers. Prints `PORT n` once listening; runs
until killed."""
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402
from twisted.protocols import basic  # noqa: E402


class LineEcho(basic.LineReceiver):
    delimiter = b"\n"

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def lineReceived(self, line):
        self.sendLine(line)


class LineEchoFactory(protocol.Factory):
    protocol = LineEcho


port = reactor.listenTCP(0, LineEchoFactory(), interface="127.0.0.1")
sys.stdout.write("PORT %d\n" % port.getHost().port)
sys.stdout.flush()
reactor.run()
