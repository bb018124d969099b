"""
The zero-copy relay (L{socksgate.splicing}) and the choice of relay, over
real loopback and UNIX sockets.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import SkipTest

from socksgate import relay
from socksgate.relay import Relay, makeRelay
from socksgate.splicing import PIPE_POOL, SPLICE_AVAILABLE, PipePool, SpliceRelay, canSplice
from socksgate.testing import startEchoServer, startGateway

from .helpers import (
    AnswerAfterFIN,
    LoopbackTestCase,
    StreamRelay,
    collectSessions,
    connectRaw,
    socks5Connect,
)

SESSIONS = 1000
IN_FLIGHT = 50


def openDescriptors() -> int:
    """
    The number of descriptors this process has open.
    """
    return len(os.listdir("/proc/self/fd"))


class _Keep(Protocol):
    """
    A protocol that keeps its transport for the test to look at.
    """

    def connectionMade(self) -> None:
        self.factory.made.append(self)


class _KeepFactory(Factory):
    noisy = False

    def __init__(self) -> None:
        self.made: list[_Keep] = []

    protocol = _Keep


class ChoiceTests(LoopbackTestCase):
    """
    L{makeRelay} chooses the zero-copy relay for two plain TCP transports
    on a reactor with descriptors, and the stream relay for everything
    else.
    """

    def setUp(self) -> None:
        if not SPLICE_AVAILABLE:
            raise SkipTest("no os.splice on this platform")

    async def tcpPair(self) -> tuple[Any, Any]:
        """
        The server and client transports of one loopback TCP connection.
        """
        factory = _KeepFactory()
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = await connectRaw(port.getHost().port)
        self.addCleanup(client.transport.abortConnection)
        await deferLater(reactor, 0.01, lambda: None)
        [server] = factory.made
        self.addCleanup(server.transport.abortConnection)
        return server.transport, client.transport

    def choose(self, client: Any, destination: Any, clock: Any = reactor) -> type:
        """
        The class of the relay L{makeRelay} builds.
        """
        return type(makeRelay(client, destination, lambda why: None, clock))

    async def test_plainTCP(self) -> None:
        """
        A C{tcp.Server} (the client) and a C{tcp.Client} (the destination)
        get the zero-copy relay.
        """
        server, client = await self.tcpPair()
        self.assertEqual(self.choose(server, client), SpliceRelay)
        self.assertTrue(canSplice(server, client, reactor))

    async def test_switchedOff(self) -> None:
        """
        With C{allowSplice} off, the same pair gets the stream relay.
        """
        server, client = await self.tcpPair()
        self.patch(relay, "allowSplice", False)
        self.assertEqual(self.choose(server, client), Relay)

    async def test_noDescriptors(self) -> None:
        """
        A reactor without C{IReactorFDSet} gets the stream relay.
        """
        server, client = await self.tcpPair()
        self.assertEqual(self.choose(server, client, Clock()), Relay)

    async def test_wrapped(self) -> None:
        """
        A transport behind a protocol wrapper (as the HAProxy listener's
        is) gets the stream relay: the wrapper must see the bytes.
        """
        server, client = await self.tcpPair()
        wrapper = ProtocolWrapper(WrappingFactory(Factory()), Protocol())
        wrapper.makeConnection(server)
        self.assertEqual(self.choose(wrapper, client), Relay)
        self.assertEqual(self.choose(StringTransport(), client), Relay)

    async def test_unixSocket(self) -> None:
        """
        A UNIX socket (a C{unix.Server}, a subclass of C{tcp.Server}) gets
        the stream relay.
        """
        server, client = await self.tcpPair()
        factory = _KeepFactory()
        path = self.mktemp()
        port = reactor.listenUNIX(path, factory)
        self.addCleanup(port.stopListening)
        unixClient = await connectProtocol(UNIXClientEndpoint(reactor, path), Protocol())
        self.addCleanup(unixClient.transport.abortConnection)
        await deferLater(reactor, 0.01, lambda: None)
        [unixServer] = factory.made
        self.addCleanup(unixServer.transport.abortConnection)
        self.assertEqual(self.choose(unixServer.transport, client), Relay)

    async def test_gatewayChoosesSplice(self) -> None:
        """
        A CONNECT through a gateway on loopback is relayed by the zero-copy
        relay, and its bytes arrive.
        """
        gateway, echo = startGateway(self), startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"early")
        await client.receive(12)
        self.assertEqual(await client.receive(5), b"early")
        [session] = gateway.sessions.open
        self.assertIsInstance(session.session, SpliceRelay)
        client.transport.loseConnection()
        await client.closed


class PipePoolTests(LoopbackTestCase):
    """
    L{PipePool} keeps at most its limit of drained pipes.
    """

    def test_bounded(self) -> None:
        """
        Pipes given back beyond the limit are closed; clearing closes the
        rest, and the descriptors are back where they started.
        """
        if not SPLICE_AVAILABLE:
            raise SkipTest("no os.splice on this platform")
        before = openDescriptors()
        pool = PipePool(limit=2)
        pipes = [pool.take() for _ in range(5)]
        self.assertEqual(openDescriptors(), before + 10)
        for pipe in pipes:
            pool.give(pipe)
        self.assertEqual((len(pool), openDescriptors()), (2, before + 4))
        self.assertIn(pool.take(), pipes)
        pool.clear()
        self.assertEqual(openDescriptors(), before + 2)


class CountingTests(LoopbackTestCase):
    """
    Byte counters are exact for odd sizes and half-closes, and the
    gateway's descriptors return to where they started.
    """

    async def test_oddSizesAndHalfClose(self) -> None:
        """
        A client sends writes of odd sizes (the first with the request),
        then its FIN; the destination answers after the FIN and closes.
        Every byte arrives and the record counts exactly what was relayed
        each way.
        """
        records = collectSessions(self)
        gateway = startGateway(self)
        answering: list[AnswerAfterFIN] = []

        def build() -> AnswerAfterFIN:
            protocol = AnswerAfterFIN()
            answering.append(protocol)
            return protocol

        factory = Factory.forProtocol(build)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = await connectRaw(gateway.port)
        client.closeOnFIN = False
        chunks = [b"a" * 1, b"b" * 7, b"c" * 65537, b"d" * 300001, b"e" * 13]
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", port.getHost().port, atyp=1) + chunks[0])
        await client.receive(12)
        for chunk in chunks[1:]:
            client.transport.write(chunk)
        client.transport.loseWriteConnection()
        answer = await client.receiveAll()
        sent = b"".join(chunks)
        self.assertEqual(answer, b"answer to " + sent)
        await answering[0].done
        client.transport.loseConnection()
        await client.closed
        while not records:
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((records[0]["bytes_out"], records[0]["bytes_in"]), (len(sent), len(answer)))

    async def test_descriptorsReturn(self) -> None:
        """
        After 1,000 sessions (50 at a time, each relaying bytes both ways),
        the gateway's process has as many descriptors open as before,
        once the pipe pool is emptied; the pool kept no more than its
        limit.
        """
        gateway, echo = startGateway(self), startEchoServer(self)

        async def session(number: int) -> None:
            client = await connectRaw(gateway.port)
            payload = b"%d" % number * 41
            client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + payload)
            await client.receive(12)
            self.assertEqual(await client.receive(len(payload)), payload)
            client.transport.loseConnection()
            await client.closed

        async def settled() -> None:
            for _ in range(500):
                if not gateway.sessions.open and not any(p.transport.connected for p in echo.connections):
                    return
                await deferLater(reactor, 0.01, lambda: None)

        # One session first, so that whatever the process opens once (the
        # resolver's threads, say) is open before counting.
        await session(-1)
        await settled()
        PIPE_POOL.clear()
        before = openDescriptors()
        for start in range(0, SESSIONS, IN_FLIGHT):
            await gatherResults([Deferred.fromCoroutine(session(n)) for n in range(start, start + IN_FLIGHT)])
        await settled()
        self.assertEqual(len(gateway.sessions.open), 0)
        self.assertLessEqual(len(PIPE_POOL), PIPE_POOL.limit)
        PIPE_POOL.clear()
        for _ in range(100):
            if openDescriptors() <= before:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(openDescriptors(), before)


class StreamCountingTests(StreamRelay, CountingTests):
    """
    L{CountingTests} over the stream relay.
    """


class NoPipeTests(LoopbackTestCase):
    """
    A spliced session that can get no pipe (the process is out of
    descriptors) still relays, through memory.
    """

    async def test_outOfDescriptors(self) -> None:
        """
        Every pipe asked for fails with C{EMFILE}: odd-sized writes, a FIN
        and the answer after it all arrive, and the record counts them.
        """
        if not SPLICE_AVAILABLE:
            raise SkipTest("no splice on this platform")

        def noPipe() -> tuple[int, int]:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

        self.patch(PIPE_POOL, "take", noPipe)
        records = collectSessions(self)
        gateway = startGateway(self)
        answering: list[AnswerAfterFIN] = []

        def build() -> AnswerAfterFIN:
            protocol = AnswerAfterFIN()
            answering.append(protocol)
            return protocol

        port = reactor.listenTCP(0, Factory.forProtocol(build), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = await connectRaw(gateway.port)
        client.closeOnFIN = False
        chunks = [b"a" * 7, b"b" * 65537, b"c" * 300001]
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", port.getHost().port, atyp=1))
        self.assertEqual((await client.receive(12))[:2], b"\x05\x00")
        self.assertIsInstance(next(iter(gateway.sessions.open)).session, SpliceRelay)
        for chunk in chunks:
            client.transport.write(chunk)
        client.transport.loseWriteConnection()
        answer = await client.receiveAll()
        sent = b"".join(chunks)
        self.assertEqual(answer, b"answer to " + sent)
        await answering[0].done
        client.transport.loseConnection()
        await client.closed
        for _ in range(500):
            if records:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((records[0]["bytes_out"], records[0]["bytes_in"]), (len(sent), len(answer)))
