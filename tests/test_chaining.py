"""
Tests of C{[[upstream]]} chaining over real loopback sockets: a gateway
routing sessions C{via} another socksgate, with failover; Dante and
microsocks as upstreams; curl through a chain of two gateways; an upstream
over TLS with a good and a bad certificate.
"""

from __future__ import annotations

import hashlib
import shutil
from typing import Any

from twisted.internet import reactor
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from socksgate.config import parseConfig
from socksgate.policy import DENY, Decision
from socksgate.resolver import StaticResolver
from socksgate.server import SOCKSServerFactory
from socksgate.testing import RunningGateway, startEchoServer, startGateway

from .client_helpers import startDante, startMicrosocks
from .helpers import (
    LoopbackTestCase,
    collectSessions,
    connectRaw,
    freePort,
    socks4Connect,
    socks5Connect,
)
from .tls_helpers import TestAuthority

#: A gateway routing every loopback client via the upstream "b".
CHAINED = """\
[[upstream]]
name = "b"
servers = {servers}
{extra}

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
via = "b"
"""


def chainedGateway(testCase: Any, servers: list[str], extra: str = "") -> RunningGateway:
    """
    Start gateway A, routing every session via an upstream of C{servers};
    it resolves C{echo.test} and C{localhost} to 127.0.0.1.
    """
    text = CHAINED.format(servers="[" + ", ".join(f'"{url}"' for url in servers) + "]", extra=extra)
    resolver = StaticResolver({"echo.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    return startGateway(testCase, config=parseConfig(text), resolver=resolver)


async def echoVia(gateway: RunningGateway, port: int, name: bytes = b"echo.test") -> bytes:
    """
    CONNECT through C{gateway} to C{name}:C{port}, send C{ping} and return
    the reply (after the method selection) and what came back.
    """
    client = await connectRaw(gateway.port)
    client.transport.write(socks5Connect(name, port))
    answer = (await client.receive(2 + 10))[2:]
    if answer[1:2] == b"\x00":
        client.transport.write(b"ping")
        answer += await client.receive(4)
    client.transport.loseConnection()
    await client.closed
    return answer


async def until(predicate: Any, what: str) -> None:
    """
    Wait (at most ten seconds, in tenths) until C{predicate()} holds.
    """
    for _ in range(100):
        if predicate():
            return
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"never: {what}")


class SocksgateUpstreamTests(LoopbackTestCase):
    """
    Gateway A routes its sessions via socksgate gateways B and C.
    """

    async def test_connectByName(self) -> None:
        """
        A CONNECT by name goes through a C{socks5h} upstream, which gets
        the name unresolved; both records say so, A's naming the upstream
        and server.
        """
        echo = startEchoServer(self)
        resolverB = StaticResolver({"echo.test": ["127.0.0.1"]})
        b = startGateway(self, resolver=resolverB)
        a = chainedGateway(self, [b.url("socks5h")])
        records = collectSessions(self)
        answer = await echoVia(a, echo.port)
        self.assertEqual(answer[:2], b"\x05\x00")
        self.assertEqual(answer[-4:], b"ping")
        await until(lambda: len(records) == 2, "both records")
        recordB = next(record for record in records if record["upstream"] is None)
        recordA = next(record for record in records if record["upstream"] is not None)
        self.assertEqual(resolverB.asked, ["echo.test"])
        self.assertEqual(recordB["destination"], f"echo.test:{echo.port}")
        self.assertEqual(
            (recordA["outcome"], recordA["upstream"], recordA["server"], recordA["remote"]),
            ("closed", "b", b.url("socks5h"), f"echo.test:{echo.port}"),
        )

    async def test_connectByAddress(self) -> None:
        """
        Through a C{socks5} upstream, the address gateway A resolved is
        sent instead of the name.
        """
        echo = startEchoServer(self)
        resolverB = StaticResolver()
        b = startGateway(self, resolver=resolverB)
        a = chainedGateway(self, [b.url("socks5")])
        answer = await echoVia(a, echo.port)
        self.assertEqual(answer[-4:], b"ping")
        self.assertEqual(resolverB.asked, [])

    async def test_socks4Upstream(self) -> None:
        """
        C{socks4a} and C{socks4} upstreams carry the session too.
        """
        echo = startEchoServer(self)
        b = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        for scheme in ("socks4a", "socks4"):
            a = chainedGateway(self, [b.url(scheme)])
            self.assertEqual((await echoVia(a, echo.port))[-4:], b"ping", scheme)

    async def test_refusalPassedOn(self) -> None:
        """
        The upstream's refusal (0x02 from its policy) is passed on to the
        client, and the server is not marked down.
        """
        echo = startEchoServer(self)
        b = startGateway(self, policy=_DenyAll())
        a = chainedGateway(self, [b.url("socks5")])
        records = collectSessions(self)
        answer = await echoVia(a, echo.port)
        self.assertEqual(answer[:2], b"\x05\x02")
        (state,) = [state for _, state in a.factory.upstreams.states()]
        self.assertTrue(state.isUp(reactor.seconds()))
        recordA = next(record for record in records if record["upstream"] == "b")
        self.assertEqual((recordA["reply"], recordA["server"]), (2, b.url("socks5")))

    async def test_failover(self) -> None:
        """
        With the first server down, the second carries the session and the
        first is marked down and not tried; once its down period is over
        and it is back, it carries sessions again.
        """
        echo = startEchoServer(self)
        port = freePort()
        first = f"socks5://127.0.0.1:{port}"
        c = startGateway(self)
        a = chainedGateway(self, [first, c.url("socks5")], "down-period = 0.5")
        records = collectSessions(self)
        self.assertEqual((await echoVia(a, echo.port))[-4:], b"ping")
        states = dict((state.server.url, state) for _, state in a.factory.upstreams.states())
        self.assertFalse(states[first].isUp(reactor.seconds()))
        self.assertEqual((states[first].failures, states[c.url("socks5")].sessions), (1, 1))
        self.assertEqual((await echoVia(a, echo.port))[-4:], b"ping")
        self.assertEqual(states[first].failures, 1)
        # The first server comes back on its port.
        listening = reactor.listenTCP(port, SOCKSServerFactory(reactor), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        await until(lambda: states[first].isUp(reactor.seconds()), "the down period ends")
        self.assertEqual((await echoVia(a, echo.port))[-4:], b"ping")
        self.assertEqual(states[first].sessions, 1)
        await until(lambda: len([r for r in records if r["upstream"]]) == 3, "three records")
        self.assertEqual(
            [r["server"] for r in records if r["upstream"]], [c.url("socks5"), c.url("socks5"), first]
        )

    async def test_allDown(self) -> None:
        """
        When every server is down the client gets 0x01 (SOCKS4: CD 91),
        and the record says so.
        """
        echo = startEchoServer(self)
        dead = [f"socks5://127.0.0.1:{freePort()}", f"socks5h://127.0.0.1:{freePort()}"]
        a = chainedGateway(self, dead)
        records = collectSessions(self)
        answer = await echoVia(a, echo.port)
        self.assertEqual(answer[:2], b"\x05\x01")
        client = await connectRaw(a.port)
        client.transport.write(socks4Connect(echo.port))
        self.assertEqual((await client.receive(8))[:2], b"\x00\x5b")
        await client.closed
        self.assertEqual([record["reply"] for record in records], [1, 91])
        for record in records:
            self.assertEqual((record["outcome"], record["upstream"], record["server"]), ("failed", "b", None))
            self.assertIn("upstream b: every server is down", record["message"])
        self.assertIn("Connection refused", records[0]["message"])


class _DenyAll:
    """
    A policy that denies everything.
    """

    def decide(self, request: Any) -> Decision:
        """
        Deny.
        """
        return Decision(DENY, message="no")


class ProgramUpstreamTests(LoopbackTestCase):
    """
    Dante and microsocks as upstreams.
    """

    async def test_dante(self) -> None:
        """
        Dante carries CONNECTs by address and by name; its refusal (a
        blocked port) is passed on as 0x02.
        """
        echo = startEchoServer(self)
        blocked = startEchoServer(self)
        dante = await startDante(self, blocked.port)
        for scheme in ("socks5", "socks5h"):
            a = chainedGateway(self, [f"{scheme}://127.0.0.1:{dante._port}"])
            self.assertEqual((await echoVia(a, echo.port, b"localhost"))[-4:], b"ping", scheme)
            self.assertEqual((await echoVia(a, blocked.port, b"127.0.0.1"))[:2], b"\x05\x02", scheme)

    async def test_microsocksWithPassword(self) -> None:
        """
        microsocks asking for a username and password carries the session
        with the upstream's credentials; with a wrong password the client
        gets 0x01 and the server is not marked down.
        """
        echo = startEchoServer(self)
        microsocks = await startMicrosocks(self, "carol", "pw")
        url = f"socks5h://127.0.0.1:{microsocks._port}"
        a = chainedGateway(self, [url], 'username = "carol"\npassword = "pw"')
        self.assertEqual((await echoVia(a, echo.port, b"localhost"))[-4:], b"ping")
        self.assertEqual((await echoVia(a, echo.port, b"127.0.0.1"))[-4:], b"ping")
        wrong = chainedGateway(self, [url], 'username = "carol"\npassword = "wrong"')
        self.assertEqual((await echoVia(wrong, echo.port))[:2], b"\x05\x01")
        (state,) = [state for _, state in wrong.factory.upstreams.states()]
        self.assertTrue(state.isUp(reactor.seconds()))


class CurlChainTests(LoopbackTestCase):
    """
    curl through a chain of two gateways.
    """

    async def test_curl(self) -> None:
        """
        C{curl --socks5-hostname} to gateway A, routed via gateway B,
        fetches a page whose digest matches.
        """
        if shutil.which("curl") is None:
            raise SkipTest("curl is not installed (Debian: curl)")
        content = bytes(range(256)) * 4096
        root = Resource()
        root.putChild(b"", Data(content, "application/octet-stream"))
        site = Site(root)
        site.noisy = False
        listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        b = startGateway(self, resolver=StaticResolver({"localhost": ["127.0.0.1"]}))
        a = chainedGateway(self, [b.url("socks5h")])
        out, err, code = await getProcessOutputAndValue(
            shutil.which("curl"),
            ["-sS", "--noproxy", "", "--socks5-hostname", f"127.0.0.1:{a.port}", f"http://localhost:{port}/"],
            env={},
        )
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out), len(content), out[:300])
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(content).hexdigest())


