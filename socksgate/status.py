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
from the gateway whenever a page or a scrape asks, so a reload shows the new
rules at once.  Everything runs on the reactor thread, and nothing in it
waits for anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger, globalLogPublisher
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

__all__ = [
    "GatewayStatus",
    "MetricsResource",
    "SessionCounts",
    "StatusJSONResource",
    "StatusPageResource",
    "StatusService",
    "statusEndpoint",
    "statusResource",
]

#: The label value of a command or version a record does not have (a
#: request that ended before it was read).
UNKNOWN = "unknown"

#: Commands and versions in the order the page lists them; SOCKS4 has no UDP.
COMMANDS = ("connect", "bind", "udp")
VERSIONS = ("4", "4a", "5")
_OPEN_SERIES = tuple(
    (command, version) for command in COMMANDS for version in VERSIONS if command != "udp" or version == "5"
)

#: How many open sessions the page and C{/status.json} list at most (the
#: oldest first); the counts always cover all of them.
OPEN_SESSIONS_SHOWN = 500


def statusEndpoint(description: str) -> str:
    """
    The server endpoint description of a status endpoint: a bare port
    number (C{"9180"}) means that port on loopback only
    (C{"tcp:9180:interface=127.0.0.1"}); anything else is a Twisted server
    endpoint description and is used as it is.
    """
    description = description.strip()
    if description.isdigit():
        return f"tcp:{description}:interface=127.0.0.1"
    return description


def _label(value: object) -> str:
    return value if isinstance(value, str) and value else UNKNOWN


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class SessionCounts:
    """
    Running totals over finished session records.

    @ivar sessions: records by C{(command, version, outcome)}.
    @ivar bytesOut: bytes the clients of finished sessions sent towards
        their destinations.
    @ivar bytesIn: bytes that came back to them.
    @ivar denials: records whose outcome is C{denied}.
    @ivar ruleHits: records by the number of the rule that decided them.
    """

    def __init__(self) -> None:
        self.sessions: Counter[tuple[str, str, str]] = Counter()
        self.bytesOut = 0
        self.bytesIn = 0
        self.denials = 0
        self.ruleHits: Counter[int] = Counter()

    def add(self, record: Mapping[str, Any]) -> None:
        """
        Count one session record (a dict with the fields of the session
        log).
        """
        outcome = _label(record.get("outcome"))
        self.sessions[_label(record.get("command")), _label(record.get("version")), outcome] += 1
        self.bytesOut += _count(record.get("bytes_out"))
        self.bytesIn += _count(record.get("bytes_in"))
        if outcome == "denied":
            self.denials += 1
        rule = record.get("rule")
        if isinstance(rule, int) and not isinstance(rule, bool):
            self.ruleHits[rule] += 1

    @property
    def finished(self) -> int:
        """
        How many records have been counted.
        """
        return sum(self.sessions.values())


