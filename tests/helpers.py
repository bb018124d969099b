"""
Shared pieces of socksgate's own tests: a raw byte client over real
loopback sockets, a resolver the test controls, and SOCKS messages written
out by hand.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from socksgate import relay


class LoopbackTestCase(TestCase):
    """
    A test over real loopback sockets: none should take more than seconds.
    """

    timeout = 30


class StreamRelay:
    """
    Mixed into a copy of a test case of real sessions, ahead of it: the
    copy's sessions go through the stream relay, the original's through
    the zero-copy relay wherever it can carry them, so every such test
    runs against both relays.
    """

    def setUp(self) -> Any:
        """
        Make L{socksgate.relay.makeRelay} choose the stream relay.
        """
        self.patch(relay, "allowSplice", False)  # type: ignore[attr-defined]
        return super().setUp()  # type: ignore[misc]


@implementer(IHalfCloseableProtocol)
class RawClient(Protocol):
    """
    A client that sends bytes and waits for bytes, for driving a gateway
    by hand.

    @ivar closed: fires when the connection is lost.
    @ivar readClosed: fires when the peer sends its FIN.
    @ivar closeOnFIN: whether to close our side too when the peer's FIN
        arrives; a test of half-close sets it to C{False} to keep sending.
    """

    closeOnFIN = True

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed: Deferred[None] = Deferred()
        self.readClosed: Deferred[None] = Deferred()
        self._waiter: tuple[int, Deferred[bytes]] | None = None

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self._check()

    def readConnectionLost(self) -> None:
        self.readClosed.callback(None)
        self._check()
        if self.closeOnFIN:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.readClosed.called:
            self.readClosed.callback(None)
        self.closed.callback(None)
        self._check()

    def receive(self, count: int) -> Deferred[bytes]:
        """
        Wait for exactly C{count} bytes (fewer if the connection ends).
        """
        waiter: Deferred[bytes] = Deferred()
        self._waiter = (count, waiter)
        self._check()
        return waiter

    def receiveAll(self) -> Deferred[bytes]:
        """
        Wait for everything until the peer closes its side.
        """
        return self.receive(-1)

    def _check(self) -> None:
        if self._waiter is None:
            return
        count, waiter = self._waiter
        done = self.readClosed.called
        if (count >= 0 and len(self.buffer) >= count) or done:
            size = len(self.buffer) if count < 0 else min(count, len(self.buffer))
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
            self._waiter = None
            waiter.callback(data)


async def connectRaw(port: int, host: str = "127.0.0.1") -> RawClient:
    """
    Connect a L{RawClient} to C{host:port}.
    """
    return await connectProtocol(TCP4ClientEndpoint(reactor, host, port), RawClient())


def socks5Connect(host: bytes, port: int, atyp: int = 3) -> bytes:
    """
    A SOCKS5 greeting offering no authentication, then a CONNECT request,
    written out field by field (RFC 1928).
    """
    if atyp == 3:
        address = bytes([len(host)]) + host
    else:
        address = host
    return b"\x05\x01\x00" + b"\x05\x01\x00" + bytes([atyp]) + address + port.to_bytes(2, "big")


def socks4Connect(port: int, ip: bytes = b"\x7f\x00\x00\x01", userid: bytes = b"") -> bytes:
    """
    A SOCKS4 CONNECT request, field by field.
    """
    return b"\x04\x01" + port.to_bytes(2, "big") + ip + userid + b"\x00"


def socks4aConnect(port: int, name: bytes, userid: bytes = b"") -> bytes:
    """
    A SOCKS4a CONNECT request naming C{name}, field by field.
    """
    return b"\x04\x01" + port.to_bytes(2, "big") + b"\x00\x00\x00\x01" + userid + b"\x00" + name + b"\x00"


@implementer(IHalfCloseableProtocol)
class AnswerAfterFIN(Protocol):
    """
    A destination that collects what it gets and, when the client has
    finished sending, answers and closes.
    """

    def __init__(self) -> None:
        self.received = b""
        self.done: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def readConnectionLost(self) -> None:
        self.transport.write(b"answer to " + self.received)
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: object = None) -> None:
        self.done.callback(None)


@implementer(IHalfCloseableProtocol)
class SpeakThenFIN(Protocol):
    """
    A destination that greets, sends its FIN, and keeps reading.
    """

    def __init__(self) -> None:
        self.received = b""
        self.finished: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"bye")
        self.transport.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def readConnectionLost(self) -> None:
        self.finished.callback(self.received)
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass


@implementer(IHalfCloseableProtocol)
class HalfCloseEcho(Protocol):
    """
    A destination that sends back whatever it receives until the client's
    FIN, then closes once all of it has gone out.  Its transport is its own
    producer, so it stops reading while its write buffer is full.

    @ivar received: bytes received so far.
    @ivar closed: fires when the connection is lost.
    """

    def __init__(self) -> None:
        self.received = 0
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.registerProducer(self.transport, True)

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self.transport.write(data)

    def readConnectionLost(self) -> None:
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: object = None) -> None:
        self.closed.callback(None)


def freePort() -> int:
    """
    A loopback port nobody listens on right now (bound, then released).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listeningPort(output: bytes) -> int:
    """
    The port a Twisted program logged that it listens on ("... starting on
    PORT"), so a child process can listen on port 0 without a race.
    """
    match = re.search(rb"starting on (\d+)", output)
    assert match is not None, output
    return int(match.group(1))


