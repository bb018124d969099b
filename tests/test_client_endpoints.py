"""
Tests for L{socksgate.client.endpoints} over real loopback sockets, with a
socksgate gateway (L{socksgate.testing.startGateway}) as the SOCKS server.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.address import HostnameAddress, IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IHostnameResolver
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from socksgate.client import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from socksgate.client.errors import (
    AuthenticationFailed,
    CommandNotSupported,
    ConnectionNotAllowed,
    ConnectionRefused,
    HostUnreachable,
    NoAcceptableMethods,
    RequestRejected,
)
from socksgate.config import AuthConfig, ServerConfig, makeChecker, parseConfig
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .client_helpers import collectorFactory, echoThrough
from .helpers import LoopbackTestCase, freePort

DENY_ECHO = """
[[rule]]
action = "deny"
destinations = ["127.0.0.1"]
"""

ALICE = AuthConfig(("userpass",), makeChecker("memory:alice:s3cret"), "memory:alice:s3cret")


@implementer(IHostnameResolver)
class RefusingResolver:
    """
    A resolver that fails the test if it is asked anything.
    """

    def __init__(self, testCase):
        self.testCase = testCase

    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"):
        """
        Fail the test: no name may be resolved here.
        """
        self.testCase.fail(f"{hostName!r} was resolved on the client's side")


class ClientTestCase(LoopbackTestCase):
    """
    An echo server, a gateway whose resolver knows C{echo.test}, and the
    reactor's resolver replaced by one that fails if asked.
    """

    def setUp(self):
        """
        Start the echo server and the gateway.
        """
        self.echo = startEchoServer(self)
        self.names = StaticResolver({"echo.test": ["127.0.0.1"]})
        previous = reactor.installNameResolver(RefusingResolver(self))
        self.addCleanup(reactor.installNameResolver, previous)

    def gateway(self, **kwargs):
        """
        Start a gateway and return an endpoint that reaches it.
        """
        gateway = startGateway(self, resolver=self.names, **kwargs)
        return TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port)


class SOCKS5EndpointTests(ClientTestCase):
    """
    L{SOCKS5ClientEndpoint} through socksgate.
    """

    async def test_byAddress(self):
        """
        CONNECT to an address: the echo answers, and C{getPeer()} names the
        destination, not the proxy.
        """
        endpoint = SOCKS5ClientEndpoint(self.gateway(), "127.0.0.1", self.echo.port)
        protocol = await echoThrough(self, endpoint)
        self.assertEqual(protocol.transport.getPeer(), IPv4Address("TCP", "127.0.0.1", self.echo.port))

    async def test_byNameUnresolved(self):
        """
        CONNECT to a name: the gateway resolves it (its resolver is asked),
        the client's never is, and C{getPeer()} is a L{HostnameAddress}.
        """
        endpoint = SOCKS5ClientEndpoint(self.gateway(), "echo.test", self.echo.port)
        protocol = await echoThrough(self, endpoint)
        self.assertEqual(self.names.asked, ["echo.test"])
        self.assertEqual(protocol.transport.getPeer(), HostnameAddress(b"echo.test", self.echo.port))

    async def test_usernamePassword(self):
        """
        With a username and password, a gateway that asks for them
        carries the connection.
        """
        proxy = self.gateway(auth=ALICE)
        endpoint = SOCKS5ClientEndpoint(
            proxy, "echo.test", self.echo.port, username="alice", password="s3cret"
        )
        await echoThrough(self, endpoint)

    async def test_wrongPassword(self):
        """
        A refused password fails with L{AuthenticationFailed}.
        """
        proxy = self.gateway(auth=ALICE)
        endpoint = SOCKS5ClientEndpoint(proxy, "echo.test", self.echo.port, username="alice", password="no")
        error = await self.assertFailure(endpoint.connect(collectorFactory()), AuthenticationFailed)
        self.assertIsNone(error.code)

    async def test_noAcceptableMethods(self):
        """
        Without credentials, a gateway that asks for them answers C{05 FF}:
        L{NoAcceptableMethods}.
        """
        endpoint = SOCKS5ClientEndpoint(self.gateway(auth=ALICE), "echo.test", self.echo.port)
        await self.assertFailure(endpoint.connect(collectorFactory()), NoAcceptableMethods)

    async def test_notAllowed(self):
        """
        A rule that denies the destination: L{ConnectionNotAllowed}, code 2.
        """
        policy = parseConfig(DENY_ECHO, "deny.toml").policy
        endpoint = SOCKS5ClientEndpoint(self.gateway(policy=policy), "127.0.0.1", self.echo.port)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), ConnectionNotAllowed)
        self.assertEqual(error.code, 0x02)

    async def test_refused(self):
        """
        A closed port: L{ConnectionRefused}, code 5, which is also Twisted's
        L{ConnectionRefusedError}.
        """
        endpoint = SOCKS5ClientEndpoint(self.gateway(), "127.0.0.1", freePort())
        error = await self.assertFailure(endpoint.connect(collectorFactory()), ConnectionRefused)
        self.assertEqual(error.code, 0x05)
        self.assertIsInstance(error, ConnectionRefusedError)

    async def test_hostUnreachable(self):
        """
        A name the gateway cannot resolve: L{HostUnreachable}, code 4.
        """
        endpoint = SOCKS5ClientEndpoint(self.gateway(), "nowhere.test", 80)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), HostUnreachable)
        self.assertEqual(error.code, 0x04)

    async def test_commandNotSupported(self):
        """
        A gateway that serves only BIND: L{CommandNotSupported}, code 7.
        """
        config = ServerConfig(commands=frozenset({"bind"}))
        endpoint = SOCKS5ClientEndpoint(self.gateway(config=config), "127.0.0.1", self.echo.port)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), CommandNotSupported)
        self.assertEqual(error.code, 0x07)

    async def test_chain(self):
        """
        A SOCKS5 endpoint whose proxy endpoint is another SOCKS5 endpoint:
        the first gateway connects to the second, the second to the echo.
        """
        first = startGateway(self, resolver=self.names)
        second = startGateway(self, resolver=self.names)
        toFirst = TCP4ClientEndpoint(reactor, "127.0.0.1", first.port)
        toSecond = SOCKS5ClientEndpoint(toFirst, "127.0.0.1", second.port)
        endpoint = SOCKS5ClientEndpoint(toSecond, "echo.test", self.echo.port)
        protocol = await echoThrough(self, endpoint, b"through two gateways")
        self.assertEqual(len(first.sessions.open), 1)
        self.assertEqual(len(second.sessions.open), 1)
        self.assertEqual(protocol.transport.getPeer(), HostnameAddress(b"echo.test", self.echo.port))

    async def test_cancelDuringGreeting(self):
        """
        Cancelled once a server that never answers has the greeting: the
        attempt fails with L{CancelledError} and the connection is closed.
        """
        silent = Silent()
        port = reactor.listenTCP(0, _OneServer(silent), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        proxy = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        attempt = SOCKS5ClientEndpoint(proxy, "echo.test", 80).connect(collectorFactory())
        self.assertEqual(await silent.greeted, b"\x05\x01\x00")
        attempt.cancel()
        await self.assertFailure(attempt, CancelledError)
        await silent.closed


class Silent(Protocol):
    """
    A server that reads and never answers.

    @ivar greeted: fires with the first bytes received.
    @ivar closed: fires when the connection is lost.
    """

    def __init__(self):
        self.greeted = Deferred()
        self.closed = Deferred()

    def dataReceived(self, data):
        """
        Fire C{greeted} once.
        """
        if not self.greeted.called:
            self.greeted.callback(data)

    def connectionLost(self, reason=None):
        """
        Fire C{closed}.
        """
        self.closed.callback(None)


class _OneServer(Factory):
    """
    A server factory that gives one protocol, built beforehand.
    """

    def __init__(self, protocol):
        self.protocol = protocol

    def buildProtocol(self, addr):
        """
        The protocol.
        """
        return self.protocol


class SOCKS4EndpointTests(ClientTestCase):
    """
    L{SOCKS4aClientEndpoint} and L{SOCKS4ClientEndpoint} through socksgate.
    """

    async def test_socks4aByName(self):
        """
        SOCKS4a sends the name: the gateway resolves it, the client does not.
        """
        endpoint = SOCKS4aClientEndpoint(self.gateway(), "echo.test", self.echo.port, userid="bob")
        protocol = await echoThrough(self, endpoint)
        self.assertEqual(self.names.asked, ["echo.test"])
        self.assertEqual(protocol.transport.getPeer(), HostnameAddress(b"echo.test", self.echo.port))

    async def test_socks4ResolvesItself(self):
        """
        SOCKS4 carries only an address: the endpoint resolves the name with
        the resolver it was given, and the gateway gets the address.
        """
        mine = StaticResolver({"echo.test": ["127.0.0.1"]})
        endpoint = SOCKS4ClientEndpoint(self.gateway(), "echo.test", self.echo.port, resolver=mine)
        await echoThrough(self, endpoint)
        self.assertEqual(mine.asked, ["echo.test"])
        self.assertEqual(self.names.asked, [])

    async def test_socks4ByAddress(self):
        """
        SOCKS4 to an address asks no resolver.
        """
        endpoint = SOCKS4ClientEndpoint(self.gateway(), "127.0.0.1", self.echo.port)
        await echoThrough(self, endpoint)

    async def test_socks4Rejected(self):
        """
        A rule that denies the destination: L{RequestRejected}, code 91.
        """
        policy = parseConfig(DENY_ECHO, "deny.toml").policy
        endpoint = SOCKS4ClientEndpoint(self.gateway(policy=policy), "127.0.0.1", self.echo.port)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), RequestRejected)
        self.assertEqual(error.code, 91)
