"""
Tests for L{socksgate.status._upstreams}: each upstream server's state on
the status page and in C{/metrics}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.upstreams import UpstreamConfig, UpstreamTable

from .test_status_snapshot import makeStatus, samples, scrape
from .test_upstreams import server


class UpstreamStatusTests(SynchronousTestCase):
    """
    C{upstreams} in C{/status.json} and the C{socksgate_upstream_*}
    metrics show each server up or down, its sessions and failures.
    """

    def test_upAndDown(self) -> None:
        """
        A server marked down shows as down with the seconds left; one that
        carried a session shows as up with its count.
        """
        status, reactor, _ = makeStatus([])
        first, second = server("socks5://127.0.0.1:1"), server("socks5h://127.0.0.1:2")
        upstream = UpstreamConfig("corp", (first, second))
        table = UpstreamTable(reactor, [upstream])
        status.gateway.upstreams = table
        table.failed(upstream, first, "Connection refused")
        table.carried(upstream, second)
        reactor.advance(10)
        snapshot = status.takeSnapshot()
        self.assertEqual(
            snapshot.asJSON()["upstreams"],
            [
                {
                    "upstream": "corp",
                    "server": first.url,
                    "up": False,
                    "downFor": 20.0,
                    "sessions": 0,
                    "failures": 1,
                    "lastFailure": "Connection refused",
                },
                {
                    "upstream": "corp",
                    "server": second.url,
                    "up": True,
                    "downFor": 0.0,
                    "sessions": 1,
                    "failures": 0,
                    "lastFailure": "",
                },
            ],
        )
        metrics = scrape(status)
        for each, up, sessions, failures in ((first, 0, 0, 1), (second, 1, 1, 0)):
            labels = (("server", each.url), ("upstream", "corp"))
            self.assertEqual(metrics[("socksgate_upstream_server_up", labels)], up)
            self.assertEqual(metrics[("socksgate_upstream_sessions_total", labels)], sessions)
            self.assertEqual(metrics[("socksgate_upstream_failures_total", labels)], failures)

    def test_noUpstreams(self) -> None:
        """
        A gateway without upstreams has an empty list and no series.
        """
        status, _, _ = makeStatus([])
        snapshot = status.takeSnapshot()
        self.assertEqual(snapshot.asJSON()["upstreams"], [])
        self.assertFalse([key for key in samples(snapshot) if key[0].startswith("socksgate_upstream")])
