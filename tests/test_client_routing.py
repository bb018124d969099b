"""
Tests for L{socksgate.client.routing}: reading routing tables, matching
destinations, and the endpoints a table gives.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.failover import FailoverEndpoint
from socksgate.client.routing import ConfigError, RouteDenied, loadRoutes, parseRoutes, singleProxy
from socksgate.client.urls import ProxyURL, parseProxyURL
from socksgate.testing import startEchoServer

from .client_helpers import collectorFactory, echoThrough
from .helpers import LoopbackTestCase

TABLE = """\
[[route]]
destinations = ["127.0.0.0/8", "::1", "localhost"]
action = "direct"

[[route]]
destinations = ["secret.example.com", "10.1.0.0/16"]
action = "deny"

[[route]]
destinations = [".example.com"]
ports = ["443", "8000-8999"]
action = "via"
proxies = ["socks5h://proxy1.test:1080", "socks5h://carol@proxy2.test"]
username = "alice"
password = "s3cret"
timeout = 5

[[route]]
destinations = ["10.0.0.0/8"]
action = "via"
proxies = ["socks5://bob:pw@proxy3.test:1081"]
"""


class MatchingTests(SynchronousTestCase):
    """
    L{RoutingTable.routeFor}: the first route that matches.
    """

    def setUp(self) -> None:
        self.table = parseRoutes(TABLE, "routes.toml")

    def index(self, host: str, port: int) -> int | None:
        route = self.table.routeFor(host, port)
        return None if route is None else route.index

    def test_addressByNetwork(self) -> None:
        """
        An address literal matches by address and mask; IPv6 with or
        without brackets.
        """
        self.assertEqual(self.index("127.9.9.9", 22), 1)
        self.assertEqual(self.index("::1", 22), 1)
        self.assertEqual(self.index("[::1]", 22), 1)
        self.assertEqual(self.index("10.1.2.3", 80), 2)
        self.assertEqual(self.index("10.2.2.3", 80), 4)

    def test_firstMatchWins(self) -> None:
        """
        10.1.2.3 is in both 10.1.0.0/16 (route 2) and 10.0.0.0/8 (route 4):
        the first decides.
        """
        self.assertEqual(self.table.routeFor("10.1.2.3", 443).action, "deny")

    def test_names(self) -> None:
        """
        A name matches an exact name (any case, a final dot ignored) or a
        domain: C{.example.com} is that domain and every name below it.
        """
        self.assertEqual(self.index("LOCALHOST.", 22), 1)
        self.assertEqual(self.index("secret.example.com", 443), 2)
        self.assertEqual(self.index("www.example.com", 443), 3)
        self.assertEqual(self.index("example.com", 8080), 3)
        self.assertIsNone(self.index("notexample.com", 443))

    def test_ports(self) -> None:
        """
        Ports match single values and ranges, bounds included.
        """
        self.assertEqual(self.index("www.example.com", 8000), 3)
        self.assertEqual(self.index("www.example.com", 8999), 3)
        self.assertIsNone(self.index("www.example.com", 9000))
        self.assertIsNone(self.index("www.example.com", 80))

    def test_namesNotResolved(self) -> None:
        """
        A name never matches an address pattern: it is not resolved to
        choose a route.
        """
        table = parseRoutes('[[route]]\ndestinations = ["0.0.0.0/0", "::/0"]\naction = "direct"\n')
        self.assertIsNone(table.routeFor("www.example.org", 80))
        self.assertEqual(table.routeFor("192.0.2.1", 80).action, "direct")

    def test_noMatchDenies(self) -> None:
        """
        No route matches: L{None}, and the endpoint fails with
        L{RouteDenied} saying so.
        """
        self.assertIsNone(self.table.routeFor("www.example.org", 80))
        failure = self.failureResultOf(
            self.table.endpointFor(MemoryReactorClock(), "www.example.org", 80).connect(collectorFactory()),
            RouteDenied,
        )
        self.assertEqual(str(failure.value), "www.example.org:80 is denied: no route matches it")
        self.assertIsNone(failure.value.route)

    def test_denyRoute(self) -> None:
        """
        A C{deny} route's endpoint fails with L{RouteDenied} naming the
        route and its line.
        """
        endpoint = self.table.endpointFor(MemoryReactorClock(), "secret.example.com", 443)
        failure = self.failureResultOf(endpoint.connect(collectorFactory()), RouteDenied)
        self.assertEqual(
            str(failure.value), "secret.example.com:443 is denied: route #2 (routes.toml:5) denies it"
        )

    def test_endpointKinds(self) -> None:
        """
        C{direct} gives a L{HostnameEndpoint}, C{via} a L{FailoverEndpoint}.
        """
        clock = MemoryReactorClock()
        self.assertIsInstance(self.table.endpointFor(clock, "localhost", 22), HostnameEndpoint)
        self.assertIsInstance(self.table.endpointFor(clock, "www.example.com", 443), FailoverEndpoint)

    def test_everythingByDefault(self) -> None:
        """
        A route without C{destinations} or C{ports} matches everything.
        """
        table = parseRoutes('[[route]]\naction = "deny"\n')
        self.assertEqual(table.routeFor("anything.test", 1).index, 1)
        self.assertEqual(table.routeFor("::2", 65535).index, 1)

    def test_emptyTableDeniesAll(self) -> None:
        """
        An empty table denies every destination.
        """
        self.assertIsNone(parseRoutes("").routeFor("localhost", 22))

    def test_singleProxy(self) -> None:
        """
        L{singleProxy} routes every destination via that proxy.
        """
        url = parseProxyURL("socks5h://127.0.0.1:1080")
        route = singleProxy(url).routeFor("anything.test", 80)
        self.assertEqual((route.action, route.proxies), ("via", (url,)))


class ParseRoutesTests(SynchronousTestCase):
    """
    L{parseRoutes} reads C{[[route]]} tables; errors name the file, the
    line and the key.
    """

    def test_values(self) -> None:
        """
        The route's credentials fill in proxies without their own; its
        timeout is kept.
        """
        routes = parseRoutes(TABLE, "routes.toml").routes
        self.assertEqual(
            routes[2].proxies,
            (
                ProxyURL("socks5h", "proxy1.test", 1080, "alice", "s3cret"),
                ProxyURL("socks5h", "proxy2.test", 1080, "carol", None),
            ),
        )
        self.assertEqual(routes[3].proxies, (ProxyURL("socks5", "proxy3.test", 1081, "bob", "pw"),))
        self.assertEqual((routes[2].timeout, routes[0].timeout), (5.0, 30.0))
        self.assertEqual((routes[2].line, routes[2].ports), (9, ((443, 443), (8000, 8999))))

    def test_socks4PasswordRefused(self) -> None:
        """
        A route password for a SOCKS4a proxy is an error: SOCKS4 has none.
        """
        text = '[[route]]\naction = "via"\nproxies = ["socks4a://p.test"]\nusername = "a"\npassword = "x"\n'
        error = self.assertRaises(ConfigError, parseRoutes, text, "routes.toml")
        self.assertIn("SOCKS4 has no passwords", str(error))
        self.assertEqual((error.line, error.key), (5, "route #1.password"))

    def assertProblem(self, text: str, line: int | None, key: str | None, problem: str) -> None:
        """
        Parsing C{text} raises a L{ConfigError} at C{line} and C{key} whose
        message contains C{problem}.
        """
        error = self.assertRaises(ConfigError, parseRoutes, text, "r.toml")
        self.assertEqual((error.line, error.key), (line, key))
        self.assertIn(problem, str(error))
        self.assertTrue(str(error).startswith("r.toml"), str(error))

    def test_errors(self) -> None:
        """
        Each wrong table or value is an error at its line and key.
        """
        head = '[[route]]\naction = "via"\n'
        self.assertProblem('[[route]]\naction = "permit"\n', 2, "route #1.action", "not one of deny")
        self.assertProblem('[[route]]\ndestinations = ["*"]\n', 1, "route #1", "has no action")
        self.assertProblem('[[route]]\naction = "deny"\nproxy = "x"\n', 3, "route #1.proxy", "unknown key")
        self.assertProblem(head, 1, "route #1", "needs proxies")
        self.assertProblem(head + 'proxies = ["http://p:1"]\n', 3, "route #1.proxies", "scheme")
        self.assertProblem(head + "proxies = []\n", 3, "route #1.proxies", "non-empty list")
        self.assertProblem(head + "proxies = [1]\n", 3, "route #1.proxies", "not a proxy URL")
        self.assertProblem(
            head + 'proxies = ["socks5://p"]\npassword = "x"\n', 4, "route #1.password", "needs a username"
        )
        self.assertProblem(
            '[[route]]\naction = "direct"\nproxies = ["socks5://p"]\n',
            3,
            "route #1.proxies",
            'only for action = "via"',
        )
        self.assertProblem(
            '[[route]]\naction = "deny"\nports = ["70000"]\n', 3, "route #1.ports", "not a port"
        )
        self.assertProblem(
            '[[route]]\naction = "deny"\ndestinations = ["bad name!"]\n',
            3,
            "route #1.destinations",
            "not an IP",
        )
        self.assertProblem(
            '[[route]]\naction = "deny"\ntimeout = 0\n', 3, "route #1.timeout", "greater than 0"
        )
        self.assertProblem("[server]\nlisten = []\n", 1, "server", "unknown table")
        self.assertProblem('[route]\naction = "deny"\n', 1, "route", "must be written [[route]]")
        self.assertProblem('[[route]]\naction = "deny\n', 2, None, "not valid TOML")

    def test_passwordFile(self) -> None:
        """
        C{password-file} is read (its first line) relative to the routing
        file's directory; a file that cannot be read is an error at the key.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "alice.secret"), "w") as stream:
            stream.write("from the file\nsecond line\n")
        path = os.path.join(directory, "routes.toml")
        with open(path, "w") as stream:
            stream.write(
                '[[route]]\naction = "via"\nproxies = ["socks5h://p.test"]\n'
                'username = "alice"\npassword-file = "alice.secret"\n'
            )
        self.assertEqual(loadRoutes(path).routes[0].proxies[0].password, "from the file")
        with open(path, "a") as stream:
            stream.write(
                '\n[[route]]\naction = "via"\nproxies = ["socks5h://p.test"]\nusername = "a"\n'
                'password-file = "missing.secret"\n'
            )
        error = self.assertRaises(ConfigError, loadRoutes, path)
        self.assertEqual((error.line, error.key), (11, "route #2.password-file"))
        self.assertIn("No such file", str(error))

    def test_missingFile(self) -> None:
        """
        A routing file that does not exist is a L{ConfigError} naming it.
        """
        error = self.assertRaises(ConfigError, loadRoutes, "/nonexistent/routes.toml")
        self.assertIn("/nonexistent/routes.toml: cannot be read", str(error))


class DirectRouteTests(LoopbackTestCase):
    """
    A C{direct} route connects straight to the destination.
    """

    async def test_direct(self) -> None:
        """
        Bytes go to and come back from the echo server with no proxy.
        """
        echo = startEchoServer(self)
        table = parseRoutes('[[route]]\ndestinations = ["127.0.0.1"]\naction = "direct"\n')
        await echoThrough(self, table.endpointFor(reactor, "127.0.0.1", echo.port))
