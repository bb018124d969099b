"""
Relaying a TCP session: bytes both ways, back-pressure, half-close.

Each transport is registered as the streaming producer of the other, so
when one side's write buffer fills, Twisted stops reading from the other
side until it drains: a slow reader never makes the gateway buffer without
bound.  A FIN from one side is passed on to the other with
C{loseWriteConnection} (a TLS side, which cannot half-close, gets its TLS
session closed: see L{socksgate.closing}); the session ends when both
directions are closed, or at once when either connection is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IReactorTime, ITransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .bandwidth import RuleBandwidth, ThrottledReader
from .closing import finishWriting, producerFor
from .interfaces import ISession
from .latch import AllClosed
from .splicing import SpliceRelay, canSplice, canSpliceClient
from .vocabulary import IDLE_TIMEOUT

#: Whether L{makeRelay} may choose the zero-copy L{SpliceRelay}; with
#: C{False} every session gets the stream L{Relay} (tests run the same
#: sessions under both).
allowSplice = True


def _nothing() -> None:
    pass


@implementer(ISession)
class Relay:
    """
    Joins the client's connection to the destination's.

    The owner feeds it what each side does (C{fromClient},
    C{clientFinished}, C{clientLost} and the destination's counterparts);
    it calls C{onEnd} once, with the reason, when the session is over, and
    C{onClosed} once both connections are gone.

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
        bandwidth: RuleBandwidth | None = None,
    ) -> None:
        self.client, self.destination = client, destination
        self.bytesOut = self.bytesIn = 0
        self._onEnd = onEnd
        # Each transport read only while its direction's bucket has tokens.
        self._readers = (
            (ThrottledReader(client, bandwidth.outgoing), ThrottledReader(destination, bandwidth.incoming))
            if bandwidth is not None
            else None
        )
        self._closing = AllClosed(onClosed or _nothing, "client", "destination")
        self._clock = clock
        self._idleTimeout = idleTimeout
        self._idleCall: IDelayedCall | None = None
        self._lastActivity = 0.0
        self._clientDone = self._destinationDone = False
        self._ended = False

    def start(self, initialData: bytes = b"", clientFinished: bool = False) -> None:
        """
        Begin relaying, with the bytes that came after the request.

        @param clientFinished: the client already shut down its sending side.
        """
        fromClient, fromDestination = self._readers or (self.client, self.destination)
        self.destination.registerProducer(producerFor(self.destination, fromClient), True)
        self.client.registerProducer(producerFor(self.client, fromDestination), True)
        self.client.resumeProducing()
        self.destination.resumeProducing()
        if self._idleTimeout:
            self._lastActivity = self._clock.seconds()
            self._idleCall = self._clock.callLater(self._idleTimeout, self._checkIdle)
        if initialData:
            self.fromClient(initialData)
        if clientFinished:
            self.clientFinished()

    def fromClient(self, data: bytes) -> None:
        """
        Pass bytes from the client to the destination.
        """
        self.bytesOut += len(data)
        if self._idleCall is not None:
            self._lastActivity = self._clock.seconds()
        self.destination.write(data)
        if self._readers is not None:
            self._readers[0].relayed(len(data))

    def fromDestination(self, data: bytes) -> None:
        """
        Pass bytes from the destination to the client.
        """
        self.bytesIn += len(data)
        if self._idleCall is not None:
            self._lastActivity = self._clock.seconds()
        self.client.write(data)
        if self._readers is not None:
            self._readers[1].relayed(len(data))

    def clientFinished(self) -> None:
        """
        The client will send no more: pass its FIN on.
        """
        if not self._clientDone:
            self._clientDone = True
            self.destination.unregisterProducer()
            finishWriting(self.destination)
            self._endIfBothDone()

    def destinationFinished(self) -> None:
        """
        The destination will send no more: pass its FIN on.
        """
        if not self._destinationDone:
            self._destinationDone = True
            self.client.unregisterProducer()
            finishWriting(self.client)
            self._endIfBothDone()

    def clientLost(self, reason: Failure) -> None:
        """
        The client's connection is gone: close the destination's.
        """
        self._end("client closed", self.destination)
        self._closing.closed("client")

    def destinationLost(self, reason: Failure) -> None:
        """
        The destination's connection is gone: close the client's.
        """
        self._end("destination closed", self.client)
        self._closing.closed("destination")

    def abort(self) -> None:
        """
        Drop both connections at once, discarding what is buffered.
        """
        self.client.abortConnection()
        self.destination.abortConnection()

    def close(self, why: str) -> None:
        """
        End the session from outside (a shutdown, a time-out).
        """
        self._end(why, self.client, self.destination)

    def _endIfBothDone(self) -> None:
        if self._clientDone and self._destinationDone:
            self._end("both sides finished", self.client, self.destination)

    def _checkIdle(self) -> None:
        self._idleCall = None
        idle = self._clock.seconds() - self._lastActivity
        if idle >= self._idleTimeout:
            self._end(IDLE_TIMEOUT, self.client, self.destination)
        else:
            self._idleCall = self._clock.callLater(self._idleTimeout - idle, self._checkIdle)

    def _end(self, why: str, *transports: Any) -> None:
        for transport in transports:
            # A transport with a paused producer would wait for it before
            # closing: it has nothing more to wait for.
            transport.unregisterProducer()
            transport.loseConnection()
        if self._ended:
            return
        self._ended = True
        if self._idleCall is not None:
            self._idleCall.cancel()
            self._idleCall = None
        for reader in self._readers or ():
            reader.cancel()
        self._onEnd(why)


