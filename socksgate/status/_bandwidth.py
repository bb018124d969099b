"""
The bandwidth limits of the running rules, as C{/metrics} shows them:
how long each rule's buckets kept sessions waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["BandwidthState", "bandwidthFamilies", "bandwidthStates"]


@dataclass(frozen=True, slots=True)
class BandwidthState:
    """
    One direction of the limit of a running rule that sets C{bandwidth}.

    @ivar rule: its number (first is 1).
    @ivar direction: C{"out"} (clients towards destinations) or C{"in"}.
    @ivar limit: bytes per second.
    @ivar throttledSeconds: seconds during which sessions waited for tokens.
    @ivar waits: times a session waited (its reading paused, or a
        datagram dropped).
    @ivar droppedDatagrams: UDP datagrams dropped for want of tokens.
    """

    rule: int
    message: str
    direction: str
    limit: float
    throttledSeconds: float
    waits: int
    droppedDatagrams: int


def bandwidthStates(gateway: Any) -> tuple[BandwidthState, ...]:
    """
    The state of the buckets of each running rule that sets C{bandwidth}
    (zeros for a rule no session has used yet).
    """
    limits = getattr(gateway, "bandwidth", None)
    states = []
    for rule in gateway.config.rules:
        rate = getattr(rule, "bandwidth", None)
        if not rate:
            continue
        buckets = limits.existing(rule) if limits is not None else None
        for direction in ("out", "in"):
            bucket = None if buckets is None else buckets.outgoing if direction == "out" else buckets.incoming
            states.append(
                BandwidthState(
                    rule.index,
                    rule.message,
                    direction,
                    rate,
                    bucket.throttledSeconds if bucket else 0.0,
                    bucket.waits if bucket else 0,
                    bucket.dropped if bucket else 0,
                )
            )
    return tuple(states)


def bandwidthFamilies(states: tuple[BandwidthState, ...]) -> Iterator[Metric]:
    """
    The C{socksgate_bandwidth_*} metric families (see C{docs/status.md}).
    """
    labels = ["rule", "message", "direction"]
    limit = GaugeMetricFamily(
        "socksgate_bandwidth_limit_bytes_per_second",
        "The bandwidth limit of each rule that sets one, shared by its sessions, each direction.",
        labels=labels,
    )
    throttled = CounterMetricFamily(
        "socksgate_bandwidth_throttled_seconds",
        "Seconds during which sessions of the rule waited for its bandwidth limit.",
        labels=labels,
    )
    waits = CounterMetricFamily(
        "socksgate_bandwidth_waits",
        "Times a session of the rule waited for its bandwidth limit (reading paused, datagram dropped).",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        "socksgate_bandwidth_dropped_datagrams",
        "UDP datagrams dropped because the rule's bandwidth limit was used up.",
        labels=labels,
    )
    for state in states:
        series = [str(state.rule), state.message, state.direction]
        limit.add_metric(series, state.limit)
        throttled.add_metric(series, state.throttledSeconds)
        waits.add_metric(series, state.waits)
        dropped.add_metric(series, state.droppedDatagrams)
    yield from (limit, throttled, waits, dropped)
