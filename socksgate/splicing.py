"""
The zero-copy relay: bytes of a TCP session moved kernel to kernel with
C{os.splice}, never copied into Python.

Once a session is granted, L{SpliceRelay} takes both sockets from their
Twisted transports and registers descriptors of its own with the reactor
(one per socket, reading and writing).  Bytes from one socket are spliced
into a pipe, and from the pipe into the other socket.  A pipe is taken from
a process-wide L{PipePool} only while bytes are in flight, and given back
once drained, so an idle session holds no pipe.

Taking a socket from a transport: Twisted has no "detach".  The relay
stops the transport reading and writing (it unregisters it), takes the
bytes still in its write buffer (the SOCKS reply) to send first, and hides
the transport's descriptor number (its C{fileno} answers -1 while the relay
owns the socket), so that nothing the transport does can add, remove or
receive a registration keyed by that number, which the relay's own
descriptor uses now.  At the end the relay unregisters its descriptor,
gives the transport its number back and calls the transport's
C{connectionLost}: Twisted then closes the socket, exactly once (shutdown,
or a reset for an abort), and the protocols hear of it as they do in the
stream relay.

Back-pressure is the pipe: a source is read only while its pipe is empty;
when the sink takes only part of it (C{EAGAIN}), reading the source stops
until the sink is writable and the pipe drained.  At most one pipe's worth
(L{PIPE_SIZE}) is in flight in each direction.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFDSet,
    IReactorTime,
    IReadWriteDescriptor,
    ISSLTransport,
    ITransport,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from .bandwidth import Allowance, RuleBandwidth
from .interfaces import ISession
from .latch import AllClosed
from .rawconnect import RawConnection
from .vocabulary import IDLE_TIMEOUT

__all__ = ["PIPE_POOL", "PIPE_SIZE", "POOL_LIMIT", "PipePool", "SpliceRelay", "canSplice", "canSpliceClient"]

#: Whether this platform can splice (Linux, Python 3.10 or later).
SPLICE_AVAILABLE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")

#: The size asked for each pipe (C{F_SETPIPE_SZ}): the most in flight in
#: one direction of one session.
PIPE_SIZE = 256 * 1024

#: Drained pipes the pool keeps for the next session; more are closed.
POOL_LIMIT = 32

_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if SPLICE_AVAILABLE else 0
_INET = (socket.AF_INET, socket.AF_INET6)


def _nothing() -> None:
    pass


def _hidden() -> int:
    return -1


class PipePool:
    """
    Pipes for splicing, non-blocking, each sized L{PIPE_SIZE}: taken while
    bytes are in flight, given back once drained.  At most C{limit} drained
    pipes are kept; the others are closed.
    """

    def __init__(self, limit: int = POOL_LIMIT, size: int = PIPE_SIZE) -> None:
        self.limit, self.size = limit, size
        self._free: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._free)

    def take(self) -> tuple[int, int]:
        """
        A drained pipe, as C{(read end, write end)}.
        """
        if self._free:
            return self._free.pop()
        pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(pipe[1], fcntl.F_SETPIPE_SZ, self.size)
        except OSError:
            # Over the user's pipe quota: the pipe keeps its default size.
            pass
        return pipe

    def give(self, pipe: tuple[int, int]) -> None:
        """
        Take back a drained pipe.
        """
        if len(self._free) < self.limit:
            self._free.append(pipe)
        else:
            self.discard(pipe)

    def discard(self, pipe: tuple[int, int]) -> None:
        """
        Close a pipe that may still hold bytes.
        """
        os.close(pipe[0])
        os.close(pipe[1])

    def clear(self) -> None:
        """
        Close every pipe kept.
        """
        free, self._free = self._free, []
        for pipe in free:
            self.discard(pipe)


#: The pool of every splice relay of this process.
PIPE_POOL = PipePool()

if SPLICE_AVAILABLE:
    # A worker forked from a process that relayed must not share its pipes.
    os.register_at_fork(after_in_child=PIPE_POOL.clear)


def _plainTCP(transport: object) -> bool:
    if not isinstance(transport, (tcp.Server, tcp.Client, RawConnection)) or ISSLTransport.providedBy(
        transport
    ):
        return False
    if getattr(transport, "TLS", False) or transport.disconnecting or not transport.connected:
        return False
    sock = getattr(transport, "socket", None)
    return sock is not None and sock.family in _INET


def canSplice(client: object, destination: object, reactor: object) -> bool:
    """
    Whether L{SpliceRelay} can carry a session: Linux with C{os.splice}, a
    reactor with file descriptors (C{IReactorFDSet}), and two plain TCP
    transports of that reactor (C{tcp.Server}, C{tcp.Client} or a
    L{RawConnection} over IPv4 or IPv6: not TLS, not wrapped by a protocol wrapper such as
    L{socksgate.haproxy}'s, not a UNIX socket), both still connected.
    """
    return (
        SPLICE_AVAILABLE
        and IReactorFDSet.providedBy(reactor)
        and _plainTCP(client)
        and _plainTCP(destination)
    )


def canSpliceClient(client: object, reactor: object) -> bool:
    """
    Whether L{SpliceRelay} can carry a session of C{client}'s transport to
    a plain TCP destination (see L{canSplice}).
    """
    return SPLICE_AVAILABLE and IReactorFDSet.providedBy(reactor) and _plainTCP(client)


@implementer(IReadWriteDescriptor)
class _Side:
    """
    One socket of a spliced session, as the reactor sees it.

    @ivar pipe: the pipe of the bytes read from this socket, while any are
        in flight.
    @ivar inPipe: how many bytes are in C{pipe}.
    @ivar head: bytes to write to this socket before any from the pipe
        (the reply, the bytes that came with the request).
    @ivar eof: this socket sent its FIN.
    @ivar finished: its FIN was passed on.
    @ivar allowance: the share of its rule's bucket for the bytes read
        from this socket, if the rule sets C{bandwidth}.
    """

    __slots__ = (
        "allowance", "eof", "fd", "finished", "head", "inPipe", "name", "peer", "pipe", "reading", "relay",
        "socket", "transport", "writing",
    )  # fmt: skip

    def __init__(self, relay: SpliceRelay, name: str, transport: Any) -> None:
        self.relay, self.name, self.transport = relay, name, transport
        self.socket: socket.socket = transport.socket
        self.fd = -1
        self.peer: _Side = self
        self.pipe: tuple[int, int] | None = None
        self.inPipe = 0
        self.head = b""
        self.eof = self.finished = self.reading = self.writing = False
        self.allowance: Allowance | None = None

    def fileno(self) -> int:
        """
        The socket's descriptor, -1 once closed.
        """
        return self.fd

    def doRead(self) -> None:
        """
        The socket is readable.
        """
        self.relay._readFrom(self)

    def doWrite(self) -> None:
        """
        The socket is writable.
        """
        self.relay._writeTo(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped the socket (it stops, or the socket hung up).
        """
        self.reading = self.writing = False
        self.relay._closeSide(self, reason)

    def logPrefix(self) -> str:
        """
        The log prefix of the reactor's events.
        """
        return "SpliceRelay"


@implementer(ISession)
class SpliceRelay:
    """
    Joins two plain TCP connections in the kernel (see the module
    docstring); the same session as L{socksgate.relay.Relay}: the same
    events, the same reasons for C{onEnd}, C{onClosed} once both
    connections are closed.

    @ivar bytesOut: bytes the client sent towards the destination.
    @ivar bytesIn: bytes the destination sent back.
    """

    def __init__(
        self,
        client: ITransport,
        destination: ITransport,
        onEnd: Callable[[str], None],
        clock: IReactorTime,
        idleTimeout: float = 0.0,
        onClosed: Callable[[], None] | None = None,
        pool: PipePool = PIPE_POOL,
        bandwidth: RuleBandwidth | None = None,
    ) -> None:
        self.client, self.destination = client, destination
        self.bytesOut = self.bytesIn = 0
        self._onEnd = onEnd
        self._reactor: Any = clock
        self._pool = pool
        self._closing = AllClosed(onClosed or _nothing, "client", "destination")
        self._idleTimeout = idleTimeout
        self._idleCall: IDelayedCall | None = None
        self._lastActivity = 0.0
        self._ended = self._shuttingDown = self._aborting = False
        self._client = _Side(self, "client", client)
        self._destination = _Side(self, "destination", destination)
        self._client.peer, self._destination.peer = self._destination, self._client
        if bandwidth is not None:
            self._client.allowance = Allowance(bandwidth.outgoing)
            self._destination.allowance = Allowance(bandwidth.incoming)

    @property
    def inFlight(self) -> int:
        """
        The bytes the relay holds (in pipes, and still to write first).
        """
        client, destination = self._client, self._destination
        return client.inPipe + destination.inPipe + len(client.head) + len(destination.head)

    def start(self, initialData: bytes = b"", clientFinished: bool = False) -> None:
        """
        Take both sockets and begin relaying, with the bytes that came
        after the request.

        @param clientFinished: the client already shut down its sending side.
        """
        for side in (self._client, self._destination):
            self._takeOver(side)
        self._destination.head += initialData
        self.bytesOut += len(initialData)
        self._client.eof = clientFinished
        if self._idleTimeout:
            self._lastActivity = self._reactor.seconds()
            self._idleCall = self._reactor.callLater(self._idleTimeout, self._checkIdle)
        self._writeTo(self._destination)
        self._writeTo(self._client)

    def _takeOver(self, side: _Side) -> None:
        transport = side.transport
        transport.stopReading()
        transport.stopWriting()
        # What the transport has not sent yet (the reply) goes first.
        side.head = transport.dataBuffer[transport.offset :] + b"".join(transport._tempDataBuffer)
        transport.dataBuffer, transport.offset = b"", 0
        transport._tempDataBuffer, transport._tempDataLen = [], 0
        side.fd = side.socket.fileno()
        transport.fileno = _hidden

    # The client connection's events (ISession): the relay reads the
    # sockets itself, so these only come from before it started.

    def fromClient(self, data: bytes) -> None:
        """
        Pass bytes from the client to the destination.
        """
        self.bytesOut += len(data)
        self._destination.head += data
        self._writeTo(self._destination)

    def fromDestination(self, data: bytes) -> None:
        """
        Pass bytes from the destination to the client.
        """
        self.bytesIn += len(data)
        self._client.head += data
        self._writeTo(self._client)

    def clientFinished(self) -> None:
        """
        The client will send no more: pass its FIN on once its bytes are.
        """
        self._sourceFinished(self._client)

    def destinationFinished(self) -> None:
        """
        The destination will send no more: pass its FIN on.
        """
        self._sourceFinished(self._destination)

    def clientLost(self, reason: Failure) -> None:
        """
        The client's connection is gone: close the destination's.
        """
        self._lost(self._client, "client closed")

    def destinationLost(self, reason: Failure) -> None:
        """
        The destination's connection is gone: close the client's.
        """
        self._lost(self._destination, "destination closed")

    def abort(self) -> None:
        """
        Drop both connections at once (a reset), discarding what is in
        flight.
        """
        self._aborting = True
        aborted = Failure(ConnectionAborted())
        self._closeSide(self._client, aborted)
        self._closeSide(self._destination, aborted)

    def close(self, why: str) -> None:
        """
        End the session from outside (a shutdown, a time-out): what is in
        flight is delivered, then both connections close.
        """
        self._end(why)

    # Moving bytes.

    def _readFrom(self, source: _Side) -> None:
        if source.fd < 0 or self._shuttingDown:
            return
        size = PIPE_SIZE if source.allowance is None else min(PIPE_SIZE, source.allowance.available())
        if size <= 0:
            # The bucket is empty: read again at this side's turn.
            self._setReading(source, False)
            source.allowance.wait(lambda: self._refilled(source))  # type: ignore[union-attr]
            return
        pool = self._pool
        if source.pipe is None:
            try:
                source.pipe = pool.take()
            except OSError as problem:
                if problem.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
                    raise
                self._copyFrom(source)
                return
        try:
            count = os.splice(source.fd, source.pipe[1], size, flags=_FLAGS)
        except BlockingIOError:
            count = -1
        except OSError as problem:
            self._failed(source, problem)
            return
        if count <= 0:
            if source.inPipe == 0:
                pool.give(source.pipe)
                source.pipe = None
            if count == 0:
                self._sourceFinished(source)
            return
        source.inPipe += count
        if source.allowance is not None:
            source.allowance.spend(count)
        if source is self._client:
            self.bytesOut += count
        else:
            self.bytesIn += count
        if self._idleCall is not None:
            self._lastActivity = self._reactor.seconds()
        self._writeTo(source.peer)

    def _copyFrom(self, source: _Side) -> None:
        """
        No pipe can be had (the process is out of descriptors): move what
        C{source} has through memory, ahead of the sink's next bytes, as
        the stream relay would; the next read splices again.
        """
        try:
            data = source.socket.recv(PIPE_SIZE)
        except BlockingIOError:
            return
        except OSError as problem:
            self._failed(source, problem)
            return
        if not data:
            self._sourceFinished(source)
            return
        source.peer.head += data
        if source is self._client:
            self.bytesOut += len(data)
        else:
            self.bytesIn += len(data)
        if self._idleCall is not None:
            self._lastActivity = self._reactor.seconds()
        self._writeTo(source.peer)

    def _writeTo(self, sink: _Side) -> None:
        if sink.fd < 0:
            return
        source = sink.peer
        try:
            if sink.head:
                sent = sink.socket.send(sink.head)
                sink.head = sink.head[sent:]
                if sink.head:
                    self._waitFor(sink)
                    return
            pipe = source.pipe
            while source.inPipe:
                moved = os.splice(pipe[0], sink.fd, source.inPipe, flags=_FLAGS)  # type: ignore[index]
                if moved <= 0:
                    # The pipe is empty after all: nothing is in flight.
                    source.inPipe = 0
                    break
                source.inPipe -= moved
        except BlockingIOError:
            self._waitFor(sink)
            return
        except OSError as problem:
            self._failed(sink, problem)
            return
        if source.inPipe:
            self._waitFor(sink)
            return
        # Everything towards the sink is delivered.
        if source.pipe is not None:
            self._pool.give(source.pipe)
            source.pipe = None
        self._setWriting(sink, False)
        if self._shuttingDown:
            self._closeSide(sink, Failure(ConnectionDone()))
        elif source.eof:
            self._passFIN(source)
        else:
            self._setReading(source, True)

    def _refilled(self, source: _Side) -> None:
        # Unless the sink is still taking what was read before.
        if not source.eof and not source.peer.writing and not self._shuttingDown:
            self._setReading(source, True)

    def _waitFor(self, sink: _Side) -> None:
        self._setReading(sink.peer, False)
        self._setWriting(sink, True)

    def _setReading(self, side: _Side, reading: bool) -> None:
        if side.reading is not reading and side.fd >= 0:
            side.reading = reading
            if reading:
                self._reactor.addReader(side)
            else:
                self._reactor.removeReader(side)

    def _setWriting(self, side: _Side, writing: bool) -> None:
        if side.writing is not writing and side.fd >= 0:
            side.writing = writing
            if writing:
                self._reactor.addWriter(side)
            else:
                self._reactor.removeWriter(side)

    # Half-close, loss and the end.

    def _sourceFinished(self, source: _Side) -> None:
        source.eof = True
        self._setReading(source, False)
        if not source.inPipe and not source.peer.head and not self._shuttingDown:
            self._passFIN(source)

    def _passFIN(self, source: _Side) -> None:
        if source.finished:
            return
        source.finished = True
        sink = source.peer
        if sink.fd >= 0:
            try:
                sink.socket.shutdown(socket.SHUT_WR)
            except OSError:
                # The sink is gone; reading from it will say so.
                pass
        if sink.finished:
            self._end("both sides finished")

    def _failed(self, side: _Side, problem: OSError) -> None:
        self._closeSide(side, Failure(ConnectionLost(str(problem))))

    def _closeSide(self, side: _Side, reason: Failure) -> None:
        """
        Close C{side}'s socket through its transport, which tells its
        protocol (and so the relay's C{clientLost} or C{destinationLost}).
        """
        if side.fd < 0:
            return
        self._setReading(side, False)
        self._setWriting(side, False)
        side.fd = -1
        side.head = b""
        peer = side.peer
        if peer.pipe is not None:
            # Bytes towards this side can go nowhere now.
            self._pool.discard(peer.pipe)
            peer.pipe, peer.inPipe = None, 0
        transport = side.transport
        transport.fileno = side.socket.fileno
        transport.connectionLost(reason)

    def _lost(self, side: _Side, why: str) -> None:
        if side.fd >= 0:
            # Lost through its transport, not by the relay (which owns the
            # socket: close a spliced session with close or abort).
            self._setReading(side, False)
            self._setWriting(side, False)
            side.fd = -1
            side.transport.fileno = side.socket.fileno
            if side.peer.pipe is not None:
                self._pool.discard(side.peer.pipe)
                side.peer.pipe, side.peer.inPipe = None, 0
        if side.pipe is not None and not side.inPipe:
            self._pool.give(side.pipe)
            side.pipe = None
        self._end(why)
        self._closing.closed(side.name)

    def _end(self, why: str) -> None:
        if not self._ended:
            self._ended = True
            if self._idleCall is not None:
                self._idleCall.cancel()
                self._idleCall = None
            self._onEnd(why)
        self._shutDown()

    def _shutDown(self) -> None:
        """
        Read no more; close each socket once what is in flight towards it
        is delivered (at once for an abort).
        """
        self._shuttingDown = True
        for side in (self._client, self._destination):
            if side.allowance is not None:
                side.allowance.cancel()
            if side.fd < 0:
                continue
            self._setReading(side, False)
            if self._aborting:
                self._closeSide(side, Failure(ConnectionAborted()))
            elif side.head or side.peer.inPipe:
                self._setWriting(side, True)
            else:
                self._closeSide(side, Failure(ConnectionDone()))

    def _checkIdle(self) -> None:
        self._idleCall = None
        idle = self._reactor.seconds() - self._lastActivity
        if idle >= self._idleTimeout:
            self._end(IDLE_TIMEOUT)
        else:
            self._idleCall = self._reactor.callLater(self._idleTimeout - idle, self._checkIdle)
