"""
The outbound step: a route turns a permitted request into connection
attempts over the addresses the policy permitted.

L{DirectRoute} (C{via = "direct"}) connects to the addresses itself, with
L{connectToAddresses}; L{socksgate.upstreamroute.UpstreamRoute} goes
through an C{[[upstream]]} SOCKS server.  L{routeFor} chooses.

L{connectToAddresses} is the one place that makes connection attempts, for
one address and for many alike, over plain C{reactor.connectTCP}: the first
attempt starts at once and a new one every L{ATTEMPT_DELAY} seconds, in the
resolver's order, as L{twisted.internet.endpoints.HostnameEndpoint} does,
until one connects; the others are then stopped.  The connect timeout
bounds them all together.  One address is simply no staggering: one
connector, one factory, one Deferred and no timer of ours (the connector's
own timeout is the deadline); when the zero-copy relay will carry the
session, one address is a raw socket (L{socksgate.rawconnect}) instead.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConnector, IDelayedCall, IReactorFDSet
from twisted.internet.protocol import ClientFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import IRoute
from .policy import AccessRequest, Decision, IPAddress
from .rawconnect import connectRaw
from .relay import DestinationProtocol
from .upstreamroute import UpstreamRoute
from .upstreams import UpstreamTable
from .vocabulary import RequestRefused
from .wire import ReplyCode

__all__ = ["ATTEMPT_DELAY", "DIRECT", "DirectRoute", "connectToAddresses", "routeFor"]

#: Seconds between the starts of two connection attempts, as in
#: L{twisted.internet.endpoints.HostnameEndpoint}.
ATTEMPT_DELAY = 0.3

#: The route name of connecting straight to the destination.
DIRECT = "direct"


@implementer(IRoute)
class DirectRoute:
    """
    Connect straight to the destination's permitted addresses, from the
    gateway's source address (C{external}), with L{connectToAddresses}.

    @ivar reactor: the reactor to connect with (C{IReactorTCP} and
        C{IReactorTime}).
    @ivar timeout: the connect timeout, over all attempts.
    @ivar bindHost: the source address, or L{None} for the system's choice.
    @ivar raw: the zero-copy relay will carry the session: one address is
        connected with L{connectRaw} (see L{connectToAddresses}).
    """

    __slots__ = ("bindHost", "raw", "reactor", "timeout")

    def __init__(
        self, reactor: Any, timeout: float, bindHost: IPAddress | None = None, raw: bool = False
    ) -> None:
        self.reactor, self.timeout, self.bindHost, self.raw = reactor, timeout, bindHost, raw

    def connect(
        self, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> Deferred[DestinationProtocol]:
        """
        Connect to the first of C{addresses} that answers on C{port}.

        @see: L{IRoute.connect}
        """
        return connectToAddresses(self.reactor, addresses, port, self.timeout, self.bindHost, self.raw)


def routeFor(
    decision: Decision,
    reactor: Any,
    timeout: float,
    bindHost: IPAddress | None = None,
    raw: bool = False,
    upstreams: UpstreamTable | None = None,
) -> IRoute:
    """
    The route that carries out a permitting C{decision}: its C{route} names
    it (L{DIRECT}, or an C{[[upstream]]} of C{upstreams}).

    @param reactor: the reactor a route connects with.
    @param timeout: the connect timeout.
    @param bindHost: the source address of the connections.
    @param raw: the zero-copy relay will carry the session (L{DirectRoute.raw}).
    @param upstreams: the gateway's upstreams, if it has any.
    @raise RequestRefused: with 0x01 (outcome C{error}, the decision
        attached) for a route this gateway does not know, such as an
        upstream's name from an L{IAccessPolicy} of one's own: nothing is
        connected.
    """
    if decision.route == DIRECT:
        return DirectRoute(reactor, timeout, bindHost, raw)
    upstream = upstreams.upstreams.get(decision.route) if upstreams is not None else None
    if upstream is not None:
        assert upstreams is not None
        return UpstreamRoute(reactor, upstream, upstreams, timeout, bindHost)
    raise RequestRefused(
        ReplyCode.GENERAL_FAILURE,
        "error",
        f"the access policy chose route {decision.route!r}; this gateway has no such [[upstream]]",
        decision,
    )


def connectToAddresses(
    reactor: Any,
    addresses: list[IPAddress],
    port: int,
    timeout: float,
    bindHost: IPAddress | None = None,
    raw: bool = False,
) -> Deferred[DestinationProtocol]:
    """
    Connect a L{DestinationProtocol} to the first of C{addresses} that
    answers, starting a new attempt every L{ATTEMPT_DELAY} seconds until one
    connects.  Its transport is paused until a relay takes it.

    With C{raw} (the zero-copy relay will carry the session), one address
    and a reactor with file descriptors, the connection is a
    L{socksgate.rawconnect.RawConnection} instead (L{connectRaw}: no
    Twisted client transport, same failures); several addresses are
    staggered as above.

    Cancelling the Deferred stops every attempt under way.

    @param timeout: the seconds all the attempts together may take; then
        every attempt is stopped and the Deferred fails with
        L{defer.TimeoutError} (0x06).
    @param bindHost: the source address, or L{None} for the system's
        choice; when given, only addresses of its family are tried.
    @param raw: the zero-copy relay will carry the session.
    @return: a Deferred that fires with the connected protocol, or fails
        with the last attempt's failure when all of them failed.
    @raise RequestRefused: (in the Deferred) with 0x03 when no address is
        of the source address's family.
    """
    bindAddress = None
    if bindHost is not None:
        addresses = [address for address in addresses if address.version == bindHost.version]
        bindAddress = (str(bindHost), 0)
        if not addresses:
            return defer.fail(
                RequestRefused(
                    ReplyCode.NETWORK_UNREACHABLE,
                    "failed",
                    f"no IPv{bindHost.version} address to reach from {bindHost}",
                )
            )
    if raw and len(addresses) == 1 and IReactorFDSet.providedBy(reactor):
        return connectRaw(reactor, addresses[0], port, timeout, bindAddress)  # type: ignore[return-value]
    return _Attempts(reactor, addresses, port, timeout, bindAddress).connected


class _Attempts(ClientFactory):
    """
    The connection attempts of one request: the factory of the first
    attempt, and what every attempt reports to.

    Each later attempt has a L{_LaterAttempt} factory, which says which
    attempt it is, so that the one that connects is known and the others
    are stopped.

    @ivar connected: fires with the connected protocol, or the failure.
    """

    noisy = False

    def __init__(
        self,
        reactor: Any,
        addresses: list[IPAddress],
        port: int,
        timeout: float,
        bindAddress: tuple[str, int] | None,
    ) -> None:
        self.connected: Deferred[DestinationProtocol] = Deferred(self._cancel)
        self._reactor, self._addresses, self._port = reactor, addresses, port
        self._timeout, self._bindAddress = timeout, bindAddress
        #: The connector of each attempt started, None once it is over.
        self._connectors: list[IConnector | None] = []
        self._pending = 0
        self._timer: IDelayedCall | None = None
        self._deadline = 0.0
        self._done = False
        self._attempt(self, timeout)
        if len(addresses) > 1:
            # One address needs no timer: its connector's timeout is the
            # deadline.
            self._deadline = reactor.seconds() + timeout
            self._schedule(timeout)

    def _attempt(self, factory: ClientFactory, timeout: float) -> None:
        """
        Start the next attempt, bounded by what is left of the timeout.
        """
        address = self._addresses[len(self._connectors)]
        self._connectors.append(None)
        self._pending += 1
        self._connectors[-1] = self._reactor.connectTCP(
            str(address), self._port, factory, timeout, self._bindAddress
        )

    def _schedule(self, left: float) -> None:
        """
        Wake up for the next attempt, or at the deadline when no attempt is
        left to start before it.
        """
        if left > ATTEMPT_DELAY and len(self._connectors) < len(self._addresses):
            self._timer = self._reactor.callLater(ATTEMPT_DELAY, self._tick)
        else:
            self._timer = self._reactor.callLater(left, self._timedOut)

    def _tick(self) -> None:
        """
        Start the next attempt.
        """
        self._timer = None
        left = self._deadline - self._reactor.seconds()
        self._attempt(_LaterAttempt(self, len(self._connectors)), left)
        self._schedule(left)

    def _timedOut(self) -> None:
        """
        The deadline came with no attempt connected: stop them all.
        """
        self._timer = None
        self._finish(defer.TimeoutError(f"no answer within {self._timeout:g} seconds"))

    def buildProtocol(self, addr: Any, index: int = 0) -> DestinationProtocol | None:
        """
        Attempt C{index} connected: the first to connect wins and the others
        are stopped; a later one gets no protocol, which closes its
        connection.
        """
        if self._done:
            return None
        self._connectors[index] = None
        self._stop()
        protocol = DestinationProtocol()
        protocol.onConnected = self._connectionMade
        return protocol

    def _connectionMade(self, protocol: DestinationProtocol) -> None:
        self.connected.callback(protocol)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure, index: int = 0) -> None:
        """
        Attempt C{index} failed: once no attempt is under way or left to
        start, the last failure is the result.
        """
        if self._done:
            return
        self._connectors[index] = None
        self._pending -= 1
        if not self._pending and len(self._connectors) == len(self._addresses):
            self._finish(reason)

    def _finish(self, reason: Failure | Exception) -> None:
        self._stop()
        self.connected.errback(reason)

    def _stop(self) -> None:
        """
        Stop the timer and every attempt still under way; from now on,
        what the attempts report is ignored.
        """
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        connectors, self._connectors = self._connectors, []
        for connector in connectors:
            if connector is not None:
                connector.stopConnecting()

    def _cancel(self, connected: Deferred[DestinationProtocol]) -> None:
        self._stop()


class _LaterAttempt(ClientFactory):
    """
    The factory of an attempt after the first: it tells L{_Attempts} which
    attempt it is.
    """

    noisy = False

    def __init__(self, attempts: _Attempts, index: int) -> None:
        self._attempts, self._index = attempts, index

    def buildProtocol(self, addr: Any) -> DestinationProtocol | None:
        return self._attempts.buildProtocol(addr, self._index)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self._attempts.clientConnectionFailed(connector, reason, self._index)
