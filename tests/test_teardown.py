"""
BIND and UDP sessions end cleanly whatever ends them first: a client
reset, the peer, the timeout, the gateway's stop.  Their sockets are
closed once, no reactor error is logged, and their slots in the session
table (and the UDP per-client counts) are always given back.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
from ipaddress import IPv4Address
from typing import Any

from twisted.internet import main, reactor, tcp, udp
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from socksgate.interfaces import IAccessPolicy
from socksgate.policy import PERMIT, AccessRequest, Decision
from socksgate.testing import RunningGateway, startGateway

from .helpers import (
    LoopbackTestCase,
    RawClient,
    StreamRelay,
    connectRaw,
    freePort,
    listeningPort,
    socks5Connect,
    startProcess,
)
from .test_bind import connectFrom, socks5Bind


def collectFailures(testCase: Any) -> list[dict]:
    """
    Collect the log events of failures (an Unhandled Error, a
    C{log.failure}, anything at level error or above) while the test runs.
    """
    failures: list[dict] = []

    def observer(event: dict) -> None:
        level = event.get("log_level")
        if (
            event.get("log_failure") is not None
            or event.get("isError")
            or level
            in (
                LogLevel.error,
                LogLevel.critical,
            )
        ):
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return failures


async def waitUntilEmpty(testCase: Any, gateway: RunningGateway, seconds: float = 10.0) -> None:
    """
    Wait, at most C{seconds}, until the gateway has no open session, and
    fail the test if it still has some.
    """
    for _ in range(int(seconds / 0.05)):
        if not gateway.sessions.open:
            return
        await deferLater(reactor, 0.05, lambda: None)
    testCase.fail(f"{len(gateway.sessions.open)} sessions still open")


async def stopTwice(transport: Any, process: Any) -> None:
    """
    SIGTERM a twistd with sessions open, and once it says it is waiting for
    them (the grace period), SIGTERM it again, which closes them at once.
    """
    transport.signalProcess(signal.SIGTERM)
    for _ in range(200):
        if b"stopping: " in process.output or process.ended.called:
            break
        await deferLater(reactor, 0.05, lambda: None)
    if not process.ended.called:
        transport.signalProcess(signal.SIGTERM)
    assert await process.ended == (None, signal.SIGTERM), process.output


def reset(client: RawClient) -> None:
    """
    Reset a client's connection: SO_LINGER 0, then close (unless the
    gateway has closed it already: a refused CONNECT is answered and
    closed while the test is busy elsewhere).
    """
    if client.closed.called:
        return
    handle = client.transport.getHandle()
    handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.transport.abortConnection()


class ResetStressTests(LoopbackTestCase):
    """
    Many BIND sessions and refused CONNECTs, all reset at once.
    """

    timeout = 60

    async def test_bindsAndConnectsResetAtOnce(self) -> None:
        """
        150 BIND clients (half of them with a peer connecting at the same
        moment) and 300 CONNECT clients to a closed port are reset at once,
        three times over: nothing is logged as a failure, and the session
        table and the UDP counts are empty at the end.
        """
        failures = collectFailures(self)
        gateway = startGateway(self)
        closed = freePort()
        for round in range(3):
            connecting = [Deferred.fromCoroutine(connectRaw(gateway.port)) for _ in range(450)]
            clients = [client for ok, client in await DeferredList(connecting) if ok]
            self.assertEqual(len(clients), 450)
            binds, connects = clients[:150], clients[150:]
            for client in binds:
                client.transport.write(socks5Bind())
            for client in connects:
                client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", closed, 1))
            peers: list[Deferred[Any]] = []
            if round:
                # Wait for the first replies of half the BINDs, and start a
                # peer towards each as the clients reset.
                firsts = await DeferredList([client.receive(12) for client in binds[:75]])
                for ok, first in firsts:
                    if ok and len(first) == 12:
                        port = int.from_bytes(first[10:12], "big")
                        peers.append(Deferred.fromCoroutine(connectFrom("127.0.0.1", port)))
            for client in clients:
                reset(client)
            await DeferredList([client.closed for client in clients])
            for ok, peer in await DeferredList(peers, consumeErrors=True):
                if ok:
                    reset(peer)
        await waitUntilEmpty(self, gateway)
        self.assertEqual(dict(gateway.sessions.associations), {})
        self.assertEqual(failures, [])


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class StopTests(LoopbackTestCase):
    """
    BIND and UDP sessions open when the gateway stops.
    """

    async def test_sigtermWithBindAndUDPOpen(self) -> None:
        """
        SIGTERM to C{twistd socksgate} with BIND sessions waiting for a
        peer and relaying, and a UDP association open, stops it without a
        traceback: the reactor closing their sockets first is no error.
        """
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1"],
            b"starting on ",
        )
        port = listeningPort(process.output)
        clients = []
        for _ in range(3):
            client = await connectRaw(port)
            client.transport.write(socks5Bind())
            first = await client.receive(12)
            self.assertEqual(first[2:4], b"\x05\x00")
            clients.append((client, int.from_bytes(first[10:12], "big")))
        peer = await connectFrom("127.0.0.1", clients[0][1])
        self.assertEqual((await clients[0][0].receive(10))[:2], b"\x05\x00")
        udp = await connectRaw(port)
        udp.transport.write(b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x00")
        self.assertEqual((await udp.receive(12))[2:4], b"\x05\x00")
        # The grace period (30 s by default) lets the sessions run; a second
        # SIGTERM closes them at once.
        await stopTwice(transport, process)
        self.assertIn(b"Server Shut Down.", process.output)
        self.assertNotIn(b"Traceback", process.output)
        self.assertNotIn(b"Unhandled", process.output)
        for client, _ in clients:
            await client.closed
        await udp.closed
        await peer.closed


@implementer(IAccessPolicy)
class SlowFor:
    """
    Permits everything at once, except requests for C{slow}: those wait
    for an answer that never comes (until the test ends).

    @ivar pending: the Deferreds of the unanswered decisions.
    """

    def __init__(self, slow: IPv4Address) -> None:
        self.slow = slow
        self.pending: list[Deferred[Decision]] = []

    def decide(self, request: AccessRequest) -> Decision | Deferred[Decision]:
        """
        Permit, or wait for ever if the destination is C{slow}.
        """
        if request.destinationAddress == self.slow:
            waiting: Deferred[Decision] = Deferred()
            self.pending.append(waiting)
            return waiting
        return Decision(PERMIT, 1, "")


def closeLikeShutdown(selectable: Any) -> None:
    """
    Close a socket as the reactor does every socket when it shuts down
    (C{disconnectAll}): out of the event loop, then C{connectionLost},
    before the session that owns it hears anything.
    """
    reactor.removeReader(selectable)
    reactor.removeWriter(selectable)
    selectable.connectionLost(Failure(main.CONNECTION_LOST))


def socketOn(kind: type, port: int) -> Any:
    """
    The reactor's listening socket of type C{kind} on C{port}.
    """
    [found] = [s for s in reactor.getReaders() if isinstance(s, kind) and s.getHost().port == port]
    return found


class SessionStatesTests(LoopbackTestCase):
    """
    BIND and UDP sessions in every state, closed from outside.
    """

    async def openSessions(self, gateway: RunningGateway) -> dict[str, Any]:
        """
        Open one session in each state: BIND deciding, BIND waiting for a
        peer, BIND relaying, a UDP association, and a UDP association
        deciding a destination.

        @return: the clients and the ports the gateway listens on for them.
        """
        deciding = await connectRaw(gateway.port)
        deciding.transport.write(socks5Bind(b"\x7f\x00\x00\x07"))
        self.assertEqual(await deciding.receive(2), b"\x05\x00")
        waiting = await connectRaw(gateway.port)
        waiting.transport.write(socks5Bind())
        bindPort = int.from_bytes((await waiting.receive(12))[10:12], "big")
        relaying = await connectRaw(gateway.port)
        relaying.transport.write(socks5Bind())
        relayPort = int.from_bytes((await relaying.receive(12))[10:12], "big")
        peer = await connectFrom("127.0.0.1", relayPort)
        self.assertEqual((await relaying.receive(10))[:2], b"\x05\x00")
        control = await connectRaw(gateway.port)
        control.transport.write(b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x00")
        udpPort = int.from_bytes((await control.receive(12))[10:12], "big")
        decidingUDP = await connectRaw(gateway.port)
        decidingUDP.transport.write(b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x00")
        decidingPort = int.from_bytes((await decidingUDP.receive(12))[10:12], "big")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"\x00\x00\x00\x01\x7f\x00\x00\x07\x00\x07" + b"hello", ("127.0.0.1", decidingPort))
        return {
            "clients": [deciding, waiting, relaying, control, decidingUDP, peer],
            "bindPort": bindPort,
            "udpPort": udpPort,
        }

    async def closeAll(self, close: Any) -> None:
        """
        Open a session in each state, close them all with C{close(protocol)},
        and check that no failure is logged and every slot is given back.
        """
        failures = collectFailures(self)
        policy = SlowFor(IPv4Address("127.0.0.7"))
        gateway = startGateway(self, policy=policy)
        opened = await self.openSessions(gateway)
        self.assertEqual(len(gateway.sessions.open), 5)
        for _ in range(100):
            if len(policy.pending) == 2:
                break
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(len(policy.pending), 2)
        for protocol in list(gateway.sessions.open):
            close(protocol)
        await DeferredList([client.closed for client in opened["clients"]])
        await waitUntilEmpty(self, gateway)
        self.assertEqual(dict(gateway.sessions.associations), {})
        self.assertEqual(failures, [])

    async def test_abortEveryState(self) -> None:
        """
        C{abortConnection()} on the client protocol (what a stopping
        gateway does to what is still open) ends BIND and UDP sessions in
        every state without a logged failure, and gives back every slot.
        """
        await self.closeAll(lambda protocol: protocol.abortConnection())

    async def test_closeEveryState(self) -> None:
        """
        C{session.close(why)} (a graceful stop) ends BIND and UDP sessions
        in every state without a logged failure, and gives back every slot.
        """
        await self.closeAll(lambda protocol: protocol.session.close("the gateway stops"))

    async def test_socketsClosedFirst(self) -> None:
        """
        When the reactor closes a BIND listening port and a UDP relay
        socket before their sessions end (as it does at shutdown), the
        sessions still end without a failure and give back their slots
        when their clients go.
        """
        failures = collectFailures(self)
        gateway = startGateway(self, policy=SlowFor(IPv4Address("127.0.0.7")))
        opened = await self.openSessions(gateway)
        closeLikeShutdown(socketOn(tcp.Port, opened["bindPort"]))
        closeLikeShutdown(socketOn(udp.Port, opened["udpPort"]))
        for client in opened["clients"]:
            reset(client)
        await DeferredList([client.closed for client in opened["clients"]])
        await waitUntilEmpty(self, gateway)
        self.assertEqual(dict(gateway.sessions.associations), {})
        self.assertEqual(failures, [])


class StreamResetStressTests(StreamRelay, ResetStressTests):
    """
    L{ResetStressTests} over the stream relay.
    """


class StreamStopTests(StreamRelay, StopTests):
    """
    L{StopTests} over the stream relay.
    """


class StreamSessionStatesTests(StreamRelay, SessionStatesTests):
    """
    L{SessionStatesTests} over the stream relay.
    """
