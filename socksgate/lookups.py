"""
Name lookups: a thread pool of their own, and a bound on the lookups one
client address may have under way.

Twisted's resolver (L{GAIResolver}) calls C{getaddrinfo} in a thread, by
default in the reactor's pool, which also serves the rest of the process.
A name whose DNS never answers holds a thread for the resolver's whole
time-out; enough of them would starve everything else in that pool (bcrypt
checks of passwords, other clients' lookups).  So the gateway resolves in
a pool of its own of L{NAME_THREADS} threads, and a client address may have
at most L{LOOKUPS_PER_CLIENT} lookups under way (a lookup counts until the
resolver has really finished with it, even after the request timed out or
the client left); one more is refused with the general-failure reply.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

# Twisted's resolver in a thread pool: the class the reactor's default
# resolver is, and which takes a pool of one's choosing.
from twisted.internet._resolver import GAIResolver
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from .threads import runningPool
from .vocabulary import Outcome, RequestRefused
from .wire import ReplyCode

__all__ = ["LOOKUPS_PER_CLIENT", "NAME_THREADS", "LookupLimit", "TooManyLookups", "gatewayResolver"]

#: Threads that resolve names for the gateway.
NAME_THREADS = 32

#: Name lookups one client address may have under way.
LOOKUPS_PER_CLIENT = 8

_resolvers: dict[int, tuple[Any, IHostnameResolver]] = {}


def _getaddrinfo(*arguments: Any) -> Any:
    # Looked up at each call, so that a test may stand in for it.
    return socket.getaddrinfo(*arguments)


def gatewayResolver(reactor: Any) -> IHostnameResolver:
    """
    The resolver for destination names of a gateway on C{reactor}: when
    the reactor's own is Twisted's default (L{GAIResolver} in the
    reactor's pool), the same resolver in a pool of L{NAME_THREADS} threads
    of its own, shared by the gateways on that reactor; otherwise (a
    resolver someone installed) the reactor's.
    """
    installed = getattr(reactor, "nameResolver", None)
    if not isinstance(installed, GAIResolver):
        return installed  # type: ignore[return-value]
    known = _resolvers.get(id(reactor))
    if known is not None and known[0] is reactor:
        return known[1]
    pool: list[Any] = []

    def getPool() -> Any:
        pool[:] = [runningPool(pool[0] if pool else None, reactor, "socksgate-names", NAME_THREADS)]
        return pool[0]

    resolver = GAIResolver(reactor, getPool, _getaddrinfo)
    _resolvers[id(reactor)] = (reactor, resolver)
    return resolver


class TooManyLookups(RequestRefused):
    """
    A client address has L{LOOKUPS_PER_CLIENT} name lookups under way.
    """

    def __init__(self, client: Any, limit: int) -> None:
        super().__init__(
            ReplyCode.GENERAL_FAILURE, Outcome.FAILED, f"{limit} name lookups already under way for {client}"
        )


class LookupLimit:
    """
    Bounds the name lookups each client address has under way, over one
    resolver shared by all of them.
    """

    def __init__(self, resolver: IHostnameResolver, perClient: int = LOOKUPS_PER_CLIENT) -> None:
        self.resolver = resolver
        self.perClient = perClient
        self._underWay: Counter[Any] = Counter()

    def underWay(self, client: Any) -> int:
        """
        How many lookups C{client} has under way.
        """
        return self._underWay[client]

    def forClient(self, client: Any) -> IHostnameResolver:
        """
        The resolver to use for C{client}'s requests: it refuses a lookup
        beyond the limit by raising L{TooManyLookups}.
        """
        return _ClientResolver(self, client)

    def _begin(self, client: Any) -> None:
        if self._underWay[client] >= self.perClient:
            raise TooManyLookups(client, self.perClient)
        self._underWay[client] += 1

    def _end(self, client: Any) -> None:
        self._underWay[client] -= 1
        if not self._underWay[client]:
            del self._underWay[client]


@implementer(IHostnameResolver)
class _ClientResolver:
    """
    The shared resolver, as one client address uses it.
    """

    def __init__(self, limit: LookupLimit, client: Any) -> None:
        self._limit, self._client = limit, client

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IResolutionReceiver:
        """
        Resolve through the shared resolver, counting the lookup for the
        client until it completes.

        @raise TooManyLookups: the client has the most lookups under way.
        """
        self._limit._begin(self._client)
        counted = _Counted(resolutionReceiver, lambda: self._limit._end(self._client))
        try:
            self._limit.resolver.resolveHostName(
                counted, hostName, portNumber, addressTypes, transportSemantics
            )
        except BaseException:
            counted.release()
            raise
        return resolutionReceiver


@implementer(IResolutionReceiver)
class _Counted:
    """
    Passes a resolution on, and says once when it is complete.
    """

    def __init__(self, receiver: IResolutionReceiver, done: Any) -> None:
        self._receiver, self._done = receiver, done

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """
        Pass it on.
        """
        self._receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: Any) -> None:
        """
        Pass it on.
        """
        self._receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        """
        Pass it on, and count the lookup as over (once).
        """
        if self.release():
            self._receiver.resolutionComplete()

    def release(self) -> bool:
        """
        Count the lookup as over, unless it was already.

        @return: whether it was still counted.
        """
        done, self._done = self._done, None
        if done is None:
            return False
        done()
        return True
