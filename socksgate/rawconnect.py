"""
An outgoing TCP connection on a raw non-blocking socket, for a session the
zero-copy relay (L{socksgate.splicing.SpliceRelay}) will carry.

A Twisted client transport costs a C{Connector}, a C{ClientFactory}, a
C{tcp.Client}, a protocol, a time-out call and a chain of Deferreds per
session; the splice relay then takes its socket away before a byte moves.
L{connectRaw} does only what the relay needs: a non-blocking C{connect}, a
writer registered with the reactor until the socket is connected (or
C{SO_ERROR} says why not), one time-out call.  Its failures are Twisted's
connection errors (L{twisted.internet.error.getConnectError}, and
L{twisted.internet.error.TimeoutError}), so they get the same SOCKS replies
as a C{connectTCP} attempt's.

L{RawConnection} looks to the splice relay like the transport it takes over
(C{socket}, C{fileno}, an empty write buffer, C{connectionLost}); when the
session cannot be spliced after all (the client's transport changed), it is
adopted into a Twisted transport with L{RawConnection.adopt}.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any

from twisted.internet import address, error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IWriteDescriptor
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from .policy import IPAddress

__all__ = ["RawConnection", "connectRaw"]

_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)
_RESET = struct.pack("ii", 1, 0)


def _addressOf(family: int, host: str, port: int) -> address.IPv4Address | address.IPv6Address:
    if family == socket.AF_INET6:
        return address.IPv6Address("TCP", host, port)
    return address.IPv4Address("TCP", host, port)


@implementer(IWriteDescriptor)
class RawConnection:
    """
    A TCP connection to a destination on a raw socket: while connecting,
    the reactor's writer; once connected, the transport a splice relay
    takes over.

    @ivar socket: the socket.
    @ivar connecting: fires with this connection once connected, or fails.
    @ivar relay: the relay, once the client has been answered; told when
        the connection is lost, as L{DestinationProtocol} tells it.
    """

    # What a splice relay reads and resets when it takes a transport over:
    # a raw connection has written nothing.
    dataBuffer = b""
    offset = 0
    _tempDataLen = 0
    disconnecting = False

    def __init__(self, reactor: Any, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.socket = sock
        self.fileno = sock.fileno
        self.connected = False
        self.relay: Any = None
        self._tempDataBuffer: list[bytes] = []
        self._reactor = reactor
        self._peer = peer
        self._timer: IDelayedCall | None = None
        self._registered = False
        self.connecting: Deferred[RawConnection] = Deferred(self._cancel)

    @property
    def transport(self) -> RawConnection:
        """
        The connection is its own transport (the object a relay takes, as
        it takes the C{transport} of a L{socksgate.relay.DestinationProtocol}).
        """
        return self

    def getHost(self) -> address.IPv4Address | address.IPv6Address:
        """
        The connection's local address.
        """
        name = self.socket.getsockname()
        return _addressOf(self.socket.family, name[0], name[1])

    def getPeer(self) -> address.IPv4Address | address.IPv6Address:
        """
        The destination's address, as connected to.
        """
        return _addressOf(self.socket.family, *self._peer)

    def logPrefix(self) -> str:
        """
        The log prefix of the reactor's events.
        """
        return "RawConnection"

    # Connecting.

    def _start(self, timeout: float) -> None:
        problem = self.socket.connect_ex(self._peer)
        if problem == 0:
            self._succeeded()
        elif problem in _IN_PROGRESS:
            self._registered = True
            self._reactor.addWriter(self)
            self._timer = self._reactor.callLater(timeout, self._timedOut)
        else:
            self._failed(error.getConnectError((problem, os.strerror(problem))))

    def doWrite(self) -> None:
        """
        The socket is writable: the connection attempt is over.
        """
        problem = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if problem:
            self._failed(error.getConnectError((problem, os.strerror(problem))))
        else:
            self._succeeded()

    def _stopConnecting(self) -> None:
        if self._registered:
            self._registered = False
            self._reactor.removeWriter(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _succeeded(self) -> None:
        self._stopConnecting()
        self.connected = True
        self.connecting.callback(self)

    def _failed(self, reason: Exception) -> None:
        self._stopConnecting()
        self.socket.close()
        self.connecting.errback(reason)

    def _timedOut(self) -> None:
        self._timer = None
        self._failed(error.TimeoutError())

    def _cancel(self, connecting: Deferred[RawConnection]) -> None:
        self._stopConnecting()
        self.socket.close()

    # The transport a splice relay takes over.

    def stopReading(self) -> None:
        """
        Nothing reads a raw connection but its relay.
        """

    def stopWriting(self) -> None:
        """
        Nothing writes a raw connection but its relay.
        """

    def loseConnection(self) -> None:
        """
        Close the connection before any relay took it.
        """
        if self.relay is None and self.connected:
            self.connected = False
            self.socket.close()

    def connectionLost(self, reason: Failure) -> None:
        """
        The relay is done with the socket: close it (with a reset for an
        abort, as Twisted's transports do) and tell the relay.
        """
        if self.connected:
            self.connected = False
            # Not Failure.check, which walks the class's names each call.
            if isinstance(reason.value, error.ConnectionAborted):
                try:
                    self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                except OSError:
                    pass
            self.socket.close()
        if self._registered:
            # The attempt failed (the reactor reports a hang-up or an error
            # as a lost connection), or the reactor is stopping.
            problem = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self._failed(
                error.getConnectError((problem, os.strerror(problem)))
                if problem
                else error.ConnectError(string=reason.getErrorMessage())
            )
        elif self.relay is not None:
            self.relay.destinationLost(reason)

    def adopt(self, factory: ServerFactory) -> Protocol:
        """
        Hand the connected socket to a Twisted transport with a protocol of
        C{factory} (a L{socksgate.relay.DestinationProtocol}, for the
        stream relay); this object is done with it.
        """
        transport = self._reactor.adoptStreamConnection(self.socket.fileno(), self.socket.family, factory)
        self.connected = False
        self.socket.close()
        return transport.protocol  # type: ignore[no-any-return]


def connectRaw(
    reactor: Any,
    destination: IPAddress,
    port: int,
    timeout: float,
    bindAddress: tuple[str, int] | None = None,
) -> Deferred[RawConnection]:
    """
    Connect a raw non-blocking socket to C{destination}, C{port}.

    @param reactor: a reactor with file descriptors (C{IReactorFDSet},
        C{IReactorTime}, C{IReactorSocket} for L{RawConnection.adopt}).
    @param timeout: seconds the attempt may take; then it fails with
        L{error.TimeoutError}.
    @param bindAddress: the source address, or L{None}.
    @return: a Deferred that fires with the connected L{RawConnection}, or
        fails with Twisted's connection error; cancelling it closes the
        socket.
    """
    family = socket.AF_INET6 if destination.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    connection = RawConnection(reactor, sock, (str(destination), port))
    try:
        if bindAddress is not None:
            sock.bind(bindAddress)
    except OSError as problem:
        connection._failed(error.ConnectBindError(problem.errno, problem.strerror))
    else:
        connection._start(timeout)
    return connection.connecting
