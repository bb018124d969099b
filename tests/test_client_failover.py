"""
Tests for L{socksgate.client.failover}: the proxies' down periods with a
fake clock, and failover over real loopback sockets with socksgate
gateways as the proxies.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.errors import ConnectionNotAllowed
from socksgate.client.failover import FailoverEndpoint, NoProxyReached, ProxyHealth
from socksgate.client.routing import parseRoutes
from socksgate.client.urls import parseProxyURL
from socksgate.config import parseConfig
from socksgate.testing import startEchoServer, startGateway

from .client_helpers import collectorFactory, echoThrough
from .helpers import LoopbackTestCase, collectSessions, freePort

FIRST = parseProxyURL("socks5h://127.0.0.1:1")
SECOND = parseProxyURL("socks5h://127.0.0.1:2")


class ProxyHealthTests(SynchronousTestCase):
    """
    L{ProxyHealth}: a failed proxy is down 30 s, doubling to 5 minutes,
    and tried last while down.
    """

    def test_downPeriods(self) -> None:
        """
        Each further failure doubles the period, up to 300 s.
        """
        health = ProxyHealth(MemoryReactorClock())
        self.assertEqual([health.failed(FIRST) for _ in range(6)], [30.0, 60.0, 120.0, 240.0, 300.0, 300.0])

    def test_orderAndRecovery(self) -> None:
        """
        A down proxy comes after the others until its period ends or it
        works again; credentials do not make a different proxy.
        """
        clock = MemoryReactorClock()
        health = ProxyHealth(clock)
        health.failed(FIRST)
        self.assertEqual(health.order([FIRST, SECOND]), [SECOND, FIRST])
        self.assertTrue(health.isDown(FIRST.withCredentials("alice", "pw")))
        clock.advance(29.9)
        self.assertEqual(health.order([FIRST, SECOND]), [SECOND, FIRST])
        clock.advance(0.1)
        self.assertEqual(health.order([FIRST, SECOND]), [FIRST, SECOND])
        health.failed(FIRST)
        health.worked(FIRST)
        self.assertFalse(health.isDown(FIRST))
        self.assertEqual(health.failed(FIRST), 30.0)

    def test_allDownAllTried(self) -> None:
        """
        When every proxy is down they are all still tried, in their order.
        """
        health = ProxyHealth(MemoryReactorClock())
        health.failed(FIRST)
        health.failed(SECOND)
        self.assertEqual(health.order([FIRST, SECOND]), [FIRST, SECOND])

    def test_noProxies(self) -> None:
        """
        A failover endpoint needs a proxy.
        """
        self.assertRaises(ValueError, FailoverEndpoint, MemoryReactorClock(), [], "h", 1)


class _Silent(Protocol):
    """
    A "proxy" that accepts and never answers.
    """


class _SilentFactory(Factory):
    """
    Builds L{_Silent}s; C{accepted} fires at the first connection.
    """

    protocol = _Silent

    def __init__(self) -> None:
        self.accepted: Deferred[None] = Deferred()

    def buildProtocol(self, addr: object) -> Protocol:
        if not self.accepted.called:
            self.accepted.callback(None)
        return super().buildProtocol(addr)


class FailoverTests(LoopbackTestCase):
    """
    Failover between real proxies.
    """

    def setUp(self) -> None:
        self.echo = startEchoServer(self)
        self.gateway = startGateway(self)
        self.records = collectSessions(self)

    def table(self, *proxies: str, timeout: float = 30.0):
        listed = ", ".join(f'"{proxy}"' for proxy in proxies)
        return parseRoutes(f'[[route]]\naction = "via"\nproxies = [{listed}]\ntimeout = {timeout}\n')

    async def test_firstDown(self) -> None:
        """
        The first proxy refuses the TCP connection: the second carries the
        session, and the first is marked down, so the next connection
        goes to the second first.
        """
        down = f"socks5h://127.0.0.1:{freePort()}"
        table = self.table(down, self.gateway.url())
        endpoint = table.endpointFor(reactor, "127.0.0.1", self.echo.port)
        protocol = await echoThrough(self, endpoint)
        health = table._health
        self.assertTrue(health.isDown(parseProxyURL(down)))
        self.assertEqual(
            health.order(table.routes[0].proxies), [parseProxyURL(self.gateway.url()), parseProxyURL(down)]
        )
        protocol.transport.loseConnection()
        await protocol.closed
        await echoThrough(self, table.endpointFor(reactor, "127.0.0.1", self.echo.port))

    async def test_firstSilent(self) -> None:
        """
        A proxy that accepts but never answers is given up after the
        route's timeout, and the next one used.
        """
        silent = reactor.listenTCP(0, Factory.forProtocol(_Silent), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        table = self.table(f"socks5h://127.0.0.1:{silent.getHost().port}", self.gateway.url(), timeout=0.5)
        await echoThrough(self, table.endpointFor(reactor, "127.0.0.1", self.echo.port))

    async def test_allDown(self) -> None:
        """
        Every proxy fails: L{NoProxyReached} lists each one and how.
        """
        first, second = freePort(), freePort()
        table = self.table(f"socks5h://127.0.0.1:{first}", f"socks4a://127.0.0.1:{second}")
        with self.assertRaises(NoProxyReached) as caught:
            await table.endpointFor(reactor, "127.0.0.1", self.echo.port).connect(collectorFactory())
        self.assertEqual(
            [str(url) for url, _ in caught.exception.failures],
            [f"socks5h://127.0.0.1:{first}", f"socks4a://127.0.0.1:{second}"],
        )
        self.assertIn("refused", str(caught.exception))

    async def test_refusalIsFinal(self) -> None:
        """
        A proxy's refusal of the destination (0x02) is its decision: the
        error is passed on and the next proxy is not asked.
        """
        denying = startGateway(self, config=parseConfig('[[rule]]\naction = "deny"\n'))
        table = self.table(denying.url(), self.gateway.url())
        with self.assertRaises(ConnectionNotAllowed):
            await table.endpointFor(reactor, "127.0.0.1", self.echo.port).connect(collectorFactory())
        await denying.sessions.whenEmpty()
        self.assertEqual([record["outcome"] for record in self.records], ["denied"])
        self.assertFalse(table._health.isDown(parseProxyURL(denying.url())))

    async def test_cancel(self) -> None:
        """
        Cancelling while a silent proxy is asked fails with
        L{CancelledError}, and no other proxy is tried.
        """
        factory = _SilentFactory()
        silent = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        table = self.table(f"socks5h://127.0.0.1:{silent.getHost().port}", self.gateway.url())
        attempt = table.endpointFor(reactor, "127.0.0.1", self.echo.port).connect(collectorFactory())
        await factory.accepted
        attempt.cancel()
        with self.assertRaises(CancelledError):
            await attempt
        await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(self.records, [])
        self.assertEqual(len(self.gateway.sessions.open), 0)
