"""
The outbound step: routes, and the staggered connection attempts over the
permitted addresses.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from twisted.internet import defer, error, reactor
from twisted.internet.address import IPv4Address as TwistedIPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from socksgate.connecting import ATTEMPT_DELAY, DirectRoute, connectToAddresses, routeFor
from socksgate.interfaces import IRoute
from socksgate.outbound import RequestRefused, openConnection, refusalForFailure
from socksgate.policy import PERMIT, AccessRequest, Decision
from socksgate.relay import DestinationProtocol
from socksgate.testing import StaticResolver, startEchoServer, startGateway
from socksgate.wire import ReplyCode

from .helpers import LoopbackTestCase, collectSessions, connectRaw, freePort, socks5Connect

REQUEST = AccessRequest(ip_address("127.0.0.1"), 5000, "tcp:1080", "5", "connect", None, None, 80)


def addresses(*texts: str) -> list[Any]:
    """
    The addresses C{texts} spell.
    """
    return [ip_address(text) for text in texts]


def succeed(clock: MemoryReactorClock, index: int) -> tuple[DestinationProtocol | None, StringTransport]:
    """
    Make attempt C{index} (in the order C{connectTCP} was called) connect,
    as a real connector does: build the protocol, then connect it.
    """
    host, port, factory, _, _ = clock.tcpClients[index]
    protocol = factory.buildProtocol(TwistedIPv4Address("TCP", host, port))
    transport = StringTransport()
    if protocol is not None:
        protocol.makeConnection(transport)
    return protocol, transport


def fail(clock: MemoryReactorClock, index: int, exception: Exception) -> None:
    """
    Make attempt C{index} fail with C{exception}, as a real connector does.
    """
    factory = clock.tcpClients[index][2]
    factory.clientConnectionFailed(clock.connectors[index], Failure(exception))


class StaggeredAttemptsTests(SynchronousTestCase):
    """
    L{connectToAddresses} starts an attempt every 0.3 s in the resolver's
    order until one connects, within one timeout over all of them.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()

    def hosts(self) -> list[str]:
        """
        The hosts attempted so far, in order.
        """
        return [client[0] for client in self.clock.tcpClients]

    def test_oneAddress(self) -> None:
        """
        One address is one C{connectTCP} with the whole timeout and no
        timer of ours: the connector's own timeout is the deadline.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1"), 80, 30.0)
        self.assertEqual(
            [(c[0], c[1], c[3], c[4]) for c in self.clock.tcpClients], [("127.0.0.1", 80, 30.0, None)]
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
        protocol, transport = succeed(self.clock, 0)
        self.assertIs(self.successResultOf(connected), protocol)
        self.assertIsInstance(protocol, DestinationProtocol)
        self.assertEqual(transport.producerState, "paused")

    def test_staggeredInOrder(self) -> None:
        """
        The first attempt starts at once, each next one 0.3 s later, in the
        order given, each bounded by what is left of the timeout.
        """
        connectToAddresses(self.clock, addresses("::1", "127.0.0.1", "127.0.0.2"), 80, 10.0)
        self.assertEqual(self.hosts(), ["::1"])
        self.clock.advance(ATTEMPT_DELAY / 2)
        self.assertEqual(self.hosts(), ["::1"])
        self.clock.advance(ATTEMPT_DELAY / 2)
        self.assertEqual(self.hosts(), ["::1", "127.0.0.1"])
        self.clock.advance(ATTEMPT_DELAY)
        self.assertEqual(self.hosts(), ["::1", "127.0.0.1", "127.0.0.2"])
        self.clock.advance(ATTEMPT_DELAY * 3)
        self.assertEqual(len(self.clock.tcpClients), 3)
        for given, expected in zip([c[3] for c in self.clock.tcpClients], [10.0, 9.7, 9.4], strict=True):
            self.assertAlmostEqual(given, expected)

    def test_firstToConnectWins(self) -> None:
        """
        The first attempt to connect is the result; every other one under
        way is stopped, no further one starts, and one that connects anyway
        gets no protocol (its connection is closed).
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2", "127.0.0.3"), 80, 10.0)
        self.clock.advance(ATTEMPT_DELAY)
        self.clock.advance(ATTEMPT_DELAY)
        protocol, _ = succeed(self.clock, 1)
        self.assertIs(self.successResultOf(connected), protocol)
        self.assertEqual(
            [connector.stoppedConnecting for connector in self.clock.connectors], [True, False, True]
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIsNone(succeed(self.clock, 2)[0])
        fail(self.clock, 0, error.ConnectionRefusedError())

    def test_winnerBeforeEveryStart(self) -> None:
        """
        An attempt that connects before the others have started leaves no
        attempt to start later.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2"), 80, 10.0)
        succeed(self.clock, 0)
        self.successResultOf(connected)
        self.clock.advance(10.0)
        self.assertEqual(self.hosts(), ["127.0.0.1"])

    def test_failureWaitsForTheOthers(self) -> None:
        """
        A failed attempt is no result while others are left: the next one
        starts on time.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2"), 80, 10.0)
        fail(self.clock, 0, error.ConnectionRefusedError())
        self.assertNoResult(connected)
        self.clock.advance(ATTEMPT_DELAY)
        self.assertEqual(self.hosts(), ["127.0.0.1", "127.0.0.2"])
        protocol, _ = succeed(self.clock, 1)
        self.assertIs(self.successResultOf(connected), protocol)

    def test_allFailLastDecides(self) -> None:
        """
        When every attempt failed, the last failure is the result, at once.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2", "127.0.0.3"), 80, 10.0)
        self.clock.advance(ATTEMPT_DELAY)
        self.clock.advance(ATTEMPT_DELAY)
        fail(self.clock, 2, error.ConnectionRefusedError())
        fail(self.clock, 0, error.ConnectionRefusedError())
        self.assertNoResult(connected)
        fail(self.clock, 1, error.NoRouteError())
        self.failureResultOf(connected, error.NoRouteError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeoutOverAll(self) -> None:
        """
        The timeout bounds all the attempts together: at the deadline every
        attempt under way is stopped, none is left to start, and the result
        is a time-out (0x06).
        """
        many = addresses(*(f"127.0.0.{n}" for n in range(1, 6)))
        connected = connectToAddresses(self.clock, many, 80, 0.5)
        self.clock.advance(ATTEMPT_DELAY)
        self.assertEqual(len(self.clock.tcpClients), 2)
        self.assertAlmostEqual(self.clock.tcpClients[1][3], 0.5 - ATTEMPT_DELAY)
        self.clock.advance(0.5 - ATTEMPT_DELAY)
        failure = self.failureResultOf(connected, defer.TimeoutError)
        self.assertEqual([connector.stoppedConnecting for connector in self.clock.connectors], [True, True])
        self.clock.advance(10.0)
        self.assertEqual(len(self.clock.tcpClients), 2)
        refusal = refusalForFailure(failure)
        self.assertEqual((refusal.reply, refusal.outcome), (ReplyCode.TTL_EXPIRED, "timeout"))

    def test_timeoutAfterEveryStart(self) -> None:
        """
        Once every attempt has started, the deadline is still kept.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2"), 80, 2.0)
        self.clock.advance(ATTEMPT_DELAY)
        fail(self.clock, 0, error.ConnectionRefusedError())
        self.clock.advance(2.0 - ATTEMPT_DELAY - 0.01)
        self.assertNoResult(connected)
        self.clock.advance(0.01)
        self.failureResultOf(connected, defer.TimeoutError)
        self.assertEqual([connector.stoppedConnecting for connector in self.clock.connectors], [False, True])

    def test_cancelStopsEveryAttempt(self) -> None:
        """
        Cancelling stops every attempt under way and starts no more; what
        the attempts report afterwards is ignored.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1", "127.0.0.2", "127.0.0.3"), 80, 10.0)
        self.clock.advance(ATTEMPT_DELAY)
        connected.cancel()
        self.failureResultOf(connected, CancelledError)
        self.assertEqual([connector.stoppedConnecting for connector in self.clock.connectors], [True, True])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        fail(self.clock, 0, error.ConnectionRefusedError())
        self.assertIsNone(succeed(self.clock, 1)[0])

    def test_cancelOneAddress(self) -> None:
        """
        Cancelling the one attempt of one address stops it.
        """
        connected = connectToAddresses(self.clock, addresses("127.0.0.1"), 80, 10.0)
        connected.cancel()
        self.failureResultOf(connected, CancelledError)
        self.assertTrue(self.clock.connectors[0].stoppedConnecting)

    def test_bindHostKeepsItsFamily(self) -> None:
        """
        With a source address, only addresses of its family are tried, from
        it; none of its family is 0x03 and nothing is attempted.
        """
        connectToAddresses(self.clock, addresses("::1", "127.0.0.1"), 80, 10.0, ip_address("127.0.0.1"))
        self.clock.advance(ATTEMPT_DELAY * 3)
        self.assertEqual([(c[0], c[4]) for c in self.clock.tcpClients], [("127.0.0.1", ("127.0.0.1", 0))])
        other = MemoryReactorClock()
        refused = connectToAddresses(other, addresses("127.0.0.1"), 80, 10.0, ip_address("::1"))
        failure = self.failureResultOf(refused, RequestRefused)
        self.assertEqual(failure.value.reply, ReplyCode.NETWORK_UNREACHABLE)
        self.assertEqual(other.tcpClients, [])


def permitAll(request: AccessRequest) -> Decision:
    """
    A policy that permits everything, by rule 7.
    """
    return Decision(PERMIT, 7)


class RouteTests(SynchronousTestCase):
    """
    L{routeFor} turns a decision's route into the L{IRoute} that connects
    it, and L{openConnection} connects along it.
    """

    def test_direct(self) -> None:
        """
        C{"direct"} is a L{DirectRoute}, which connects over the given
        addresses with the gateway's timeout and source address.
        """
        clock = MemoryReactorClock()
        route = routeFor(Decision(PERMIT), clock, 5.0, ip_address("127.0.0.1"))
        self.assertIsInstance(route, DirectRoute)
        self.assertTrue(verifyObject(IRoute, route))
        route.connect(REQUEST, addresses("::1", "127.0.0.3"), 8080)
        self.assertEqual(clock.tcpClients[0][:2], ("127.0.0.3", 8080))
        self.assertEqual(clock.tcpClients[0][3:], (5.0, ("127.0.0.1", 0)))

    def test_unknownRoute(self) -> None:
        """
        A route this gateway does not know is refused with 0x01 (outcome
        C{error}), naming the decision.
        """
        decision = Decision(PERMIT, 2, route="corp")
        with self.assertRaises(RequestRefused) as caught:
            routeFor(decision, MemoryReactorClock(), 5.0)
        refusal = caught.exception
        self.assertEqual(
            (refusal.reply, refusal.outcome, refusal.decision), (ReplyCode.GENERAL_FAILURE, "error", decision)
        )
        self.assertIn("'corp'", refusal.reason)

    def test_openConnectionUnknownRoute(self) -> None:
        """
        L{openConnection} refuses a permitted request whose route is
        unknown with 0x01, for an address and for a name, and connects
        nothing.
        """
        clock = MemoryReactorClock()
        resolver = StaticResolver({"two.test": ["127.0.0.1", "127.0.0.2"]})
        decision = Decision(PERMIT, 4, route="corp")
        for host in ["127.0.0.1", "two.test"]:
            opened = openConnection(clock, resolver, lambda request: decision, REQUEST, host, 5.0)
            refusal = self.failureResultOf(opened, RequestRefused).value
            self.assertEqual((refusal.reply, refusal.decision), (ReplyCode.GENERAL_FAILURE, decision))
        self.assertEqual(clock.tcpClients, [])

    def test_openConnectionStaggers(self) -> None:
        """
        L{openConnection} tries a name's permitted addresses as
        L{connectToAddresses} does, and gives the decision with the
        connected protocol.
        """
        clock = MemoryReactorClock()
        resolver = StaticResolver({"two.test": ["127.0.0.1", "127.0.0.2"]})
        opened = openConnection(clock, resolver, permitAll, REQUEST, "two.test", 5.0)
        self.assertEqual([c[0] for c in clock.tcpClients], ["127.0.0.1"])
        clock.advance(ATTEMPT_DELAY)
        protocol, _ = succeed(clock, 1)
        self.assertEqual(self.successResultOf(opened), (protocol, Decision(PERMIT, 7)))

    def test_allFailGivesLastReply(self) -> None:
        """
        When every permitted address fails, the last failure's reply
        answers the request, naming the rule that permitted it.
        """
        clock = MemoryReactorClock()
        resolver = StaticResolver({"two.test": ["127.0.0.1", "127.0.0.2"]})
        opened = openConnection(clock, resolver, permitAll, REQUEST, "two.test", 5.0)
        fail(clock, 0, error.ConnectionRefusedError())
        clock.advance(ATTEMPT_DELAY)
        fail(clock, 1, error.NoRouteError())
        refusal = self.failureResultOf(opened, RequestRefused).value
        self.assertEqual((refusal.reply, refusal.outcome), (ReplyCode.NETWORK_UNREACHABLE, "failed"))
        self.assertEqual(refusal.decision, Decision(PERMIT, 7))


class RealSocketTests(LoopbackTestCase):
    """
    The attempts over real loopback sockets.
    """

    async def test_unreachableFirstAddress(self) -> None:
        """
        Through a gateway, a name whose first address refuses (a closed port
        of 127.0.0.2) is reached at its next (a listening 127.0.0.1), and
        the session log names that one.
        """
        echo = startEchoServer(self)
        resolver = StaticResolver({"two.test": ["127.0.0.2", "127.0.0.1"]})
        gateway = startGateway(self, resolver=resolver)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"two.test", echo.port))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        self.assertEqual((await client.receive(10))[:4], b"\x05\x00\x00\x01")
        client.transport.write(b"ping")
        self.assertEqual(await client.receive(4), b"ping")
        client.transport.loseConnection()
        await client.closed
        await gateway.factory.sessions.whenEmpty()
        self.assertEqual([record["remote"] for record in records], [f"127.0.0.1:{echo.port}"])

    async def test_winnerOverRealSockets(self) -> None:
        """
        L{connectToAddresses} with the real reactor: the refusing address is
        passed over and the listening one connected.
        """
        listening = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        protocol = await connectToAddresses(reactor, addresses("127.0.0.2", "127.0.0.1"), port, 10.0)
        self.assertEqual(protocol.transport.getPeer().host, "127.0.0.1")
        protocol.transport.loseConnection()

    async def test_allRefuseOverRealSockets(self) -> None:
        """
        When every address refuses, the result is the refusal (0x05).
        """
        port = freePort()
        attempt: Deferred[Any] = connectToAddresses(reactor, addresses("127.0.0.2", "127.0.0.3"), port, 10.0)
        with self.assertRaises(error.ConnectionRefusedError):
            await attempt
