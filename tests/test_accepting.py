"""
Tests for L{socksgate.accepting}: listeners paused while the process is
out of file descriptors, with a fake port and a clock, and C{twistd
socksgate} run under C{prlimit --nofile}.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock, deferLater
from twisted.internet.tcp import Port
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from socksgate.accepting import FIRST_DELAY, LONGEST_DELAY, AcceptPauses, PausingEndpoint
from socksgate.config import Config
from socksgate.service import buildService
from socksgate.testing import startEchoServer

from .helpers import LoopbackTestCase, RawClient, connectRaw, listeningPort, startProcess

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]

#: What the gateway logs when it stops accepting, and when it accepts again.
OUT_OF_DESCRIPTORS = b"Out of file descriptors"
FREE_AGAIN = b"File descriptors are free again"


class FakeListeningSocket:
    """
    A listening socket with C{waiting} connections to accept, then
    C{failure} (an errno: C{EMFILE}, or C{EAGAIN} for nothing to accept).

    @ivar accepts: how many times C{accept} was called.
    """

    def __init__(self) -> None:
        self.waiting = 0
        self.failure = errno.EMFILE
        self.accepts = 0

    def accept(self) -> tuple[str, tuple[str, int]]:
        """
        Return a waiting connection, or fail with C{failure}.
        """
        self.accepts += 1
        if self.waiting:
            self.waiting -= 1
            return "connection", ("127.0.0.1", 4242)
        raise OSError(self.failure, os.strerror(self.failure))

    def getsockname(self) -> tuple[str, int]:
        """
        The address it listens on.
        """
        return ("127.0.0.1", 1080)


class FakePort:
    """
    A listening port that counts the times it is stopped and started.
    """

    def __init__(self) -> None:
        self.socket: Any = FakeListeningSocket()
        self.connected = True
        self.disconnecting = False
        self.reading = True
        self.stops = 0
        self.starts = 0

    def stopReading(self) -> None:
        """
        Stop reading.
        """
        self.reading = False
        self.stops += 1

    def startReading(self) -> None:
        """
        Read again.
        """
        self.reading = True
        self.starts += 1

    def doRead(self) -> None:
        """
        Accept until there is nothing to accept (at most ten), as
        C{tcp.Port} does.
        """
        for _ in range(10):
            try:
                self.socket.accept()
            except BlockingIOError:
                return


def capturedEvents(testCase: SynchronousTestCase) -> list[dict]:
    """
    The log events of L{AcceptPauses} emitted while the test runs.
    """
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace", "").startswith("socksgate.accepting"):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    testCase.addCleanup(globalLogPublisher.removeObserver, observe)
    return events


class AcceptPausesTests(SynchronousTestCase):
    """
    L{AcceptPauses} with a fake port and a clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sessions = 7
        self.pauses = AcceptPauses(self.clock, lambda: self.sessions, lambda: 40)
        self.port = FakePort()
        self.events = capturedEvents(self)
        self.assertTrue(self.pauses.watch(self.port, "tcp:1080"))

    def test_exhaustedStopsReading(self) -> None:
        """
        An C{accept} that fails with C{EMFILE} stops the port reading, is
        reported to the port as nothing to accept, and is logged once with
        the error, the open connections, the limit, the listener and what
        to raise.
        """
        self.port.doRead()
        self.assertFalse(self.port.reading)
        self.assertEqual(self.pauses.pauses, 1)
        self.assertTrue(self.pauses.short)
        [event] = self.events
        self.assertEqual(event["error"], "EMFILE")
        self.assertEqual(event["sessions"], 7)
        self.assertEqual(event["limit"], 40)
        self.assertEqual(event["listener"], "tcp:1080")
        self.assertIn("LimitNOFILE", event["log_format"])
        self.assertIn("ulimit -n", event["log_format"])

    def test_otherShortages(self) -> None:
        """
        C{ENFILE}, C{ENOBUFS} and C{ENOMEM} pause the port as C{EMFILE}
        does.
        """
        for code in [errno.ENFILE, errno.ENOBUFS, errno.ENOMEM]:
            port = FakePort()
            port.socket.failure = code
            self.pauses.watch(port, "tcp:1081")
            port.doRead()
            self.assertFalse(port.reading, errno.errorcode[code])

    def test_otherErrorsPassThrough(self) -> None:
        """
        Another error of C{accept} reaches the port as it is, and pauses
        nothing.
        """
        self.port.socket._socket.failure = errno.ECONNABORTED
        error = self.assertRaises(OSError, self.port.socket.accept)
        self.assertEqual(error.errno, errno.ECONNABORTED)
        self.assertTrue(self.port.reading)
        self.assertEqual(self.pauses.pauses, 0)

    def test_backoff(self) -> None:
        """
        While the shortage lasts, the port tries again after
        L{FIRST_DELAY} seconds, doubling up to L{LONGEST_DELAY}, and logs
        nothing more.
        """
        self.port.doRead()
        delays = []
        for _ in range(8):
            [call] = self.clock.getDelayedCalls()
            delays.append(round(call.getTime() - self.clock.seconds(), 6))
            self.clock.advance(call.getTime() - self.clock.seconds())
            self.assertTrue(self.port.reading)
            self.port.doRead()
            self.assertFalse(self.port.reading)
        self.assertEqual(delays, [FIRST_DELAY, 0.2, 0.4, 0.8] + [LONGEST_DELAY] * 4)
        self.assertEqual(len(self.events), 1)
        self.assertEqual(self.pauses.pauses, 1)

    def test_sessionEnded(self) -> None:
        """
        Descriptors freed (a session ended) start the port reading at once,
        and the try after a delay is cancelled.
        """
        self.port.doRead()
        self.pauses.descriptorsFreed()
        self.assertTrue(self.port.reading)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_drainedAgain(self) -> None:
        """
        Once the port has accepted every waiting connection (its C{accept}
        says there is nothing more), the shortage is over, logged once; the
        next shortage is logged and counted again, and starts again from
        the first delay.
        """
        self.port.doRead()
        self.clock.advance(FIRST_DELAY)
        self.port.doRead()
        self.clock.advance(0.2)
        self.port.socket._socket.waiting = 2
        self.port.socket._socket.failure = errno.EAGAIN
        self.sessions = 3
        self.port.doRead()
        self.assertEqual(self.port.socket._socket.accepts, 5)
        self.assertFalse(self.pauses.short)
        self.assertEqual(len(self.events), 2)
        self.assertIn("free again", self.events[1]["log_format"])
        self.assertEqual(self.events[1]["sessions"], 3)
        self.assertAlmostEqual(self.events[1]["seconds"], 0.3)
        self.port.doRead()
        self.assertEqual(len(self.events), 2)
        self.port.socket._socket.waiting = 1
        self.port.socket._socket.failure = errno.EMFILE
        self.port.doRead()
        self.assertEqual(self.pauses.pauses, 2)
        self.assertEqual(len(self.events), 3)
        [call] = self.clock.getDelayedCalls()
        self.assertAlmostEqual(call.getTime() - self.clock.seconds(), FIRST_DELAY)

    def test_acceptedBeforeFull(self) -> None:
        """
        A port that accepts one connection each time a session ends and
        then runs out again (a gateway that stays at its limit) does not
        end the shortage: nothing more is logged.
        """
        self.port.doRead()
        for _ in range(5):
            self.port.socket._socket.waiting = 1
            self.pauses.descriptorsFreed()
            self.port.doRead()
            self.assertFalse(self.port.reading)
        self.assertEqual(len(self.events), 1)
        self.assertEqual(self.pauses.pauses, 1)

    def test_drainedElsewhere(self) -> None:
        """
        Another listener with nothing to accept does not end a shortage
        while a listener is stopped; once that one has read again and
        drained, it is over.
        """
        other = FakePort()
        other.socket.failure = errno.EAGAIN
        self.pauses.watch(other, "tcp:1081")
        self.port.doRead()
        other.doRead()
        self.assertTrue(self.pauses.short)
        self.assertFalse(self.port.reading)
        self.clock.advance(FIRST_DELAY)
        self.port.socket._socket.failure = errno.EAGAIN
        self.port.doRead()
        self.assertFalse(self.pauses.short)

    def test_closedPortStaysClosed(self) -> None:
        """
        A port that stopped listening while paused is not started again.
        """
        self.port.doRead()
        self.port.connected = False
        self.clock.advance(FIRST_DELAY)
        self.assertFalse(self.port.reading)
        self.assertEqual(self.port.starts, 0)

    def test_stop(self) -> None:
        """
        L{AcceptPauses.stop} cancels the next try and forgets the ports.
        """
        self.port.doRead()
        self.pauses.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.pauses.descriptorsFreed()
        self.assertFalse(self.port.reading)

    def test_notAPort(self) -> None:
        """
        A listening port without a socket of its own (a test's fake) is
        not watched.
        """
        self.assertFalse(self.pauses.watch(object(), "tcp:0"))

    def test_twistedPort(self) -> None:
        """
        Twisted's own C{tcp.Port}, at C{EMFILE}: it stops reading, does not
        spend its reserved descriptor on closing the waiting client, and
        logs nothing of its own.
        """
        memory = MemoryReactorClock()
        port = Port(0, Factory(), interface="127.0.0.1", reactor=memory)
        port.startListening()
        self.addCleanup(port.socket.close)
        fake = FakeListeningSocket()
        real, port.socket = port.socket, fake
        self.addCleanup(setattr, port, "socket", real)
        twisted: list[dict] = []
        globalLogPublisher.addObserver(twisted.append)
        self.addCleanup(globalLogPublisher.removeObserver, twisted.append)
        pauses = AcceptPauses(memory, lambda: 0, lambda: 40)
        self.assertTrue(pauses.watch(port, "tcp:0"))
        self.assertIn(port, memory.readers)
        port.doRead()
        self.assertNotIn(port, memory.readers)
        self.assertEqual(fake.accepts, 1)
        own = [event for event in twisted if not event.get("log_namespace", "").startswith("socksgate")]
        self.assertEqual([event.get("log_format") for event in own if "EMFILE" in str(event)], [])
        self.assertEqual([event.get("log_format") for event in own if "accept" in str(event)], [])
        self.assertEqual(pauses.pauses, 1)
        memory.advance(FIRST_DELAY)
        self.assertIn(port, memory.readers)


