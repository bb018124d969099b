"""
Helpers for the tests of L{socksgate.client}: an application protocol
that collects what it receives, and real SOCKS servers (Dante's C{danted},
C{microsocks}) started on a loopback port for one test.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from .helpers import CollectingProcess, freePort


class Collector(Protocol):
    """
    An application protocol that keeps what it receives.

    @ivar received: the bytes so far.
    @ivar closed: fires when the connection is lost.
    """

    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred[None] = Deferred()
        self._waiting: list[tuple[int, Deferred[bytes]]] = []

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}; fire the waits it completes.
        """
        self.received += data
        for entry in list(self._waiting):
            if len(self.received) >= entry[0]:
                self._waiting.remove(entry)
                entry[1].callback(self.received)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Fire C{closed}.
        """
        self.closed.callback(None)

    def waitFor(self, count: int) -> Deferred[bytes]:
        """
        Fire with what was received once it is at least C{count} bytes.
        """
        deferred: Deferred[bytes] = Deferred()
        self._waiting.append((count, deferred))
        self.dataReceived(b"")
        return deferred


def collectorFactory() -> Factory:
    """
    A factory of L{Collector}s.
    """
    return Factory.forProtocol(Collector)


async def echoThrough(testCase: TestCase, endpoint: Any, message: bytes = b"ping") -> Collector:
    """
    Connect C{endpoint} to an echo server, send C{message}, and check it
    comes back; the connection is closed at clean-up.
    """
    protocol = await endpoint.connect(collectorFactory())
    testCase.addCleanup(lambda: protocol.closed if protocol.transport.loseConnection() is None else None)
    protocol.transport.write(message)
    testCase.assertEqual(await protocol.waitFor(len(message)), message)
    return protocol


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def startServerProgram(testCase: TestCase, arguments: list[str], port: int) -> CollectingProcess:
    """
    Start a SOCKS server program that listens on C{127.0.0.1:port}, wait
    (at most ten seconds) until it accepts, and stop it at clean-up.

    @raise SkipTest: the program is not installed.
    """
    if shutil.which(arguments[0]) is None:
        raise SkipTest(f"{arguments[0]} is not installed (Debian: dante-server, microsocks)")
    process = CollectingProcess()
    executable = shutil.which(arguments[0])
    transport = reactor.spawnProcess(process, executable, arguments, env=os.environ)

    def stop() -> Deferred[Any] | None:
        if process.ended.called:
            return None
        transport.signalProcess("TERM")
        return process.ended

    testCase.addCleanup(stop)
    for _ in range(200):
        if process.ended.called or _accepts(port):
            break
        await deferLater(reactor, 0.05, lambda: None)
    testCase.assertFalse(process.ended.called, process.output)
    return process


async def startMicrosocks(testCase: TestCase, username: str = "", password: str = "") -> TCP4ClientEndpoint:
    """
    Start microsocks on a free loopback port, with a user if given.

    @return: an endpoint that reaches it.
    """
    port = freePort()
    arguments = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
    if username:
        arguments += ["-u", username, "-P", password]
    await startServerProgram(testCase, arguments, port)
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port)


DANTE_CONFIG = """\
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
{users}
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks block {{ from: 0.0.0.0/0 to: 127.0.0.1/32 port = {blocked} }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
"""


async def startDante(testCase: TestCase, blocked: int) -> TCP4ClientEndpoint:
    """
    Start Dante's C{danted} on a free loopback port, refusing (by rule)
    connections to 127.0.0.1 port C{blocked}.

    @return: an endpoint that reaches it.
    """
    port = freePort()
    path = testCase.mktemp()
    users = "user.privileged: root\nuser.unprivileged: nobody\n" if os.getuid() == 0 else ""
    with open(path, "w") as file:
        file.write(DANTE_CONFIG.format(port=port, blocked=blocked, users=users))
    await startServerProgram(testCase, ["danted", "-f", path, "-p", path + ".pid", "-N", "1"], port)
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port)
