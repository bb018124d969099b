"""
Authentication: method negotiation, RFC 1929 through twisted.cred, the
slow-down of repeated failures, passwords never logged, and real clients
with the right, a wrong and no password.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from socksgate.auth import LoginThrottle, selectMethod
from socksgate.config import AuthConfig, makeChecker
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision
from socksgate.server import SOCKSServerFactory
from socksgate.testing import startGateway

from .helpers import LoopbackTestCase, collectSessions, startWebServer

USERPASS = AuthConfig(("userpass",), makeChecker("memory:alice:s3cret"), "memory:alice:s3cret")


def userpass(user: bytes, password: bytes) -> bytes:
    """
    An RFC 1929 request, field by field.
    """
    return b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password


CONNECT = b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"


class MethodTests(SynchronousTestCase):
    """
    The server picks the first of its methods that the client offers.
    """

    def test_serverOrder(self) -> None:
        """
        The server's order wins over the client's.
        """
        self.assertEqual(selectMethod(("userpass", "none"), (0x00, 0x02)), 0x02)
        self.assertEqual(selectMethod(("none", "userpass"), (0x02, 0x00)), 0x00)

    def test_noneAcceptable(self) -> None:
        """
        No common method: 0xFF.
        """
        self.assertEqual(selectMethod(("userpass",), (0x00, 0x01)), 0xFF)


class ThrottleTests(SynchronousTestCase):
    """
    LoginThrottle doubles the wait for each failure of an address.
    """

    def test_doubles(self) -> None:
        """
        0.5, 1, 2, 4 ... seconds, up to the cap, per address.
        """
        throttle = LoginThrottle(MemoryReactorClock(), first=0.5, longest=4.0)
        self.assertEqual([throttle.failed("a") for _ in range(6)], [0.5, 1.0, 2.0, 4.0, 4.0, 4.0])
        self.assertEqual(throttle.failed("b"), 0.5)

    def test_successAndTimeForget(self) -> None:
        """
        A success, or a long enough pause, starts the count again.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, forget=60.0)
        throttle.failed("a")
        throttle.failed("a")
        throttle.succeeded("a")
        self.assertEqual(throttle.failed("a"), 0.5)
        throttle.failed("a")
        clock.advance(61)
        self.assertEqual(throttle.failed("a"), 0.5)

    def test_bounded(self) -> None:
        """
        Only C{capacity} addresses are remembered: memory stays bounded
        whatever the number of guessing addresses.
        """
        throttle = LoginThrottle(MemoryReactorClock(), capacity=10)
        for number in range(1000):
            throttle.failed(number)
        self.assertEqual(len(throttle._failures), 10)


class PasswordProtocolTests(SynchronousTestCase):
    """
    RFC 1929 in the server protocol, with a fake clock.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.decided: list[AccessRequest] = []

        class Recording:
            def decide(inner, request: AccessRequest) -> Decision:
                self.decided.append(request)
                return Decision(DENY if request.user != "alice" else PERMIT, 1)

        self.factory = SOCKSServerFactory(self.reactor, policy=Recording(), auth=USERPASS)

    def connect(self) -> tuple[object, StringTransport]:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.9", 5000))
        protocol.makeConnection(transport)
        return protocol, transport

    def test_success(self) -> None:
        """
        The right password gets status 0, and the policy sees the user,
        authenticated by userpass; a request sent along is processed.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x02\x00\x02" + userpass(b"alice", b"s3cret") + CONNECT)
        self.assertEqual(transport.value()[:4], b"\x05\x02\x01\x00")
        [request] = self.decided
        self.assertEqual((request.user, request.auth), ("alice", "userpass"))

    def test_noMethodWithoutPassword(self) -> None:
        """
        A client that offers only "no authentication" gets 0xFF.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x00")
        self.assertEqual(transport.value(), b"\x05\xff")
        self.assertTrue(transport.disconnecting)

    def test_failureIsDelayedMoreEachTime(self) -> None:
        """
        A wrong password gets status 1 only after a delay, then the
        connection closes; the next failure from the same address waits
        twice as long.
        """
        for delay in (0.5, 1.0, 2.0):
            protocol, transport = self.connect()
            protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"guess"))
            self.reactor.advance(delay - 0.01)
            self.assertEqual(transport.value(), b"\x05\x02")
            self.reactor.advance(0.02)
            self.assertEqual(transport.value(), b"\x05\x02\x01\x01")
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.decided, [])

    def test_passwordNeverLogged(self) -> None:
        """
        Neither a wrong nor a right password appears in any log event; the
        failure is logged with the user name.
        """
        for password in (b"Wr0ngPassw0rd", b"s3cret"):
            protocol, transport = self.connect()
            protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", password) + CONNECT)
            self.reactor.advance(60)
            protocol.connectionLost(None)
        text = repr(self.events)
        self.assertNotIn("Wr0ngPassw0rd", text)
        self.assertNotIn("s3cret", text)
        messages = [formatEvent(event) for event in self.events]
        self.assertIn("failed login as 'alice' from 127.0.0.9:5000; answering in 0.5 s", messages)

    def test_clientGoneDuringDelay(self) -> None:
        """
        A client that leaves while its failure is delayed leaves no timer.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"nope"))
        protocol.connectionLost(None)
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class CurlPasswordTests(LoopbackTestCase):
    """
    curl with the right, a wrong and no password, for each kind of checker.
    """

    async def curl(self, gatewayPort: int, webPort: int, credentials: str | None) -> int:
        proxy = f"socks5h://{credentials + '@' if credentials else ''}127.0.0.1:{gatewayPort}"
        out, err, code = await getProcessOutputAndValue(
            "curl", ["--silent", "--max-time", "20", "-x", proxy, f"http://localhost:{webPort}/"],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )  # fmt: skip
        return code

    async def check(self, description: str) -> None:
        webPort = startWebServer(self)
        auth = AuthConfig(("userpass",), makeChecker(description), description)
        gateway = startGateway(self, auth=auth)
        gateway.factory.throttle = LoginThrottle(reactor, first=0.01)
        records = collectSessions(self)
        self.assertEqual(await self.curl(gateway.port, webPort, "alice:s3cret"), 0)
        self.assertEqual(await self.curl(gateway.port, webPort, "alice:wrong"), 97)
        self.assertEqual(await self.curl(gateway.port, webPort, None), 97)
        self.assertEqual(await self.curl(gateway.port, webPort, "mallory:s3cret"), 97)
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"]) for r in records],
            [("closed", "userpass", "alice"), ("denied", "userpass", "alice"), ("denied", "none", None),
             ("denied", "userpass", "mallory")],
        )  # fmt: skip

    async def test_memoryChecker(self) -> None:
        """
        --auth memory:alice:s3cret.
        """
        await self.check("memory:alice:s3cret")

    async def test_fileChecker(self) -> None:
        """
        --auth file:PATH, Twisted's user:password file.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write("alice:s3cret\nbob:other\n")
        await self.check(f"file:{path}")

    async def test_htpasswdChecker(self) -> None:
        """
        --auth htpasswd:PATH, a file written by Debian's htpasswd -B.
        """
        path = os.path.abspath(self.mktemp())
        out, err, code = await getProcessOutputAndValue("htpasswd", ["-cbB", path, "alice", "s3cret"])
        self.assertEqual(code, 0, err)
        await self.check(f"htpasswd:{path}")
