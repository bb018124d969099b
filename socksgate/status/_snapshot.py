"""
One snapshot of a gateway's state: its counters, its open sessions and its
rules, read once, from which both C{/status.json} (L{Snapshot.asJSON}) and
C{/metrics} (L{socksgate.status._metrics.metricFamilies}) are rendered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ratelimit import LIMITS
from ..timestamps import isoTime
from ._bandwidth import BandwidthState, bandwidthStates
from ._counts import COMMANDS, VERSIONS, SessionCounts, count, label, ruleIdentity
from ._upstreams import UpstreamServerState, upstreamStates

__all__ = [
    "OPEN_SESSIONS_SHOWN",
    "OpenSession",
    "RuleHits",
    "Snapshot",
    "WorkerState",
    "openSessionPairs",
    "takeSnapshot",
]

#: How many open sessions the page and C{/status.json} list at most (the
#: oldest first); the counts always cover all of them.
OPEN_SESSIONS_SHOWN = 500


@dataclass(frozen=True, slots=True)
class OpenSession:
    """
    An open session, as a snapshot saw it: the fields of its session
    record so far, and the bytes relayed so far.

    @ivar started: when its request arrived, in the reactor's clock.
    """

    session: str
    client: str
    user: str | None
    version: str | None
    command: str | None
    destination: str | None
    remote: str | None
    bytesOut: int
    bytesIn: int
    started: float


@dataclass(frozen=True, slots=True)
class RuleHits:
    """
    A rule of the running configuration and the records it decided.

    @ivar rule: its number (first is 1).
    @ivar line: the line of its C{[[rule]]} header, if known.
    @ivar sessionsPerSecond: its C{sessions-per-second} (0: none).
    @ivar rateLimited: the requests it refused for C{sessions-per-second},
        by limit (C{client}, C{user}, C{table}).
    """

    rule: int
    action: str
    message: str
    line: int | None
    hits: int
    sessionsPerSecond: int = 0
    rateLimited: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerState:
    """
    One worker process of a gateway run with C{--workers N}.

    @ivar worker: its place, from 1.
    @ivar pid: the process id of the worker in that place now, or L{None}
        while it is being started again.
    @ivar restarts: workers started in that place after the first.
    @ivar finished: session records written by the workers of that place.
    @ivar denials: those denied by the policy.
    """

    worker: int
    pid: int | None
    restarts: int
    finished: int
    denials: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """
    The state of a gateway at one moment, read once.

    @ivar startedAt: when counting started, in the reactor's clock.
    @ivar now: when the snapshot was taken, in the same clock.
    @ivar listen: the gateway's listeners.
    @ivar finished: the finished records by C{(command, version,
        outcome)}.
    @ivar finishedBytesOut: bytes sent by the clients of finished sessions.
    @ivar finishedBytesIn: bytes that came back to them.
    @ivar denials: finished requests denied by the policy.
    @ivar rules: the running rules, with their hits.
    @ivar openSessions: every open request whose record is not written
        yet, the oldest first.
    @ivar connections: the client connections open (including those whose
        record is written but that have not closed yet).
    @ivar workers: the worker processes, when there are several.
    @ivar draining: whether the gateway is stopping (its listeners closed,
        its open sessions in their grace period).
    @ivar acceptPauses: how many times the gateway stopped accepting for
        want of file descriptors.
    @ivar bandwidth: the buckets of the rules that set C{bandwidth}.
    @ivar upstreams: the servers of the C{[[upstream]]}s.
    """

    startedAt: float
    now: float
    listen: tuple[str, ...]
    finished: Mapping[tuple[str, str, str], int]
    finishedBytesOut: int
    finishedBytesIn: int
    denials: int
    rules: tuple[RuleHits, ...]
    openSessions: tuple[OpenSession, ...]
    connections: int
    workers: tuple[WorkerState, ...] = ()
    draining: bool = False
    acceptPauses: int = 0
    bandwidth: tuple[BandwidthState, ...] = ()
    upstreams: tuple[UpstreamServerState, ...] = ()

    @property
    def bytesOut(self) -> int:
        """
        Bytes from clients towards destinations, open sessions included.
        """
        return self.finishedBytesOut + sum(session.bytesOut for session in self.openSessions)

    @property
    def bytesIn(self) -> int:
        """
        Bytes that came back to the clients, open sessions included.
        """
        return self.finishedBytesIn + sum(session.bytesIn for session in self.openSessions)

    def asJSON(self) -> dict[str, Any]:
        """
        The snapshot as C{/status.json} serves it:

          - C{started}, C{now} (ISO 8601, UTC) and C{uptime} (seconds);
          - C{listen}: the gateway's listeners;
          - C{sessions}: C{open} (requests under way now, handshakes
            included), C{finished} (records written), C{total} (both),
            C{connections} (client connections open, including those whose
            record is written but that have not closed yet), and
            C{byCommand} and C{byVersion}, each C{{name: {"open": n,
            "total": n}}}, and C{byOutcome} (finished only);
          - C{denials}: finished requests denied by the policy;
          - C{bytes}: C{out} (clients to destinations) and C{in}, open
            sessions included;
          - C{rules}: the running rules, each with C{rule} (its number),
            C{action}, C{message}, C{line} and C{hits};
          - C{openSessions}: at most L{OPEN_SESSIONS_SHOWN} open sessions,
            the oldest first, each with C{session}, C{client}, C{user},
            C{version}, C{command}, C{destination}, C{remote},
            C{bytesOut}, C{bytesIn} and C{age} (seconds);
          - C{workers}, only with several worker processes: each with
            C{worker}, C{pid}, C{restarts}, C{finished} and C{denials}.
        """
        byCommand = {name: {"open": 0, "total": 0} for name in COMMANDS}
        byVersion = {name: {"open": 0, "total": 0} for name in VERSIONS}
        byOutcome: Counter[str] = Counter()
        for (command, version, outcome), number in self.finished.items():
            byCommand.setdefault(command, {"open": 0, "total": 0})["total"] += number
            byVersion.setdefault(version, {"open": 0, "total": 0})["total"] += number
            byOutcome[outcome] += number
        for session in self.openSessions:
            for table, name in ((byCommand, label(session.command)), (byVersion, label(session.version))):
                entry = table.setdefault(name, {"open": 0, "total": 0})
                entry["open"] += 1
                entry["total"] += 1
        finished = sum(self.finished.values())
        opened = len(self.openSessions)
        workers = {"workers": [_workerJSON(worker) for worker in self.workers]} if self.workers else {}
        return {
            "started": isoTime(self.startedAt),
            "now": isoTime(self.now),
            "uptime": round(max(0.0, self.now - self.startedAt), 1),
            "listen": list(self.listen),
            "sessions": {
                "open": opened,
                "finished": finished,
                "total": finished + opened,
                "connections": self.connections,
                "byCommand": byCommand,
                "byVersion": byVersion,
                "byOutcome": dict(sorted(byOutcome.items())),
            },
            "denials": self.denials,
            "bytes": {"out": self.bytesOut, "in": self.bytesIn},
            "rules": [
                {
                    "rule": rule.rule,
                    "action": rule.action,
                    "message": rule.message,
                    "line": rule.line,
                    "hits": rule.hits,
                }
                for rule in self.rules
            ],
            "openSessions": [
                {
                    "session": session.session,
                    "client": session.client,
                    "user": session.user,
                    "version": session.version,
                    "command": session.command,
                    "destination": session.destination,
                    "remote": session.remote,
                    "bytesOut": session.bytesOut,
                    "bytesIn": session.bytesIn,
                    "age": round(max(0.0, self.now - session.started), 1),
                }
                for session in self.openSessions[:OPEN_SESSIONS_SHOWN]
            ],
            "draining": self.draining,
            "acceptPauses": self.acceptPauses,
            "upstreams": [state.asJSON() for state in self.upstreams],
            **workers,
        }


def _workerJSON(worker: WorkerState) -> dict[str, Any]:
    return {
        "worker": worker.worker,
        "pid": worker.pid,
        "restarts": worker.restarts,
        "finished": worker.finished,
        "denials": worker.denials,
    }


def openSessionPairs(gateway: Any) -> list[Any]:
    """
    The L{socksgate.session.SessionRecord}s and sessions of a gateway's
    open connections whose record is not written yet, oldest first, as
    C{(record, session)} pairs (C{session} is L{None} before the request
    is granted).
    """
    pairs = [
        (protocol.record, protocol.session)
        for protocol in gateway.sessions.open
        if protocol.record is not None and protocol.record.outcome is None
    ]
    pairs.sort(key=lambda pair: pair[0].started)
    return pairs


def takeSnapshot(gateway: Any, counts: SessionCounts, startedAt: float, now: float) -> Snapshot:
    """
    Read the state of C{gateway} once: its open sessions (walked once), its
    running rules and a copy of C{counts}.

    @param gateway: the L{socksgate.service.GatewayService}.
    @param counts: the counters of its finished records.
    @param startedAt: when counting started, in the reactor's clock.
    @param now: the time now, in the same clock.
    """
    openSessions = []
    for record, session in openSessionPairs(gateway):
        bytesOut, bytesIn = _sessionBytes(session)
        openSessions.append(
            OpenSession(
                session=record.session,
                client=record.client,
                user=record.user,
                version=record.version,
                command=record.command,
                destination=record.destination,
                remote=record.remote,
                bytesOut=bytesOut,
                bytesIn=bytesIn,
                started=record.started,
            )
        )
    return Snapshot(
        startedAt=startedAt,
        now=now,
        listen=tuple(gateway.config.server.listen),
        finished=dict(counts.sessions),
        finishedBytesOut=counts.bytesOut,
        finishedBytesIn=counts.bytesIn,
        denials=counts.denials,
        rules=tuple(_ruleHits(rule, counts) for rule in gateway.config.rules),
        openSessions=tuple(openSessions),
        connections=len(gateway.sessions.open),
        workers=tuple(gateway.describeWorkers()) if hasattr(gateway, "describeWorkers") else (),
        draining=bool(getattr(gateway, "draining", False)),
        acceptPauses=getattr(getattr(gateway, "acceptPauses", None), "pauses", 0),
        bandwidth=bandwidthStates(gateway),
        upstreams=upstreamStates(gateway, now),
    )


def _ruleHits(rule: Any, counts: SessionCounts) -> RuleHits:
    """
    A rule of the running configuration with its counts.
    """
    identity = ruleIdentity(rule)
    perSecond = getattr(rule, "sessionsPerSecond", 0)
    limited = tuple((limit, counts.rateLimited[identity, limit]) for limit in LIMITS) if perSecond else ()
    return RuleHits(
        rule.index, rule.action, rule.message, rule.line, counts.ruleHits[identity], perSecond, limited
    )


def _sessionBytes(session: Any) -> tuple[int, int]:
    """
    The bytes relayed so far by a relay or UDP association (a BIND still
    waiting for its peer, or a request not granted yet, has none).
    """
    return count(getattr(session, "bytesOut", 0)), count(getattr(session, "bytesIn", 0))
