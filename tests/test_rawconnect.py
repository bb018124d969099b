"""
The outgoing connection on a raw socket (L{socksgate.rawconnect}) over real
loopback sockets, and its use for sessions the zero-copy relay carries.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address
from typing import Any

from twisted.internet import error, reactor, tcp
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from socksgate import connecting, rawconnect, relay
from socksgate.rawconnect import RawConnection
from socksgate.relay import DestinationProtocol
from socksgate.splicing import SPLICE_AVAILABLE
from socksgate.testing import startEchoServer, startGateway

from .helpers import LoopbackTestCase, collectSessions, connectRaw, freePort, socks5Connect


class _NeverWritable(Clock):
    """
    A clock that takes writers and never reports one writable: an attempt
    that is still under way when the clock is advanced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writers: list[Any] = []

    def addWriter(self, writer: Any) -> None:
        """
        Remember C{writer}.
        """
        self.writers.append(writer)

    def removeWriter(self, writer: Any) -> None:
        """
        Forget C{writer}.
        """
        self.writers.remove(writer)


class ConnectRawTests(LoopbackTestCase):
    """
    L{rawconnect.connectRaw} with the real reactor.
    """

    async def test_connects(self) -> None:
        """
        The Deferred fires with a connected L{RawConnection}: its socket is
        non-blocking and connected to the destination, its peer address is
        the destination, its host address the socket's own, and no writer
        is left registered.
        """
        echo = startEchoServer(self)
        connection = await rawconnect.connectRaw(reactor, ip_address("127.0.0.1"), echo.port, 10.0)
        self.addCleanup(connection.socket.close)
        self.assertTrue(connection.connected)
        self.assertFalse(connection.socket.getblocking())
        self.assertEqual((connection.getPeer().host, connection.getPeer().port), ("127.0.0.1", echo.port))
        self.assertEqual(connection.getHost().port, connection.socket.getsockname()[1])
        self.assertNotIn(connection, reactor.getWriters())

    async def test_connectsIPv6(self) -> None:
        """
        An IPv6 destination gets an IPv6 socket and IPv6 addresses.
        """
        echo = startEchoServer(self, interface="::1")
        connection = await rawconnect.connectRaw(reactor, ip_address("::1"), echo.port, 10.0)
        self.addCleanup(connection.socket.close)
        self.assertEqual(connection.socket.family, socket.AF_INET6)
        self.assertEqual(connection.getPeer().type, "TCP")
        self.assertEqual(connection.getPeer().host, "::1")

    async def test_refused(self) -> None:
        """
        A port nobody listens on fails with Twisted's
        L{error.ConnectionRefusedError}, as a C{connectTCP} attempt does,
        and the socket is closed.
        """
        attempt = rawconnect.connectRaw(reactor, ip_address("127.0.0.1"), freePort(), 10.0)
        with self.assertRaises(error.ConnectionRefusedError):
            await attempt

    async def test_bindFails(self) -> None:
        """
        A source address that cannot be bound fails with
        L{error.ConnectBindError}.
        """
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            attempt = rawconnect.connectRaw(
                reactor, ip_address("127.0.0.1"), freePort(), 10.0, taken.getsockname()
            )
            with self.assertRaises(error.ConnectBindError):
                await attempt

    async def test_adopt(self) -> None:
        """
        L{RawConnection.adopt} hands the connected socket to a Twisted
        transport with the factory's protocol (for the stream relay), which
        reaches the same destination; the raw socket is closed.
        """
        echo = startEchoServer(self)
        connection = await rawconnect.connectRaw(reactor, ip_address("127.0.0.1"), echo.port, 10.0)
        local = connection.getHost().port
        protocol = connection.adopt(Factory.forProtocol(DestinationProtocol))
        self.addCleanup(protocol.transport.abortConnection)
        self.assertIsInstance(protocol, DestinationProtocol)
        self.assertIsInstance(protocol.transport, tcp.Server)
        self.assertEqual(protocol.transport.getHost().port, local)
        self.assertEqual(connection.socket.fileno(), -1)
        self.assertFalse(connection.connected)


