"""
Tests for L{socksgate.status._snapshot}: one snapshot of a gateway's open
sessions and counters, from which both C{/status.json} and C{/metrics} are
rendered.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from socksgate.config import parseConfig
from socksgate.session import SessionRecord
from socksgate.status import OPEN_SESSIONS_SHOWN, GatewayStatus, Snapshot, StatusJSONResource
from socksgate.status._metrics import metricFamilies

LISTENER = "tcp:1080:interface=127.0.0.1"

RULES = f"""
[server]
listen = ["{LISTENER}"]

[[rule]]
action = "deny"
ports = ["9"]
message = "no discard"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
message = "loopback"
"""


class WalkedList(list[Any]):
    """
    A list that counts how many times it is walked.

    @ivar walks: how many iterations have started.
    """

    walks = 0

    def __iter__(self) -> Any:
        self.walks += 1
        return super().__iter__()


class Relay:
    """
    A relayed session's byte counts; C{grow} makes every read of
    C{bytesOut} return more than the last, as a busy session does.
    """

    def __init__(self, bytesOut: int, bytesIn: int, grow: bool = False) -> None:
        self._bytesOut = bytesOut
        self.bytesIn = bytesIn
        self.grow = grow

    @property
    def bytesOut(self) -> int:
        """
        The bytes sent so far (growing with every read when C{grow}).
        """
        if self.grow:
            self._bytesOut += 1
        return self._bytesOut


def openProtocol(session: str, started: float, relay: Any, version: str = "5") -> Any:
    """
    A stand-in for an open server protocol: an unwritten session record of
    a CONNECT and its relay.
    """
    record = SessionRecord(
        session=session,
        listener=LISTENER,
        client="127.0.0.1:40000",
        started=started,
        time="2026-11-21T10:00:00.000Z",
        version=version,
        command="connect",
        destination="127.0.0.1:7",
        remote="127.0.0.1:7",
    )
    return SimpleNamespace(record=record, session=relay)


def makeStatus(protocols: list[Any]) -> tuple[GatewayStatus, MemoryReactorClock, WalkedList]:
    """
    A L{GatewayStatus} of a stand-in gateway with these open protocols and
    the rules of L{RULES}, on a memory reactor at time 1000, with one
    finished session (rule 2, 5 bytes each way) counted.
    """
    reactor = MemoryReactorClock()
    reactor.advance(1000)
    sessions = WalkedList(protocols)
    gateway = SimpleNamespace(
        config=parseConfig(RULES), sessions=SimpleNamespace(open=sessions), factories={LISTENER: None}
    )
    status = GatewayStatus(gateway, reactor)
    finished = {
        "listener": LISTENER,
        "command": "connect",
        "version": "4",
        "outcome": "closed",
        "rule": 2,
        "bytes_out": 5,
        "bytes_in": 5,
    }
    status.observe({"log_namespace": "socksgate.session", "record": finished})
    reactor.advance(30)
    return status, reactor, sessions


def samples(snapshot: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    Every sample of the metric families rendered from C{snapshot}, by
    name and sorted labels.
    """
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metricFamilies(snapshot)
        for sample in family.samples
    }


