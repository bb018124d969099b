"""
L{StatusService}: the status server of a gateway, on an endpoint of its
own, and the observer that counts the gateway's session records while it
runs.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.registry import CollectorRegistry
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger, globalLogPublisher
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.web.server import Request, Site

from ..endpoints import statusEndpoint
from ._gateway import GatewayStatus
from ._resources import statusResource

__all__ = ["StatusService", "statusEndpoint"]


class _QuietSite(Site):
    """
    A site that logs no request: the page polls every 1.5 seconds, and a
    scraper every few, which would fill the gateway's log.
    """

    def log(self, request: Request) -> None:
        pass


class _ConnectionsFactory(WrappingFactory):
    """
    Keeps the status server's connections, so that stopping it closes them
    (a browser keeps its connection open between polls).
    """

    def __init__(self, wrappedFactory: Any) -> None:
        super().__init__(wrappedFactory)
        self._goneWaiters: list[Deferred[None]] = []

    def unregisterProtocol(self, protocol: Any) -> None:
        super().unregisterProtocol(protocol)
        if not self.protocols:
            waiters, self._goneWaiters = self._goneWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def closeAll(self) -> Deferred[None]:
        """
        Drop every connection; fire when they are all gone.
        """
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._goneWaiters.append(waiter)
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        return waiter


class StatusService(Service):
    """
    Serves the status page, C{/status.json} and C{/metrics} of a gateway on
    an endpoint of its own, and counts the gateway's session records while
    it runs.

    It listens in C{privilegedStartService} (so a port below 1024 works
    with C{twistd --uid}); an endpoint that cannot listen at start-up stops
    the gateway from starting, as its SOCKS listeners do.

    @ivar description: the server endpoint description it listens on (see
        L{statusEndpoint}).
    @ivar status: the L{GatewayStatus} it shows.
    @ivar registry: the C{CollectorRegistry} of C{/metrics}, the gateway's
        own; an embedder may register more collectors with it.
    @ivar site: the C{twisted.web} site.
    @ivar port: the L{IListeningPort} once listening, else L{None}.
    """

    log = Logger()

    def __init__(self, description: str, gateway: Any, reactor: Any) -> None:
        self.description = statusEndpoint(description)
        self.reactor = reactor
        self.status = GatewayStatus(gateway, reactor)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.status)
        self.site = _QuietSite(statusResource(self.status, self.registry), reactor=reactor)
        self.site.noisy = False
        self._connections = _ConnectionsFactory(self.site)
        self._connections.noisy = False
        self.port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None
        self._failure: Failure | None = None
        self._portWaiters: list[Deferred[IListeningPort]] = []
        self._starting = False
        self._observer = self.status.observe

    def privilegedStartService(self) -> None:
        """
        Start listening; raise if the endpoint refuses at once.
        """
        super().privilegedStartService()
        if self._listening is not None:
            return
        self._failure = None
        self._starting = True
        try:
            self._listening = serverFromString(self.reactor, self.description).listen(self._connections)
            self._listening.addCallbacks(self._listened, self._notListening)
        finally:
            self._starting = False
        if self._failure is not None:
            self._listening = None
            self._failure.raiseException()

    def startService(self) -> None:
        """
        Count the gateway's session records from now on, and listen unless
        L{privilegedStartService} has.
        """
        super().startService()
        self.status.startedAt = self.reactor.seconds()
        globalLogPublisher.addObserver(self._observer)
        self.privilegedStartService()

    def stopService(self) -> Deferred[None]:
        """
        Stop counting, stop listening and close the open connections.

        @return: a Deferred that fires when the port and the connections
            are closed.
        """
        super().stopService()
        globalLogPublisher.removeObserver(self._observer)
        listening, self._listening = self._listening, None
        port, self.port = self.port, None
        if listening is not None and not listening.called:
            listening.cancel()
        stopping = [self._connections.closeAll()]
        if port is not None:
            stopping.insert(0, maybeDeferred(port.stopListening))
        return DeferredList(stopping, consumeErrors=True).addCallback(lambda _: None)

    def whenListening(self) -> Deferred[IListeningPort]:
        """
        A Deferred that fires with the L{IListeningPort} once the service
        listens (at once if it does), or fails if it cannot; a test finds
        an ephemeral port with it.
        """
        if self.port is not None:
            return succeed(self.port)
        if self._failure is not None:
            return fail(self._failure)
        waiter: Deferred[IListeningPort] = Deferred()
        self._portWaiters.append(waiter)
        return waiter

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        self.log.info("status page and /metrics on {address}", address=str(port.getHost()))
        waiters, self._portWaiters = self._portWaiters, []
        for waiter in waiters:
            waiter.callback(port)

    def _notListening(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        self._failure = failure
        if not self._starting:
            self.log.failure(
                "status page: cannot listen on {description}", failure, description=self.description
            )
        waiters, self._portWaiters = self._portWaiters, []
        for waiter in waiters:
            waiter.errback(failure)
