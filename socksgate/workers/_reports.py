"""
What the parent knows of its workers, for the status page: each worker
slot's counts, and the open sessions its worker last reported, in the
shape L{socksgate.status} reads from a gateway's session table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._delay import RestartDelay

__all__ = ["ReportedSessions", "WorkerSlot"]


@dataclass(slots=True)
class WorkerSlot:
    """
    One of the parent's N worker places, and the worker that fills it.

    @ivar index: its number, from 1.
    @ivar transport: the worker's process transport while it runs.
    @ivar processId: the process id it had when it started.
    @ivar startedAt: when the running worker started (reactor clock).
    @ivar restarts: workers started in this place after the first.
    @ivar finished: session records the workers of this place wrote.
    @ivar denials: those whose outcome was C{denied}.
    @ivar report: the last report of the running worker's open sessions.
    """

    index: int
    transport: Any = None
    processId: int | None = None
    startedAt: float = 0.0
    restarts: int = 0
    finished: int = 0
    denials: int = 0
    report: Mapping[str, Any] | None = None
    delay: RestartDelay = field(default_factory=RestartDelay)
    restartCall: Any = None
    waiters: list[Any] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """
        The running worker's process id, or L{None}.
        """
        return self.processId if self.transport is not None else None


@dataclass(frozen=True, slots=True)
class _Record:
    """
    An open session as a worker reported it: the fields of its record so
    far that the status snapshot reads.
    """

    session: str
    client: str
    user: str | None
    version: str | None
    command: str | None
    destination: str | None
    remote: str | None
    started: float
    outcome: None = None


@dataclass(frozen=True, slots=True)
class _Bytes:
    """
    The bytes a worker reported for an open session.
    """

    bytesOut: int
    bytesIn: int


@dataclass(frozen=True, slots=True)
class _Connection:
    """
    An open client connection of a worker, as the status snapshot reads a
    protocol: its record (L{None} once written) and its session.
    """

    record: _Record | None
    session: _Bytes | None


def _connections(report: Mapping[str, Any]) -> list[_Connection]:
    connections = []
    for entry in report.get("sessions") or ():
        try:
            record = _Record(
                session=str(entry["session"]),
                client=str(entry["client"]),
                user=entry.get("user"),
                version=entry.get("version"),
                command=entry.get("command"),
                destination=entry.get("destination"),
                remote=entry.get("remote"),
                started=float(entry["started"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        connections.append(_Connection(record, _Bytes(entry.get("bytesOut", 0), entry.get("bytesIn", 0))))
    others = report.get("connections", 0)
    others = others - len(connections) if isinstance(others, int) else 0
    connections.extend(_Connection(None, None) for _ in range(max(0, others)))
    return connections


class ReportedSessions:
    """
    The open connections of every running worker, as each last reported
    them (once a second), in the shape of a L{socksgate.server.SessionTable}
    for the status snapshot.
    """

    def __init__(self, slots: list[WorkerSlot]) -> None:
        self._slots = slots

    @property
    def open(self) -> list[_Connection]:
        """
        The reported connections of the running workers.
        """
        connections: list[_Connection] = []
        for slot in self._slots:
            if slot.transport is not None and slot.report is not None:
                connections.extend(_connections(slot.report))
        return connections
