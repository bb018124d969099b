"""
The Prometheus metric families of a gateway, rendered from a
L{socksgate.status._snapshot.Snapshot} (see C{docs/status.md} for their
names and labels).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..vocabulary import Command, Version
from ._bandwidth import bandwidthFamilies
from ._counts import COMMANDS, VERSIONS, label
from ._snapshot import Snapshot
from ._upstreams import upstreamFamilies

__all__ = ["metricFamilies"]

#: The C{(command, version)} series of C{socksgate_sessions_open}, always
#: present (at 0 when nothing is open); SOCKS4 has no UDP.
_OPEN_SERIES = tuple(
    (command, version)
    for command in COMMANDS
    for version in VERSIONS
    if command != Command.UDP or version == Version.SOCKS5
)


def metricFamilies(snapshot: Snapshot) -> Iterator[Metric]:
    """
    The metric families of C{snapshot}, for a C{Collector.collect}.
    """
    sessions = CounterMetricFamily(
        "socksgate_sessions",
        "Requests whose session record is written (granted ones when they end), "
        "by command, version and outcome.",
        labels=["command", "version", "outcome"],
    )
    for (command, version, outcome), number in sorted(snapshot.finished.items()):
        sessions.add_metric([command, version, outcome], number)
    yield sessions

    denials = CounterMetricFamily("socksgate_denials", "Requests denied by the access policy.")
    denials.add_metric([], snapshot.denials)
    yield denials

    relayed = CounterMetricFamily(
        "socksgate_bytes",
        "Bytes relayed, open sessions included: out is from clients towards destinations, "
        "in is what came back.",
        labels=["direction"],
    )
    relayed.add_metric(["out"], snapshot.bytesOut)
    relayed.add_metric(["in"], snapshot.bytesIn)
    yield relayed

    hits = CounterMetricFamily(
        "socksgate_rule_hits",
        "Requests decided by each rule of the running configuration (first match wins).",
        labels=["rule", "message"],
    )
    for rule in snapshot.rules:
        hits.add_metric([str(rule.rule), rule.message], rule.hits)
    yield hits

    limited = CounterMetricFamily(
        "socksgate_rate_limited",
        "Requests refused by a rule's sessions-per-second, by rule and limit (client, user, table).",
        labels=["rule", "message", "limit"],
    )
    for rule in snapshot.rules:
        for limit, number in rule.rateLimited:
            limited.add_metric([str(rule.rule), rule.message, limit], number)
    yield limited

    openSeries: Counter[tuple[str, str]] = Counter(dict.fromkeys(_OPEN_SERIES, 0))
    for session in snapshot.openSessions:
        openSeries[label(session.command), label(session.version)] += 1
    sessionsOpen = GaugeMetricFamily(
        "socksgate_sessions_open",
        "Requests under way (handshakes, pending decisions and relayed sessions), by command and version.",
        labels=["command", "version"],
    )
    for (command, version), number in sorted(openSeries.items()):
        sessionsOpen.add_metric([command, version], number)
    yield sessionsOpen

    connections = GaugeMetricFamily(
        "socksgate_connections_open", "Client connections open, counted against max-sessions."
    )
    connections.add_metric([], snapshot.connections)
    yield connections

    draining = GaugeMetricFamily(
        "socksgate_draining",
        "1 while the gateway stops: listeners closed, open sessions in their grace period.",
    )
    draining.add_metric([], 1 if snapshot.draining else 0)
    yield draining

    pauses = CounterMetricFamily(
        "socksgate_accept_pauses",
        "Times the gateway stopped accepting for want of file descriptors (once per shortage).",
    )
    pauses.add_metric([], snapshot.acceptPauses)
    yield pauses

    started = GaugeMetricFamily(
        "socksgate_start_time_seconds", "When the status service started, in seconds since the epoch."
    )
    started.add_metric([], snapshot.startedAt)
    yield started

    yield from bandwidthFamilies(snapshot.bandwidth)
    yield from upstreamFamilies(snapshot.upstreams)

    if snapshot.workers:
        running = GaugeMetricFamily("socksgate_workers", "Worker processes running (--workers N).")
        running.add_metric([], sum(1 for worker in snapshot.workers if worker.pid is not None))
        yield running
        restarts = CounterMetricFamily(
            "socksgate_worker_restarts",
            "Workers started again after one ended, by worker place.",
            labels=["worker"],
        )
        for worker in snapshot.workers:
            restarts.add_metric([str(worker.worker)], worker.restarts)
        yield restarts
