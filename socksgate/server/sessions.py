"""
The open sessions of a gateway, and every limit on them in one place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from ..addresses import IPAddress
from ..config import ServerConfig
from ..ratelimit import SessionRates

__all__ = ["MAX_ASSOCIATIONS_PER_CLIENT", "SessionTable"]

#: UDP associations one client address may hold open at once, across all
#: the listeners of a gateway.
MAX_ASSOCIATIONS_PER_CLIENT = 16


class SessionTable:
    """
    The open client connections of a gateway, with its limits: sessions
    in all (C{max-sessions}), per client address
    (C{max-sessions-per-client}) and UDP associations per client address
    (L{MAX_ASSOCIATIONS_PER_CLIENT}).  The listeners of one gateway share
    one table.

    @ivar open: the protocols of the open connections.
    @ivar associations: the UDP associations open for each client address.
    @ivar releaseObservers: called, without arguments, whenever a
        connection is released (its descriptors are closed).
    @ivar rates: the rules' C{sessions-per-second} buckets.
    """

    def __init__(self) -> None:
        self.open: set[Any] = set()
        self.associations: Counter[IPAddress | None] = Counter()
        self._perClient: Counter[IPAddress | None] = Counter()
        self._emptyWaiters: list[Deferred[None]] = []
        self.releaseObservers: list[Callable[[], object]] = []
        self.rates = SessionRates()

    def whenEmpty(self) -> Deferred[None]:
        """
        A Deferred that fires when no connection is open, client or
        destination.
        """
        if not self.open:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._emptyWaiters.append(waiter)
        return waiter

    def admit(self, protocol: Any, client: IPAddress | None, config: ServerConfig) -> str:
        """
        Add a connection unless a limit is reached.

        @return: an empty string if admitted, else why not.
        """
        if len(self.open) >= config.maxSessions:
            return f"max-sessions ({config.maxSessions}) reached"
        if client is not None and self._perClient[client] >= config.maxSessionsPerClient:
            return f"max-sessions-per-client ({config.maxSessionsPerClient}) reached for {client}"
        self.open.add(protocol)
        self._perClient[client] += 1
        return ""

    def release(self, protocol: Any, client: IPAddress | None) -> None:
        """
        Forget a connection that has ended.
        """
        if protocol in self.open:
            self.open.discard(protocol)
            self._perClient[client] -= 1
            if not self._perClient[client]:
                del self._perClient[client]
            for observer in self.releaseObservers:
                observer()
        if not self.open:
            waiters, self._emptyWaiters = self._emptyWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def admitAssociation(self, client: IPAddress | None) -> str:
        """
        Count a new UDP association of C{client} unless it holds the most.

        @return: an empty string if admitted, else why not.
        """
        if self.associations[client] >= MAX_ASSOCIATIONS_PER_CLIENT:
            return f"{MAX_ASSOCIATIONS_PER_CLIENT} UDP associations already open for {client}"
        self.associations[client] += 1
        return ""

    def releaseAssociation(self, client: IPAddress | None) -> None:
        """
        Forget a UDP association of C{client} that has ended.
        """
        self.associations[client] -= 1
        if self.associations[client] <= 0:
            del self.associations[client]