class ConnectRawClockTests(SynchronousTestCase):
    """
    The time-out and cancellation of an attempt still under way.
    """

    def attempt(self, clock: _NeverWritable) -> Any:
        """
        Start an attempt to a loopback listener with C{clock} as the
        reactor, which never reports it writable.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        return rawconnect.connectRaw(clock, ip_address("127.0.0.1"), listener.getsockname()[1], 5.0)

    def test_timeout(self) -> None:
        """
        An attempt not connected when the connect timeout is over fails
        with L{error.TimeoutError} (SOCKS reply 0x06), its writer is
        unregistered and its socket closed.
        """
        clock = _NeverWritable()
        attempt = self.attempt(clock)
        [writer] = clock.writers
        clock.advance(4.9)
        self.assertNoResult(attempt)
        clock.advance(0.1)
        self.failureResultOf(attempt, error.TimeoutError)
        self.assertEqual(clock.writers, [])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(writer.socket.fileno(), -1)

    def test_cancel(self) -> None:
        """
        Cancelling an attempt unregisters its writer, stops its time-out
        and closes its socket.
        """
        clock = _NeverWritable()
        attempt = self.attempt(clock)
        [writer] = clock.writers
        attempt.cancel()
        self.failureResultOf(attempt, CancelledError)
        self.assertEqual(clock.writers, [])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(writer.socket.fileno(), -1)


class RawDestinationSessionTests(LoopbackTestCase):
    """
    A CONNECT session to one address that the zero-copy relay carries has
    a raw outgoing connection, not a Twisted client transport.
    """

    def setUp(self) -> None:
        """
        Record every C{connectTCP} of the gateway and every raw connection
        made.
        """
        if not SPLICE_AVAILABLE:
            raise SkipTest("the zero-copy relay needs Linux and os.splice")
        self.connectTCP: list[Any] = []
        original = reactor.connectTCP

        def connectTCP(host: str, port: int, factory: Any, *arguments: Any, **keywords: Any) -> Any:
            if isinstance(factory, connecting._Attempts):
                self.connectTCP.append((host, port))
            return original(host, port, factory, *arguments, **keywords)

        self.patch(reactor, "connectTCP", connectTCP)
        self.raw: list[RawConnection] = []
        originalRaw = connecting.connectRaw

        def connectRawSocket(*arguments: Any) -> Any:
            attempt = originalRaw(*arguments)
            return attempt.addCallback(lambda connection: self.raw.append(connection) or connection)

        self.patch(connecting, "connectRaw", connectRawSocket)

    async def session(self) -> list[dict]:
        """
        Relay one SOCKS5 CONNECT session to a literal address, 70,001
        bytes echoed, and return its records.
        """
        gateway, echo = startGateway(self), startEchoServer(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        reply = await client.receive(10)
        self.assertEqual(reply[:2], b"\x05\x00")
        outgoing = echo.connections[0].transport.getPeer()
        self.assertEqual(int.from_bytes(reply[8:10], "big"), outgoing.port)
        client.transport.write(b"x" * 70001)
        self.assertEqual(await client.receive(70001), b"x" * 70001)
        client.transport.loseConnection()
        await client.closed
        await gateway.factory.sessions.whenEmpty()
        return records

    async def test_rawDestination(self) -> None:
        """
        The outgoing connection is a L{RawConnection} (no C{connectTCP}),
        the session is relayed and recorded as with a Twisted transport,
        and the raw socket is closed at the end.
        """
        records = await self.session()
        self.assertEqual(self.connectTCP, [])
        [connection] = self.raw
        self.assertEqual(connection.socket.fileno(), -1)
        [record] = records
        self.assertEqual(record["outcome"], "closed")
        self.assertEqual((record["bytes_out"], record["bytes_in"]), (70001, 70001))
        self.assertEqual(record["remote"], f"127.0.0.1:{record['remote'].rsplit(':', 1)[1]}")

    async def test_streamRelayConnectsTCP(self) -> None:
        """
        When the stream relay will carry the session, the outgoing
        connection is a Twisted client transport, as before.
        """
        self.patch(relay, "allowSplice", False)
        records = await self.session()
        self.assertEqual(len(self.connectTCP), 1)
        self.assertEqual(self.raw, [])
        self.assertEqual(records[0]["outcome"], "closed")


class _Recording(Protocol):
    """
    A destination that records how its connection ended.
    """

    def __init__(self, ended: Deferred[list[Failure]]) -> None:
        self.ended = ended

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Report C{reason}.
        """
        self.ended.callback([reason])


class RawDestinationAbortTests(LoopbackTestCase):
    """
    Aborting a session whose destination is a raw connection.
    """

    async def test_abortResets(self) -> None:
        """
        An aborted session resets the raw connection to the destination
        (the destination's connection is lost, not closed cleanly), as
        Twisted's transports do for C{abortConnection}.
        """
        if not SPLICE_AVAILABLE:
            raise SkipTest("the zero-copy relay needs Linux and os.splice")
        ended: Deferred[list[Failure]] = Deferred()
        listening = reactor.listenTCP(
            0, Factory.forProtocol(lambda: _Recording(ended)), interface="127.0.0.1"
        )
        self.addCleanup(listening.stopListening)
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", listening.getHost().port, atyp=1))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        self.assertEqual((await client.receive(10))[:2], b"\x05\x00")
        [protocol] = gateway.factory.sessions.open
        self.assertIsInstance(protocol.session.destination, RawConnection)
        protocol.abortConnection()
        [reason] = await ended
        self.assertTrue(reason.check(error.ConnectionLost), reason)
        await client.closed