class TLSUpstreamTests(LoopbackTestCase):
    """
    An upstream reached over TLS (C{tls = true}), its certificate checked
    by service_identity against a C{ca-file}.
    """

    def tlsGateway(self, authority: TestAuthority, hostname: str) -> int:
        """
        Start gateway B behind a TLS listener with a certificate for
        C{hostname} signed by C{authority}.

        @return: its port.
        """
        b = SOCKSServerFactory(reactor, policy=None, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))
        options = PrivateCertificate.loadPEM(authority.issue(hostname)).options()
        listening = reactor.listenSSL(0, b, options, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        return listening.getHost().port  # type: ignore[no-any-return]

    def chained(self, authority: TestAuthority, port: int) -> RunningGateway:
        """
        Gateway A, via B over TLS, trusting C{authority}.
        """
        path = self.mktemp()
        with open(path, "wb") as stream:
            stream.write(authority.certificatePEM)
        return chainedGateway(self, [f"socks5h://localhost:{port}"], f'tls = true\nca-file = "{path}"')

    async def test_goodCertificate(self) -> None:
        """
        A certificate for the server's name from the trusted authority:
        the session goes through.
        """
        echo = startEchoServer(self)
        authority = TestAuthority()
        a = self.chained(authority, self.tlsGateway(authority, "localhost"))
        self.assertEqual((await echoVia(a, echo.port))[-4:], b"ping")

    async def refused(self, authority: TestAuthority, trusted: TestAuthority, hostname: str) -> str:
        echo = startEchoServer(self)
        messages: list[str] = []

        def observe(event: dict) -> None:
            if event.get("log_namespace") == "socksgate.upstream":
                messages.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        records = collectSessions(self)
        a = self.chained(trusted, self.tlsGateway(authority, hostname))
        self.assertEqual((await echoVia(a, echo.port))[:2], b"\x05\x01")
        (message,) = messages
        self.assertIn("TLS refused", message)
        self.assertIn("TLS refused", records[0]["message"])
        return message

    async def test_wrongName(self) -> None:
        """
        A certificate for another name is refused: 0x01 to the client, and
        a log line saying TLS was refused.
        """
        authority = TestAuthority()
        await self.refused(authority, authority, "other.example")

    async def test_untrustedAuthority(self) -> None:
        """
        A certificate from an authority that is not trusted is refused:
        0x01 to the client, and a log line saying TLS was refused.
        """
        message = await self.refused(TestAuthority("another CA"), TestAuthority(), "localhost")
        self.assertIn("certificate verify failed", message)
