"""
Tests for L{socksgate.client.endpoints} against SOCKS servers other than
socksgate: Dante (Debian C{dante-server}) and microsocks (Debian
C{microsocks}), each started on a loopback port for the test.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError

from socksgate.client import SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from socksgate.client.errors import (
    AuthenticationFailed,
    ConnectionNotAllowed,
    ConnectionRefused,
    RequestRejected,
)
from socksgate.testing import StaticResolver, startEchoServer

from .client_helpers import collectorFactory, echoThrough, startDante, startMicrosocks
from .helpers import LoopbackTestCase, freePort


class MicrosocksTests(LoopbackTestCase):
    """
    SOCKS5 through microsocks.
    """

    def setUp(self):
        """
        Start the echo server.
        """
        self.echo = startEchoServer(self)

    async def test_byAddress(self):
        """
        CONNECT to an address.
        """
        proxy = await startMicrosocks(self)
        await echoThrough(self, SOCKS5ClientEndpoint(proxy, "127.0.0.1", self.echo.port))

    async def test_byName(self):
        """
        CONNECT to a name microsocks resolves (C{localhost}, from
        C{/etc/hosts}).
        """
        proxy = await startMicrosocks(self)
        await echoThrough(self, SOCKS5ClientEndpoint(proxy, "localhost", self.echo.port))

    async def test_usernamePassword(self):
        """
        microsocks C{-u/-P} accepts the right password.
        """
        proxy = await startMicrosocks(self, "alice", "s3cret")
        endpoint = SOCKS5ClientEndpoint(
            proxy, "127.0.0.1", self.echo.port, username="alice", password="s3cret"
        )
        await echoThrough(self, endpoint)

    async def test_wrongPassword(self):
        """
        microsocks refuses a wrong password: L{AuthenticationFailed}.
        """
        proxy = await startMicrosocks(self, "alice", "s3cret")
        endpoint = SOCKS5ClientEndpoint(proxy, "127.0.0.1", self.echo.port, username="alice", password="x")
        await self.assertFailure(endpoint.connect(collectorFactory()), AuthenticationFailed)

    async def test_refused(self):
        """
        A closed port through microsocks: L{ConnectionRefused}, code 5.
        """
        proxy = await startMicrosocks(self)
        endpoint = SOCKS5ClientEndpoint(proxy, "127.0.0.1", freePort())
        error = await self.assertFailure(endpoint.connect(collectorFactory()), ConnectionRefused)
        self.assertEqual(error.code, 5)


class DanteTests(LoopbackTestCase):
    """
    SOCKS5 and SOCKS4 through Dante's C{danted} (Dante 1.4 refuses SOCKS4a
    names with CD 91, so SOCKS4a is tested against socksgate only).
    """

    async def setUp(self):
        """
        Start the echo server and Dante, which blocks one port by rule.
        """
        self.echo = startEchoServer(self)
        self.blocked = freePort()
        self.proxy = await startDante(self, self.blocked)

    async def test_socks5ByAddress(self):
        """
        SOCKS5 CONNECT to an address.
        """
        await echoThrough(self, SOCKS5ClientEndpoint(self.proxy, "127.0.0.1", self.echo.port))

    async def test_socks5ByName(self):
        """
        SOCKS5 CONNECT to a name Dante resolves.
        """
        await echoThrough(self, SOCKS5ClientEndpoint(self.proxy, "localhost", self.echo.port))

    async def test_socks4(self):
        """
        SOCKS4 CONNECT, the name resolved on the client's side.
        """
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        endpoint = SOCKS4ClientEndpoint(self.proxy, "echo.test", self.echo.port, resolver=resolver)
        await echoThrough(self, endpoint)

    async def test_socks5Blocked(self):
        """
        Dante's C{socks block} rule: L{ConnectionNotAllowed}, code 2.
        """
        endpoint = SOCKS5ClientEndpoint(self.proxy, "127.0.0.1", self.blocked)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), ConnectionNotAllowed)
        self.assertEqual(error.code, 2)

    async def test_socks4Blocked(self):
        """
        The same rule for SOCKS4: L{RequestRejected}, code 91.
        """
        endpoint = SOCKS4ClientEndpoint(self.proxy, "127.0.0.1", self.blocked)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), RequestRejected)
        self.assertEqual(error.code, 91)

    async def test_cancelBeforeReply(self):
        """
        Cancelled at once (the greeting not yet answered): L{CancelledError}.
        """
        attempt = SOCKS5ClientEndpoint(self.proxy, "127.0.0.1", self.echo.port).connect(collectorFactory())
        attempt.cancel()
        await self.assertFailure(attempt, CancelledError)
