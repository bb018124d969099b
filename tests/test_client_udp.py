"""
Tests for L{socksgate.client.udp}: UDP ASSOCIATE through socksgate and
Dante to an echo datagram server on loopback, the association's end from
either side, refusals and cancellation, and what the client drops.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import ConnectError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.errors import CommandNotSupported, ConnectionNotAllowed
from socksgate.client.udp import SOCKS5UDPClient, SOCKSUDPAssociation, _FromRelay
from socksgate.config import ServerConfig, parseConfig
from socksgate.testing import StaticResolver, startGateway, startSinkServer
from socksgate.wire import UDPDatagram

from .client_helpers import startDante
from .helpers import LoopbackTestCase


class Echo(DatagramProtocol):
    """
    Sends every datagram back to where it came from.
    """

    def datagramReceived(self, datagram, addr):
        """
        Send C{datagram} back.
        """
        self.transport.write(datagram, addr)


def startUDPEcho(testCase) -> int:
    """
    Start a UDP echo server on 127.0.0.1, stopped at clean-up.

    @return: its port.
    """
    port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
    testCase.addCleanup(port.stopListening)
    return port.getHost().port


class Datagrams(DatagramProtocol):
    """
    The application: keeps what arrives, and says when it stopped.

    @ivar received: C{(payload, (host, port))} of each datagram.
    """

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.stopped: Deferred[None] = Deferred()

    def datagramReceived(self, datagram, addr):
        """
        Keep it.
        """
        self.received.append((datagram, addr))

    def stopProtocol(self):
        """
        Fire C{stopped}.
        """
        self.stopped.callback(None)


async def exchange(
    protocol: Datagrams, addr: tuple[str, int], payload: bytes
) -> tuple[bytes, tuple[str, int]]:
    """
    Send C{payload} to C{addr} until something comes back: at most 20
    times, 0.25 s apart.
    """
    for _ in range(20):
        before = len(protocol.received)
        protocol.transport.write(payload, addr)
        await deferLater(reactor, 0.25, lambda: None)
        if len(protocol.received) > before:
            return protocol.received[before]
    raise AssertionError(f"nothing came back from {addr}")


def proxyTo(port: int) -> TCP4ClientEndpoint:
    """
    An endpoint that reaches a proxy on 127.0.0.1:C{port}.
    """
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port)


class FromRelayTests(SynchronousTestCase):
    """
    What the local socket passes on from the relay, and what it drops.
    """

    def setUp(self) -> None:
        """
        An association whose relay is 127.0.0.1:5000, with no real sockets.
        """
        self.application = Datagrams()
        self.fromRelay = _FromRelay()
        self.fromRelay.association = SOCKSUDPAssociation(
            None, None, (IPv4Address("127.0.0.1"), 5000), self.application
        )
        self.relay = ("127.0.0.1", 5000)

    def test_passedOn(self) -> None:
        """
        A datagram from the relay reaches the application without its
        header, with the source the header names.
        """
        datagram = UDPDatagram(IPv4Address("127.0.0.2"), 53, b"answer").toBytes()
        self.fromRelay.datagramReceived(datagram, self.relay)
        self.assertEqual(self.application.received, [(b"answer", ("127.0.0.2", 53))])

    def test_fragmentDropped(self) -> None:
        """
        A fragment (FRAG not 0) is dropped: the client does not reassemble.
        """
        datagram = UDPDatagram(IPv4Address("127.0.0.2"), 53, b"part", fragment=1).toBytes()
        self.fromRelay.datagramReceived(datagram, self.relay)
        self.assertEqual(self.application.received, [])

    def test_otherSourceDropped(self) -> None:
        """
        A datagram from anything but the relay (another port, another
        address) is dropped.
        """
        datagram = UDPDatagram(IPv4Address("127.0.0.2"), 53, b"forged").toBytes()
        self.fromRelay.datagramReceived(datagram, ("127.0.0.1", 5001))
        self.fromRelay.datagramReceived(datagram, ("127.0.0.3", 5000))
        self.assertEqual(self.application.received, [])

    def test_malformedDropped(self) -> None:
        """
        A truncated header or a non-zero RSV is dropped, not raised.
        """
        self.fromRelay.datagramReceived(b"\x00\x00\x00", self.relay)
        self.fromRelay.datagramReceived(b"\x00\x01\x00\x01\x7f\x00\x00\x01\x00\x35x", self.relay)
        self.fromRelay.datagramReceived(b"\x00\x00\x00\x09", self.relay)
        self.assertEqual(self.application.received, [])


class SocksgateUDPTests(LoopbackTestCase):
    """
    UDP ASSOCIATE through socksgate.
    """

    async def associate(self, gateway, **kwargs) -> tuple[Datagrams, SOCKSUDPAssociation]:
        """
        Make an association through C{gateway}, ended at clean-up.
        """
        protocol = Datagrams()
        client = SOCKS5UDPClient(proxyTo(gateway.port), **kwargs)
        association = await client.associate(protocol)
        self.addCleanup(association.loseConnection)
        self.assertIs(protocol.transport, association)
        return protocol, association

    async def test_echo(self) -> None:
        """
        A datagram to the echo server comes back through the relay, with
        the echo server as its source.
        """
        echo = startUDPEcho(self)
        gateway = startGateway(self)
        protocol, association = await self.associate(gateway)
        self.assertEqual(association.getRelay()[0], "127.0.0.1")
        self.assertEqual(
            await exchange(protocol, ("127.0.0.1", echo), b"ping"), (b"ping", ("127.0.0.1", echo))
        )

    async def test_name(self) -> None:
        """
        A name is sent unresolved: the gateway resolves it.
        """
        echo = startUDPEcho(self)
        gateway = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        protocol, association = await self.associate(gateway)
        payload, (host, port) = await exchange(protocol, ("echo.test", echo), b"by name")
        self.assertEqual((payload, port), (b"by name", echo))
        self.assertIn(host, ("echo.test", "127.0.0.1"))

    async def test_controlConnectionClosed(self) -> None:
        """
        When the server closes the control connection, the association
        ends: the protocol is stopped and the socket closed.
        """
        gateway = startGateway(self)
        protocol, association = await self.associate(gateway)
        for session in list(gateway.sessions.open):
            session.abortConnection()
        await protocol.stopped
        await association.whenClosed()
        self.assertIsNone(protocol.transport)

    async def test_loseConnection(self) -> None:
        """
        Ending the association closes the control connection: the
        gateway's session ends.
        """
        gateway = startGateway(self)
        protocol, association = await self.associate(gateway)
        await association.loseConnection()
        await protocol.stopped
        await gateway.sessions.whenEmpty()
        association.write(b"after the end", ("127.0.0.1", 7))

    async def test_refused(self) -> None:
        """
        A gateway that does not carry UDP ASSOCIATE: L{CommandNotSupported},
        and no socket left open (trial checks the reactor).
        """
        gateway = startGateway(self, config=ServerConfig(commands=("connect",)))
        client = SOCKS5UDPClient(proxyTo(gateway.port))
        await self.assertFailure(client.associate(Datagrams()), CommandNotSupported)

    async def test_deniedByPolicy(self) -> None:
        """
        A policy that refuses the association: L{ConnectionNotAllowed}.
        """
        config = parseConfig('[[rule]]\naction = "permit"\ncommands = ["connect"]\n')
        gateway = startGateway(self, config=config)
        client = SOCKS5UDPClient(proxyTo(gateway.port))
        await self.assertFailure(client.associate(Datagrams()), ConnectionNotAllowed)

    async def test_cancel(self) -> None:
        """
        Cancelling while the server has not answered fails with
        L{CancelledError}, closes the control connection and the socket.
        """
        silent = startSinkServer(self)
        associating = SOCKS5UDPClient(proxyTo(silent.port)).associate(Datagrams())
        for _ in range(500):
            if silent.connections:
                break
            await deferLater(reactor, 0.01, lambda: None)
        associating.cancel()
        await self.assertFailure(associating, CancelledError)
        await silent.connections[0].closed

    async def test_familyMismatch(self) -> None:
        """
        An IPv4 socket cannot reach an IPv6 relay: L{ConnectError}, nothing
        left open.
        """
        gateway = startGateway(self, interface="::1")
        client = SOCKS5UDPClient(TCP6ClientEndpoint(reactor, "::1", gateway.port), interface="127.0.0.1")
        await self.assertFailure(client.associate(Datagrams()), ConnectError)


class DanteUDPTests(LoopbackTestCase):
    """
    UDP ASSOCIATE through Dante's C{danted}.
    """

    async def test_echo(self) -> None:
        """
        A datagram to the echo server comes back through Dante's relay.
        """
        echo = startUDPEcho(self)
        proxy = await startDante(self, blocked=1)
        protocol = Datagrams()
        association = await SOCKS5UDPClient(proxy, interface="127.0.0.1").associate(protocol)
        self.addCleanup(association.loseConnection)
        self.assertEqual(
            await exchange(protocol, ("127.0.0.1", echo), b"ping"), (b"ping", ("127.0.0.1", echo))
        )