class CollectingProcess(ProcessProtocol):
    """
    A child process whose output is collected, the one process protocol of
    these tests.

    @ivar output: its standard output and standard error together, in the
        order they came.
    @ivar out: its standard output alone.
    @ivar err: its standard error alone (where Chromium, say, chatters).
    @ivar ended: fires with C{(exitCode, signal)} when the process ends.
    """

    def __init__(self, input: bytes | None = None) -> None:
        """
        @param input: bytes to write to its standard input, which is then
            closed; with L{None}, standard input stays open.
        """
        self.input = input
        self.output = b""
        self.out = b""
        self.err = b""
        self.ended: Deferred[tuple[int | None, int | None]] = Deferred()

    def connectionMade(self) -> None:
        if self.input is not None:
            self.transport.write(self.input)
            self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.output += data
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((reason.value.exitCode, reason.value.signal))


async def startProcess(
    testCase: TestCase, arguments: list[str], ready: bytes
) -> tuple[Any, CollectingProcess]:
    """
    Start a child process, killed at clean-up if still running, and wait
    (at most ten seconds) until its output shows C{ready}.

    @return: its process transport and protocol.
    """
    process = CollectingProcess()
    transport = reactor.spawnProcess(process, arguments[0], arguments, env=os.environ)
    testCase.addCleanup(lambda: process.ended.called or transport.signalProcess("KILL"))
    for _ in range(200):
        if ready in process.output or process.ended.called:
            break
        await deferLater(reactor, 0.05, lambda: None)
    testCase.assertIn(ready, process.output)
    return transport, process


def collectSessions(testCase: Any) -> list[dict]:
    """
    Collect the session records emitted while the test runs.
    """
    records: list[dict] = []

    def observer(event: dict) -> None:
        if event.get("log_namespace") == "socksgate.session":
            records.append(event["record"])

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return records


def startWebServer(testCase: Any, content: bytes = b"hello from the web\n") -> int:
    """
    A twisted.web server on loopback serving C{content} at C{/} (and the
    files of a fresh directory), stopped with the test.

    @return: its port number.
    """
    from twisted.web.server import Site
    from twisted.web.static import Data

    site = Site(Data(content, "text/plain"))
    site.noisy = False
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    testCase.addCleanup(listening.stopListening)
    return listening.getHost().port


#: Headless Chromium as this machine's closed network needs it: without the
#: background-networking flags it keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
