"""
The C{twisted.web} resources of the status server: C{/}, C{/status.json}
and C{/metrics}.
"""

from __future__ import annotations

import json

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from twisted.web.resource import Resource
from twisted.web.server import Request

from ._gateway import GatewayStatus
from ._page import PAGE, PAGE_POLICY

__all__ = ["MetricsResource", "StatusJSONResource", "StatusPageResource", "statusResource"]


def _noStore(request: Request, contentType: bytes) -> None:
    request.setHeader(b"content-type", contentType)
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")


class StatusPageResource(Resource):
    """
    C{/}: the status page, which fills and refreshes itself from
    C{status.json}.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        """
        The page: static HTML with an inline style and script.
        """
        _noStore(request, b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", PAGE_POLICY)
        request.setHeader(b"referrer-policy", b"no-referrer")
        return PAGE


class StatusJSONResource(Resource):
    """
    C{/status.json}: L{GatewayStatus.snapshot} as JSON.
    """

    isLeaf = True

    def __init__(self, status: GatewayStatus) -> None:
        super().__init__()
        self.status = status

    def render_GET(self, request: Request) -> bytes:
        """
        The gateway's state now.
        """
        _noStore(request, b"application/json")
        return json.dumps(self.status.snapshot(), separators=(",", ":")).encode()


class MetricsResource(Resource):
    """
    C{/metrics}: a registry's metrics in the format the scraper asks for
    (Prometheus text, or OpenMetrics when its C{Accept} header says so),
    made on the reactor thread: collecting renders one snapshot of the
    counters and the open sessions, and waits for nothing.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        """
        The metrics now.
        """
        encoder, contentType = choose_encoder((request.getHeader(b"accept") or b"").decode("latin-1"))
        _noStore(request, contentType.encode())
        return encoder(self.registry)


def statusResource(status: GatewayStatus, registry: CollectorRegistry) -> Resource:
    """
    The root resource of the status server: C{/}, C{/status.json} and
    C{/metrics}.
    """
    root = Resource()
    root.putChild(b"", StatusPageResource())
    root.putChild(b"status.json", StatusJSONResource(status))
    root.putChild(b"metrics", MetricsResource(registry))
    return root
