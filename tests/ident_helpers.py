"""
Identds for the ident tests, all on loopback: a real oidentd run as a child
process, Twisted's own L{IdentServer} answering from a table, and servers
that misbehave on purpose; plus a connection owned by another user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols import ident as twistedIdent
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from .helpers import CollectingProcess, freePort

# oidentd's own defaults (Debian's /etc/oidentd.conf), written out so that
# a changed system file cannot change what the tests see.
OIDENTD_CONFIG = """\
default {
    default {
        deny spoof
        deny spoof_all
        deny spoof_privport
        deny random
        deny random_numeric
        deny numeric
        deny hide
        deny forward
    }
}
"""

# Run by the system's Python as another user: open a connection, print its
# local port, and hold it until standard input closes.
_HOLD_CONNECTION = """\
import socket, sys
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(connection.getsockname()[1], flush=True)
sys.stdin.read()
"""


def _findProgram(name: str) -> str | None:
    """
    Where C{name} is, looking in the system directories too (a non-root
    C{PATH} often leaves out C{/usr/sbin}, where oidentd lives).
    """
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/local/sbin:/usr/sbin:/sbin"])
    return shutil.which(name, path=path)


def _stopProcess(
    transport: Any, process: CollectingProcess
) -> Deferred[tuple[int | None, int | None]] | None:
    """
    Terminate a child process if it still runs, and wait for its end.
    """
    if process.ended.called:
        return None
    transport.signalProcess("TERM")
    return process.ended


async def _accepting(port: int) -> bool:
    """
    Whether something accepts TCP connections on C{127.0.0.1:port}.
    """
    try:
        probe = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Protocol())
    except ConnectError:
        return False
    probe.transport.loseConnection()
    return True


async def startOidentd(testCase: TestCase) -> int:
    """
    Run Debian's oidentd in the foreground on a free loopback port, with
    L{OIDENTD_CONFIG}, until the test ends.

    @return: its port.
    @raise SkipTest: oidentd is not installed.
    """
    oidentd = _findProgram("oidentd")
    if oidentd is None:
        raise SkipTest("oidentd is not installed (Debian: apt-get install oidentd)")
    # Outside the test's directory: when oidentd starts as root it runs as
    # nobody, who may not reach a checkout under /root.
    directory = tempfile.mkdtemp(prefix="socksgate-oidentd-")
    testCase.addCleanup(shutil.rmtree, directory)
    config = os.path.join(directory, "oidentd.conf")
    with open(config, "w") as file:
        file.write(OIDENTD_CONFIG)
    os.chmod(directory, 0o755)
    os.chmod(config, 0o644)
    for _ in range(3):
        port = freePort()
        arguments = [oidentd, "-i", "-S", "-d", "-a", "127.0.0.1", "-p", str(port), "-C", config]
        process = CollectingProcess()
        transport = reactor.spawnProcess(process, oidentd, arguments, env={}, path=directory)
        testCase.addCleanup(_stopProcess, transport, process)
        for _ in range(100):
            if process.ended.called or await _accepting(port):
                break
            await deferLater(reactor, 0.05, lambda: None)
        if not process.ended.called:
            return port
    testCase.fail(f"oidentd did not start: {process.output.decode(errors='replace')}")


async def connectAs(testCase: TestCase, user: str, port: int) -> int:
    """
    Open a TCP connection to C{127.0.0.1:port} from a child process that
    runs as C{user}, held until the test ends: the kernel, and so identd,
    sees C{user} as its owner.

    @return: the connection's local port.
    @raise SkipTest: the test does not run as root, or there is no system
        Python that another user can run.
    """
    if os.geteuid() != 0:
        raise SkipTest("only root can run a process as another user")
    # The system's Python, not the test's: a virtual environment may live
    # where another user cannot go (under /root).
    python = shutil.which("python3", path=os.defpath)
    if python is None:
        raise SkipTest("no python3 in " + os.defpath)
    account = pwd.getpwnam(user)
    process = CollectingProcess()
    transport = reactor.spawnProcess(
        process,
        python,
        [python, "-I", "-S", "-c", _HOLD_CONNECTION, str(port)],
        env={},
        path="/",
        uid=account.pw_uid,
        gid=account.pw_gid,
    )
    testCase.addCleanup(_stopProcess, transport, process)
    testCase.addCleanup(transport.closeStdin)
    for _ in range(200):
        if b"\n" in process.output or process.ended.called:
            break
        await deferLater(reactor, 0.05, lambda: None)
    line = process.output.split(b"\n")[0]
    if not line.isdigit():
        testCase.fail(f"the connection as {user} failed: {process.output.decode(errors='replace')}")
    return int(line)


class TableIdentServer(twistedIdent.IdentServer):
    """
    Twisted's L{IdentServer} over bytes (it sends and parses text, which
    Python 3 transports refuse), answering from its factory's C{table}:
    C{(portOnServer, portOnClient)} to a user id, or to an
    L{twisted.protocols.ident.IdentError} to answer with; C{NO-USER} for
    anything else.
    """

    def sendLine(self, line: str) -> None:  # type: ignore[override]
        super().sendLine(line.encode("ascii"))

    def lineReceived(self, line: bytes) -> None:  # type: ignore[override]
        super().lineReceived(line.decode("ascii"))

    def lookup(self, serverAddress: tuple[str, int], clientAddress: tuple[str, int]) -> tuple[str, str]:
        answer = self.factory.table.get((serverAddress[1], clientAddress[1]), twistedIdent.NoUser())
        if isinstance(answer, twistedIdent.IdentError):
            raise answer
        return ("UNIX", answer)


def tableIdentd(testCase: TestCase, table: dict[tuple[int, int], Any], interface: str = "127.0.0.1") -> int:
    """
    Listen on a loopback port with L{TableIdentServer} until the test ends.

    @return: the port.
    """
    factory = Factory.forProtocol(TableIdentServer)
    factory.table = table  # type: ignore[attr-defined]
    listening = reactor.listenTCP(0, factory, interface=interface)
    testCase.addCleanup(listening.stopListening)
    return listening.getHost().port


class CannedIdentd(LineOnlyReceiver):
    """
    An identd that answers every query with its factory's C{reply} (bytes,
    end of line included), or never answers when that is L{None}, and
    closes after answering if its factory's C{close} says so.

    Its factory's C{connections} lists every connection, and
    C{connected} fires with the first.

    @ivar queries: the lines received.
    @ivar lost: fires when the connection is lost.
    """

    def __init__(self) -> None:
        self.queries: list[bytes] = []
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.factory.connections.append(self)
        if not self.factory.connected.called:
            self.factory.connected.callback(self)

    def lineReceived(self, line: bytes) -> None:
        self.queries.append(line)
        if self.factory.reply is not None:
            self.transport.write(self.factory.reply)
        if self.factory.close:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.callback(None)


def cannedIdentd(testCase: TestCase, reply: bytes | None, close: bool = False) -> Any:
    """
    Listen on a loopback port with L{CannedIdentd} until the test ends.

    @return: the factory, with the port as C{port}.
    """
    factory = Factory.forProtocol(CannedIdentd)
    factory.reply, factory.close = reply, close  # type: ignore[attr-defined]
    factory.connections, factory.connected = [], Deferred()  # type: ignore[attr-defined]
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    factory.port = listening.getHost().port  # type: ignore[attr-defined]

    async def stop() -> None:
        for connection in factory.connections:  # type: ignore[attr-defined]
            connection.transport.abortConnection()
            await connection.lost
        await listening.stopListening()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    return factory


class _Accepted(Protocol):
    """
    A side of a connection that does nothing; a server side records itself
    in its factory's C{accepted} list.

    @ivar lost: fires when the connection is lost.
    """

    factory: Any = None

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if self.factory is not None:
            self.factory.accepted.append(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.callback(None)


def listenLoopback(testCase: TestCase, interface: str = "127.0.0.1") -> Any:
    """
    A loopback listening port that accepts and holds connections until the
    test ends; its factory's C{accepted} lists the server sides.

    @return: the listening port.
    """
    factory = Factory.forProtocol(_Accepted)
    factory.accepted = []  # type: ignore[attr-defined]
    listening = reactor.listenTCP(0, factory, interface=interface)

    async def stop() -> None:
        for protocol in factory.accepted:  # type: ignore[attr-defined]
            protocol.transport.abortConnection()
            await protocol.lost
        await listening.stopListening()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    return listening


async def connectLoopback(testCase: TestCase, host: str, port: int) -> Any:
    """
    A TCP connection from this process to C{host:port}, closed when the
    test ends.

    @return: its client side's transport.
    """
    client = await connectProtocol(TCP4ClientEndpoint(reactor, host, port), _Accepted())

    async def close() -> None:
        client.transport.abortConnection()
        await client.lost

    testCase.addCleanup(lambda: Deferred.fromCoroutine(close()))
    return client.transport
