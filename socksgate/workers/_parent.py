"""
L{WorkersService}: the parent of C{twistd socksgate --workers N}.

The parent opens every listening socket once (in
C{privilegedStartService}, so a port below 1024 works with C{twistd
--uid}), never accepts on them, and starts N worker processes with
C{reactor.spawnProcess}, passing the sockets as inherited descriptors:
each worker adopts them (C{adoptStreamPort}), so all of them take
connections from the same accept queue.  The parent writes the session
log and serves the status page from the events its workers send it over a
pipe (L{socksgate.workers._pipe}); it starts again a worker that ends
(after a L{RestartDelay}), passes SIGHUP on to every worker, and on stop
sends every worker SIGTERM (and again at a second SIGTERM, to close their
sessions at once), waits for them to end, and stops the session log last.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger, eventFromJSON, globalLogPublisher
from twisted.python.failure import Failure

from ..accesslog import SESSION_NAMESPACE, AccessLogService
from ..config import Config, loadConfig
from ..haproxy import HEADER_PREFIX
from ..service import CLOSE_TIMEOUT
from ..status import StatusService, WorkerState
from ..vocabulary import Outcome
from ._pipe import EVENTS_FD, REPORT_NAMESPACE, LineSplitter
from ._reports import ReportedSessions, WorkerSlot

__all__ = ["SHAREABLE", "STOP_TIMEOUT", "WorkersService", "sharedDescription"]

#: The endpoint types whose sockets workers can share.
SHAREABLE = ("tcp", "tcp6", "unix", "systemd")

#: Seconds the parent waits for its workers to stop, beyond the grace
#: period (each may then take two L{CLOSE_TIMEOUT}s), before it kills
#: those that remain.
STOP_TIMEOUT = 2 * CLOSE_TIMEOUT + 5.0

#: Environment variables of systemd's socket activation, which are the
#: parent's alone.
_SYSTEMD_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def sharedDescription(description: str) -> str:
    """
    The endpoint whose socket the workers share for the listener
    C{description}: the description itself, or what a C{haproxy:} wrapper
    wraps (each worker reads the PROXY header itself).
    """
    prefix, _, rest = description.partition(":")
    return rest if prefix.lower() == HEADER_PREFIX else description


class _SharedPortFactory(Factory):
    """
    The factory of a listening socket the parent holds for its workers and
    never accepts on.
    """

    protocol = Protocol
    noisy = False


class _WorkerProtocol(ProcessProtocol):
    """
    One worker process, as the parent sees it: its event pipe and its end.
    """

    def __init__(self, parent: WorkersService, slot: WorkerSlot) -> None:
        self._parent = parent
        self._slot = slot
        self._splitter = LineSplitter(self._line, self._tooLong)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """
        Bytes from the worker's event pipe.
        """
        if childFD == EVENTS_FD:
            self._splitter.feed(data)

    def _tooLong(self) -> None:
        self._parent.log.warn(
            "worker {worker} sent an event line that is too long; dropped", worker=self._slot.index
        )

    def _line(self, line: bytes) -> None:
        try:
            event = eventFromJSON(line.decode("utf-8", "replace"))
        except ValueError:
            self._parent.log.warn(
                "worker {worker} sent an event that is not JSON; dropped", worker=self._slot.index
            )
            return
        if not isinstance(event, dict):
            return
        namespace = event.get("log_namespace")
        if namespace == REPORT_NAMESPACE:
            self._slot.report = event
            return
        if namespace == SESSION_NAMESPACE:
            self._slot.finished += 1
            record = event.get("record")
            if isinstance(record, dict) and record.get("outcome") == Outcome.DENIED:
                self._slot.denials += 1
        event["log_system"] = f"worker {self._slot.index}"
        event["worker"] = self._slot.index
        globalLogPublisher(event)

    def processEnded(self, reason: Failure) -> None:
        """
        The worker ended.
        """
        self._parent._ended(self._slot, reason)


class WorkersService(MultiService):
    """
    The parent of N worker processes that serve the same listening
    sockets; it writes the session log and serves the status page of the
    whole gateway.

    It is the "gateway" its L{StatusService} describes: C{config},
    C{factories} (the listeners, by description, as the session records
    name them), C{sessions} (the workers' reported open connections) and
    L{describeWorkers}.

    @ivar config: the configuration (its rules are shown by the status
        page; SIGHUP reads the file again).
    @ivar slots: the worker places.
    @ivar ports: the listening ports the workers share, once open.
    """

    log = Logger()

    def __init__(
        self,
        config: Config,
        reactor: Any,
        count: int,
        arguments: Sequence[str],
        authChecker: tuple[Any, str] | None = None,
        executable: str = sys.executable,
    ) -> None:
        """
        @param config: the configuration the command line made.
        @param count: how many workers.
        @param arguments: the C{twistd socksgate} options each worker
            parses as the parent did.
        @param authChecker: the C{--auth} checker, for reloads of the file.
        @param executable: the Python that runs the workers.
        """
        super().__init__()
        self.config = config
        self._reactor = reactor
        self._arguments = list(arguments)
        self._authChecker = authChecker
        self._executable = executable
        self.factories: dict[str, None] = dict.fromkeys(config.server.listen)
        self.slots = [WorkerSlot(index) for index in range(1, count + 1)]
        self.sessions = ReportedSessions(self.slots)
        self.ports: list[Any] = []
        self._stopping = False
        self._previousHandler: Any = None
        self._accessLog: AccessLogService | None = None
        if config.log.access:
            self._accessLog = AccessLogService(config.log, reactor)
            self._accessLog.setServiceParent(self)
        if config.log.status:
            StatusService(config.log.status, self, reactor).setServiceParent(self)

    def privilegedStartService(self) -> None:
        """
        Open every listening socket; raise if one cannot listen.
        """
        super().privilegedStartService()
        if self.ports:
            return
        for description in self.config.server.listen:
            results: list[Any] = []
            serverFromString(self._reactor, sharedDescription(description)).listen(
                _SharedPortFactory()
            ).addBoth(results.append)
            if not results or isinstance(results[0], Failure):
                for port in self.ports:
                    port.stopListening()
                self.ports = []
                if results:
                    results[0].raiseException()
                raise RuntimeError(f"{description} did not listen at once")
            port = results[0]
            port.stopReading()  # the workers accept, never the parent
            self.ports.append(port)
            address = port.getHost()
            self.log.info(
                "shared listener {description} on port {port} for {workers} workers",
                description=description,
                port=getattr(address, "port", getattr(address, "name", "")),
                workers=len(self.slots),
            )

    def startService(self) -> None:
        """
        Open the session log and the status page, start the workers, and
        pass SIGHUP on to them.
        """
        self.privilegedStartService()
        super().startService()
        self._stopping = False
        for slot in self.slots:
            self._reactor.callWhenRunning(self._spawn, slot)
        if threading.current_thread() is threading.main_thread():
            self._previousHandler = signal.signal(signal.SIGHUP, self._hangUp)

    def _spawn(self, slot: WorkerSlot) -> None:
        slot.restartCall = None
        if self._stopping or not self.running:
            return
        firstFD = EVENTS_FD + 1
        arguments = [self._executable, "-m", "socksgate.workers", "--index", str(slot.index)]
        for number in range(len(self.ports)):
            arguments += ["--listener", str(firstFD + number)]
        if self.config.log.status:
            arguments.append("--report")
        arguments += ["--", *self._arguments]
        childFDs: dict[int, Any] = {0: "w", 1: 1, 2: 2, EVENTS_FD: "r"}
        for number, port in enumerate(self.ports):
            childFDs[firstFD + number] = port.fileno()
        environment = {key: value for key, value in os.environ.items() if key not in _SYSTEMD_VARIABLES}
        slot.report = None
        slot.startedAt = self._reactor.seconds()
        slot.transport = self._reactor.spawnProcess(
            _WorkerProtocol(self, slot),
            self._executable,
            arguments,
            env=environment,
            path=os.getcwd(),
            childFDs=childFDs,
        )
        slot.processId = slot.transport.pid
        self.log.info("worker {worker} started, pid {pid}", worker=slot.index, pid=slot.pid)

    def _ended(self, slot: WorkerSlot, reason: Failure) -> None:
        pid = slot.pid
        slot.transport = None
        slot.report = None
        waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)
        if self._stopping or not self.running:
            return
        delay = slot.delay.next(self._reactor.seconds() - slot.startedAt)
        slot.restarts += 1
        self.log.warn(
            "worker {worker} (pid {pid}) ended: {reason}; starting it again in {delay:g} s",
            worker=slot.index,
            pid=pid,
            reason=str(reason.value),
            delay=delay,
        )
        slot.restartCall = self._reactor.callLater(delay, self._spawn, slot)

    def describeWorkers(self) -> tuple[WorkerState, ...]:
        """
        Each worker place as the status page shows it.
        """
        return tuple(
            WorkerState(
                worker=slot.index,
                pid=slot.pid,
                restarts=slot.restarts,
                finished=slot.finished,
                denials=slot.denials,
            )
            for slot in self.slots
        )

    def _hangUp(self, signalNumber: int, frame: Any) -> None:
        self._reactor.callFromThread(self.reload)

    def reload(self) -> Deferred[bool]:
        """
        Pass SIGHUP on to every running worker (each reloads its
        configuration, and logs whether it took the file), and read the
        file again for the rules the status page shows.

        @return: a Deferred that fires with whether the parent took it.
        """
        for slot in self.slots:
            if slot.transport is not None:
                slot.transport.signalProcess("HUP")
        path = self.config.path
        if path is None:
            return succeed(False)
        reading = deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), loadConfig, path, self._authChecker
        )
        return reading.addCallbacks(self._reloaded, lambda failure: False)

    def _reloaded(self, config: Config) -> bool:
        self.config = config.withListen(self.config.server.listen)
        return True

    def stopService(self) -> Deferred[None]:
        """
        Send every worker SIGTERM (each stops as a single gateway does:
        it stops listening, lets its sessions run for the grace period,
        closes them and sends their records; a further SIGTERM to the
        parent meanwhile is passed on, and the workers close their
        sessions at once), wait for them to end (killing those still
        running after the grace period and L{STOP_TIMEOUT} seconds), close
        the listening sockets and the status page, and stop the session
        log last.
        """
        if self._previousHandler is not None:
            signal.signal(signal.SIGHUP, self._previousHandler)
            self._previousHandler = None
        self._stopping = True
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        for slot in self.slots:
            if slot.restartCall is not None and slot.restartCall.active():
                slot.restartCall.cancel()
            slot.restartCall = None
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._terminateAgain)
        try:
            await self._endWorkers("TERM")
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if any(slot.transport is not None for slot in self.slots):
            self.log.warn(
                "workers did not stop in {seconds:g} s; killing them",
                seconds=self.config.server.gracePeriod + STOP_TIMEOUT,
            )
            await self._endWorkers("KILL")
        ports, self.ports = self.ports, []
        await DeferredList([maybeDeferred(port.stopListening) for port in ports])
        others = [service for service in self if service is not self._accessLog and service.running]
        await DeferredList([maybeDeferred(service.stopService) for service in others])
        if self._accessLog is not None and self._accessLog.running:
            await maybeDeferred(self._accessLog.stopService)

    def _terminateAgain(self, signalNumber: int, frame: Any) -> None:
        self._reactor.callFromThread(self._closeAtOnce)

    def _closeAtOnce(self) -> None:
        """
        SIGTERM came again while the workers drain: pass it on to every
        worker still running, which then closes its sessions at once (as
        a second SIGTERM closes a single gateway's).
        """
        self.log.info("SIGTERM again: the workers close their open sessions at once")
        for slot in self.slots:
            if slot.transport is not None:
                try:
                    slot.transport.signalProcess("TERM")
                except (OSError, ProcessExitedAlready):
                    pass

    async def _endWorkers(self, signalName: str) -> None:
        waiting = []
        for slot in self.slots:
            if slot.transport is None:
                continue
            waiter: Deferred[None] = Deferred()
            slot.waiters.append(waiter)
            waiting.append(waiter)
            try:
                slot.transport.signalProcess(signalName)
            except (OSError, ProcessExitedAlready):
                pass
        if not waiting:
            return
        try:
            await DeferredList(waiting, consumeErrors=True).addTimeout(
                self.config.server.gracePeriod + STOP_TIMEOUT, self._reactor
            )
        except DeferredTimeoutError:
            pass
