"""
Tests for L{socksgate.client.parsers}, the C{socks5:}, C{socks4a:} and
C{socks4:} endpoint descriptions, found by Twisted as plugins.
"""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, clientFromString
from twisted.internet.interfaces import IStreamClientEndpointStringParserWithReactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .client_helpers import echoThrough
from .helpers import LoopbackTestCase, freePort

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
PROXY = r"proxy=tcp\:127.0.0.1\:1080"


class ParserTests(SynchronousTestCase):
    """
    Descriptions become socksgate's endpoints; mistakes are L{ValueError}s
    that name them.
    """

    def test_plugins(self):
        """
        Twisted's plugin scan finds the three prefixes.
        """
        prefixes = {parser.prefix for parser in getPlugins(IStreamClientEndpointStringParserWithReactor)}
        self.assertTrue({"socks5", "socks4a", "socks4"} <= prefixes)

    def test_socks5(self):
        """
        C{socks5:} with a nested, escaped proxy description and credentials.
        """
        endpoint = clientFromString(
            reactor, f"socks5:host=example.com:port=443:{PROXY}:username=a:password=b"
        )
        self.assertIsInstance(endpoint, SOCKS5ClientEndpoint)
        self.assertIsInstance(endpoint._proxyEndpoint, TCP4ClientEndpoint)
        self.assertEqual((endpoint._host, endpoint._port), ("example.com", 443))
        self.assertEqual((endpoint._login.username, endpoint._login.password), (b"a", b"b"))

    def test_nested(self):
        """
        A C{socks5:} proxy inside a C{socks5:} description, escaped twice.
        """
        inner = r"socks5\:host=127.0.0.2\:port=1080\:proxy=tcp\\\:127.0.0.1\\\:1080"
        endpoint = clientFromString(reactor, f"socks5:host=example.com:port=443:proxy={inner}")
        self.assertIsInstance(endpoint._proxyEndpoint, SOCKS5ClientEndpoint)
        self.assertIsInstance(endpoint._proxyEndpoint._proxyEndpoint, TCP4ClientEndpoint)

    def test_socks4(self):
        """
        C{socks4a:} and C{socks4:} take C{userId}.
        """
        endpoint = clientFromString(reactor, f"socks4a:host=example.com:port=80:{PROXY}:userId=bob")
        self.assertIsInstance(endpoint, SOCKS4aClientEndpoint)
        self.assertEqual(endpoint._userid, b"bob")
        endpoint = clientFromString(reactor, f"socks4:host=192.0.2.1:port=80:{PROXY}")
        self.assertIsInstance(endpoint, SOCKS4ClientEndpoint)

    def test_unknownKey(self):
        """
        An unknown key (here C{user} for C{username}, and C{userid} in the
        wrong case) is named, with the known ones.
        """
        error = self.assertRaises(
            ValueError, clientFromString, reactor, f"socks5:host=a:port=1:{PROXY}:user=alice"
        )
        self.assertIn("unknown key user", str(error))
        self.assertIn("username", str(error))
        error = self.assertRaises(
            ValueError, clientFromString, reactor, f"socks4:host=a:port=1:{PROXY}:userid=x"
        )
        self.assertIn("userid", str(error))

    def test_missingOrPositional(self):
        """
        A missing key, a positional value and a bad port are refused.
        """
        self.assertIn(
            "proxy", str(self.assertRaises(ValueError, clientFromString, reactor, "socks5:host=a:port=1"))
        )
        self.assertRaises(ValueError, clientFromString, reactor, f"socks5:a:1:{PROXY}")
        self.assertRaises(ValueError, clientFromString, reactor, f"socks5:host=a:port=http:{PROXY}")


class StringConnectTests(LoopbackTestCase):
    """
    An endpoint from a description connects.
    """

    async def test_connect(self):
        """
        C{clientFromString(reactor, "socks5:...")} reaches the echo server
        through a gateway.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        description = rf"socks5:host=echo.test:port={echo.port}:proxy=tcp\:127.0.0.1\:{gateway.port}"
        await echoThrough(self, clientFromString(reactor, description))


class ExampleTests(LoopbackTestCase):
    """
    examples/socks_client.py, as docs/client.md shows it.
    """

    async def test_example(self):
        """
        The example reaches the echo server by name through a gateway and
        prints the destination and the answer; a closed port prints the
        refusal and its code.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        description = rf"socks5:host=echo.test:port={echo.port}:proxy=tcp\:127.0.0.1\:{gateway.port}"
        script = os.path.join(EXAMPLES, "socks_client.py")
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [script, description, "hello"], os.environ
        )
        self.assertEqual(code, 0, err)
        self.assertIn(f"HostnameAddress(hostname=b'echo.test', port={echo.port})".encode(), out)
        self.assertIn(b"answer: hello", out)
        description = rf"socks5:host=127.0.0.1:port={freePort()}:proxy=tcp\:127.0.0.1\:{gateway.port}"
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [script, description, "hello"], os.environ
        )
        self.assertIn(b"refused:", out)
        self.assertIn(b"(code 5)", out)
