"""
SOCKS4 and SOCKS4a carry no password: when SOCKS5 requires one, they are
refused (CD 91) unless a rule that names their version permits them.
"""

from __future__ import annotations

import os
from ipaddress import ip_address

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import Config, makeChecker, parseConfig
from socksgate.policy import AccessRequest, LoopbackOnlyPolicy
from socksgate.service import buildService
from socksgate.testing import StaticResolver

from .helpers import LoopbackTestCase, collectSessions, freePort, startWebServer


def request(version: str, client: str = "127.0.0.1") -> AccessRequest:
    """
    A CONNECT request to 127.0.0.1:80 with version C{version}.
    """
    return AccessRequest(
        ip_address(client), 5000, "tcp:1080", version, "connect", None, ip_address("127.0.0.1"), 80
    )


class PolicyTests(SynchronousTestCase):
    """
    The default policy and the rule engine refuse SOCKS4 and 4a when
    passwords are required.
    """

    def decisions(self, text: str) -> dict[str, tuple[str, int | None]]:
        """
        The action and rule for each version under the policy of C{text}.
        """
        policy = parseConfig(text).policy
        return {
            version: (d.action, d.rule)
            for version in ("4", "4a", "5")
            for d in [policy.decide(request(version))]
        }

    def test_defaultPolicy(self) -> None:
        """
        Without rules, a method list without C{"none"} denies SOCKS4 and 4a
        even from loopback, with a message that says why; SOCKS5 stays.
        """
        self.assertEqual(
            self.decisions('[auth]\nmethods = ["userpass"]\nchecker = "memory:a:b"\n'),
            {"4": ("deny", None), "4a": ("deny", None), "5": ("permit", None)},
        )
        decision = LoopbackOnlyPolicy(passwordsRequired=True).decide(request("4a"))
        self.assertEqual(decision.message, "SOCKS4a carries no password, and this gateway requires passwords")

    def test_noneAmongMethods(self) -> None:
        """
        With C{"none"} among the methods, SOCKS4 is decided as before.
        """
        self.assertEqual(
            self.decisions('[auth]\nmethods = ["userpass", "none"]\nchecker = "memory:a:b"\n'),
            {"4": ("permit", None), "4a": ("permit", None), "5": ("permit", None)},
        )

    def test_commandLineChecker(self) -> None:
        """
        C{--auth} without a file makes passwords required too.
        """
        config = parseConfig("", "(none)", (makeChecker("memory:a:b"), "--auth"))
        self.assertFalse(config.policy.decide(request("4")).permitted)
        self.assertTrue(Config().policy.decide(request("4")).permitted)

    def test_rulesWithoutVersions(self) -> None:
        """
        A permit without C{versions} does not open SOCKS4 or 4a; one that
        names C{"4"} opens SOCKS4 only; a deny without C{versions} still
        applies to them, in its place.
        """
        auth = '[auth]\nmethods = ["userpass"]\nchecker = "memory:a:b"\n'
        permitAll = '[[rule]]\naction = "permit"\n'
        self.assertEqual(
            self.decisions(auth + permitAll),
            {"4": ("deny", None), "4a": ("deny", None), "5": ("permit", 1)},
        )
        permit4 = '[[rule]]\naction = "permit"\nversions = ["4"]\n'
        self.assertEqual(
            self.decisions(auth + permitAll + permit4),
            {"4": ("permit", 2), "4a": ("deny", None), "5": ("permit", 1)},
        )
        denyAll = '[[rule]]\naction = "deny"\n'
        self.assertEqual(
            self.decisions(auth + denyAll + permit4),
            {"4": ("deny", 1), "4a": ("deny", 1), "5": ("deny", 1)},
        )


class CurlTests(LoopbackTestCase):
    """
    curl in its SOCKS4, SOCKS4a and SOCKS5 modes through a gateway built by
    L{buildService}, as twistd builds it.
    """

    async def start(self, text: str, authChecker: tuple[object, str] | None = None) -> int:
        """
        Start the gateway C{text} describes on a free loopback port.

        @return: the port.
        """
        port = freePort()
        config = parseConfig(text, "test.toml", authChecker).withListen((f"tcp:{port}:interface=127.0.0.1",))
        service = buildService(config, reactor, resolver=StaticResolver({"localhost": ["127.0.0.1"]}))
        service.startService()
        self.addCleanup(service.stopService)
        self.service = service
        return port

    async def curl(self, port: int, webPort: int, *proxy: str) -> int:
        """
        Fetch the web page through the gateway with curl's C{proxy} options.

        @return: curl's exit status.
        """
        out, err, code = await getProcessOutputAndValue(
            "curl",
            ["--silent", "--max-time", "20", *proxy, f"http://localhost:{webPort}/"],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )
        return code

    async def refusesSOCKS4(self, port: int) -> None:
        """
        curl --socks4 and --socks4a are refused with CD 91 and the records
        say denied, and why; SOCKS5 with alice's password is served.
        """
        webPort = startWebServer(self)
        records = collectSessions(self)
        proxy = f"127.0.0.1:{port}"
        self.assertNotEqual(await self.curl(port, webPort, "--socks4", proxy), 0)
        self.assertNotEqual(await self.curl(port, webPort, "--socks4a", proxy), 0)
        self.assertEqual(await self.curl(port, webPort, "-x", f"socks5h://alice:s3cret@{proxy}"), 0)
        await self.service.sessions.whenEmpty()
        self.assertEqual(
            [(r["version"], r["outcome"], r["reply"], r["message"]) for r in records[:2]],
            [("4", "denied", 91, "SOCKS4 carries no password, and this gateway requires passwords"),
             ("4a", "denied", 91, "SOCKS4a carries no password, and this gateway requires passwords")],
        )  # fmt: skip
        self.assertEqual((records[2]["version"], records[2]["user"]), ("5", "alice"))

    async def test_methodsUserpass(self) -> None:
        """
        C{[auth] methods = ["userpass"]} and no rules.
        """
        port = await self.start('[auth]\nmethods = ["userpass"]\nchecker = "memory:alice:s3cret"\n')
        await self.refusesSOCKS4(port)

    async def test_commandLineAuth(self) -> None:
        """
        C{--auth memory:alice:s3cret} and no file.
        """
        port = await self.start("", (makeChecker("memory:alice:s3cret"), "--auth"))
        await self.refusesSOCKS4(port)

    async def test_ruleOpensSOCKS4(self) -> None:
        """
        A rule with C{versions = ["4"]} that permits lets curl --socks4
        through again, with the rule named in the record.
        """
        port = await self.start(
            '[auth]\nmethods = ["userpass"]\nchecker = "memory:alice:s3cret"\n'
            '[[rule]]\naction = "permit"\nversions = ["4"]\n'
        )
        webPort = startWebServer(self)
        records = collectSessions(self)
        self.assertEqual(await self.curl(port, webPort, "--socks4", f"127.0.0.1:{port}"), 0)
        await self.service.sessions.whenEmpty()
        self.assertEqual((records[0]["outcome"], records[0]["rule"]), ("closed", 1))
