"""
C{socksgate connect [--route FILE | --proxy URL] HOST PORT}: connect to
HOST:PORT as a client routing table (or one proxy URL) says, and relay
standard input and output over the connection, as OpenSSH's
C{ProxyCommand} wants::

    ssh -o ProxyCommand='socksgate connect --proxy socks5h://127.0.0.1:1080 %h %p' host

End of standard input shuts the connection for writing (the other side
still sends); the other side's end of stream ends the command, exit 0,
once what it sent is written out.  A denied destination, a connection that
cannot be made, or a file or URL that is wrong is one line on standard
error and exit 1.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.stdio import StandardIO
from twisted.python.failure import Failure
from zope.interface import implementer

from .._tablecheck import ConfigError
from ..client.routing import RouteDenied, RoutingTable, loadRoutes, singleProxy
from ..client.urls import parseProxyURL

__all__ = ["addArguments", "relay", "run"]


def addArguments(parser: argparse.ArgumentParser) -> None:
    """
    Add C{connect}'s arguments to its sub-command parser.
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--route", metavar="FILE", help="a client routing table (TOML [[route]] tables)")
    source.add_argument(
        "--proxy", metavar="URL", help="one proxy for every destination (socks5h://HOST:PORT)"
    )
    parser.add_argument("host", metavar="HOST", help="the destination's name or address")
    parser.add_argument("port", metavar="PORT", type=int, help="the destination's port")


@implementer(IHalfCloseableProtocol)
class _Connection(Protocol):
    """
    The connection to the destination: what it sends goes to standard
    output.

    @ivar terminal: the standard input and output side, once it exists.
    @ivar reason: why the connection ended, once it did.
    """

    terminal: _StandardIO | None = None
    reason: Failure | None = None

    def __init__(self) -> None:
        self._early: list[bytes] = []

    def attach(self, terminal: _StandardIO) -> None:
        """
        Start writing to standard output: first the bytes that came with
        the proxy's reply (an SSH banner, say), before the terminal
        existed; and end it at once if the connection already ended.
        """
        self.terminal = terminal
        early, self._early = self._early, []
        for data in early:
            terminal.transport.write(data)
        if self.reason is not None:
            terminal.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """
        Write to standard output (or keep until it is attached).
        """
        if self.terminal is None:
            self._early.append(data)
        else:
            self.terminal.transport.write(data)

    def readConnectionLost(self) -> None:
        """
        The other side's end of stream: finish writing, then end.
        """
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our side is shut for writing: nothing more to do.
        """

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        End standard input and output (after what is buffered is written).
        """
        self.reason = reason
        if self.terminal is not None:
            self.terminal.transport.loseConnection()


@implementer(IHalfCloseableProtocol)
class _StandardIO(Protocol):
    """
    Standard input and output: standard input goes to the connection.

    @ivar done: fires with the exit status once both are closed.
    """

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.done: Deferred[int] = Deferred()

    def connectionMade(self) -> None:
        """
        Pass bytes both ways, each side pausing the other when it cannot
        keep up.
        """
        network = self.connection.transport
        network.registerProducer(self.transport, True)
        self.transport.registerProducer(network, True)

    def dataReceived(self, data: bytes) -> None:
        """
        Send to the destination.
        """
        self.connection.transport.write(data)

    def readConnectionLost(self) -> None:
        """
        End of standard input: shut the connection for writing.
        """
        network = self.connection.transport
        network.unregisterProducer()
        network.loseWriteConnection()

    def writeConnectionLost(self) -> None:
        """
        Standard output was closed: nobody reads, so end.
        """
        self.connection.transport.loseConnection()
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Exit 0 when the connection ended cleanly, else 1.
        """
        self.connection.transport.loseConnection()
        why = self.connection.reason
        self.done.callback(0 if why is None or why.check(ConnectionDone) else 1)


async def relay(reactor: Any, table: RoutingTable, host: str, port: int, stderr: TextIO) -> int:
    """
    Connect to C{host}:C{port} through C{table}'s route, and relay standard
    input and output until the connection ends.

    @return: the exit status.
    """
    destination = f"{host}:{port}"
    try:
        endpoint = table.endpointFor(reactor, host, port)
        connection = await endpoint.connect(Factory.forProtocol(_Connection))
    except RouteDenied as denied:
        return _complain(stderr, str(denied))
    except Exception as problem:
        # Every way a connection can fail (a refusal, an unreachable
        # proxy, a destination the scheme cannot carry) is one line.
        return _complain(stderr, f"{destination}: {problem}")
    assert isinstance(connection, _Connection)
    terminal = _StandardIO(connection)
    StandardIO(terminal, reactor=reactor)
    connection.attach(terminal)
    status = await terminal.done
    if status and connection.reason is not None:
        _complain(stderr, f"{destination}: {connection.reason.getErrorMessage()}")
    return status


def _complain(stderr: TextIO, message: str) -> int:
    stderr.write(f"socksgate connect: {' '.join(message.split())}\n")
    stderr.flush()
    return 1


def run(arguments: argparse.Namespace, stderr: TextIO, reactor: Any = None) -> int:
    """
    Run C{socksgate connect}; return its exit status.
    """
    try:
        table = (
            loadRoutes(arguments.route) if arguments.route else singleProxy(parseProxyURL(arguments.proxy))
        )
    except (ConfigError, ValueError) as problem:
        return _complain(stderr, str(problem))
    if not 0 < arguments.port <= 0xFFFF:
        return _complain(stderr, f"port {arguments.port} is not between 1 and 65535")
    if reactor is None:
        from twisted.internet import reactor
    status: list[int] = [1]

    def finished(result: int | Failure) -> None:
        if isinstance(result, Failure):
            _complain(stderr, result.getErrorMessage())
        else:
            status[0] = result
        reactor.stop()

    reactor.callWhenRunning(
        lambda: Deferred.fromCoroutine(relay(reactor, table, arguments.host, arguments.port, stderr)).addBoth(
            finished
        )
    )
    reactor.run(installSignalHandlers=True)
    return status[0]
