"""
Tests for L{socksgate.client.urls}: reading proxy URLs, and the endpoints
they give over real loopback sockets with a socksgate gateway.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from socksgate.client import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from socksgate.client.urls import ProxyURL, endpointFor, parseProxyURL
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .client_helpers import collectorFactory, echoThrough
from .helpers import LoopbackTestCase, collectSessions


class ParseProxyURLTests(SynchronousTestCase):
    """
    L{parseProxyURL} reads C{SCHEME://[USER[:PASSWORD]@]HOST[:PORT]}.
    """

    def test_full(self) -> None:
        """
        Every part is read; the user name and password are
        percent-decoded; an IPv6 host loses its brackets.
        """
        self.assertEqual(
            parseProxyURL("socks5h://al%40ice:s%3Acret@[::1]:1081"),
            ProxyURL("socks5h", "::1", 1081, "al@ice", "s:cret"),
        )

    def test_defaultPort(self) -> None:
        """
        Without a port, the proxy's port is 1080; a trailing slash is fine.
        """
        self.assertEqual(parseProxyURL("socks4://127.0.0.1/"), ProxyURL("socks4", "127.0.0.1", 1080))

    def test_schemes(self) -> None:
        """
        The four SOCKS schemes are known; any other is an error that lists
        them.
        """
        for scheme in ("socks5", "socks5h", "socks4", "socks4a"):
            self.assertEqual(parseProxyURL(f"{scheme}://proxy.test:1").scheme, scheme)
        error = self.assertRaises(ValueError, parseProxyURL, "http://proxy.test:3128")
        self.assertIn("socks5h://", str(error))

    def test_malformed(self) -> None:
        """
        No host, a path, a query, a port out of range or 0, a bad IPv6
        literal, a SOCKS4 password or a password without a user: each is a
        L{ValueError}.
        """
        for text in (
            "socks5://",
            "socks5://proxy.test/path",
            "socks5://proxy.test?x=1",
            "socks5://proxy.test:65536",
            "socks5://proxy.test:0",
            "socks5://proxy.test:port",
            "socks5://[nonsense]:1080",
            "socks4a://bob:secret@proxy.test",
            "socks5://:secret@proxy.test",
            "proxy.test:1080",
        ):
            self.assertRaises(ValueError, parseProxyURL, text)

    def test_errorHidesPassword(self) -> None:
        """
        An error message shows a password as C{***}.
        """
        error = self.assertRaises(ValueError, parseProxyURL, "socks5://alice:s3cret@proxy.test:99999")
        self.assertNotIn("s3cret", str(error))
        self.assertIn("alice:***@", str(error))

    def test_reprAndStrHidePassword(self) -> None:
        """
        Neither C{repr} nor C{str} shows the password; C{str} is the URL
        without it.
        """
        url = parseProxyURL("socks5h://alice:s3cret@proxy.test:1080")
        self.assertNotIn("s3cret", repr(url))
        self.assertEqual(str(url), "socks5h://alice@proxy.test:1080")
        self.assertEqual(str(parseProxyURL("socks5://[::1]")), "socks5://[::1]:1080")

    def test_withCredentials(self) -> None:
        """
        C{withCredentials} fills in a user name and password the URL lacks
        and keeps those it has; a password for SOCKS4 is refused.
        """
        bare = parseProxyURL("socks5h://proxy.test")
        self.assertEqual(
            bare.withCredentials("alice", "pw"), ProxyURL("socks5h", "proxy.test", 1080, "alice", "pw")
        )
        own = parseProxyURL("socks5h://bob:x@proxy.test")
        self.assertEqual(own.withCredentials("alice", "pw"), own)
        self.assertEqual(bare.withCredentials(None, None), bare)
        self.assertRaises(ValueError, parseProxyURL("socks4://proxy.test").withCredentials, "alice", "pw")


class EndpointForTests(SynchronousTestCase):
    """
    L{endpointFor} picks the endpoint class by scheme.
    """

    def test_classes(self) -> None:
        """
        C{socks5h} and C{socks5} to an address give a
        L{SOCKS5ClientEndpoint}, C{socks4a} a L{SOCKS4aClientEndpoint},
        C{socks4} a L{SOCKS4ClientEndpoint}.
        """
        cases = [
            ("socks5h://127.0.0.1", "name.test", SOCKS5ClientEndpoint),
            ("socks5://127.0.0.1", "192.0.2.1", SOCKS5ClientEndpoint),
            ("socks4a://127.0.0.1", "name.test", SOCKS4aClientEndpoint),
            ("socks4://127.0.0.1", "name.test", SOCKS4ClientEndpoint),
        ]
        for url, host, kind in cases:
            self.assertIsInstance(endpointFor(reactor, parseProxyURL(url), host, 80), kind)

    def test_badDestination(self) -> None:
        """
        A destination the scheme cannot carry is a L{ValueError} at once.
        """
        self.assertRaises(ValueError, endpointFor, reactor, parseProxyURL("socks4a://127.0.0.1"), "::1", 80)
        self.assertRaises(
            ValueError, endpointFor, reactor, parseProxyURL("socks5://127.0.0.1"), "name.test", 70000
        )


@implementer(IHostnameResolver)
class _NeverResolver:
    """
    A resolver that never answers, to cancel a resolution.
    """

    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"):
        receiver.resolutionBegan(None)
        return receiver


async def echoAndClose(testCase: LoopbackTestCase, gateway: object, endpoint: object, records: list) -> dict:
    """
    Echo a message through C{endpoint}, close, and give the gateway's
    record of the session.
    """
    protocol = await echoThrough(testCase, endpoint)
    protocol.transport.loseConnection()
    await protocol.closed
    await gateway.sessions.whenEmpty()  # type: ignore[attr-defined]
    return records[-1]


class EndpointForGatewayTests(LoopbackTestCase):
    """
    The endpoints L{endpointFor} gives carry bytes through a real gateway,
    with names resolved where the scheme says.
    """

    def setUp(self) -> None:
        self.echo = startEchoServer(self)
        self.gateway = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        self.records = collectSessions(self)

    async def test_socks5hSendsName(self) -> None:
        """
        C{socks5h://} sends the destination's name: the gateway resolves it.
        """
        url = parseProxyURL(self.gateway.url("socks5h"))
        endpoint = endpointFor(reactor, url, "echo.test", self.echo.port)
        record = await echoAndClose(self, self.gateway, endpoint, self.records)
        self.assertEqual(record["destination"], f"echo.test:{self.echo.port}")

    async def test_socks5ResolvesHere(self) -> None:
        """
        C{socks5://} resolves the name on the client's side and sends the
        address.
        """
        url = parseProxyURL(self.gateway.url("socks5"))
        resolver = StaticResolver({"local.test": ["127.0.0.1"]})
        endpoint = endpointFor(reactor, url, "local.test", self.echo.port, resolver=resolver)
        record = await echoAndClose(self, self.gateway, endpoint, self.records)
        self.assertEqual(record["destination"], f"127.0.0.1:{self.echo.port}")

    async def test_socks5UnknownName(self) -> None:
        """
        C{socks5://} to a name that does not resolve fails with
        L{DNSLookupError}, the proxy never asked.
        """
        url = parseProxyURL(self.gateway.url("socks5"))
        endpoint = endpointFor(reactor, url, "nowhere.test", 7, resolver=StaticResolver({}))
        with self.assertRaises(DNSLookupError):
            await endpoint.connect(collectorFactory())
        self.assertEqual(self.records, [])

    async def test_socks5CancelWhileResolving(self) -> None:
        """
        Cancelling C{socks5://} while the name resolves fails with
        L{CancelledError}.
        """
        url = parseProxyURL(self.gateway.url("socks5"))
        endpoint = endpointFor(reactor, url, "slow.test", 7, resolver=_NeverResolver())
        attempt: Deferred = endpoint.connect(collectorFactory())
        attempt.cancel()
        with self.assertRaises(CancelledError):
            await attempt

    async def test_socks4aAndSocks4(self) -> None:
        """
        C{socks4a://} sends the name, C{socks4://} the address it resolved;
        the URL's user name is the USERID.
        """
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        for scheme, destination in (("socks4a", "echo.test"), ("socks4", "127.0.0.1")):
            url = parseProxyURL(self.gateway.url(scheme).replace("://", "://bob@"))
            endpoint = endpointFor(reactor, url, "echo.test", self.echo.port, resolver=resolver)
            record = await echoAndClose(self, self.gateway, endpoint, self.records)
            self.assertEqual(record["destination"], f"{destination}:{self.echo.port}")
            self.assertEqual(record["user"], "bob")
