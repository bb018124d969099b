"""
The servers of the gateway's C{[[upstream]]}s, as the status page and
C{/metrics} show them: up or down, sessions carried, failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["UpstreamServerState", "upstreamFamilies", "upstreamStates"]


@dataclass(frozen=True, slots=True)
class UpstreamServerState:
    """
    One server of one upstream.

    @ivar upstream: the upstream's name.
    @ivar server: the server's URL.
    @ivar up: whether it is tried (not in a down period).
    @ivar downFor: seconds left in its down period (0 when up).
    @ivar sessions: sessions it carried.
    @ivar failures: times it failed.
    @ivar lastFailure: what went wrong the last time, or C{""}.
    """

    upstream: str
    server: str
    up: bool
    downFor: float
    sessions: int
    failures: int
    lastFailure: str

    def asJSON(self) -> dict[str, Any]:
        """
        The state as C{/status.json} gives it.
        """
        return {
            "upstream": self.upstream,
            "server": self.server,
            "up": self.up,
            "downFor": round(self.downFor, 1),
            "sessions": self.sessions,
            "failures": self.failures,
            "lastFailure": self.lastFailure,
        }


def upstreamStates(gateway: Any, now: float) -> tuple[UpstreamServerState, ...]:
    """
    The state of every server of the gateway's upstreams, in the file's
    order.
    """
    table = getattr(gateway, "upstreams", None)
    if table is None:
        return ()
    return tuple(
        UpstreamServerState(
            name,
            state.server.url,
            state.isUp(now),
            max(0.0, state.downUntil - now),
            state.sessions,
            state.failures,
            state.lastFailure,
        )
        for name, state in table.states()
    )


def upstreamFamilies(states: tuple[UpstreamServerState, ...]) -> Iterator[Metric]:
    """
    The C{socksgate_upstream_*} metric families (see C{docs/status.md}).
    """
    labels = ["upstream", "server"]
    up = GaugeMetricFamily(
        "socksgate_upstream_server_up",
        "1 if the upstream's server is tried, 0 while it is down.",
        labels=labels,
    )
    sessions = CounterMetricFamily(
        "socksgate_upstream_sessions", "Sessions the upstream's server carried.", labels=labels
    )
    failures = CounterMetricFamily(
        "socksgate_upstream_failures",
        "Times the upstream's server failed (refused, timed out, TLS refused, malformed reply).",
        labels=labels,
    )
    for state in states:
        series = [state.upstream, state.server]
        up.add_metric(series, 1 if state.up else 0)
        sessions.add_metric(series, state.sessions)
        failures.add_metric(series, state.failures)
    yield from (up, sessions, failures)
