"""
The status page, C{/status.json} and C{/metrics} of a real gateway, with
real sessions relayed through it over loopback; the page itself in headless
Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from socksgate.config import Config, loadConfig, parseConfig
from socksgate.service import GatewayService, buildService
from socksgate.status import StatusService, statusEndpoint
from socksgate.testing import startEchoServer

from .helpers import (
    CHROMIUM_FLAGS,
    CollectingProcess,
    LoopbackTestCase,
    RawClient,
    collectSessions,
    connectRaw,
    freePort,
    socks4Connect,
    socks5Connect,
)

LOOPBACK = "tcp:0:interface=127.0.0.1"

SETTINGS = f"""
[server]
listen = ["{LOOPBACK}"]

[log]
status = "{LOOPBACK}"
"""

#: Rule 1 denies the discard port, rule 2 permits loopback clients, rule 3
#: never matches.
RULES = """
[[rule]]
action = "deny"
ports = ["9"]
message = "no discard"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
message = "loopback"

[[rule]]
action = "permit"
clients = ["192.0.2.0/24"]
message = "never matches"
"""

LOCALHOST = b"\x7f\x00\x00\x01"


async def waitUntil(condition: Callable[[], bool]) -> None:
    """
    Let the reactor run until C{condition()} holds (the test's timeout
    bounds the wait).
    """
    while not condition():
        await deferLater(reactor, 0.01, lambda: None)


class GatewayUnderTest:
    """
    A gateway built by L{buildService} from a configuration, started, with
    its SOCKS and status ports.
    """

    def __init__(
        self, service: GatewayService, socksPort: int, status: StatusService, statusPort: int
    ) -> None:
        self.service = service
        self.socksPort = socksPort
        self.status = status
        self.statusPort = statusPort

    def url(self, path: str) -> bytes:
        """
        The URL of C{path} on the status server.
        """
        return f"http://127.0.0.1:{self.statusPort}{path}".encode()


def _listenerPort(listener: StreamServerEndpointService) -> int:
    ports: list[int] = []

    def keep(port: Any) -> Any:
        ports.append(port.getHost().port)
        return port

    listener._waitingForPort.addCallback(keep)
    assert ports, "the SOCKS listener does not listen"
    return ports[0]


async def startGateway(testCase: LoopbackTestCase, config: Config) -> GatewayUnderTest:
    """
    Build and start the gateway of C{config}; stop it, with every session
    dropped, when the test cleans up.
    """
    service = buildService(config, reactor)
    service.startService()

    async def stop() -> None:
        for protocol in list(service.sessions.open):
            protocol.abortConnection()
        await service.sessions.whenEmpty()
        await service.stopService()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    [listener] = [child for child in service if isinstance(child, StreamServerEndpointService)]
    [status] = [child for child in service if isinstance(child, StatusService)]
    statusPort = (await status.whenListening()).getHost().port
    return GatewayUnderTest(service, _listenerPort(listener), status, statusPort)


async def fetch(url: bytes, accept: bytes | None = None) -> tuple[int, Headers, bytes]:
    """
    GET C{url} with twisted.web's Agent.

    @return: the status code, the headers and the body.
    """
    headers = Headers({b"accept": [accept]}) if accept else None
    response = await Agent(reactor).request(b"GET", url, headers)
    body = await readBody(response)
    return response.code, response.headers, body


async def scrape(gateway: GatewayUnderTest) -> dict[str, Any]:
    """
    Scrape C{/metrics} and parse it as Prometheus does.

    @return: the families by name.
    """
    code, headers, body = await fetch(gateway.url("/metrics"))
    assert code == 200, code
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"), headers
    return {family.name: family for family in text_string_to_metric_families(body.decode("utf-8"))}


def samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    """
    The values of a family's samples, by their labels (sorted pairs).
    """
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}


async def openSession(port: int, destinationPort: int, payload: bytes, version: int = 5) -> RawClient:
    """
    Open a CONNECT session to C{127.0.0.1:destinationPort} (an echo
    server) through the gateway, and have C{payload} echoed through it.
    """
    client = await connectRaw(port)
    if version == 5:
        client.transport.write(socks5Connect(LOCALHOST, destinationPort, atyp=1))
        assert await client.receive(2) == b"\x05\x00"
        assert (await client.receive(10))[:2] == b"\x05\x00"
    else:
        client.transport.write(socks4Connect(destinationPort))
        assert (await client.receive(8))[:2] == b"\x00\x5a"
    client.transport.write(payload)
    assert await client.receive(len(payload)) == payload
    return client


async def refusedRequest(port: int, destinationPort: int) -> bytes:
    """
    A SOCKS5 CONNECT to C{127.0.0.1:destinationPort} that the gateway
    refuses or cannot make.

    @return: the reply code.
    """
    client = await connectRaw(port)
    client.transport.write(socks5Connect(LOCALHOST, destinationPort, atyp=1))
    assert await client.receive(2) == b"\x05\x00"
    reply = await client.receive(10)
    await client.closed
    return reply[1:2]


def clientAddress(client: RawClient) -> str:
    """
    The client as the session record names it: C{127.0.0.1:PORT}.
    """
    local = client.transport.getHost()
    return f"{local.host}:{local.port}"


class StatusEndpointTests(SynchronousTestCase):
    """
    The endpoint description of C{--status}.
    """

    def test_barePortIsLoopback(self) -> None:
        """
        A bare port number means that port on 127.0.0.1 only.
        """
        self.assertEqual(statusEndpoint("9180"), "tcp:9180:interface=127.0.0.1")

    def test_descriptionKept(self) -> None:
        """
        A full endpoint description is used as it is.
        """
        self.assertEqual(statusEndpoint("tcp:9180:interface=0.0.0.0"), "tcp:9180:interface=0.0.0.0")
        self.assertEqual(statusEndpoint("unix:/run/socksgate-status"), "unix:/run/socksgate-status")

    def test_ownRegistry(self) -> None:
        """
        Two gateways in one process each get their own Prometheus registry,
        and neither registers anything with prometheus-client's global one.
        """
        config = parseConfig(SETTINGS)
        first, second = buildService(config, reactor), buildService(config, reactor)
        [firstStatus] = [child for child in first if isinstance(child, StatusService)]
        [secondStatus] = [child for child in second if isinstance(child, StatusService)]
        self.assertIsNot(firstStatus.registry, secondStatus.registry)
        self.assertNotIn(b"socksgate_", generate_latest(REGISTRY))


class StatusServiceTests(LoopbackTestCase):
    """
    The status server's endpoint and life cycle.
    """

    async def test_barePortListensOnLoopback(self) -> None:
        """
        C{--status 0} (a bare port number) listens on 127.0.0.1.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS).withLog(status="0"))
        self.assertEqual(gateway.status.description, "tcp:0:interface=127.0.0.1")
        self.assertEqual(gateway.status.port.getHost().host, "127.0.0.1")

    def test_portTaken(self) -> None:
        """
        A status endpoint that cannot listen stops the gateway from
        starting, as a SOCKS listener that cannot listen does.
        """
        taken = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        config = Config().withListen((LOOPBACK,)).withLog(status=str(taken.getHost().port))
        [status] = [child for child in buildService(config, reactor) if isinstance(child, StatusService)]
        self.assertRaises(CannotListenError, status.startService)
        self.addCleanup(status.stopService)

    async def test_stopClosesConnections(self) -> None:
        """
        Stopping the service closes the connections of its clients, such as
        a browser's kept-alive connection between two polls.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS))
        client = await connectRaw(gateway.statusPort)
        client.transport.write(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await waitUntil(lambda: b"\r\n\r\n" in client.buffer)
        self.assertTrue(client.buffer.startswith(b"HTTP/1.1 200"))
        self.assertFalse(client.closed.called)
        await gateway.status.stopService()
        await client.closed


class MetricsTests(LoopbackTestCase):
    """
    C{/metrics} after real traffic.
    """

    async def test_counters(self) -> None:
        """
        After sessions that closed, one that is still open, a denial and a
        failure, the counters say how many sessions there were by command,
        version and outcome, how many bytes went each way (the open
        session's so far included), how many requests were denied, how
        many each rule decided (the rule that never matched at 0), and how
        many sessions are open.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS + RULES))
        echo = startEchoServer(self)
        records = collectSessions(self)
        for payload, version in ((b"first" * 100, 5), (b"second", 5), (b"fourth", 4)):
            client = await openSession(gateway.socksPort, echo.port, payload, version)
            client.transport.loseConnection()
            await client.closed
        held = await openSession(gateway.socksPort, echo.port, b"held open")
        self.assertEqual(await refusedRequest(gateway.socksPort, 9), b"\x02")
        self.assertEqual(await refusedRequest(gateway.socksPort, freePort()), b"\x05")
        await waitUntil(lambda: len(records) == 5)

        families = await scrape(gateway)

        self.assertEqual(
            samples(families["socksgate_sessions"]),
            {
                (("command", "connect"), ("outcome", "closed"), ("version", "4")): 1.0,
                (("command", "connect"), ("outcome", "closed"), ("version", "5")): 2.0,
                (("command", "connect"), ("outcome", "denied"), ("version", "5")): 1.0,
                (("command", "connect"), ("outcome", "failed"), ("version", "5")): 1.0,
            },
        )
        self.assertEqual(families["socksgate_sessions"].type, "counter")
        self.assertEqual(samples(families["socksgate_denials"]), {(): 1.0})
        relayed = len(b"first" * 100 + b"second" + b"fourth" + b"held open")
        self.assertEqual(
            samples(families["socksgate_bytes"]),
            {(("direction", "out"),): relayed, (("direction", "in"),): relayed},
        )
        # A rule's hits are the records that name it: the denial names
        # rule 1, the sessions that closed rule 2.
        named = Counter(record["rule"] for record in records)
        self.assertEqual((named[1], named[3]), (1, 0))
        self.assertGreaterEqual(named[2], 3)
        self.assertEqual(
            samples(families["socksgate_rule_hits"]),
            {
                (("message", "no discard"), ("rule", "1")): 1.0,
                (("message", "loopback"), ("rule", "2")): float(named[2]),
                (("message", "never matches"), ("rule", "3")): 0.0,
            },
        )
        sessionsOpen = samples(families["socksgate_sessions_open"])
        self.assertEqual(families["socksgate_sessions_open"].type, "gauge")
        self.assertEqual(sessionsOpen.pop((("command", "connect"), ("version", "5"))), 1.0)
        self.assertEqual(set(sessionsOpen.values()), {0.0})
        self.assertIn((("command", "udp"), ("version", "5")), sessionsOpen)
        self.assertEqual(samples(families["socksgate_connections_open"]), {(): 1.0})
        held.transport.loseConnection()
        await held.closed

    async def test_reloadShowsNewRules(self) -> None:
        """
        The rules are read again at every scrape: after a reload, a new
        rule appears at 0 and an old one keeps its count.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(SETTINGS + RULES)
        gateway = await startGateway(self, loadConfig(path))
        records = collectSessions(self)
        self.assertEqual(await refusedRequest(gateway.socksPort, 9), b"\x02")
        await waitUntil(lambda: len(records) == 1)
        before = samples((await scrape(gateway))["socksgate_rule_hits"])
        self.assertEqual(len(before), 3)
        with open(path, "w") as stream:
            stream.write(SETTINGS + RULES + '[[rule]]\naction = "deny"\nmessage = "added"\n')
        self.assertTrue(await gateway.service.reload())
        after = samples((await scrape(gateway))["socksgate_rule_hits"])
        self.assertEqual(after.pop((("message", "added"), ("rule", "4"))), 0.0)
        self.assertEqual(after, before)
        self.assertEqual(before[(("message", "no discard"), ("rule", "1"))], 1.0)

    async def test_insertedRuleKeepsCountsWithTheirRules(self) -> None:
        """
        A reload that inserts a rule at the top moves every old rule's count
        with it: "no discard", which was rule 1, is rule 2 with its hit; the
        new rule 1 starts at 0 (no count moves to the wrong rule).
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(SETTINGS + RULES)
        gateway = await startGateway(self, loadConfig(path))
        records = collectSessions(self)
        self.assertEqual(await refusedRequest(gateway.socksPort, 9), b"\x02")
        await waitUntil(lambda: len(records) == 1)
        with open(path, "w") as stream:
            stream.write(
                SETTINGS + '[[rule]]\naction = "deny"\nports = ["23"]\nmessage = "no telnet"\n' + RULES
            )
        self.assertTrue(await gateway.service.reload())
        after = samples((await scrape(gateway))["socksgate_rule_hits"])
        self.assertEqual(after[(("message", "no telnet"), ("rule", "1"))], 0.0)
        self.assertEqual(after[(("message", "no discard"), ("rule", "2"))], 1.0)

    async def test_openMetrics(self) -> None:
        """
        A scraper that asks for OpenMetrics gets it.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS))
        code, headers, body = await fetch(gateway.url("/metrics"), b"application/openmetrics-text")
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders(b"content-type")[0].startswith(b"application/openmetrics-text"))
        self.assertTrue(body.endswith(b"# EOF\n"))


class StatusJSONTests(LoopbackTestCase):
    """
    C{/status.json} and the page's own headers.
    """

    async def test_openAndFinished(self) -> None:
        """
        C{/status.json} lists an open session with its client, destination
        and bytes so far, and counts it with the finished ones by command
        and by version.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS + RULES))
        echo = startEchoServer(self)
        records = collectSessions(self)
        finished = await openSession(gateway.socksPort, echo.port, b"done")
        finished.transport.loseConnection()
        await waitUntil(lambda: len(records) == 1)
        held = await openSession(gateway.socksPort, echo.port, b"still here", version=4)

        code, headers, body = await fetch(gateway.url("/status.json"))

        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        status = json.loads(body)
        sessions = status["sessions"]
        self.assertEqual((sessions["open"], sessions["finished"], sessions["total"]), (1, 1, 2))
        self.assertEqual(sessions["byCommand"]["connect"], {"open": 1, "total": 2})
        self.assertEqual(sessions["byVersion"]["4"], {"open": 1, "total": 1})
        self.assertEqual(sessions["byVersion"]["5"], {"open": 0, "total": 1})
        self.assertEqual(sessions["byOutcome"], {"closed": 1})
        self.assertEqual(status["bytes"], {"out": 14, "in": 14})
        self.assertEqual(status["denials"], 0)
        self.assertEqual([rule["hits"] for rule in status["rules"]], [0, 1, 0])
        [session] = status["openSessions"]
        self.assertEqual(session["client"], clientAddress(held))
        self.assertEqual(session["destination"], f"127.0.0.1:{echo.port}")
        self.assertEqual((session["command"], session["version"]), ("connect", "4"))
        self.assertEqual((session["bytesOut"], session["bytesIn"]), (10, 10))
        self.assertGreaterEqual(session["age"], 0)
        self.assertEqual(status["listen"], [LOOPBACK])
        held.transport.loseConnection()
        await held.closed

    async def test_pageLoadsNothingElse(self) -> None:
        """
        The page is HTML whose Content-Security-Policy lets it load nothing
        but its own inline style and script, and fetch only from its own
        server; it names no other server.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS))
        code, headers, body = await fetch(gateway.url("/"))
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/html; charset=utf-8"])
        [policy] = headers.getRawHeaders(b"content-security-policy")
        self.assertIn(b"default-src 'none'", policy)
        self.assertIn(b"connect-src 'self'", policy)
        self.assertNotIn(b"unsafe-inline", policy)
        self.assertNotRegex(body, rb"(?i)(https?:)?//[a-z0-9]")
        self.assertIn(b'fetch("status.json"', body)

    async def test_unknownPath(self) -> None:
        """
        Anything but C{/}, C{/status.json} and C{/metrics} is not found.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS))
        code, headers, body = await fetch(gateway.url("/etc/passwd"))
        self.assertEqual(code, 404)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserTests(LoopbackTestCase):
    """
    The status page in headless Chromium.
    """

    timeout = 120

    def setUp(self) -> None:
        if CHROMIUM is None and not os.environ.get("CI"):
            self.skipTest("Chromium is not installed (Debian: apt-get install chromium)")

    async def dumpDOM(self, url: bytes) -> str:
        """
        Load C{url} in headless Chromium, give its scripts three seconds of
        virtual time, and return the DOM it ends with.
        """
        self.assertIsNotNone(CHROMIUM, "Chromium is not installed (Debian: apt-get install chromium)")
        profile = os.path.abspath(self.mktemp())
        os.makedirs(profile)
        arguments = [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            url.decode(),
        ]
        output = CollectingProcess()
        environment = dict(os.environ, HOME=profile)
        process = reactor.spawnProcess(output, CHROMIUM, arguments, env=environment)
        self.addCleanup(lambda: output.ended.called or process.signalProcess("KILL"))
        exitCode, _ = await output.ended
        self.assertEqual(exitCode, 0, output.err.decode(errors="replace")[-2000:])
        return output.out.decode("utf-8")

    async def test_pageShowsOpenSession(self) -> None:
        """
        While a relayed session is open, the page's script fills the table
        of open sessions from C{status.json}: the DOM shows the session's
        client and destination, and the counters.
        """
        gateway = await startGateway(self, parseConfig(SETTINGS + RULES))
        echo = startEchoServer(self)
        held = await openSession(gateway.socksPort, echo.port, b"browse")

        dom = await self.dumpDOM(gateway.url("/"))

        rows = re.findall(r"<tr>(.*?)</tr>", dom.split('id="sessions"')[1].split("</table>")[0], re.S)
        cells = [re.findall(r'<td class="(client|destination)">([^<]*)</td>', row) for row in rows]
        self.assertIn([("client", clientAddress(held)), ("destination", f"127.0.0.1:{echo.port}")], cells)
        self.assertRegex(dom, r'<b id="open">1</b>')
        self.assertRegex(dom, r'id="state" class="">live, updated')
        held.transport.loseConnection()
        await held.closed
