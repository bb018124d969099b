"""
Building a running gateway from a configuration: the service that
C{twistd socksgate} starts, and that embedding applications can start
themselves.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from typing import Any

from twisted.application import strports
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHostnameResolver, IStreamServerEndpoint
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from .accepting import AcceptPauses, PausingEndpoint
from .accesslog import AccessLogService
from .auth import LoginThrottle
from .bandwidth import BandwidthLimits
from .config import Config, ConfigError, loadConfig
from .descriptors import guardAgainstDescriptorReuse
from .haproxy import HEADER_PREFIX, ProxyHeaderFactory
from .interfaces import IAccessPolicy
from .privileges import preload
from .server import SessionTable, SOCKSServerFactory
from .status import StatusService
from .upstreams import UpstreamTable

__all__ = [
    "CLOSE_TIMEOUT",
    "GatewayService",
    "buildService",
    "listenerService",
]

#: Seconds a stopping gateway waits for the sessions it closed to end
#: (their last bytes written, their records emitted) before it drops the
#: connections that remain.
CLOSE_TIMEOUT = 5.0


def listenerService(
    description: str,
    factory: SOCKSServerFactory,
    reactor: Any,
    endpoint: IStreamServerEndpoint | None = None,
    pauses: AcceptPauses | None = None,
) -> IService:
    """
    The service that listens on C{description} for C{factory}, or on
    C{endpoint} when one is given (a worker process's adopted socket for
    C{description}; see L{socksgate.workers}).  With C{pauses}, the
    listening port stops accepting while the process is out of descriptors
    (see L{socksgate.accepting}).

    A C{haproxy:REST} description listens on C{REST} behind socksgate's
    own PROXY protocol wrapper (L{ProxyHeaderFactory}), not Twisted's: the
    client is the one the header names from the start, and half-close
    works.  The header must be complete within the handshake timeout in
    force when the listener starts.
    """
    prefix, _, rest = description.partition(":")
    if pauses is not None:
        inner = rest if prefix.lower() == HEADER_PREFIX else description
        endpoint = PausingEndpoint(endpoint or serverFromString(reactor, inner), pauses, description)
    if prefix.lower() != HEADER_PREFIX:
        if endpoint is not None:
            service = StreamServerEndpointService(endpoint, factory)
            service._raiseSynchronously = True
            return service
        return strports.service(description, factory, reactor=reactor)
    wrapped = ProxyHeaderFactory(factory, reactor, factory.config.handshakeTimeout)
    service = StreamServerEndpointService(endpoint or serverFromString(reactor, rest), wrapped)
    service._raiseSynchronously = True  # as strports.service: a port in use stops the start
    return service


class GatewayService(MultiService):
    """
    A gateway: one listening service for each listener, sharing one
    policy and one L{SessionTable}.

    When the configuration came from a file, SIGHUP reloads it while the
    service runs (see L{reload}).

    @ivar config: the configuration in force.
    @ivar policy: the access policy in force.
    @ivar sessions: the open sessions of every listener.
    @ivar factories: the L{SOCKSServerFactory} of each listener, by its
        endpoint description.
    """

    log = Logger()

    def __init__(
        self,
        config: Config,
        reactor: Any,
        policy: IAccessPolicy | None = None,
        resolver: IHostnameResolver | None = None,
        authChecker: tuple[Any, str] | None = None,
        endpoints: Mapping[str, IStreamServerEndpoint] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._authChecker = authChecker
        self.throttle = LoginThrottle(reactor)
        self.bandwidth = BandwidthLimits(reactor)
        #: The [[upstream]]s and the state of their servers.
        self.upstreams = UpstreamTable(reactor, config.upstreams)
        self._fixedPolicy = policy
        self.policy = policy if policy is not None else config.policy
        self.sessions = SessionTable()
        #: The listeners' pauses while the process is out of descriptors.
        self.acceptPauses = AcceptPauses(reactor, lambda: len(self.sessions.open))
        self.sessions.releaseObservers.append(self.acceptPauses.descriptorsFreed)
        self.factories: dict[str, SOCKSServerFactory] = {}
        self._reactor = reactor
        self._previousHandler: Any = None
        self._reloadsAsked = 0
        self._accessLog: Any = None
        self._status: Any = None
        #: Whether the gateway is stopping: its listeners are closed and its
        #: open sessions have the grace period to end.
        self.draining = False
        if config.log.access:
            # First: a bad path stops the start before any listener opens,
            # and the log is the last to stop, after every session.
            self._accessLog = AccessLogService(config.log, reactor)
            self._accessLog.setServiceParent(self)
        for description in config.server.listen:
            factory = SOCKSServerFactory(
                reactor,
                config.server,
                self.policy,
                description,
                resolver,
                self.sessions,
                config.auth,
                self.throttle,
                bandwidth=self.bandwidth,
                upstreams=self.upstreams,
            )
            self.factories[description] = factory
            endpoint = endpoints.get(description) if endpoints else None
            listenerService(description, factory, reactor, endpoint, self.acceptPauses).setServiceParent(self)
        if config.log.status:
            self._status = StatusService(config.log.status, self, reactor)
            self._status.setServiceParent(self)

    def privilegedStartService(self) -> None:
        """
        Before twistd drops to C{--uid}/C{--gid}: load what requests would
        otherwise import on first use (L{preload}), open the session log,
        and listen.
        """
        preload()
        super().privilegedStartService()

    def startService(self) -> None:
        """
        Start listening, and reload the configuration file (and an --auth
        checker's file) on SIGHUP.  The reactor is guarded against handing
        a closed descriptor's events to the socket that took its number
        (L{guardAgainstDescriptorReuse}).
        """
        guardAgainstDescriptorReuse(self._reactor)
        super().startService()
        checker = self._authChecker[0] if self._authChecker else None
        reloadable = self.config.path is not None or hasattr(checker, "reload")
        if reloadable and threading.current_thread() is threading.main_thread():
            self._previousHandler = signal.signal(signal.SIGHUP, self._hangUp)

    def stopService(self) -> Deferred[None]:
        """
        Stop listening on every listener at once, let the open sessions run
        for C{[server] grace-period} seconds (or until SIGTERM comes again),
        then close those left, and stop the status page and the session log
        last, once the sessions have ended and their records are written;
        leave SIGHUP as it was.

        Sessions left after the grace period are closed as a time-out would
        close them (the bytes already relayed are delivered); those still
        open after L{CLOSE_TIMEOUT} seconds are dropped.
        """
        if self._previousHandler is not None:
            signal.signal(signal.SIGHUP, self._previousHandler)
            self._previousHandler = None
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.draining = True
        last = (self._accessLog, self._status)
        listeners = [service for service in reversed(list(self)) if service not in last]
        await DeferredList([maybeDeferred(service.stopService) for service in listeners if service.running])
        self.acceptPauses.stop()
        await self._drain(self.config.server.gracePeriod)
        for protocol in list(self.sessions.open):
            protocol.stopSession("the gateway is stopping")
        try:
            await self.sessions.whenEmpty().addTimeout(CLOSE_TIMEOUT, self._reactor)
        except DeferredTimeoutError:
            self.log.warn(
                "{count} sessions did not close in {seconds:g} s; dropping them",
                count=len(self.sessions.open),
                seconds=CLOSE_TIMEOUT,
            )
            for protocol in list(self.sessions.open):
                protocol.abortConnection()
            try:
                await self.sessions.whenEmpty().addTimeout(CLOSE_TIMEOUT, self._reactor)
            except DeferredTimeoutError:
                self.log.error("{count} sessions could not be closed", count=len(self.sessions.open))
        self.throttle.stop()
        if self._status is not None and self._status.running:
            await maybeDeferred(self._status.stopService)
        if self._accessLog is not None and self._accessLog.running:
            await maybeDeferred(self._accessLog.stopService)

    async def _drain(self, grace: float) -> None:
        """
        Let the open sessions run for C{grace} seconds (the grace period),
        or until they have all ended, or until SIGTERM comes again.
        """
        if not grace or not self.sessions.open:
            return
        self.log.info(
            "stopping: {count} sessions open; closing those left in {grace:g} s (SIGTERM again: at once)",
            count=len(self.sessions.open),
            grace=grace,
        )
        again: Deferred[None] = Deferred()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(
                signal.SIGTERM, lambda number, frame: self._reactor.callFromThread(again.callback, None)
            )
        ended = DeferredList([self.sessions.whenEmpty(), again], fireOnOneCallback=True, consumeErrors=True)
        try:
            await ended.addTimeout(grace, self._reactor)
        except DeferredTimeoutError:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _hangUp(self, signalNumber: int, frame: Any) -> None:
        self._reactor.callFromThread(self.reload)

    def reload(self) -> Deferred[bool]:
        """
        Read the configuration file again, in a thread, and use it for new
        requests; sessions under way go on as they are.  A file that does
        not load, or whose expectations fail, is refused with a log message
        and the running configuration stays.  Listeners are not changed.
        A checker given with C{--auth} that reads a file reads it again.
        Reloads take effect in the order they were asked for: when another
        reload is asked before this one has read its file, this one is not
        used, whatever it read (the later one decides).

        @return: a Deferred that fires with whether the new file was taken.
        """
        commandLineChecker = self._authChecker[0] if self._authChecker else None
        if hasattr(commandLineChecker, "reload"):
            # An --auth checker that reads a file (htpasswd:) reads it again.
            commandLineChecker.reload()
        path = self.config.path
        if path is None:
            return succeed(False)
        # Reloads end in the order they were asked for: a file that takes
        # longer to load than the one read after it is not used.
        self._reloadsAsked += 1
        reading = deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), loadConfig, path, self._authChecker
        )
        return reading.addCallbacks(
            self._reloaded,
            self._reloadFailed,
            callbackArgs=(self._reloadsAsked,),
            errbackArgs=(path, self._reloadsAsked),
        )

    def _superseded(self, number: int, path: str) -> bool:
        """
        Whether reload C{number} was overtaken by a later one, which
        decides instead (logged).
        """
        if number == self._reloadsAsked:
            return False
        self.log.info(
            "reload {number} of {path} is superseded by reload {latest}; the later one decides",
            number=number,
            path=path,
            latest=self._reloadsAsked,
        )
        return True

    def _reloaded(self, config: Config, number: int) -> bool:
        if self._superseded(number, config.path or ""):
            return False
        if config.server.listen != self.config.server.listen:
            self.log.warn(
                "reload of {path}: listeners are not changed by a reload; restart to apply them",
                path=config.path,
            )
            config = config.withListen(self.config.server.listen)
        self.config = config
        self.policy = self._fixedPolicy if self._fixedPolicy is not None else config.policy
        self.upstreams.configure(config.upstreams)
        for factory in self.factories.values():
            factory.configure(config.server, self.policy, config.auth)
        self.log.info(
            "reloaded {path}: {rules} rules, {expectations} expectations hold",
            path=config.path,
            rules=len(config.rules),
            expectations=len(config.expectations),
        )
        return True

    def _reloadFailed(self, failure: Failure, path: str, number: int) -> bool:
        if self._superseded(number, path):
            return False
        if failure.check(ConfigError):
            self.log.error(
                "refused to reload {path}: {problem}; the running configuration stays",
                path=path,
                problem=str(failure.value),
            )
        else:
            self.log.failure("refused to reload {path}; the running configuration stays", failure, path=path)
        return False


def buildService(
    config: Config | None = None,
    reactor: Any = None,
    policy: IAccessPolicy | None = None,
    resolver: IHostnameResolver | None = None,
    authChecker: tuple[Any, str] | None = None,
    endpoints: Mapping[str, IStreamServerEndpoint] | None = None,
) -> GatewayService:
    """
    Build the gateway's service.

    @param config: the configuration; the defaults when L{None}.
    @param reactor: the reactor; the global one when L{None}.
    @param policy: the access policy; by default, the configuration's
        rules (or, without rules, loopback clients only).  A policy given
        here stays when the file is reloaded.
    @param resolver: the name resolver for destinations; the reactor's
        when L{None}.
    @param authChecker: the credentials checker given on the command line
        (C{--auth}) and its description: it wins over the file's, at start
        (C{config} already has it) and at every reload.
    @param endpoints: server endpoints to listen on instead of parsing
        some of the listeners' descriptions (a worker process's adopted
        sockets, by description); the others are parsed as usual.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    return GatewayService(
        config if config is not None else Config(), reactor, policy, resolver, authChecker, endpoints
    )
