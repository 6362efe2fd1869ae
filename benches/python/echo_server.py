"""B4 for Twisted: an echo server on 127.0.0.1 (port 0), epoll reactor, TCP_NODELAY like
the Rust servers. Prints `PORT n` once listening; runs until killed."""
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


class Echo(protocol.Protocol):
    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data):
        self.transport.write(data)


class EchoFactory(protocol.Factory):
    protocol = Echo


port = reactor.listenTCP(0, EchoFactory(), interface="127.0.0.1")
sys.stdout.write("PORT %d\n" % port.getHost().port)
sys.stdout.flush()
reactor.run()
