"""
Authentication: method negotiation, RFC 1929 through twisted.cred, the
slow-down of repeated failures, passwords never logged, and real clients
with the right, a wrong and no password.
"""

from __future__ import annotations

import os
from ipaddress import ip_address

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from socksgate.auth import LoginRefused, LoginThrottle, selectMethod
from socksgate.config import AuthConfig, ServerConfig, makeChecker
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


def wrong() -> Deferred[object]:
    """
    A check that fails at once, as a wrong password does.
    """
    return fail(UnauthorizedLogin())


def right() -> Deferred[object]:
    """
    A check that succeeds at once.
    """
    return succeed("alice")


class ThrottleTests(SynchronousTestCase):
    """
    LoginThrottle: every login of an address waits that address's delay,
    a few at a time.
    """

    def answerDelay(self, clock: MemoryReactorClock, throttle: LoginThrottle, check: object) -> float:
        """
        How long one login with C{check} from C{"a"} waits for its answer
        (ticking the clock in steps of 0.125 seconds, at most 1000).
        """
        answers: list[object] = []
        throttle.login("a", check).addBoth(answers.append)  # type: ignore[arg-type]
        started = clock.seconds()
        for _ in range(1000):
            if answers:
                break
            clock.advance(0.125)
        self.assertEqual(len(answers), 1)
        return clock.seconds() - started

    def test_stop(self) -> None:
        """
        Stopping the throttle cancels every delayed answer and refuses the
        logins still waiting, so a stopped gateway leaves no timer behind.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, first=0.5, longest=4.0, concurrent=1)
        answers: list[object] = []
        for _ in range(3):
            throttle.login("a", wrong).addBoth(answers.append)
            clock.advance(10)
        throttle.login("a", wrong).addBoth(answers.append)
        throttle.login("a", wrong).addBoth(answers.append)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        throttle.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(answers), 4)
        self.assertIsInstance(answers[-1].value, LoginRefused)  # type: ignore[attr-defined]
        self.assertEqual(throttle.delayFor("a"), 0.0)

    def test_ipv6ByPrefix(self) -> None:
        """
        IPv6 clients are counted by their /64: failures from one address
        delay logins from another address of the same /64, not from
        another /64; IPv4 addresses count one by one.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, first=0.5, longest=4.0)
        answers: list[object] = []
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
            throttle.login(ip_address(host), wrong).addBoth(answers.append)
            clock.advance(10)
        self.assertEqual(throttle.delayFor(ip_address("2001:db8:1:2:abcd::9")), 2.0)
        self.assertEqual(throttle.delayFor(ip_address("2001:db8:1:3::1")), 0.0)
        throttle.login(ip_address("192.0.2.1"), wrong).addBoth(answers.append)
        clock.advance(10)
        self.assertEqual(len(answers), 4)
        self.assertEqual(throttle.delayFor(ip_address("192.0.2.1")), 0.5)
        self.assertEqual(throttle.delayFor(ip_address("192.0.2.2")), 0.0)

    def test_doubles(self) -> None:
        """
        No delay until a failure; then 0.5, 1, 2, 4 ... seconds, up to the
        cap, per address.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, first=0.5, longest=4.0)
        delays = [self.answerDelay(clock, throttle, wrong) for _ in range(6)]
        self.assertEqual(delays, [0.0, 0.5, 1.0, 2.0, 4.0, 4.0])
        self.assertEqual(throttle.delayFor("b"), 0.0)

    def test_successWaitsAndDoesNotReset(self) -> None:
        """
        A success waits the same delay a failure would, and leaves the
        failures counted: an attacker who also owns an account cannot
        interleave its logins to keep the delay short.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, first=0.5, longest=30.0)
        for _ in range(3):
            self.answerDelay(clock, throttle, wrong)
        self.assertEqual(self.answerDelay(clock, throttle, right), 2.0)
        self.assertEqual(self.answerDelay(clock, throttle, right), 2.0)
        self.assertEqual(self.answerDelay(clock, throttle, wrong), 2.0)
        self.assertEqual(self.answerDelay(clock, throttle, right), 4.0)

    def test_timeForgets(self) -> None:
        """
        C{forget} seconds without a failure start the count again.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, forget=60.0)
        self.answerDelay(clock, throttle, wrong)
        self.answerDelay(clock, throttle, wrong)
        clock.advance(61)
        self.assertEqual(self.answerDelay(clock, throttle, right), 0.0)

    def test_concurrentThenQueueThenRefused(self) -> None:
        """
        Only C{concurrent} logins of an address are checked at once, up to
        C{queue} more wait, and one more is refused without being checked;
        another address is not affected.
        """
        throttle = LoginThrottle(MemoryReactorClock(), concurrent=2, queue=2)
        checks: list[Deferred[object]] = []

        def pending() -> Deferred[object]:
            checks.append(Deferred())
            return checks[-1]

        answers = [throttle.login("a", pending) for _ in range(4)]
        self.assertEqual(len(checks), 2)
        refused = self.failureResultOf(throttle.login("a", pending), LoginRefused)
        self.assertEqual(str(refused.value), "2 logins from this address are under way and 2 wait")
        self.assertEqual(len(checks), 2)
        throttle.login("b", pending)
        self.assertEqual(len(checks), 3)
        checks[0].callback("alice")
        self.assertEqual(self.successResultOf(answers[0]), "alice")
        self.assertEqual(len(checks), 4)
        self.assertNoResult(answers[3])

    def test_abandonedLoginKeepsItsPlace(self) -> None:
        """
        A login abandoned while it waits for a place is never checked; one
        abandoned after its check keeps its place until its answer was due,
        so leaving early buys an attacker nothing.
        """
        clock = MemoryReactorClock()
        throttle = LoginThrottle(clock, concurrent=1, first=1.0)
        self.answerDelay(clock, throttle, wrong)
        checked: list[str] = []

        def counting() -> Deferred[object]:
            checked.append("x")
            return wrong()

        first = throttle.login("a", counting)
        second = throttle.login("a", counting)
        third = throttle.login("a", counting)
        second.cancel()
        self.failureResultOf(second, CancelledError)
        first.cancel()
        self.failureResultOf(first, CancelledError)
        self.assertEqual(checked, ["x"])
        clock.advance(0.99)
        self.assertEqual(checked, ["x"])
        clock.advance(0.01)
        self.assertEqual(checked, ["x", "x"])
        self.assertNoResult(third)
        clock.advance(2)
        self.failureResultOf(third, UnauthorizedLogin)

    def test_bounded(self) -> None:
        """
        Only C{capacity} idle addresses are remembered: memory stays bounded
        whatever the number of guessing addresses.
        """
        throttle = LoginThrottle(MemoryReactorClock(), capacity=10)
        for number in range(1000):
            throttle.login(number, wrong).addErrback(lambda failure: None)
        self.assertEqual(len(throttle._addresses), 10)


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
        A wrong password gets status 1, at once the first time, then the
        connection closes; each further failure from the same address waits
        twice as long, from 0.5 seconds.
        """
        for delay in (0.0, 0.5, 1.0, 2.0):
            protocol, transport = self.connect()
            protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"guess"))
            if delay:
                self.reactor.advance(delay - 0.01)
                self.assertEqual(transport.value(), b"\x05\x02")
                self.reactor.advance(0.02)
            self.assertEqual(transport.value(), b"\x05\x02\x01\x01")
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.decided, [])

    def test_successDelayedLikeFailure(self) -> None:
        """
        After failures from an address, the right password's answer waits
        exactly as long as a wrong one's would: the timing tells nothing,
        and a client cannot drop the guesses that are not answered at once.
        """
        for delay in (0.0, 0.5, 1.0):
            protocol, transport = self.connect()
            protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"guess"))
            self.reactor.advance(delay)
            self.assertTrue(transport.disconnecting)
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"s3cret"))
        self.reactor.advance(1.99)
        self.assertEqual(transport.value(), b"\x05\x02")
        self.reactor.advance(0.02)
        self.assertEqual(transport.value(), b"\x05\x02\x01\x00")
        self.assertFalse(transport.disconnecting)

    def test_thousandGuessesTakeHours(self) -> None:
        """
        However many connections guess at once from one address (here 36,
        more than the throttle lets in or queues, each replaced as soon as
        it closes), fewer than 1,000 passwords are checked in two hours of
        clock time, and the right password, sent among them, is answered no
        sooner than the guesses.
        """
        checked: list[object] = []

        class Counting(InMemoryUsernamePasswordDatabaseDontUse):
            def requestAvatarId(inner, credentials: object) -> Deferred[object]:
                checked.append(credentials)
                return super().requestAvatarId(credentials)

        auth = AuthConfig(("userpass",), Counting(alice="s3cret"), "counting")
        self.factory.configure(ServerConfig(handshakeTimeout=120), self.factory.policy, auth)
        open: list[tuple[object, StringTransport]] = []
        rightAnswered: list[float] = []
        for second in range(0, 2 * 3600, 5):
            for protocol, transport in [each for each in open if each[1].disconnecting]:
                open.remove((protocol, transport))
                protocol.connectionLost(None)
            while len(open) < 36:
                protocol, transport = self.connect()
                protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"guess%d" % len(checked)))
                open.append((protocol, transport))
            if second == 3600:
                late, lateTransport = self.connect()
                late.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"s3cret"))
            if second > 3600 and not rightAnswered and lateTransport.value()[2:] == b"\x01\x00":
                rightAnswered.append(second - 3600)
            self.reactor.advance(5)
        self.assertLess(len(checked), 1000)
        self.assertGreater(len(checked), 100)
        # Refused unchecked (the queue was full), or answered after the
        # longest delay, as every guess around it.
        if rightAnswered:
            self.assertGreaterEqual(rightAnswered[0], 30)
        else:
            self.assertEqual(lateTransport.value(), b"\x05\x02\x01\x01")

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
        self.assertIn("failed login as 'alice' from 127.0.0.9:5000; answered after 0 s", messages)

    def test_clientGoneDuringDelay(self) -> None:
        """
        A client that leaves while its answer is delayed gets nothing
        written, and no timer is left once the answer was due.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"nope"))
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x02" + userpass(b"alice", b"nope"))
        protocol.connectionLost(None)
        self.reactor.advance(1)
        self.assertEqual(transport.value(), b"\x05\x02")
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

    async def test_rightAfterWrong(self) -> None:
        """
        A correct login after failures from the same address still works,
        once its delay has passed, over real sockets.
        """
        webPort = startWebServer(self)
        gateway = startGateway(self, auth=USERPASS)
        gateway.factory.throttle = LoginThrottle(reactor, first=0.01)
        for _ in range(3):
            self.assertEqual(await self.curl(gateway.port, webPort, "alice:wrong"), 97)
        self.assertEqual(await self.curl(gateway.port, webPort, "alice:s3cret"), 0)
        self.assertEqual(gateway.factory.throttle.delayFor(ip_address("127.0.0.1")), 0.04)

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