class GatewayStatus(Collector):
    """
    What the status page and the metrics say about one gateway: counters
    from its session records, and its open sessions and rules as they are
    now.

    It is a Prometheus collector: register it with a C{CollectorRegistry}.

    @ivar gateway: the L{socksgate.service.GatewayService}.
    @ivar reactor: the reactor, whose clock gives ages and uptime.
    @ivar counts: the L{SessionCounts} of the records seen so far.
    @ivar startedAt: when counting started, in the reactor's clock (which
        for real reactors is the POSIX time).
    """

    def __init__(self, gateway: Any, reactor: Any) -> None:
        self.gateway = gateway
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
            self.counts.add(record)

    def openSessions(self) -> list[Any]:
        """
        The L{socksgate.session.SessionRecord}s and sessions of the open
        connections whose record is not written yet, oldest first, as
        C{(record, session)} pairs (C{session} is L{None} before the
        request is granted).
        """
        pairs = [
            (protocol.record, protocol.session)
            for protocol in self.gateway.sessions.open
            if protocol.record is not None and protocol.record.outcome is None
        ]
        pairs.sort(key=lambda pair: pair[0].started)
        return pairs

    def snapshot(self) -> dict[str, Any]:
        """
        The state of the gateway, as C{/status.json} serves it:

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
            C{bytesOut}, C{bytesIn} and C{age} (seconds).
        """
        now = self.reactor.seconds()
        counts = self.counts
        pairs = self.openSessions()
        byCommand = {name: {"open": 0, "total": 0} for name in COMMANDS}
        byVersion = {name: {"open": 0, "total": 0} for name in VERSIONS}
        byOutcome: Counter[str] = Counter()
        for (command, version, outcome), number in counts.sessions.items():
            byCommand.setdefault(command, {"open": 0, "total": 0})["total"] += number
            byVersion.setdefault(version, {"open": 0, "total": 0})["total"] += number
            byOutcome[outcome] += number
        bytesOut, bytesIn = counts.bytesOut, counts.bytesIn
        shown = []
        for record, session in pairs:
            command, version = _label(record.command), _label(record.version)
            for table, name in ((byCommand, command), (byVersion, version)):
                entry = table.setdefault(name, {"open": 0, "total": 0})
                entry["open"] += 1
                entry["total"] += 1
            sessionOut, sessionIn = _sessionBytes(session)
            bytesOut += sessionOut
            bytesIn += sessionIn
            if len(shown) < OPEN_SESSIONS_SHOWN:
                shown.append(
                    {
                        "session": record.session,
                        "client": record.client,
                        "user": record.user,
                        "version": record.version,
                        "command": record.command,
                        "destination": record.destination,
                        "remote": record.remote,
                        "bytesOut": sessionOut,
                        "bytesIn": sessionIn,
                        "age": round(max(0.0, now - record.started), 1),
                    }
                )
        finished = counts.finished
        return {
            "started": _isoTime(self.startedAt),
            "now": _isoTime(now),
            "uptime": round(max(0.0, now - self.startedAt), 1),
            "listen": list(self.gateway.config.server.listen),
            "sessions": {
                "open": len(pairs),
                "finished": finished,
                "total": finished + len(pairs),
                "connections": len(self.gateway.sessions.open),
                "byCommand": byCommand,
                "byVersion": byVersion,
                "byOutcome": dict(sorted(byOutcome.items())),
            },
            "denials": counts.denials,
            "bytes": {"out": bytesOut, "in": bytesIn},
            "rules": [
                {
                    "rule": rule.index,
                    "action": rule.action,
                    "message": rule.message,
                    "line": rule.line,
                    "hits": counts.ruleHits[rule.index],
                }
                for rule in self.gateway.config.rules
            ],
            "openSessions": shown,
        }

    def collect(self) -> Iterator[Metric]:
        """
        The metric families, for a C{CollectorRegistry}: see
        C{docs/status.md} for their names and labels.
        """
        counts = self.counts
        sessions = CounterMetricFamily(
            "socksgate_sessions",
            "Requests whose session record is written (granted ones when they end), "
            "by command, version and outcome.",
            labels=["command", "version", "outcome"],
        )
        for (command, version, outcome), number in sorted(counts.sessions.items()):
            sessions.add_metric([command, version, outcome], number)
        yield sessions

        denials = CounterMetricFamily("socksgate_denials", "Requests denied by the access policy.")
        denials.add_metric([], counts.denials)
        yield denials

        bytesOut, bytesIn = counts.bytesOut, counts.bytesIn
        openSeries: Counter[tuple[str, str]] = Counter(dict.fromkeys(_OPEN_SERIES, 0))
        for record, session in self.openSessions():
            openSeries[_label(record.command), _label(record.version)] += 1
            sessionOut, sessionIn = _sessionBytes(session)
            bytesOut += sessionOut
            bytesIn += sessionIn
        relayed = CounterMetricFamily(
            "socksgate_bytes",
            "Bytes relayed, open sessions included: out is from clients towards destinations, "
            "in is what came back.",
            labels=["direction"],
        )
        relayed.add_metric(["out"], bytesOut)
        relayed.add_metric(["in"], bytesIn)
        yield relayed

        hits = CounterMetricFamily(
            "socksgate_rule_hits",
            "Requests decided by each rule of the running configuration (first match wins).",
            labels=["rule", "message"],
        )
        for rule in self.gateway.config.rules:
            hits.add_metric([str(rule.index), rule.message], counts.ruleHits[rule.index])
        yield hits

        sessionsOpen = GaugeMetricFamily(
            "socksgate_sessions_open",
            "Requests under way (handshakes, pending decisions and relayed sessions), "
            "by command and version.",
            labels=["command", "version"],
        )
        for (command, version), number in sorted(openSeries.items()):
            sessionsOpen.add_metric([command, version], number)
        yield sessionsOpen

        connections = GaugeMetricFamily(
            "socksgate_connections_open", "Client connections open, counted against max-sessions."
        )
        connections.add_metric([], len(self.gateway.sessions.open))
        yield connections

        started = GaugeMetricFamily(
            "socksgate_start_time_seconds", "When the status service started, in seconds since the epoch."
        )
        started.add_metric([], self.startedAt)
        yield started


