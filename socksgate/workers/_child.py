"""
A worker process: C{python -m socksgate.workers --index I --listener FD ...
-- ARGUMENTS}, started by the parent (L{socksgate.workers.WorkersService}).

It parses C{ARGUMENTS} (the parent's own C{twistd socksgate} options)
as the parent did, serves the listening sockets the parent passed (each
adopted with C{adoptStreamPort}, in the order of the listeners), and
sends every event it logs to the parent over L{EVENTS_FD}.  It writes no
session log and serves no status page: the parent does both.  SIGTERM
stops it as it stops a single gateway (L{GatewayService.stopService});
SIGHUP reloads its configuration; it ignores SIGINT and SIGUSR1, which are
the parent's.  It stops too when its standard input, a pipe from the
parent, ends: a parent that was killed leaves no worker behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import Any

from twisted.internet.defer import execute
from twisted.internet.interfaces import IReadDescriptor, IStreamServerEndpoint
from twisted.internet.main import CONNECTION_DONE
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, globalLogBeginner
from twisted.python import usage
from zope.interface import implementer

from ..service import buildService
from ..tap import Options
from ._pipe import EVENTS_FD, REPORT_NAMESPACE, EventWriter

__all__ = ["AdoptedEndpoint", "main"]

#: Seconds between two reports of a worker's open sessions.
REPORT_INTERVAL = 1.0

#: The most open sessions a report lists.
REPORT_SESSIONS = 500

log = Logger(namespace=REPORT_NAMESPACE)


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """
    A server endpoint that listens by adopting a listening socket this
    process inherited: C{reactor.adoptStreamPort}, which shares the
    socket's one accept queue with every process that holds it.
    """

    def __init__(self, reactor: Any, fd: int) -> None:
        self._reactor = reactor
        self._fd = fd

    def listen(self, factory: Any) -> Any:
        """
        Adopt the socket for C{factory}; close the inherited descriptor
        (the reactor keeps a copy of its own).
        """

        def adopt() -> Any:
            inherited = socket.socket(fileno=self._fd)
            try:
                return self._reactor.adoptStreamPort(inherited.fileno(), inherited.family, factory)
            finally:
                inherited.close()

        return execute(adopt)


@implementer(IReadDescriptor)
class _ParentWatch:
    """
    Stops the reactor when standard input (a pipe from the parent) ends.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def fileno(self) -> int:
        """
        Standard input.
        """
        return 0

    def logPrefix(self) -> str:
        """
        The name of this reader in the log.
        """
        return "ParentWatch"

    def doRead(self) -> Any:
        """
        Read and ignore; the end of the pipe stops the worker.
        """
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return None
        return None if data else CONNECTION_DONE

    def connectionLost(self, reason: Any) -> None:
        """
        The parent is gone: stop.
        """
        if self._reactor.running:
            self._reactor.stop()


def _report(gateway: Any, index: int) -> None:
    """
    Send the parent this worker's open sessions (for the status page).
    """
    sessions = []
    for protocol in list(gateway.sessions.open):
        record = protocol.record
        if record is None or record.outcome is not None:
            continue
        session = protocol.session
        sessions.append(
            {
                "session": record.session,
                "client": record.client,
                "user": record.user,
                "version": record.version,
                "command": record.command,
                "destination": record.destination,
                "remote": record.remote,
                "bytesOut": getattr(session, "bytesOut", 0),
                "bytesIn": getattr(session, "bytesIn", 0),
                "started": record.started,
            }
        )
    sessions.sort(key=lambda entry: entry["started"])
    log.debug(
        index=index,
        sessions=sessions[:REPORT_SESSIONS],
        open=len(sessions),
        connections=len(gateway.sessions.open),
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m socksgate.workers")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--listener", type=int, action="append", default=[])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """
    Run one worker until SIGTERM or until the parent goes away.

    @return: the exit status: 0 after a clean stop, 2 for arguments that
        do not parse.
    """
    for number in (signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    parsed = _arguments(sys.argv[1:] if argv is None else argv)
    arguments = [argument for argument in parsed.arguments if argument != "--"]
    from twisted.internet import reactor

    writer = EventWriter(reactor, EVENTS_FD)
    globalLogBeginner.beginLoggingTo([writer.observe], redirectStandardIO=False)
    options = Options()
    try:
        options.parseOptions(arguments)
    except usage.UsageError as error:
        print(f"socksgate worker {parsed.index}: {error}", file=sys.stderr)
        return 2
    config = options["configuration"].withLog(access="", status="")
    listen = config.server.listen
    if len(parsed.listener) != len(listen):
        print(
            f"socksgate worker {parsed.index}: {len(listen)} listeners, not {len(parsed.listener)}",
            file=sys.stderr,
        )
        return 2
    endpoints = {
        description: AdoptedEndpoint(reactor, fd)
        for description, fd in zip(listen, parsed.listener, strict=True)
    }
    gateway = buildService(config, reactor, authChecker=options["authChecker"], endpoints=endpoints)
    reactor.addReader(_ParentWatch(reactor))

    def start() -> None:
        gateway.privilegedStartService()
        gateway.startService()
        if parsed.report:
            reporting = LoopingCall(_report, gateway, parsed.index)
            reporting.clock = reactor
            reporting.start(REPORT_INTERVAL)
            reactor.addSystemEventTrigger("before", "shutdown", reporting.stop)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)
    reactor.run()
    writer.drain()
    return 0
