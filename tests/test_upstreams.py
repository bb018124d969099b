"""
Tests for L{socksgate.upstreams}: the C{[[upstream]]} tables, server URLs,
and the down periods of failed servers.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.urls import parseProxyURL
from socksgate.config import ConfigError, parseConfig
from socksgate.upstreams import UpstreamConfig, UpstreamServer, UpstreamTable


def server(url: str) -> UpstreamServer:
    """
    The server of the URL C{url}, as a configuration file gives it.
    """
    return UpstreamServer(url, parseProxyURL(url))


class ServerURLTests(SynchronousTestCase):
    """
    C{servers} are read by L{parseProxyURL}, the text kept as written.
    """

    def test_schemes(self) -> None:
        """
        Each scheme, host and port is read; the URL is kept as written.
        """
        urls = [
            "socks5://proxy.example:1081",
            "socks5h://[::1]:1080",
            "socks4://127.0.0.1",
            "socks4a://proxy:9",
        ]
        text = '[[upstream]]\nname = "a"\nservers = [' + ", ".join(f'"{url}"' for url in urls) + "]\n"
        (upstream,) = parseConfig(text).upstreams
        self.assertEqual(
            [(each.url, each.proxy.scheme, each.proxy.host, each.proxy.port) for each in upstream.servers],
            [
                ("socks5://proxy.example:1081", "socks5", "proxy.example", 1081),
                ("socks5h://[::1]:1080", "socks5h", "::1", 1080),
                ("socks4://127.0.0.1", "socks4", "127.0.0.1", 1080),
                ("socks4a://proxy:9", "socks4a", "proxy", 9),
            ],
        )

    def test_refused(self) -> None:
        """
        Another scheme, credentials in the URL, a path, no host or a bad
        port are refused with the file, line and key and the URL named (a
        password in it hidden).
        """
        for url, shown in (
            ("http://proxy:80", "'http://proxy:80'"),
            ("socks5://u:p@proxy:1", "'socks5://u@proxy:1': give credentials as username and password"),
            ("socks5://proxy:1/x", "'socks5://proxy:1/x'"),
            ("socks5://:1080", "'socks5://:1080'"),
            ("socks5://p:99999", "'socks5://p:99999'"),
        ):
            with self.assertRaises(ConfigError) as raised:
                parseConfig(f'[[upstream]]\nname = "a"\nservers = ["{url}"]\n', "gw.toml")
            self.assertIn(f"gw.toml:3: [upstream #1] servers: {shown}", str(raised.exception))
            self.assertNotIn(":p@", str(raised.exception))


CONFIG = """\
[[upstream]]
name = "corp"
servers = ["socks5://127.0.0.1:1081", "socks5h://localhost:1082"]
username = "alice"
{password}

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
via = "{via}"
"""


class UpstreamTableConfigTests(SynchronousTestCase):
    """
    C{[[upstream]]} tables in the configuration file.
    """

    def test_read(self) -> None:
        """
        The table's servers, username and password are read; the password
        does not appear in C{repr}; a rule routes C{via} it.
        """
        config = parseConfig(CONFIG.format(password='password = "s3cret"', via="corp"))
        (upstream,) = config.upstreams
        self.assertEqual(
            [server.url for server in upstream.servers],
            ["socks5://127.0.0.1:1081", "socks5h://localhost:1082"],
        )
        self.assertEqual((upstream.username, upstream.password), ("alice", "s3cret"))
        self.assertNotIn("s3cret", repr(upstream))
        self.assertEqual(config.rules[0].via, "corp")

    def test_passwordFile(self) -> None:
        """
        C{password-file} gives the password: the file's first line.
        """
        path = self.mktemp()
        with open(path, "w") as stream:
            stream.write("from-file\n")
        config = parseConfig(CONFIG.format(password=f'password-file = "{path}"', via="corp"))
        self.assertEqual(config.upstreams[0].password, "from-file")

    def test_passwordFileMissing(self) -> None:
        """
        A C{password-file} that cannot be read is an error naming the file,
        the line and the key.
        """
        with self.assertRaises(ConfigError) as raised:
            parseConfig(
                CONFIG.format(password='password-file = "/nonexistent/secret"', via="corp"), "gw.toml"
            )
        self.assertIn("gw.toml:5: [upstream #1] password-file: /nonexistent/secret", str(raised.exception))

    def test_unknownVia(self) -> None:
        """
        A rule C{via} a name no upstream has is an error naming the file,
        the rule's line and the key.
        """
        with self.assertRaises(ConfigError) as raised:
            parseConfig(CONFIG.format(password="", via="nowhere"), "gw.toml")
        self.assertIn("gw.toml:10: [rule #1] via: 'nowhere': no [[upstream]]", str(raised.exception))

    def test_wrongValues(self) -> None:
        """
        No servers, a bad URL, an unknown key, two upstreams of one name,
        or a C{ca-file} without C{tls} are errors naming the key.
        """
        head = '[[upstream]]\nname = "a"\nservers = ["socks5://x"]\n'
        cases = {
            '[[upstream]]\nname = "a"\nservers = []\n': "[upstream #1] servers: must name",
            '[[upstream]]\nname = "a"\nservers = ["ftp://x"]\n': "[upstream #1] servers: 'ftp://x'",
            head + "port = 1\n": "[upstream #1] port: unknown key",
            head + head: "a second upstream named 'a'",
            head + 'ca-file = "/x"\n': "[upstream #1] ca-file: is only used with tls",
            '[[upstream]]\nservers = ["socks5://x"]\n': "[upstream #1]: has no name",
        }
        for text, message in cases.items():
            with self.assertRaises(ConfigError) as raised:
                parseConfig(text)
            self.assertIn(message, str(raised.exception))


def _corp(downPeriod: float = 30.0) -> UpstreamConfig:
    return UpstreamConfig(
        "corp",
        (server("socks5://127.0.0.1:1"), server("socks5://127.0.0.1:2")),
        downPeriod=downPeriod,
    )


class DownPeriodTests(SynchronousTestCase):
    """
    L{UpstreamTable}: a failed server is left alone for 30 seconds, then
    twice as long after each failed retry up to 5 minutes; a session it
    carries makes it up again.
    """

    def test_downThenRetried(self) -> None:
        """
        A failed server is not tried for its down period, then is.
        """
        clock = MemoryReactorClock()
        upstream = _corp()
        table = UpstreamTable(clock, [upstream])
        first, second = upstream.servers
        table.failed(upstream, first, "refused")
        self.assertEqual(table.serversToTry(upstream), [second])
        clock.advance(29.9)
        self.assertEqual(table.serversToTry(upstream), [second])
        clock.advance(0.1)
        self.assertEqual(table.serversToTry(upstream), [first, second])

    def test_doubling(self) -> None:
        """
        Each failure of a retry doubles the period, up to 300 seconds; a
        failure reported while the server is already down changes nothing.
        """
        clock = MemoryReactorClock()
        upstream = _corp()
        table = UpstreamTable(clock, [upstream])
        server = upstream.servers[0]
        periods = []
        for _ in range(6):
            table.failed(upstream, server, "refused")
            table.failed(upstream, server, "refused again, by an attempt started earlier")
            state = table.state("corp", server)
            periods.append(state.downFor)
            clock.advance(state.downFor)
        self.assertEqual(periods, [30, 60, 120, 240, 300, 300])
        self.assertEqual(table.state("corp", server).failures, 12)

    def test_carriedResets(self) -> None:
        """
        A server that carries a session is up, and its next failure starts
        again from the down period; its sessions are counted.
        """
        clock = MemoryReactorClock()
        upstream = _corp(downPeriod=5)
        table = UpstreamTable(clock, [upstream])
        server = upstream.servers[0]
        table.failed(upstream, server, "refused")
        clock.advance(5)
        table.failed(upstream, server, "refused")
        self.assertEqual(table.state("corp", server).downFor, 10)
        clock.advance(10)
        table.carried(upstream, server)
        table.failed(upstream, server, "refused")
        state = table.state("corp", server)
        self.assertEqual((state.downFor, state.sessions), (5, 1))

    def test_reloadKeepsState(self) -> None:
        """
        A reload that keeps a server in its upstream keeps its state; a
        server no longer named is forgotten.
        """
        clock = MemoryReactorClock()
        upstream = _corp()
        table = UpstreamTable(clock, [upstream])
        first, second = upstream.servers
        table.failed(upstream, first, "refused")
        table.configure([UpstreamConfig("corp", (first,))])
        self.assertEqual([state.server for _, state in table.states()], [first])
        self.assertFalse(table.states()[0][1].isUp(clock.seconds()))
