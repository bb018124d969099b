"""
L{GatewayStatus}: what the status page and the metrics say about one
gateway, and the Prometheus collector of its registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ._counts import SessionCounts, ruleIdentity
from ._metrics import metricFamilies
from ._snapshot import Snapshot, openSessionPairs, takeSnapshot

__all__ = ["GatewayStatus"]


class GatewayStatus(Collector):
    """
    What the status page and the metrics say about one gateway: counters
    from its session records, and its open sessions and rules as they are
    now, read into one L{Snapshot} from which both C{/status.json} and
    C{/metrics} are rendered.

    It is a Prometheus collector: register it with a C{CollectorRegistry}.

    @ivar gateway: the L{socksgate.service.GatewayService}.
    @ivar reactor: the reactor, whose clock gives ages and uptime.
    @ivar counts: the L{SessionCounts} of the records seen so far.
    @ivar startedAt: when counting started, in the reactor's clock (which
        for real reactors is the POSIX time).
    """

    def __init__(self, gateway: Any, reactor: Any) -> None:
        self.gateway = gateway
        self._identitiesOf: Any = None
        self._identities: tuple[Any, ...] = ()
        self.reactor = reactor
        self.counts = SessionCounts()
        self.startedAt = reactor.seconds()

    def observe(self, event: Mapping[str, Any]) -> None:
        """
        A C{twisted.logger} observer: count the session records of this
        gateway.  A record belongs to it when it names one of its
        listeners (gateways in one process listen on different endpoints;
        only two that both listen on an ephemeral port, C{tcp:0}, are told
        apart by nothing).
        """
        if event.get("log_namespace") != "socksgate.session":
            return
        record = event.get("record")
        if isinstance(record, Mapping) and record.get("listener") in self.gateway.factories:
            self.counts.add(record, self._ruleIdentities())

    def _ruleIdentities(self) -> tuple[Any, ...]:
        """
        The identities of the rules in force, worked out again only when a
        reload brought other rules (not for every record).
        """
        rules = self.gateway.config.rules
        if rules is not self._identitiesOf:
            self._identitiesOf, self._identities = rules, tuple(ruleIdentity(rule) for rule in rules)
        return self._identities

    def openSessions(self) -> list[Any]:
        """
        The L{socksgate.session.SessionRecord}s and sessions of the open
        connections whose record is not written yet, oldest first, as
        C{(record, session)} pairs (C{session} is L{None} before the
        request is granted).
        """
        return openSessionPairs(self.gateway)

    def takeSnapshot(self) -> Snapshot:
        """
        The state of the gateway now, read once.
        """
        return takeSnapshot(self.gateway, self.counts, self.startedAt, self.reactor.seconds())

    def snapshot(self) -> dict[str, Any]:
        """
        The state of the gateway, as C{/status.json} serves it: see
        L{Snapshot.asJSON}.
        """
        return self.takeSnapshot().asJSON()

    def collect(self) -> Iterator[Metric]:
        """
        The metric families, for a C{CollectorRegistry}, rendered from one
        L{takeSnapshot}: see C{docs/status.md} for their names and labels.
        """
        return metricFamilies(self.takeSnapshot())
