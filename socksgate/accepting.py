"""
Pausing a gateway's listeners while the process is out of file
descriptors (C{EMFILE}, C{ENFILE}, C{ENOBUFS}, C{ENOMEM} from
C{accept(2)}).

Twisted's listening port logs such a failure and returns, but the
connection stays in the kernel's accept queue, so the listening socket
stays readable: the reactor calls the port again at once, forever, and
logs every time (when its one reserved descriptor is available, it accepts
and closes the waiting clients instead).  L{AcceptPauses} watches the
C{accept} of each listening port (L{PausingEndpoint} hands it the ports):
at the first such failure it stops reading the port (the waiting clients
stay queued in the kernel), logs once, and tries again when a session ends
(its descriptors are free) or after a delay (L{FIRST_DELAY} seconds,
doubling up to L{LONGEST_DELAY}).  The shortage ends, logged once, when
every listener is reading again and one of them has accepted every
connection that waited (C{accept} says there is nothing more to accept):
a gateway that stays at its limit, accepting one connection each time a
session ends, logs neither more nor again.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

__all__ = [
    "EXHAUSTED",
    "FIRST_DELAY",
    "LONGEST_DELAY",
    "AcceptPauses",
    "PausingEndpoint",
    "descriptorLimit",
]

#: The errors of C{accept(2)} that mean the process (or the system) has no
#: descriptor or memory for one more connection.
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: Seconds a paused listener waits before it tries again, the first time;
#: every try that fails doubles it, up to L{LONGEST_DELAY}.
FIRST_DELAY = 0.1
LONGEST_DELAY = 1.0


def descriptorLimit() -> int:
    """
    The descriptors this process may have open: the soft C{RLIMIT_NOFILE}
    (C{ulimit -n}, systemd's C{LimitNOFILE=}).
    """
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _WatchedSocket:
    """
    A listening port's socket, whose C{accept} tells L{AcceptPauses} when
    it fails for want of descriptors (and then reports "nothing to accept",
    so that the port neither logs nor sacrifices a waiting client) and when
    nothing more waits.  Everything else is the socket's own.
    """

    def __init__(self, listening: Any, port: Any, pauses: AcceptPauses) -> None:
        self._socket = listening
        self._port = port
        self._pauses = pauses

    def accept(self) -> tuple[Any, Any]:
        """
        Accept a connection, as the socket does.

        @raise BlockingIOError: in place of an error of L{EXHAUSTED}.
        """
        try:
            return self._socket.accept()
        except BlockingIOError:
            self._pauses.drained()
            raise
        except OSError as problem:
            if problem.errno not in EXHAUSTED:
                raise
            self._pauses.exhausted(self._port, problem.errno)
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


class AcceptPauses:
    """
    The listening ports of one gateway, paused while the process is out
    of descriptors: see the module docstring.

    @ivar pauses: how many times accepting stopped for want of
        descriptors (once for each shortage, however long it lasts and
        however many listeners it stops).
    @ivar short: whether a shortage is under way (accepting failed, and the
        connections that waited have not all been accepted since).
    """

    log = Logger()

    def __init__(
        self,
        clock: Any,
        openSessions: Callable[[], int],
        limit: Callable[[], int] = descriptorLimit,
    ) -> None:
        """
        @param clock: the C{IReactorTime} for the delays.
        @param openSessions: how many client connections are open now (for
            the log).
        @param limit: the descriptor limit (for the log).
        """
        self._clock = clock
        self._openSessions = openSessions
        self._limit = limit
        self._ports: dict[Any, str] = {}
        self._stopped: list[Any] = []
        self._delay = FIRST_DELAY
        self._retry: IDelayedCall | None = None
        self._since = 0.0
        self.pauses = 0
        self.short = False

    def watch(self, port: Any, listener: str) -> bool:
        """
        Watch the C{accept} of C{port} (a Twisted C{tcp.Port} or one of its
        kinds: C{unix}, TLS, adopted), which serves C{listener}.  A port
        without a socket of its own (a test's fake) is left alone.

        @return: whether C{port} is watched.
        """
        listening = getattr(port, "socket", None)
        if listening is None or not hasattr(listening, "accept") or not hasattr(port, "stopReading"):
            return False
        port.socket = _WatchedSocket(listening, port, self)
        self._ports[port] = listener
        return True

    @property
    def listeners(self) -> list[str]:
        """
        The listeners whose ports are watched, by description.
        """
        return list(self._ports.values())

    def exhausted(self, port: Any, code: int) -> None:
        """
        The C{accept} of C{port} failed with C{code} (one of L{EXHAUSTED}):
        stop reading it, log if this starts a shortage, and try again later.
        """
        port.stopReading()
        if port not in self._stopped:
            self._stopped.append(port)
        if not self.short:
            self.short = True
            self.pauses += 1
            self._since = self._clock.seconds()
            self._delay = FIRST_DELAY
            self.log.warn(
                "Out of file descriptors ({error}) with {sessions} client connections open and a limit "
                "of {limit} descriptors: not accepting on {listener} until some are free; open sessions "
                "go on. Raise the limit: LimitNOFILE= in the systemd unit, or ulimit -n.",
                error=errno.errorcode.get(code, str(code)),
                sessions=self._openSessions(),
                limit=self._limit(),
                listener=self._ports.get(port, repr(port)),
            )
        if self._retry is None:
            self._retry = self._clock.callLater(self._delay, self._tryAgain)
            self._delay = min(self._delay * 2, LONGEST_DELAY)

    def drained(self) -> None:
        """
        A listener has nothing more to accept: a shortage under way is over
        if no listener is stopped.
        """
        if not self.short or self._stopped:
            return
        self.short = False
        self._delay = FIRST_DELAY
        self.log.info(
            "File descriptors are free again: accepting connections after {seconds:.1f} s "
            "({sessions} client connections open).",
            seconds=self._clock.seconds() - self._since,
            sessions=self._openSessions(),
        )

    def descriptorsFreed(self) -> None:
        """
        Descriptors may be free (a session has ended): the stopped listeners
        read again; one that still cannot accept stops again at once.
        """
        if self._retry is not None:
            if self._retry.active():
                self._retry.cancel()
            self._retry = None
        stopped, self._stopped = self._stopped, []
        for port in stopped:
            if (
                port in self._ports
                and getattr(port, "connected", False)
                and not getattr(port, "disconnecting", True)
            ):
                port.startReading()

    def _tryAgain(self) -> None:
        self._retry = None
        self.descriptorsFreed()

    def stop(self) -> None:
        """
        The gateway stops: forget its ports, and cancel the next try.
        """
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self._stopped = []
        self._ports.clear()


@implementer(IStreamServerEndpoint)
class PausingEndpoint:
    """
    A server endpoint whose listening port is watched by an
    L{AcceptPauses}.

    @ivar endpoint: the endpoint that listens.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, pauses: AcceptPauses, listener: str) -> None:
        """
        @param endpoint: the endpoint that listens.
        @param pauses: the gateway's L{AcceptPauses}.
        @param listener: the description of the endpoint, for the log.
        """
        self.endpoint = endpoint
        self._pauses = pauses
        self._listener = listener

    def listen(self, protocolFactory: Any) -> Deferred[IListeningPort]:
        """
        Listen as the endpoint does, and have the port watched.
        """

        def watch(port: IListeningPort) -> IListeningPort:
            self._pauses.watch(port, self._listener)
            return port

        return self.endpoint.listen(protocolFactory).addCallback(watch)