class GatewayListenersTests(LoopbackTestCase):
    """
    Every listener of a gateway is watched.
    """

    async def test_everyKind(self) -> None:
        """
        A gateway's C{tcp:}, C{tcp6:}, C{unix:} and C{haproxy:} listeners
        are all watched by its L{AcceptPauses} once it has started, and
        forgotten once it has stopped.
        """
        path = os.path.abspath(self.mktemp())
        listen = ["tcp:0:interface=127.0.0.1", "tcp6:0:interface=\\:\\:1", f"unix:{path}", "haproxy:tcp:0"]
        listen[-1] += ":interface=127.0.0.1"
        gateway = buildService(Config().withListen(tuple(listen)), reactor)
        gateway.startService()
        self.assertEqual(sorted(gateway.acceptPauses.listeners), sorted(listen))
        await gateway.stopService()
        self.assertEqual(gateway.acceptPauses.listeners, [])


class PausingEndpointTests(SynchronousTestCase):
    """
    L{PausingEndpoint} listens as its endpoint does and has the port
    watched.
    """

    def test_listen(self) -> None:
        """
        The port the endpoint listens on is the one returned, watched.
        """
        port = FakePort()

        class Endpoint:
            def listen(self, factory: object) -> Any:
                return succeed(port)

        pauses = AcceptPauses(Clock(), lambda: 0, lambda: 40)
        listened = self.successResultOf(PausingEndpoint(Endpoint(), pauses, "tcp:9").listen(Factory()))
        self.assertIs(listened, port)
        port.doRead()
        self.assertEqual(pauses.pauses, 1)


