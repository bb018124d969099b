"""
Tests for L{socksgate.client.protocol} and the endpoints' stages, with the
proxy connection a L{StringTransport}: every reply code's error, a broken
reply, bytes that come with the reply, and cancellation at every stage.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectError, NoProtocol
from twisted.internet.protocol import Factory
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client import SOCKS4aClientEndpoint, SOCKS5ClientEndpoint, errors
from socksgate.client.errors import AuthenticationFailed, MalformedReply, replyError

from .client_helpers import Collector, collectorFactory

SUCCESS = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"


class StringEndpoint:
    """
    A proxy endpoint whose connection is a L{StringTransport}, made when
    C{connected} fires (at once unless told to wait).
    """

    def __init__(self, wait=False):
        self.transport = StringTransport()
        self.protocol = None
        self.pending = Deferred(lambda d: setattr(self, "cancelled", True)) if wait else None
        self.cancelled = False

    def connect(self, factory):
        """
        Build the protocol; connect it now, or when L{finish} is called.
        """
        self.protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1080))
        if self.pending is None:
            self.protocol.makeConnection(self.transport)
            return succeed(self.protocol)
        return self.pending

    def receive(self, data):
        """
        Bytes from the proxy.
        """
        self.protocol.dataReceived(data)

    def sent(self):
        """
        Take what the client wrote.
        """
        data = self.transport.value()
        self.transport.clear()
        return data


class ReplyErrorTests(SynchronousTestCase):
    """
    One error class per reply code, each a L{ConnectError} with C{.code}.
    """

    def test_socks5Codes(self):
        """
        SOCKS5 REP 0x01 to 0x08 each have their class, carrying the code.
        """
        expected = {
            1: errors.GeneralServerFailure,
            2: errors.ConnectionNotAllowed,
            3: errors.NetworkUnreachable,
            4: errors.HostUnreachable,
            5: errors.ConnectionRefused,
            6: errors.TTLExpired,
            7: errors.CommandNotSupported,
            8: errors.AddressTypeNotSupported,
        }
        for code, cls in expected.items():
            endpoint = StringEndpoint()
            attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
            endpoint.receive(b"\x05\x00" + bytes([5, code]) + SUCCESS[2:])
            error = self.failureResultOf(attempt, cls).value
            self.assertIsInstance(error, ConnectError)
            self.assertEqual((error.code, error.version), (code, 5))
            self.assertIn(f"{code:#04x}", str(error))
            self.assertTrue(endpoint.transport.disconnecting)

    def test_socks4Codes(self):
        """
        SOCKS4 CD 91, 92 and 93 each have their class.
        """
        expected = {91: errors.RequestRejected, 92: errors.IdentdUnreachable, 93: errors.IdentdMismatch}
        for code, cls in expected.items():
            endpoint = StringEndpoint()
            attempt = SOCKS4aClientEndpoint(endpoint, "example.com", 80).connect(collectorFactory())
            endpoint.receive(bytes([0, code]) + b"\x00" * 6)
            self.assertEqual(self.failureResultOf(attempt, cls).value.code, code)

    def test_unknownCode(self):
        """
        L{replyError} turns a code without a class into L{MalformedReply}.
        """
        self.assertIsInstance(replyError(5, 0x42), MalformedReply)


class HandshakeTests(SynchronousTestCase):
    """
    The bytes of the handshake, and what the application gets.
    """

    def test_usernamePasswordBytes(self):
        """
        With credentials the greeting offers 0x00 and 0x02; the RFC 1929
        request follows the selection of 0x02, the request its success.
        """
        endpoint = StringEndpoint()
        SOCKS5ClientEndpoint(endpoint, "example.com", 443, username="alice", password="pw").connect(
            collectorFactory()
        )
        self.assertEqual(endpoint.sent(), b"\x05\x02\x00\x02")
        endpoint.receive(b"\x05\x02")
        self.assertEqual(endpoint.sent(), b"\x01\x05alice\x02pw")
        endpoint.receive(b"\x01\x00")
        self.assertEqual(endpoint.sent(), b"\x05\x01\x00\x03\x0bexample.com\x01\xbb")

    def test_authenticationFailed(self):
        """
        An RFC 1929 failure fails the attempt and closes.
        """
        endpoint = StringEndpoint()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443, username="a").connect(collectorFactory())
        endpoint.receive(b"\x05\x02\x01\x01")
        self.failureResultOf(attempt, AuthenticationFailed)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_replyWithData(self):
        """
        Bytes that arrive with the reply reach the application at once,
        after C{connectionMade}; later bytes follow them.
        """
        endpoint = StringEndpoint()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        endpoint.receive(b"\x05\x00" + SUCCESS + b"220 ready\r\n")
        protocol = self.successResultOf(attempt)
        self.assertIsInstance(protocol, Collector)
        self.assertEqual(protocol.received, b"220 ready\r\n")
        endpoint.receive(b"more")
        self.assertEqual(protocol.received, b"220 ready\r\nmore")
        protocol.transport.write(b"hello")
        self.assertEqual(endpoint.sent()[-5:], b"hello")

    def test_malformedReply(self):
        """
        A reply that breaks the protocol fails with L{MalformedReply}.
        """
        endpoint = StringEndpoint()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        endpoint.receive(b"\x05\x00\x04\x00")
        self.failureResultOf(attempt, MalformedReply)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_closedDuringHandshake(self):
        """
        A connection that closes before the reply fails with
        L{MalformedReply}.
        """
        endpoint = StringEndpoint()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        endpoint.receive(b"\x05\x00\x05")
        endpoint.protocol.connectionLost(Failure(ConnectError()))
        self.failureResultOf(attempt, MalformedReply)

    def test_noProtocol(self):
        """
        A factory that builds no protocol: L{NoProtocol}, and the
        connection closed.
        """
        endpoint = StringEndpoint()
        factory = Factory()
        factory.buildProtocol = lambda addr: None
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(factory)
        endpoint.receive(b"\x05\x00" + SUCCESS)
        self.failureResultOf(attempt, NoProtocol)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_connectionLostReachesApplication(self):
        """
        Once relaying, the end of the connection reaches the application.
        """
        endpoint = StringEndpoint()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        endpoint.receive(b"\x05\x00" + SUCCESS)
        protocol = self.successResultOf(attempt)
        endpoint.protocol.connectionLost(Failure(ConnectError()))
        self.successResultOf(protocol.closed)

    def test_badArguments(self):
        """
        What cannot be sent is refused when the endpoint is made.
        """
        self.assertRaises(ValueError, SOCKS5ClientEndpoint, StringEndpoint(), "bad name", 80)
        self.assertRaises(ValueError, SOCKS5ClientEndpoint, StringEndpoint(), "example.com", 65536)
        self.assertRaises(ValueError, SOCKS5ClientEndpoint, StringEndpoint(), "a", 1, username="u" * 256)
        self.assertRaises(ValueError, SOCKS5ClientEndpoint, StringEndpoint(), "a", 1, password="p")
        self.assertRaises(ValueError, SOCKS4aClientEndpoint, StringEndpoint(), "::1", 80)


class CancellationTests(SynchronousTestCase):
    """
    Cancelling C{connect()} at every stage: L{CancelledError}, and the
    proxy connection closed (or its attempt cancelled).
    """

    def test_beforeProxyConnection(self):
        """
        While the proxy endpoint connects: its attempt is cancelled.
        """
        endpoint = StringEndpoint(wait=True)
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        attempt.cancel()
        self.failureResultOf(attempt, CancelledError)
        self.assertTrue(endpoint.cancelled)

    def test_proxyConnectsAnyway(self):
        """
        A proxy endpoint that connects after all once cancelled: the
        connection is closed at once, nothing is sent.
        """
        endpoint = StringEndpoint(wait=True)
        endpoint.pending = Deferred()
        attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443).connect(collectorFactory())
        attempt.cancel()
        self.failureResultOf(attempt, CancelledError)
        endpoint.protocol.makeConnection(endpoint.transport)
        endpoint.pending.callback(endpoint.protocol)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_stages(self):
        """
        After the greeting, after the RFC 1929 request, after the request.
        """
        for answers in ([], [b"\x05\x02"], [b"\x05\x02", b"\x01\x00"]):
            endpoint = StringEndpoint()
            attempt = SOCKS5ClientEndpoint(endpoint, "example.com", 443, username="u", password="p").connect(
                collectorFactory()
            )
            for answer in answers:
                endpoint.receive(answer)
            self.assertNoResult(attempt)
            attempt.cancel()
            self.failureResultOf(attempt, CancelledError)
            self.assertTrue(endpoint.transport.disconnecting)
            endpoint.receive(b"\x05\x00" + SUCCESS)