def _sessionBytes(session: Any) -> tuple[int, int]:
    """
    The bytes relayed so far by a relay or UDP association (a BIND still
    waiting for its peer, or a request not granted yet, has none).
    """
    return _count(getattr(session, "bytesOut", 0)), _count(getattr(session, "bytesIn", 0))


def _isoTime(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_STYLE = """
:root { color-scheme: light dark; --line: #8884; --dim: #888; --accent: #2a7ab0; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; }
h1 { font-size: 1.4em; margin: 0; }
h2 { font-size: 1.05em; margin: 1.6em 0 .4em; }
header { display: flex; align-items: baseline; gap: 1em; flex-wrap: wrap; }
#state { color: var(--dim); margin-left: auto; }
#state.down { color: #c33; font-weight: bold; }
.cards { display: flex; gap: .8em; flex-wrap: wrap; margin-top: 1em; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .5em .9em; min-width: 8em; }
.card b { display: block; font-size: 1.5em; font-variant-numeric: tabular-nums; }
.card span { color: var(--dim); }
.row { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .25em .7em; border-bottom: 1px solid var(--line); text-align: left; }
th { font-weight: 600; }
td.n, th.n { text-align: right; }
#sessions { width: 100%; }
.empty { color: var(--dim); font-style: italic; }
.deny { color: #c33; }
.permit { color: #2a2; }
code { font-size: .95em; }
"""

_SCRIPT = """
"use strict";
const $ = (id) => document.getElementById(id);
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60, pad = (x) => String(x).padStart(2, "0");
  if (d) return d + "d " + pad(h) + "h";
  if (h) return h + "h " + pad(m) + "m";
  if (m) return m + "m " + pad(s % 60) + "s";
  return s + "s";
}
function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "\\u2014" : String(text);
  if (className) td.className = className;
  return td;
}
function fill(id, rows, columns, emptyText) {
  const body = $(id).tBodies[0];
  if (!rows.length) {
    const td = cell(emptyText, "empty");
    td.colSpan = columns;
    const tr = document.createElement("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}
const ORDER = ["connect", "bind", "udp", "4", "4a", "5"];
const rank = (name) => ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length;
function counts(id, table) {
  const entries = Object.entries(table).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : 1));
  fill(id, entries.map(([name, c]) =>
    [cell(name), cell(c.open, "n"), cell(c.total, "n")]), 3, "none");
}
function render(s) {
  $("uptime").textContent = duration(s.uptime);
  $("started").textContent = s.started;
  $("listen").textContent = s.listen.join(", ");
  $("open").textContent = s.sessions.open;
  $("total").textContent = s.sessions.total;
  $("denials").textContent = s.denials;
  $("out").textContent = bytes(s.bytes.out);
  $("out").title = s.bytes.out + " bytes";
  $("in").textContent = bytes(s.bytes.in);
  $("in").title = s.bytes.in + " bytes";
  counts("commands", s.sessions.byCommand);
  counts("versions", s.sessions.byVersion);
  fill("outcomes", Object.entries(s.sessions.byOutcome).map(([name, n]) =>
    [cell(name), cell(n, "n")]), 2, "none yet");
  fill("rules", s.rules.map((r) =>
    [cell(r.rule, "n"), cell(r.action, r.action), cell(r.message), cell(r.hits, "n")]),
    4, "no rules: loopback clients only");
  fill("sessions", s.openSessions.map((o) => [
    cell(o.client, "client"), cell(o.user), cell(o.version), cell(o.command),
    cell(o.destination, "destination"), cell(bytes(o.bytesOut), "n"),
    cell(bytes(o.bytesIn), "n"), cell(duration(o.age), "n")]), 8, "no open sessions");
  const hidden = s.sessions.open - s.openSessions.length;
  $("hidden").textContent = hidden > 0 ? "and " + hidden + " more, newer" : "";
}
async function refresh() {
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    $("state").textContent = "live, updated " + new Date().toLocaleTimeString();
    $("state").className = "";
  } catch (error) {
    $("state").textContent = "cannot reach the gateway (" + error.message + ")";
    $("state").className = "down";
  }
  setTimeout(refresh, 1500);
}
refresh();
"""

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>socksgate status</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>socksgate</h1>
<span>up <b id="uptime">&#8212;</b> since <span id="started">&#8212;</span></span>
<span>listening on <code id="listen">&#8212;</code></span>
<span id="state">loading&#8230;</span>
</header>
<noscript><p>This page fills itself with a script; the same data is at
<a href="status.json">status.json</a> and <a href="metrics">metrics</a>.</p></noscript>
<div class="cards">
<div class="card"><b id="open">&#8212;</b><span>sessions open</span></div>
<div class="card"><b id="total">&#8212;</b><span>sessions since start</span></div>
<div class="card"><b id="denials">&#8212;</b><span>denied</span></div>
<div class="card"><b id="out">&#8212;</b><span>client &#8594; destination</span></div>
<div class="card"><b id="in">&#8212;</b><span>destination &#8594; client</span></div>
</div>
<h2>Open sessions <small id="hidden"></small></h2>
<table id="sessions">
<thead><tr><th>client</th><th>user</th><th>version</th><th>command</th><th>destination</th>
<th class="n">bytes out</th><th class="n">bytes in</th><th class="n">age</th></tr></thead>
<tbody></tbody>
</table>
<div class="row">
<div><h2>By command</h2><table id="commands"><thead><tr><th>command</th><th class="n">open</th>
<th class="n">total</th></tr></thead><tbody></tbody></table></div>
<div><h2>By version</h2><table id="versions"><thead><tr><th>version</th><th class="n">open</th>
<th class="n">total</th></tr></thead><tbody></tbody></table></div>
<div><h2>Finished, by outcome</h2><table id="outcomes"><thead><tr><th>outcome</th><th class="n">sessions</th>
</tr></thead><tbody></tbody></table></div>
</div>
<h2>Rules</h2>
<table id="rules"><thead><tr><th class="n">rule</th><th>action</th><th>message</th><th class="n">hits</th>
</tr></thead><tbody></tbody></table>
<p><a href="status.json">status.json</a> &#183; <a href="metrics">metrics</a></p>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()


def _sourceHash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


#: The page loads nothing from anywhere: only its own inline style and
#: script (by their hashes), which may only fetch from this server.
_PAGE_POLICY = (
    f"default-src 'none'; script-src {_sourceHash(_SCRIPT)}; style-src {_sourceHash(_STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
).encode()


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
        request.setHeader(b"content-security-policy", _PAGE_POLICY)
        request.setHeader(b"referrer-policy", b"no-referrer")
        return _PAGE


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
    made on the reactor thread: collecting is a walk over the counters and
    the open sessions, and waits for nothing.
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


class _QuietSite(Site):
    """
    A site that logs no request: the page polls every 1.5 seconds, and a
    scraper every few, which would fill the gateway's log.
    """

    def log(self, request: Request) -> None:
        pass


class _ConnectionsFactory(WrappingFactory):
    """
    Keeps the status server's connections, so that stopping it closes them
    (a browser keeps its connection open between polls).
    """

    def __init__(self, wrappedFactory: Any) -> None:
        super().__init__(wrappedFactory)
        self._goneWaiters: list[Deferred[None]] = []

    def unregisterProtocol(self, protocol: Any) -> None:
        super().unregisterProtocol(protocol)
        if not self.protocols:
            waiters, self._goneWaiters = self._goneWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def closeAll(self) -> Deferred[None]:
        """
        Drop every connection; fire when they are all gone.
        """
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._goneWaiters.append(waiter)
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        return waiter


class StatusService(Service):
    """
    Serves the status page, C{/status.json} and C{/metrics} of a gateway on
    an endpoint of its own, and counts the gateway's session records while
    it runs.

    It listens in C{privilegedStartService} (so a port below 1024 works
    with C{twistd --uid}); an endpoint that cannot listen at start-up stops
    the gateway from starting, as its SOCKS listeners do.

    @ivar description: the server endpoint description it listens on (see
        L{statusEndpoint}).
    @ivar status: the L{GatewayStatus} it shows.
    @ivar registry: the C{CollectorRegistry} of C{/metrics}, the gateway's
        own; an embedder may register more collectors with it.
    @ivar site: the C{twisted.web} site.
    @ivar port: the L{IListeningPort} once listening, else L{None}.
    """

    log = Logger()

    def __init__(self, description: str, gateway: Any, reactor: Any) -> None:
        self.description = statusEndpoint(description)
        self.reactor = reactor
        self.status = GatewayStatus(gateway, reactor)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.status)
        self.site = _QuietSite(statusResource(self.status, self.registry), reactor=reactor)
        self.site.noisy = False
        self._connections = _ConnectionsFactory(self.site)
        self._connections.noisy = False
        self.port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None
        self._failure: Failure | None = None
        self._portWaiters: list[Deferred[IListeningPort]] = []
        self._starting = False
        self._observer = self.status.observe

    def privilegedStartService(self) -> None:
        """
        Start listening; raise if the endpoint refuses at once.
        """
        super().privilegedStartService()
        if self._listening is not None:
            return
        self._failure = None
        self._starting = True
        try:
            self._listening = serverFromString(self.reactor, self.description).listen(self._connections)
            self._listening.addCallbacks(self._listened, self._notListening)
        finally:
            self._starting = False
        if self._failure is not None:
            self._listening = None
            self._failure.raiseException()

    def startService(self) -> None:
        """
        Count the gateway's session records from now on, and listen unless
        L{privilegedStartService} has.
        """
        super().startService()
        self.status.startedAt = self.reactor.seconds()
        globalLogPublisher.addObserver(self._observer)
        self.privilegedStartService()

    def stopService(self) -> Deferred[None]:
        """
        Stop counting, stop listening and close the open connections.

        @return: a Deferred that fires when the port and the connections
            are closed.
        """
        super().stopService()
        globalLogPublisher.removeObserver(self._observer)
        listening, self._listening = self._listening, None
        port, self.port = self.port, None
        if listening is not None and not listening.called:
            listening.cancel()
        stopping = [self._connections.closeAll()]
        if port is not None:
            stopping.insert(0, maybeDeferred(port.stopListening))
        return DeferredList(stopping, consumeErrors=True).addCallback(lambda _: None)

    def whenListening(self) -> Deferred[IListeningPort]:
        """
        A Deferred that fires with the L{IListeningPort} once the service
        listens (at once if it does), or fails if it cannot; a test finds
        an ephemeral port with it.
        """
        if self.port is not None:
            return succeed(self.port)
        if self._failure is not None:
            return fail(self._failure)
        waiter: Deferred[IListeningPort] = Deferred()
        self._portWaiters.append(waiter)
        return waiter

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        self.log.info("status page and /metrics on {address}", address=str(port.getHost()))
        waiters, self._portWaiters = self._portWaiters, []
        for waiter in waiters:
            waiter.callback(port)

    def _notListening(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        self._failure = failure
        if not self._starting:
            self.log.failure(
                "status page: cannot listen on {description}", failure, description=self.description
            )
        waiters, self._portWaiters = self._portWaiters, []
        for waiter in waiters:
            waiter.errback(failure)