def cpuSeconds(pid: int) -> float:
    """
    The CPU time (user and system) process C{pid} has used, in seconds.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def waitFor(condition: Any, seconds: float = 10.0) -> bool:
    """
    Wait until C{condition()} is true, looking every 50 ms for at most
    C{seconds}.

    @return: whether it became true.
    """
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await deferLater(reactor, 0.05, lambda: None)
    return bool(condition())


#: Descriptors the gateway may open beyond those it has once started: room
#: for a few relayed sessions (a client, a destination, and the pipes of
#: the zero-copy relay) before the idle connections fill it.
HEADROOM = 24

#: The relayed sessions opened before the gateway runs out.
RELAYED = 2


class DescriptorLimitTests(LoopbackTestCase):
    """
    C{twistd socksgate} started under C{prlimit --nofile=N:N}, with N the
    descriptors it uses once started plus L{HEADROOM}, then given
    connections until it cannot accept one.
    """

    timeout = 60

    async def startGateway(self, prefix: list[str]) -> tuple[Any, Any, int, str]:
        """
        Start C{twistd socksgate} behind the program C{prefix} (none, or
        C{prlimit}) on an ephemeral port, with a handshake timeout longer
        than the test and a session log.

        @return: its process transport and protocol, its port and the
            path of its session log.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        config = os.path.join(directory, "socksgate.toml")
        with open(config, "w") as stream:
            stream.write("[server]\nhandshake-timeout = 120.0\n")
        accessLog = os.path.join(directory, "access.log")
        arguments = prefix + TWISTD
        arguments += ["-n", "--pidfile=", "socksgate", "-c", config, "--listen", "tcp:0:interface=127.0.0.1"]
        arguments += ["--access-log", accessLog]
        transport, process = await startProcess(self, arguments, b"starting on ")
        return transport, process, listeningPort(process.output), accessLog

    async def greet(self, port: int) -> RawClient:
        """
        Connect to the gateway and send a SOCKS5 greeting.
        """
        client = await connectRaw(port)
        self.addCleanup(client.transport.abortConnection)
        client.transport.write(b"\x05\x01\x00")
        return client

    async def test_outOfDescriptors(self) -> None:
        """
        At its descriptor limit the gateway stops accepting without a busy
        loop (under half a second of CPU in a second's wait: a busy loop
        takes all of it), logs it once, keeps relaying its open sessions,
        answers a request whose outgoing connection finds no descriptor
        with 0x01 and a C{failed} record, and once sessions close accepts
        the waiting client and logs that once.
        """
        prlimit = "/usr/bin/prlimit"
        if not os.access(prlimit, os.X_OK):
            self.skipTest("needs prlimit (util-linux)")
        echo = startEchoServer(self)
        transport, process, port, _ = await self.startGateway([])
        started = len(os.listdir(f"/proc/{transport.pid}/fd"))
        transport.signalProcess("KILL")
        await process.ended
        limit = started + HEADROOM
        transport, process, port, accessLog = await self.startGateway(
            [prlimit, f"--nofile={limit}:{limit}", "--"]
        )
        request = b"\x05\x01\x00\x01\x7f\x00\x00\x01" + echo.port.to_bytes(2, "big")

        relayed = []
        for _ in range(RELAYED):
            client = await self.greet(port)
            client.transport.write(request)
            self.assertEqual((await client.receive(12))[:4], b"\x05\x00\x05\x00", process.output)
            relayed.append(client)
        spare = await self.greet(port)
        self.assertEqual(await spare.receive(2), b"\x05\x00")

        idle = []
        waiting = None
        for _ in range(limit):  # each accepted connection takes a descriptor
            client = await self.greet(port)
            answered = client.receive(2)
            await waitFor(lambda answered=answered: answered.called or OUT_OF_DESCRIPTORS in process.output)
            if not answered.called:
                waiting = client
                break
            idle.append(client)
        self.assertIsNotNone(waiting, process.output)
        assert waiting is not None

        # (a) The open sessions still relay.
        for number, client in enumerate(relayed):
            message = b"still relayed %d" % (number,)
            client.transport.write(message)
            self.assertEqual(await client.receive(len(message)), message, process.output)

        # (b) No busy loop while the client waits.
        before = cpuSeconds(transport.pid)
        await deferLater(reactor, 1.0, lambda: None)
        self.assertLess(cpuSeconds(transport.pid) - before, 0.5)
        self.assertFalse(answered.called)

        # (c) Logged once, though the listener tried again meanwhile.
        self.assertEqual(process.output.count(OUT_OF_DESCRIPTORS), 1, process.output)
        self.assertIn(f"limit of {limit} descriptors".encode(), process.output)

        # A request whose outgoing connection finds no descriptor.
        spare.transport.write(request)
        self.assertEqual((await spare.receive(4))[:2], b"\x05\x01", process.output)
        await spare.closed

        # (d) Sessions closed: the waiting client is served, and a new one.
        for client in idle[:6]:
            client.transport.loseConnection()
        self.assertEqual(await answered, b"\x05\x00", process.output)

        # Room for the two requests below (each client's destination).
        def free() -> int:
            return limit - len(os.listdir(f"/proc/{transport.pid}/fd"))

        self.assertTrue(await waitFor(lambda: free() >= 4), free())
        for client in [waiting, await self.greet(port)]:
            if client is not waiting:
                self.assertEqual(await client.receive(2), b"\x05\x00")
            client.transport.write(request + b"served again")
            self.assertEqual((await client.receive(10))[:2], b"\x05\x00", process.output)
            self.assertEqual(await client.receive(12), b"served again")
        self.assertTrue(await waitFor(lambda: FREE_AGAIN in process.output), process.output)
        self.assertEqual(process.output.count(FREE_AGAIN), 1, process.output)

        transport.signalProcess(signal.SIGTERM)
        for client in relayed + idle + [waiting]:
            client.transport.loseConnection()
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        self.assertNotIn(b"Traceback", process.output)
        with open(accessLog) as stream:
            records = [json.loads(line) for line in stream]
        failed = [record for record in records if record["outcome"] == "failed"]
        self.assertEqual([record["reply"] for record in failed], [1], (records, process.output))
