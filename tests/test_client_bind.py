"""
Tests for L{socksgate.client.bind}: BIND through socksgate (SOCKS5 and
SOCKS4) and Dante, a peer connecting to the announced address over real
loopback sockets; refusals of either reply, giving up, and cancelling.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from twisted.internet import address, reactor
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import NoProtocol
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.bind import SOCKS4BindEndpoint, SOCKS5BindEndpoint, announcedAddress
from socksgate.client.errors import CommandNotSupported, MalformedReply, RequestRejected, TTLExpired
from socksgate.config import ServerConfig
from socksgate.testing import startGateway, startSinkServer
from socksgate.wire import ReplyCode, SOCKS4Reply, SOCKS4ReplyCode, SOCKS5Reply

from .client_helpers import Collector, collectorFactory, startDante
from .helpers import LoopbackTestCase, RawClient


def proxyTo(port: int) -> TCP4ClientEndpoint:
    """
    An endpoint that reaches a proxy on 127.0.0.1:C{port}.
    """
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port)


async def connectPeer(announced: address.IPv4Address, source: str = "127.0.0.1") -> RawClient:
    """
    Connect to the announced address from C{source}, as the peer of a
    BIND does.
    """
    endpoint = TCP4ClientEndpoint(reactor, announced.host, announced.port, bindAddress=(source, 0))
    return await connectProtocol(endpoint, RawClient())


class NoProtocolFactory(Factory):
    """
    A factory that builds no protocol.
    """

    def buildProtocol(self, addr):
        """
        No protocol.
        """
        return None


class _StopsListening(Factory):
    """
    Builds a L{Collector} that stops its BIND port listening when its peer
    connects.
    """

    port: IListeningPort | None = None

    def buildProtocol(self, addr):
        """
        A collector whose C{connectionMade} stops the port.
        """
        factory = self

        class Stopping(Collector):
            def connectionMade(self) -> None:
                super().connectionMade()
                if factory.port is not None:
                    factory.port.stopListening()

        return Stopping()


class AnnouncedAddressTests(SynchronousTestCase):
    """
    L{announcedAddress}: the address a BIND reply announces.
    """

    def test_address(self) -> None:
        """
        An address is given as it is, with its port.
        """
        reply = SOCKS5Reply(ReplyCode.SUCCEEDED, IPv6Address("::1"), 4000)
        self.assertEqual(announcedAddress(reply, StringTransport()), address.IPv6Address("TCP", "::1", 4000))

    def test_zerosBecomeTheProxy(self) -> None:
        """
        All zeros become the address of the proxy connection's far end
        (SOCKS4: "the client should replace it by the address of the SOCKS
        server").
        """
        transport = StringTransport(peerAddress=address.IPv4Address("TCP", "127.0.0.9", 1080))
        reply = SOCKS4Reply(SOCKS4ReplyCode.GRANTED, IPv4Address(0), 4000)
        self.assertEqual(announcedAddress(reply, transport), address.IPv4Address("TCP", "127.0.0.9", 4000))

    def test_zerosOfAnotherFamily(self) -> None:
        """
        All zeros of another family than the proxy connection's stay as
        they are: nothing better is known.
        """
        transport = StringTransport(peerAddress=address.IPv4Address("TCP", "127.0.0.9", 1080))
        reply = SOCKS5Reply(ReplyCode.SUCCEEDED, IPv6Address("::"), 4000)
        self.assertEqual(announcedAddress(reply, transport), address.IPv6Address("TCP", "::", 4000))

    def test_interfaces(self) -> None:
        """
        The endpoints are server endpoints.
        """
        proxy = proxyTo(1)
        self.assertTrue(IStreamServerEndpoint.providedBy(SOCKS5BindEndpoint(proxy)))
        self.assertTrue(IStreamServerEndpoint.providedBy(SOCKS4BindEndpoint(proxy, "127.0.0.1")))

    def test_badArguments(self) -> None:
        """
        An IPv6 peer for SOCKS4, a port out of range or a password without
        a user: L{ValueError} when the endpoint is made.
        """
        proxy = proxyTo(1)
        self.assertRaises(ValueError, SOCKS4BindEndpoint, proxy, "::1")
        self.assertRaises(ValueError, SOCKS5BindEndpoint, proxy, "127.0.0.1", 65536)
        self.assertRaises(ValueError, SOCKS5BindEndpoint, proxy, password="x")


class SocksgateBindTests(LoopbackTestCase):
    """
    BIND through socksgate.
    """

    async def bindAndConnect(self, endpoint) -> tuple[IListeningPort, RawClient, Collector]:
        """
        Listen through C{endpoint}, connect a peer to the announced
        address, and check that the peer's connection reaches the
        application: the second reply's address, bytes both ways.
        """
        port = await endpoint.listen(collectorFactory())
        self.assertTrue(IListeningPort.providedBy(port))
        announced = port.getHost()
        self.assertIsInstance(announced, address.IPv4Address)
        self.assertEqual(announced.host, "127.0.0.1")
        self.assertNotEqual(announced.port, 0)
        peer = await connectPeer(announced)
        self.addCleanup(lambda: peer.closed if peer.transport.loseConnection() is None else None)
        peer.transport.write(b"from the peer")
        protocol = await port.accepted()
        self.assertEqual(protocol.transport.getPeer(), peer.transport.getHost())
        self.assertEqual(await protocol.waitFor(13), b"from the peer")
        protocol.transport.write(b"from the application")
        self.assertEqual(await peer.receive(20), b"from the application")
        return port, peer, protocol

    async def test_socks5(self) -> None:
        """
        SOCKS5 BIND: C{listen} fires with the port the gateway listens on,
        C{accepted} with the protocol for the peer that connected to it.
        """
        gateway = startGateway(self)
        endpoint = SOCKS5BindEndpoint(proxyTo(gateway.port), "127.0.0.1", 0)
        port, peer, protocol = await self.bindAndConnect(endpoint)
        self.assertIs(await port.accepted(), protocol)
        await port.stopListening()
        peer.transport.loseConnection()
        await protocol.closed

    async def test_stopListeningOnConnect(self) -> None:
        """
        An application that stops listening as soon as its peer connects
        (in C{connectionMade}) keeps that peer's connection: the BIND is
        over, not given up.
        """
        gateway = startGateway(self)
        factory = _StopsListening()
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port), "127.0.0.1", 0).listen(factory)
        factory.port = port
        peer = await connectPeer(port.getHost())
        self.addCleanup(lambda: peer.closed if peer.transport.loseConnection() is None else None)
        protocol = await port.accepted()
        peer.transport.write(b"still here")
        self.assertEqual(await protocol.waitFor(10), b"still here")
        protocol.transport.write(b"and so am I")
        self.assertEqual(await peer.receive(11), b"and so am I")

    async def test_socks4(self) -> None:
        """
        SOCKS4 BIND: the same, with DSTIP the expected peer.
        """
        gateway = startGateway(self)
        endpoint = SOCKS4BindEndpoint(proxyTo(gateway.port), "127.0.0.1")
        await self.bindAndConnect(endpoint)

    async def test_socks5Refused(self) -> None:
        """
        A gateway that does not carry BIND refuses the request: the first
        reply's error (L{CommandNotSupported}, code 7) fails C{listen}.
        """
        gateway = startGateway(self, config=ServerConfig(commands=("connect",)))
        endpoint = SOCKS5BindEndpoint(proxyTo(gateway.port))
        error = await self.assertFailure(endpoint.listen(collectorFactory()), CommandNotSupported)
        self.assertEqual(error.code, 7)

    async def test_socks4Refused(self) -> None:
        """
        SOCKS4: L{RequestRejected}, code 91.
        """
        gateway = startGateway(self, config=ServerConfig(commands=("connect",)))
        endpoint = SOCKS4BindEndpoint(proxyTo(gateway.port), "127.0.0.1")
        error = await self.assertFailure(endpoint.listen(collectorFactory()), RequestRejected)
        self.assertEqual(error.code, 91)

    async def test_secondReplyRefused(self) -> None:
        """
        No peer within the gateway's bind-timeout: the second reply says
        so, and C{accepted} fails with its error (L{TTLExpired}).
        """
        gateway = startGateway(self, config=ServerConfig(bindTimeout=0.05))
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port)).listen(collectorFactory())
        await self.assertFailure(port.accepted(), TTLExpired)
        await gateway.sessions.whenEmpty()

    async def test_stopListening(self) -> None:
        """
        C{stopListening} before a peer came gives the BIND up: the control
        connection closes (the gateway's session ends) and C{accepted}
        fails with L{CancelledError}.
        """
        gateway = startGateway(self)
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port)).listen(collectorFactory())
        waiting = port.accepted()
        await port.stopListening()
        await self.assertFailure(waiting, CancelledError)
        await self.assertFailure(port.accepted(), CancelledError)
        await gateway.sessions.whenEmpty()

    async def test_cancelAccepted(self) -> None:
        """
        Cancelling the wait for the peer gives the BIND up as well.
        """
        gateway = startGateway(self)
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port)).listen(collectorFactory())
        waiting = port.accepted()
        waiting.cancel()
        await self.assertFailure(waiting, CancelledError)
        await port.handshake.whenClosed()
        await gateway.sessions.whenEmpty()

    async def test_cancelListen(self) -> None:
        """
        Cancelling C{listen} while the server has not answered fails it
        with L{CancelledError} and closes the connection to the proxy.
        """
        silent = startSinkServer(self)
        listening = SOCKS5BindEndpoint(proxyTo(silent.port)).listen(collectorFactory())
        for _ in range(500):
            if silent.connections:
                break
            await deferLater(reactor, 0.01, lambda: None)
        listening.cancel()
        await self.assertFailure(listening, CancelledError)
        await silent.connections[0].closed

    async def test_controlConnectionLost(self) -> None:
        """
        The control connection closing before the peer came:
        L{MalformedReply} from C{accepted}.
        """
        gateway = startGateway(self)
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port)).listen(collectorFactory())
        for protocol in list(gateway.sessions.open):
            protocol.abortConnection()
        await self.assertFailure(port.accepted(), MalformedReply)

    async def test_noProtocol(self) -> None:
        """
        A factory that builds no protocol for the peer: L{NoProtocol}, and
        the control connection is closed.
        """
        gateway = startGateway(self)
        port = await SOCKS5BindEndpoint(proxyTo(gateway.port)).listen(NoProtocolFactory())
        peer = await connectPeer(port.getHost())
        await self.assertFailure(port.accepted(), NoProtocol)
        await peer.closed


class DanteBindTests(LoopbackTestCase):
    """
    BIND through Dante's C{danted}.
    """

    async def test_socks5(self) -> None:
        """
        SOCKS5 BIND through Dante: its first reply names where it listens,
        a peer that connects there reaches the application.
        """
        proxy = await startDante(self, blocked=1)
        port = await SOCKS5BindEndpoint(proxy, "127.0.0.1").listen(collectorFactory())
        peer = await connectPeer(port.getHost())
        self.addCleanup(lambda: peer.closed if peer.transport.loseConnection() is None else None)
        peer.transport.write(b"hello")
        protocol = await port.accepted()
        self.assertEqual(protocol.transport.getPeer().host, "127.0.0.1")
        self.assertEqual(await protocol.waitFor(5), b"hello")
        protocol.transport.write(b"back")
        self.assertEqual(await peer.receive(4), b"back")

    async def test_socks4(self) -> None:
        """
        SOCKS4 BIND through Dante.
        """
        proxy = await startDante(self, blocked=1)
        port = await SOCKS4BindEndpoint(proxy, "127.0.0.1").listen(collectorFactory())
        peer = await connectPeer(port.getHost())
        self.addCleanup(lambda: peer.closed if peer.transport.loseConnection() is None else None)
        peer.transport.write(b"hello")
        protocol = await port.accepted()
        self.assertEqual(await protocol.waitFor(5), b"hello")
