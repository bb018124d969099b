"""
The status page and Prometheus metrics of a running gateway
(C{--status ENDPOINT}, C{[log] status}).

A L{StatusService} serves, with C{twisted.web}, on an endpoint of its own:

  - C{/}: a page that shows the gateway's state and refreshes itself, with
    a small inline script, from C{/status.json} every 1.5 seconds;
  - C{/status.json}: that state as JSON (see L{GatewayStatus.snapshot});
  - C{/metrics}: the same counters in the Prometheus text format, from a
    C{CollectorRegistry} of the gateway's own, so that several gateways in
    one process do not clash.

The counters come from the session records (the C{socksgate.session}
events of L{socksgate.session}); the open sessions and the rules are read
from the gateway whenever a page or a scrape asks, into one snapshot from which
both C{/status.json} and C{/metrics} are rendered, so a reload shows the
new rules at once.  Everything runs on the reactor thread, and nothing in it
waits for anything.

One module per job: C{_counts} (the counters), C{_snapshot} (the one
snapshot), C{_metrics} (the Prometheus families rendered from it),
C{_gateway} (L{GatewayStatus}), C{_page} (the page, from the package data
in C{page/}), C{_resources} (the web resources) and C{_service}
(L{StatusService}).
"""

from ._counts import COMMANDS, UNKNOWN, VERSIONS, SessionCounts
from ._gateway import GatewayStatus
from ._resources import MetricsResource, StatusJSONResource, StatusPageResource, statusResource
from ._service import StatusService, statusEndpoint
from ._snapshot import OPEN_SESSIONS_SHOWN, OpenSession, RuleHits, Snapshot, WorkerState

__all__ = [
    "COMMANDS",
    "OPEN_SESSIONS_SHOWN",
    "UNKNOWN",
    "VERSIONS",
    "GatewayStatus",
    "MetricsResource",
    "OpenSession",
    "RuleHits",
    "SessionCounts",
    "Snapshot",
    "StatusJSONResource",
    "StatusPageResource",
    "StatusService",
    "WorkerState",
    "statusEndpoint",
    "statusResource",
]