def makeRelay(
    client: ITransport,
    destination: ITransport,
    onEnd: Callable[[str], None],
    clock: IReactorTime,
    idleTimeout: float = 0.0,
    onClosed: Callable[[], None] | None = None,
    bandwidth: RuleBandwidth | None = None,
) -> Relay | SpliceRelay:
    """
    The relay of one TCP session (CONNECT, BIND): the one place where the
    gateway builds one, and chooses which.

    The zero-copy L{SpliceRelay} when it can carry the session (see
    L{canSplice}: Linux, a reactor with file descriptors, two plain TCP
    sockets) and L{allowSplice} is set; the stream L{Relay}, which works
    over any pair of transports, for everything else (TLS, the HAProxy
    wrapper, UNIX sockets, other platforms and reactors).  Callers see the
    same session either way.

    @param client: the client's transport.
    @param destination: the destination's (or BIND peer's) transport.
    @param onEnd: called once, with the reason, when the session is over.
    @param clock: the reactor (the clock of the idle timeout, and the
        reactor a splice relay registers its descriptors with).
    @param idleTimeout: seconds without a byte either way before the
        session ends; 0 for never.
    @param onClosed: called once both connections are gone.
    @param bandwidth: the buckets of the rule that permitted the session,
        if it sets C{bandwidth}.
    @return: the relay, not started yet: call its C{start}.
    """
    if allowSplice and canSplice(client, destination, clock):
        return SpliceRelay(client, destination, onEnd, clock, idleTimeout, onClosed, bandwidth=bandwidth)
    return Relay(client, destination, onEnd, clock, idleTimeout, onClosed, bandwidth)


def splicesFrom(client: ITransport, clock: IReactorTime) -> bool:
    """
    Whether L{makeRelay} will choose the zero-copy relay for a session of
    this client's transport and a plain TCP destination: then its outgoing
    connection need not be a Twisted client transport (see
    L{socksgate.rawconnect}).
    """
    return allowSplice and canSpliceClient(client, clock)


@implementer(IHalfCloseableProtocol)
class DestinationProtocol(Protocol):
    """
    The gateway's connection to a destination.

    It reads nothing until its L{Relay} is attached, so nothing the
    destination sends early is lost or buffered here.

    @ivar onConnected: called with the protocol once connected, if set.

    @ivar relay: the relay, once the client has been answered.
    """

    relay: Relay | SpliceRelay | None = None
    onConnected: Callable[[DestinationProtocol], None] | None = None

    def connectionMade(self) -> None:
        """
        Report the connection to whoever waits for it (C{onConnected}),
        and hold reading until the relay starts if it has not already.
        """
        if self.onConnected is not None:
            self.onConnected(self)
        if self.relay is None:
            self.transport.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        """
        Relay bytes towards the client.
        """
        self.relay.fromDestination(data)  # type: ignore[union-attr]

    def readConnectionLost(self) -> None:
        """
        The destination sent its FIN.
        """
        if self.relay is not None:
            self.relay.destinationFinished()
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our FIN towards the destination has gone out; nothing to do.
        """

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection is gone: end the session.
        """
        if self.relay is not None:
            self.relay.destinationLost(reason)
