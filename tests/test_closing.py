"""
L{socksgate.closing}: which transports can half-close, how a FIN is passed
on to each, and the producer that lets a closing TLS transport close; over
C{StringTransport} and a real L{TLSMemoryBIOProtocol} on top of one.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from socksgate.closing import canHalfClose, finishWriting, producerFor

from .tls_helpers import testCertificate


def tlsTransport() -> Any:
    """
    The TLS transport of a server protocol, as an C{ssl:} listener gives
    one, over a L{StringTransport}.
    """
    certificate = testCertificate()
    options = CertificateOptions(privateKey=certificate.privateKey.original, certificate=certificate.original)
    tls = TLSMemoryBIOFactory(options, False, Factory.forProtocol(Protocol)).buildProtocol(None)
    tls.makeConnection(StringTransport())
    return tls


class Recorder:
    """
    A transport or producer that records the calls it gets.

    @ivar calls: the names of the methods called, in order.
    """

    disconnecting = False
    TLS = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *arguments: self.calls.append(name)


class CanHalfCloseTests(SynchronousTestCase):
    """
    L{canHalfClose}.
    """

    def test_plain(self) -> None:
        """
        A plain transport, and a protocol wrapper over one, can half-close.
        """
        plain = StringTransport()
        self.assertTrue(canHalfClose(plain))
        wrapper = ProtocolWrapper(WrappingFactory(Factory.forProtocol(Protocol)), Protocol())
        wrapper.makeConnection(plain)
        self.assertTrue(canHalfClose(wrapper))

    def test_tls(self) -> None:
        """
        A TLS transport, and a protocol wrapper over one (a C{haproxy:}
        wrapper over C{ssl:}), cannot.
        """
        tls = tlsTransport()
        self.assertFalse(canHalfClose(tls))
        wrapper = ProtocolWrapper(WrappingFactory(Factory.forProtocol(Protocol)), Protocol())
        wrapper.makeConnection(tls)
        self.assertFalse(canHalfClose(wrapper))


class FinishWritingTests(SynchronousTestCase):
    """
    L{finishWriting} passes a FIN on.
    """

    def test_plain(self) -> None:
        """
        A transport that is not TLS is half-closed.
        """
        transport = Recorder()
        finishWriting(transport)
        self.assertEqual(transport.calls, ["loseWriteConnection"])

    def test_tls(self) -> None:
        """
        A TLS transport gets C{loseConnection} (its close_notify), never
        C{loseWriteConnection}, which would shut the socket under it.
        """
        tls = tlsTransport()
        socket = tls.transport
        calls: list[str] = []
        tls.loseConnection = lambda: calls.append("loseConnection")
        finishWriting(tls)
        self.assertEqual(calls, ["loseConnection"])
        self.assertFalse(socket.disconnecting)


class ProducerForTests(SynchronousTestCase):
    """
    L{producerFor}.
    """

    def test_plain(self) -> None:
        """
        A plain consumer gets the producer itself.
        """
        producer = Recorder()
        self.assertIs(producerFor(StringTransport(), producer), producer)

    def test_tlsPassesCallsOn(self) -> None:
        """
        A TLS consumer gets a wrapper that passes pause, resume and stop
        on while the transport is open.
        """
        producer = Recorder()
        wrapper = producerFor(tlsTransport(), producer)
        self.assertIsNot(wrapper, producer)
        wrapper.pauseProducing()
        wrapper.resumeProducing()
        wrapper.stopProducing()
        self.assertEqual(producer.calls, ["pauseProducing", "resumeProducing", "stopProducing"])

    def test_tlsClosingUnregisters(self) -> None:
        """
        Resumed once the socket under the TLS transport is closing (the
        TLS layer closes it when the client's close_notify comes), the
        wrapper unregisters itself instead of resuming the producer, so
        the socket can close.
        """
        tls = tlsTransport()
        producer = Recorder()
        wrapper = producerFor(tls, producer)
        tls.registerProducer(wrapper, True)
        tls.transport.disconnecting = True
        wrapper.resumeProducing()
        self.assertEqual(producer.calls, [])
        self.assertIsNone(tls.transport.producer)