def scrape(status: GatewayStatus) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    Scrape C{status} as C{/metrics} does, through a registry of its own,
    and parse the text back.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(status)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class SnapshotTests(SynchronousTestCase):
    """
    L{GatewayStatus.takeSnapshot} and the two renderings of a snapshot.
    """

    def test_oneOpenSessionInBoth(self) -> None:
        """
        One open session shows up identically in the JSON and in the metric
        families rendered from one snapshot: one open CONNECT over SOCKS5,
        its bytes added to the finished ones, one connection, and the rule
        hits.
        """
        status, reactor, _ = makeStatus([openProtocol("a1", 1010.0, Relay(7, 11))])
        snapshot = status.takeSnapshot()
        document = snapshot.asJSON()
        metrics = samples(snapshot)

        self.assertEqual(document["sessions"]["open"], 1)
        self.assertEqual(document["sessions"]["byCommand"]["connect"], {"open": 1, "total": 2})
        self.assertEqual(document["sessions"]["byVersion"]["5"], {"open": 1, "total": 1})
        self.assertEqual(metrics["socksgate_sessions_open", (("command", "connect"), ("version", "5"))], 1)
        self.assertEqual(
            sum(value for (name, _), value in metrics.items() if name == "socksgate_sessions_open"), 1
        )
        self.assertEqual(document["bytes"], {"out": 12, "in": 16})
        self.assertEqual(metrics["socksgate_bytes_total", (("direction", "out"),)], 12)
        self.assertEqual(metrics["socksgate_bytes_total", (("direction", "in"),)], 16)
        self.assertEqual(document["sessions"]["connections"], 1)
        self.assertEqual(metrics["socksgate_connections_open", ()], 1)
        self.assertEqual([rule["hits"] for rule in document["rules"]], [0, 1])
        self.assertEqual(
            [
                metrics["socksgate_rule_hits_total", (("message", m), ("rule", r))]
                for r, m in (("1", "no discard"), ("2", "loopback"))
            ],
            [0, 1],
        )
        [shown] = document["openSessions"]
        self.assertEqual(
            (shown["session"], shown["bytesOut"], shown["bytesIn"], shown["age"]), ("a1", 7, 11, 20.0)
        )
        self.assertEqual(metrics["socksgate_start_time_seconds", ()], 1000.0)
        self.assertEqual(document["started"], "1970-01-01T00:16:40.000Z")

    def test_servedOutputsAgree(self) -> None:
        """
        What C{/status.json} serves and what a C{/metrics} scrape says
        about one open session agree.
        """
        status, reactor, _ = makeStatus([openProtocol("b2", 1020.0, Relay(3, 4), version="4a")])
        document = json.loads(StatusJSONResource(status).render_GET(DummyRequest([b"status.json"])))
        metrics = scrape(status)
        self.assertEqual(document["sessions"]["byVersion"]["4a"]["open"], 1)
        self.assertEqual(metrics["socksgate_sessions_open", (("command", "connect"), ("version", "4a"))], 1)
        self.assertEqual(
            (document["bytes"]["out"], document["bytes"]["in"]),
            (
                metrics["socksgate_bytes_total", (("direction", "out"),)],
                metrics["socksgate_bytes_total", (("direction", "in"),)],
            ),
        )

    def test_readOnce(self) -> None:
        """
        A snapshot reads every open session once: a session whose byte
        count grows with every read has the same count in both renderings
        of one snapshot, and a scrape walks the open sessions once.
        """
        status, reactor, sessions = makeStatus([openProtocol("c3", 1010.0, Relay(100, 0, grow=True))])
        snapshot = status.takeSnapshot()
        self.assertEqual(sessions.walks, 1)
        document = snapshot.asJSON()
        self.assertEqual(
            document["bytes"]["out"], samples(snapshot)["socksgate_bytes_total", (("direction", "out"),)]
        )
        self.assertEqual(
            document["bytes"]["out"], samples(snapshot)["socksgate_bytes_total", (("direction", "out"),)]
        )
        self.assertEqual(document["openSessions"][0]["bytesOut"] + 5, document["bytes"]["out"])
        scrape(status)
        self.assertEqual(sessions.walks, 2)

    def test_countsCoverSessionsNotShown(self) -> None:
        """
        The JSON lists at most L{OPEN_SESSIONS_SHOWN} open sessions, the
        oldest first, but both renderings count all of them.
        """
        protocols = [
            openProtocol(f"s{n}", 1000.0 + n / 100, Relay(1, 1)) for n in range(OPEN_SESSIONS_SHOWN + 1)
        ]
        status, reactor, _ = makeStatus(list(reversed(protocols)))
        snapshot = status.takeSnapshot()
        document = snapshot.asJSON()
        self.assertEqual(len(document["openSessions"]), OPEN_SESSIONS_SHOWN)
        self.assertEqual(document["openSessions"][0]["session"], "s0")
        self.assertEqual(document["sessions"]["open"], OPEN_SESSIONS_SHOWN + 1)
        self.assertEqual(
            samples(snapshot)["socksgate_sessions_open", (("command", "connect"), ("version", "5"))],
            OPEN_SESSIONS_SHOWN + 1,
        )
        self.assertEqual(document["bytes"]["out"], 5 + OPEN_SESSIONS_SHOWN + 1)

    def test_snapshotIsFrozen(self) -> None:
        """
        A snapshot does not change when the counters do afterwards.
        """
        status, reactor, _ = makeStatus([])
        snapshot = status.takeSnapshot()
        status.observe(
            {
                "log_namespace": "socksgate.session",
                "record": {"listener": LISTENER, "outcome": "denied", "rule": 1, "command": "connect"},
            }
        )
        self.assertEqual(snapshot.denials, 0)
        self.assertEqual(snapshot.asJSON()["sessions"]["finished"], 1)
        self.assertEqual(status.takeSnapshot().asJSON()["sessions"]["finished"], 2)


class DrainingTests(SynchronousTestCase):
    """
    A stopping gateway says so on the status page and in the metrics.
    """

    def test_draining(self) -> None:
        """
        C{draining} is false while the gateway serves, true once it stops
        (its listeners closed, its sessions in their grace period), in the
        JSON and as C{socksgate_draining}.
        """
        status, reactor, _ = makeStatus([])
        snapshot = status.takeSnapshot()
        self.assertEqual(
            (snapshot.asJSON()["draining"], samples(snapshot)[("socksgate_draining", ())]), (False, 0)
        )
        status.gateway.draining = True
        snapshot = status.takeSnapshot()
        self.assertEqual(
            (snapshot.asJSON()["draining"], samples(snapshot)[("socksgate_draining", ())]), (True, 1)
        )


class AcceptPausesTests(SynchronousTestCase):
    """
    The times the gateway stopped accepting for want of descriptors are
    on the status page and in the metrics.
    """

    def test_acceptPauses(self) -> None:
        """
        C{acceptPauses} and C{socksgate_accept_pauses_total} count the
        shortages of the gateway's L{socksgate.accepting.AcceptPauses}.
        """
        status, reactor, _ = makeStatus([])
        snapshot = status.takeSnapshot()
        self.assertEqual(
            (snapshot.asJSON()["acceptPauses"], samples(snapshot)[("socksgate_accept_pauses_total", ())]),
            (0, 0),
        )
        status.gateway.acceptPauses = SimpleNamespace(pauses=3)
        snapshot = status.takeSnapshot()
        self.assertEqual(
            (snapshot.asJSON()["acceptPauses"], samples(snapshot)[("socksgate_accept_pauses_total", ())]),
            (3, 3),
        )
