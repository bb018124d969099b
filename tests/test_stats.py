"""
Tests for L{socksgate.scripts.stats}: C{socksgate stats} run as a command
on logs whose totals are known (a rotated file, a gzip'd one, malformed
lines), its JSON structure, its HTML report as headless Chromium renders
it, and the bounded counters that keep its memory bounded.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from socksgate.scripts.stats import (
    FORMAT,
    MAX_LINE,
    Summary,
    TopCounter,
    formatBytes,
    renderHTML,
    renderText,
    run,
)

from .helpers import CHROMIUM_FLAGS

#: The console script of the environment under test.
SOCKSGATE = os.path.join(os.path.dirname(sys.executable), "socksgate")

#: Debian's headless-capable browser (package C{chromium}): the HTML tests need it.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def record(
    time: str,
    client: str,
    user: str | None,
    destination: str | None,
    outcome: str,
    reply: int | None,
    bytesOut: int = 0,
    bytesIn: int = 0,
    rule: int | None = None,
    message: str = "",
    version: str | None = "5",
    command: str | None = "connect",
    **extra: Any,
) -> dict[str, Any]:
    """
    A session record with SPEC's fields.
    """
    fields = {
        "time": time,
        "session": "0badf00d",
        "listener": "tcp:1080:interface=127.0.0.1",
        "client": client,
        "version": version,
        "auth": "userpass" if user and version == "5" else "none",
        "user": user,
        "ident": None,
        "command": command,
        "destination": destination,
        "remote": None,
        "outcome": outcome,
        "reply": reply,
        "rule": rule,
        "message": message,
        "bytes_out": bytesOut,
        "bytes_in": bytesIn,
        "duration": 1.5,
    }
    fields.update(extra)
    return fields


def line(fields: dict[str, Any]) -> str:
    """
    A record as the access log writes it.
    """
    return json.dumps(fields) + "\n"


SOCIAL = "no social networks"
SSH = "ssh to the outside is not allowed"

# The oldest hour, in the gzip'd rotated file.
HOUR_8 = [
    record(
        "2026-11-21T08:05:00.250Z",
        "10.0.0.1:40001",
        "alice",
        "www.example.com:443",
        "closed",
        0,
        1000,
        200_000,
        1,
    ),
    record(
        "2026-11-21T08:10:00.000Z",
        "10.0.0.1:40002",
        "alice",
        "www.example.com:443",
        "closed",
        0,
        500,
        300_000,
        1,
    ),
    record(
        "2026-11-21T08:20:00.000Z",
        "10.0.0.2:40003",
        "bob",
        "ftp.example.net:21",
        "closed",
        0,
        2_000_000,
        3_000,
        2,
    ),
    record(
        "2026-11-21T08:59:59.999Z",
        "10.0.0.3:40004",
        None,
        "social.example:443",
        "denied",
        2,
        rule=3,
        message=SOCIAL,
    ),
]
# The next hour, in the rotated file.
HOUR_9 = [
    record(
        "2026-11-21T09:00:00.000Z",
        "10.0.0.2:40005",
        "bob",
        "www.example.com:443",
        "closed",
        0,
        4000,
        1_500_000,
        1,
    ),
    record(
        "2026-11-21T09:15:00.000Z",
        "10.0.0.4:40006",
        "carol",
        "social.example:443",
        "denied",
        91,
        rule=3,
        message=SOCIAL,
        version="4",
    ),
    record(
        "2026-11-21T09:30:00.000Z",
        "[2001:db8::7]:5555",
        "alice",
        "unreachable.example:80",
        "failed",
        4,
        rule=1,
        message="no route to host",
    ),
    record(
        "2026-11-21T09:45:00.000Z",
        "10.0.0.3:40008",
        None,
        None,
        "error",
        None,
        message="client closed during the handshake",
        version=None,
        command=None,
    ),
    record(
        "2026-11-21T09:50:00.000Z",
        "10.0.0.2:40009",
        "bob",
        "0.0.0.0:0",
        "closed",
        0,
        300,
        600,
        1,
        command="udp",
        datagrams_out=3,
        datagrams_in=4,
        datagrams_denied=1,
        datagrams_dropped=2,
    ),
]
# The current file, with malformed lines among the records.
HOUR_10 = [
    record(
        "2026-11-21T10:00:00.000Z",
        "10.0.0.1:40010",
        "alice",
        "www.example.com:443",
        "closed",
        0,
        2500,
        1_000_000,
        1,
    ),
    record(
        "2026-11-21T10:05:00.000Z",
        "10.0.0.5:40011",
        "dave",
        "social.example:443",
        "denied",
        2,
        rule=3,
        message=SOCIAL,
    ),
    record(
        "2026-11-21T10:10:00.000Z",
        "10.0.0.5:40012",
        "dave",
        "ssh.example.org:22",
        "denied",
        2,
        rule=5,
        message=SSH,
    ),
    record("2026-11-21T10:30:00.000Z", "10.0.0.6:40013", None, "ftp.example.net:21", "timeout", 6, rule=2),
    record(
        "2026-11-21T10:45:30.500Z", "10.0.0.1:40014", "alice", "refused.example:8080", "failed", 5, rule=1
    ),
]
CURRENT = (
    line(HOUR_10[0])
    + line(HOUR_10[1])
    + '{"time": "2026-11-21T10:20:00.000Z", "outcome": \n'  # line 3: cut short
    + line(HOUR_10[2])
    + "\n"  # line 5: blank, skipped
    + '["not", "an", "object"]\n'  # line 6
    + line(HOUR_10[3])
    + line(HOUR_10[4])
    + line({**HOUR_10[4], "time": "yesterday"})  # line 9
)

#: C{socksgate stats} of the three files, every line with its spaces
#: squeezed; each figure worked out by hand from the records above.
EXPECTED_TEXT = """\
socksgate access log summary

Files: 3
{log}: 5 records, 3 malformed
{log}.1: 5 records
{log}.2.gz: gzip, 4 records
Period: 2026-11-21 08:05 to 2026-11-21 10:45 UTC
Malformed: 3 lines
{log} line 3: not JSON
{log} line 6: not a JSON object
{log} line 9: time is not an ISO 8601 time

Sessions 14
granted 6 42.9%
denied 4 28.6%
failed 2 14.3%
error 1 7.1%
timeout 1 7.1%
Bytes out: 2,008,300 (2.01 MB), clients to destinations
Bytes in: 3,003,600 (3 MB), destinations to clients
UDP: 1 association, datagrams out 3, in 4, denied 1, dropped 2
Commands: connect 12, (none) 1, udp 1
Versions: 5 12, (none) 1, 4 1
Auth: userpass 10, none 4

Busiest users
sessions without a user: 3
by sessions sessions bytes out bytes in
alice 5 4 kB 1.5 MB
bob 3 2 MB 1.5 MB
dave 2 0 B 0 B
carol 1 0 B 0 B
by bytes sessions bytes out bytes in
bob 3 2 MB 1.5 MB
alice 5 4 kB 1.5 MB

Busiest clients
by sessions sessions bytes out bytes in
10.0.0.1 4 4 kB 1.5 MB
10.0.0.2 3 2 MB 1.5 MB
10.0.0.3 2 0 B 0 B
10.0.0.5 2 0 B 0 B
10.0.0.4 1 0 B 0 B
10.0.0.6 1 0 B 0 B
2001:db8::7 1 0 B 0 B
by bytes sessions bytes out bytes in
10.0.0.2 3 2 MB 1.5 MB
10.0.0.1 4 4 kB 1.5 MB

Busiest destinations
by sessions sessions bytes out bytes in
www.example.com:443 4 8 kB 3 MB
social.example:443 3 0 B 0 B
ftp.example.net:21 2 2 MB 3 kB
0.0.0.0:0 1 300 B 600 B
refused.example:8080 1 0 B 0 B
ssh.example.org:22 1 0 B 0 B
unreachable.example:80 1 0 B 0 B
by bytes sessions bytes out bytes in
www.example.com:443 4 8 kB 3 MB
ftp.example.net:21 2 2 MB 3 kB
0.0.0.0:0 1 300 B 600 B

Denials by rule
rule sessions message
rule 3 3 no social networks
rule 5 1 ssh to the outside is not allowed

Failures and errors
outcome reply sessions meaning
error no reply 1 no reply sent
failed reply 4 1 host unreachable
failed reply 5 1 connection refused
timeout reply 6 1 timed out

By hour (UTC)
sessions granted denied bytes out bytes in
2026-11-21 08:00 4 3 1 2 MB 503 kB
2026-11-21 09:00 5 2 1 4.3 kB 1.5 MB
2026-11-21 10:00 5 1 2 2.5 kB 1 MB
"""


def squeezed(text: str) -> str:
    """
    C{text} with the spaces of every line squeezed, as L{EXPECTED_TEXT}.
    """
    return "".join(" ".join(part.split()) + "\n" for part in text.splitlines())


def expectedJSON(log: str) -> dict[str, Any]:
    """
    C{socksgate stats --json} of the three files under C{log}, worked out
    by hand from the records above.
    """

    def entry(name: str, sessions: int, bytesOut: int = 0, bytesIn: int = 0) -> dict[str, Any]:
        return {"name": name, "sessions": sessions, "bytes_out": bytesOut, "bytes_in": bytesIn, "error": 0}

    def table(
        bySessions: list[dict[str, Any]], byBytes: list[dict[str, Any]], **extra: int
    ) -> dict[str, Any]:
        return {
            "by_sessions": bySessions,
            "by_bytes": byBytes,
            "exact": True,
            "tracked": len(bySessions),
            "capacity": 10_000,
            "max_error_sessions": 0,
            "max_error_bytes": 0,
            **extra,
        }

    alice, bob = entry("alice", 5, 4000, 1_500_000), entry("bob", 3, 2_004_300, 1_503_600)
    near, far = entry("10.0.0.1", 4, 4000, 1_500_000), entry("10.0.0.2", 3, 2_004_300, 1_503_600)
    web, ftp = (
        entry("www.example.com:443", 4, 8000, 3_000_000),
        entry("ftp.example.net:21", 2, 2_000_000, 3000),
    )
    udp = entry("0.0.0.0:0", 1, 300, 600)
    return {
        "format": "socksgate-stats/1",
        "files": [
            {"path": log, "compressed": False, "records": 5, "malformed": 3, "error": None},
            {"path": log + ".1", "compressed": False, "records": 5, "malformed": 0, "error": None},
            {"path": log + ".2.gz", "compressed": True, "records": 4, "malformed": 0, "error": None},
        ],
        "period": {"first": "2026-11-21T08:05:00.250Z", "last": "2026-11-21T10:45:30.500Z"},
        "sessions": {
            "total": 14,
            "granted": 6,
            "denied": 4,
            "failed": 2,
            "error": 1,
            "timeout": 1,
            "other": 0,
        },
        "bytes": {"out": 2_008_300, "in": 3_003_600},
        "udp": {
            "sessions": 1,
            "datagrams_out": 3,
            "datagrams_in": 4,
            "datagrams_denied": 1,
            "datagrams_dropped": 2,
        },
        "commands": {"connect": 12, "(none)": 1, "udp": 1},
        "versions": {"5": 12, "(none)": 1, "4": 1},
        "auth": {"userpass": 10, "none": 4},
        "users": table([alice, bob, entry("dave", 2), entry("carol", 1)], [bob, alice], anonymous=3),
        "clients": table(
            [
                near,
                far,
                entry("10.0.0.3", 2),
                entry("10.0.0.5", 2),
                entry("10.0.0.4", 1),
                entry("10.0.0.6", 1),
                entry("2001:db8::7", 1),
            ],
            [far, near],
        ),
        "destinations": table(
            [
                web,
                entry("social.example:443", 3),
                ftp,
                udp,
                entry("refused.example:8080", 1),
                entry("ssh.example.org:22", 1),
                entry("unreachable.example:80", 1),
            ],
            [web, ftp, udp],
            none=1,
        ),
        "denials": {
            "entries": [
                {"rule": 3, "message": SOCIAL, "sessions": 3},
                {"rule": 5, "message": SSH, "sessions": 1},
            ],
            "exact": True,
        },
        "failures": {
            "entries": [
                {"outcome": "error", "reply": None, "meaning": "no reply sent", "sessions": 1},
                {"outcome": "failed", "reply": 4, "meaning": "host unreachable", "sessions": 1},
                {"outcome": "failed", "reply": 5, "meaning": "connection refused", "sessions": 1},
                {"outcome": "timeout", "reply": 6, "meaning": "timed out", "sessions": 1},
            ],
            "exact": True,
        },
        "hours": {
            "entries": [
                {
                    "hour": "2026-11-21T08:00:00Z",
                    "sessions": 4,
                    "granted": 3,
                    "denied": 1,
                    "bytes_out": 2_001_500,
                    "bytes_in": 503_000,
                },
                {
                    "hour": "2026-11-21T09:00:00Z",
                    "sessions": 5,
                    "granted": 2,
                    "denied": 1,
                    "bytes_out": 4300,
                    "bytes_in": 1_500_600,
                },
                {
                    "hour": "2026-11-21T10:00:00Z",
                    "sessions": 5,
                    "granted": 1,
                    "denied": 2,
                    "bytes_out": 2500,
                    "bytes_in": 1_000_000,
                },
            ],
            "dropped": 0,
        },
        "malformed": {
            "lines": 3,
            "examples": [
                {"file": log, "line": 3, "reason": "not JSON"},
                {"file": log, "line": 6, "reason": "not a JSON object"},
                {"file": log, "line": 9, "reason": "time is not an ISO 8601 time"},
            ],
        },
        "limits": {
            "top": 10,
            "capacity": 10_000,
            "small_capacity": 1_000,
            "max_hours": 100_000,
            "max_line": MAX_LINE,
            "max_key": 300,
        },
    }


def writeLogs(directory: str) -> list[str]:
    """
    Write the current log, its rotated C{.1} and its gzip'd C{.2.gz} into
    C{directory}.

    @return: their paths, newest first.
    """
    log = os.path.join(directory, "access.log")
    with open(log, "w", encoding="utf-8") as stream:
        stream.write(CURRENT)
    with open(log + ".1", "w", encoding="utf-8") as stream:
        stream.write("".join(map(line, HOUR_9)))
    with gzip.open(log + ".2.gz", "wt", encoding="utf-8") as stream:
        stream.write("".join(map(line, HOUR_8)))
    return [log, log + ".1", log + ".2.gz"]


def socksgateStats(*arguments: str) -> subprocess.CompletedProcess[str]:
    """
    Run the C{socksgate stats} console script.
    """
    return subprocess.run(
        [SOCKSGATE, "stats", *arguments], capture_output=True, text=True, timeout=300, check=False
    )


def runStats(logs: list[str], asJSON: bool = False, htmlPath: str | None = None) -> tuple[str, str, int]:
    """
    Call L{run} in this process.

    @return: its standard output, standard error and exit status.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run(logs, asJSON, htmlPath, stdout, stderr)
    return stdout.getvalue(), stderr.getvalue(), status


class CommandTests(SynchronousTestCase):
    """
    C{socksgate stats} as administrators run it, on logs with known totals.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.logs = writeLogs(self.directory)

    def test_text(self) -> None:
        """
        The text summary of a log, its rotated file and its gzip'd rotated
        file has every figure of the records: sessions by outcome, bytes,
        UDP datagrams, users, clients (without their ports) and
        destinations by sessions and by bytes, denials by rule and message,
        failures by outcome and reply, sessions and bytes by hour, and the
        malformed lines with their line numbers; exit status 0.
        """
        result = socksgateStats(*self.logs)
        self.assertEqual((result.stderr, result.returncode), ("", 0))
        self.assertEqual(squeezed(result.stdout), EXPECTED_TEXT.format(log=self.logs[0]))

    def test_json(self) -> None:
        """
        C{--json} prints the documented structure with every figure of the
        records.
        """
        result = socksgateStats("--json", *self.logs)
        self.assertEqual((result.stderr, result.returncode), ("", 0))
        self.assertEqual(json.loads(result.stdout), expectedJSON(self.logs[0]))

    def test_filesInAnyOrder(self) -> None:
        """
        The figures do not depend on the order of the files, and a file
        named twice is read once.
        """
        log = self.logs[0]
        result = socksgateStats(
            "--json", self.logs[2], log, self.logs[1], os.path.join(self.directory, ".", "access.log")
        )
        self.assertEqual(result.returncode, 0)
        report = json.loads(result.stdout)
        expected = expectedJSON(log)
        self.assertEqual([file["path"] for file in report["files"]], [self.logs[2], log, self.logs[1]])
        for key in ("sessions", "bytes", "users", "clients", "destinations", "denials", "failures", "hours"):
            self.assertEqual(report[key], expected[key])

    def test_missingFile(self) -> None:
        """
        A file that cannot be opened is named on standard error, nothing is
        printed, and the exit status is 1.
        """
        missing = os.path.join(self.directory, "access.log.3")
        result = socksgateStats(self.logs[0], missing)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertEqual(
            result.stderr, f"socksgate stats: {missing}: cannot be read: No such file or directory\n"
        )

    def test_directory(self) -> None:
        """
        A directory given as a log is refused with exit status 1, without a
        traceback.
        """
        result = socksgateStats(self.directory)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"socksgate stats: {self.directory}: cannot be read:", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_truncatedGzip(self) -> None:
        """
        A gzip'd file cut short is reported on standard error and in the
        summary, which counts the records read before the cut; the exit
        status is 1.
        """
        broken = os.path.join(self.directory, "broken.gz")
        with open(self.logs[2], "rb") as stream:
            compressed = stream.read()
        with open(broken, "wb") as stream:
            stream.write(compressed[: len(compressed) - 12])
        result = socksgateStats("--json", broken)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"socksgate stats: {broken}: read error after", result.stderr)
        report = json.loads(result.stdout)
        [file] = report["files"]
        self.assertEqual(file["error"], "the compressed file is truncated")
        self.assertEqual(file["records"], report["sessions"]["total"])
        self.assertLessEqual(file["records"], 4)

    def test_html(self) -> None:
        """
        C{--html FILE} writes the report, says so on standard output, and
        exits 0.
        """
        report = os.path.join(self.directory, "report.html")
        result = socksgateStats("--html", report, *self.logs)
        self.assertEqual(
            (result.stdout, result.stderr, result.returncode), (f"Wrote {report}: 14 sessions\n", "", 0)
        )
        with open(report, encoding="utf-8") as stream:
            self.assertIn("<svg", stream.read())

    def test_htmlNotWritable(self) -> None:
        """
        A report that cannot be written gives exit status 1 and a message.
        """
        report = os.path.join(self.directory, "no-such-directory", "report.html")
        result = socksgateStats("--html", report, *self.logs)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"socksgate stats: {report}: cannot be written", result.stderr)


class _Element:
    """
    An element of a parsed document.
    """

    def __init__(self, tag: str, attributes: dict[str, str | None], parent: _Element | None) -> None:
        self.tag, self.attributes, self.parent = tag, attributes, parent
        self.children: list[_Element] = []
        self.text = ""

    def iter(self) -> list[_Element]:
        """
        This element and all below it, in document order.
        """
        found = [self]
        for child in self.children:
            found.extend(child.iter())
        return found

    def find(self, tag: str, **attributes: str) -> list[_Element]:
        """
        The elements below with this tag and attributes (C{class_} for
        C{class}, matching one of its classes).
        """
        matches = []
        for element in self.iter()[1:]:
            if element.tag != tag:
                continue
            wanted = dict(attributes)
            if "class_" in wanted:
                classes = (element.attributes.get("class") or "").split()
                if wanted.pop("class_") not in classes:
                    continue
            if all(element.attributes.get(name) == value for name, value in wanted.items()):
                matches.append(element)
        return matches

    def allText(self) -> str:
        """
        The text of this element and all below it.
        """
        return self.text + "".join(child.allText() for child in self.children)


class _TreeBuilder(HTMLParser):
    """
    Builds a tree of L{_Element}s from serialised HTML, as Chromium's
    C{--dump-dom} prints it.
    """

    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(_Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        element: _Element | None = self.current
        while element is not None and element.tag != tag:
            element = element.parent
        if element is not None and element.parent is not None:
            self.current = element.parent

    def handle_data(self, data: str) -> None:
        self.current.text += data


def parseDocument(text: str) -> _Element:
    """
    The tree of a serialised HTML document.
    """
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def renderedSize(element: _Element) -> tuple[float, float]:
    """
    The width and height the browser gave an element, as the report's
    script recorded them.
    """
    size = element.attributes.get("data-rendered-size")
    assert size is not None, f"{element.tag} {element.attributes} has no rendered size"
    width, height = size.split("x")
    return float(width), float(height)


def dumpDOM(path: str, profile: str) -> str:
    """
    The DOM of the page at C{path} once headless Chromium has loaded it.
    """
    result = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1200,1600",
            "--dump-dom",
            "file://" + os.path.abspath(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0 or "<svg" not in result.stdout:
        raise AssertionError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


class HTMLReportTests(SynchronousTestCase):
    """
    The HTML report, rendered by headless Chromium (Debian's C{chromium}).
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.logs = writeLogs(self.directory)
        self.report = os.path.join(self.directory, "report.html")
        result = socksgateStats("--html", self.report, *self.logs)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(self.report, encoding="utf-8") as stream:
            self.source = stream.read()
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.addCleanup(shutil.rmtree, profile, ignore_errors=True)
        self.dom = parseDocument(dumpDOM(self.report, profile))

    def chart(self, name: str) -> _Element:
        """
        The rendered chart C{name}, which has a size on the page.
        """
        [svg] = self.dom.find("svg", id=name)
        width, height = renderedSize(svg)
        self.assertGreater(width, 300)
        self.assertGreater(height, 50)
        return svg

    def test_selfContained(self) -> None:
        """
        The page loads nothing: no external script, style sheet, image,
        font or frame; its style and charts are inline.
        """
        for element in parseDocument(self.source).iter():
            self.assertNotIn(element.tag, ("link", "img", "iframe", "object", "embed"))
            self.assertNotIn("src", element.attributes)
            self.assertNotIn("href", element.attributes)
        self.assertNotIn("url(", self.source)
        self.assertNotIn("@import", self.source)
        self.assertEqual(len(self.dom.find("style")), 1)

    def test_sessionsPerHour(self) -> None:
        """
        The sessions chart has one bar for each hour of the data, each with
        a non-zero rendered size, heights in proportion to the sessions of
        the hour (4, 5 and 5), and segments for granted, denied and the
        rest.
        """
        bars = self.chart("sessions-chart").find("g", class_="bar")
        self.assertEqual(len(bars), 3)
        sizes = [renderedSize(bar) for bar in bars]
        for width, height in sizes:
            self.assertGreater(width, 1)
            self.assertGreater(height, 1)
        self.assertAlmostEqual(sizes[0][1] / sizes[1][1], 4 / 5, places=2)
        self.assertAlmostEqual(sizes[1][1], sizes[2][1], places=1)
        self.assertEqual(
            [[rect.attributes["class"] for rect in bar.find("rect")] for bar in bars],
            [
                ["s-granted", "s-denied"],
                ["s-granted", "s-denied", "s-failed"],
                ["s-granted", "s-denied", "s-failed"],
            ],
        )
        self.assertEqual(
            [bar.find("title")[0].allText() for bar in bars],
            [
                "2026-11-21 08:00 UTC: 4 sessions, 3 granted, 1 denied",
                "2026-11-21 09:00 UTC: 5 sessions, 2 granted, 1 denied",
                "2026-11-21 10:00 UTC: 5 sessions, 1 granted, 2 denied",
            ],
        )

    def test_bytesPerHour(self) -> None:
        """
        The bytes chart has one bar for each hour, with heights in
        proportion to the bytes of the hour (2,504,500, 1,504,900 and
        1,002,500).
        """
        bars = self.chart("bytes-chart").find("g", class_="bar")
        self.assertEqual(len(bars), 3)
        heights = [renderedSize(bar)[1] for bar in bars]
        self.assertTrue(all(height > 1 for height in heights), heights)
        self.assertAlmostEqual(heights[1] / heights[0], 1_504_900 / 2_504_500, places=2)
        self.assertAlmostEqual(heights[2] / heights[0], 1_002_500 / 2_504_500, places=2)

    def test_topDestinations(self) -> None:
        """
        The top destinations chart has a bar for each destination, busiest
        first, with widths in proportion to their sessions.
        """
        bars = self.chart("destinations-chart").find("g", class_="bar")
        labels = [bar.find("text")[0].allText() for bar in bars]
        self.assertEqual(
            labels,
            [
                "www.example.com:443",
                "social.example:443",
                "ftp.example.net:21",
                "0.0.0.0:0",
                "refused.example:8080",
                "ssh.example.org:22",
                "unreachable.example:80",
            ],
        )
        widths = [float(bar.find("rect")[0].attributes["width"] or 0) for bar in bars]
        self.assertTrue(all(width > 0 for width in widths), widths)
        self.assertAlmostEqual(widths[1] / widths[0], 3 / 4, places=2)
        for bar in bars:
            width, height = renderedSize(bar)
            self.assertGreater(width, 0)
            self.assertGreater(height, 0)

    def test_figures(self) -> None:
        """
        The page shows the totals and names the malformed lines.
        """
        cards = {
            card.find("div", class_="label")[0].allText(): card.find("div", class_="value")[0].allText()
            for card in self.dom.find("div", class_="card")
        }
        self.assertEqual(
            cards,
            {
                "sessions": "14",
                "granted (42.9%)": "6",
                "denied (28.6%)": "4",
                "failed, errors, time-outs": "4",
                "data in (to clients)": "3 MB",
                "data out (from clients)": "2.01 MB",
            },
        )
        [warning] = self.dom.find("section", class_="warning")
        self.assertIn("3 malformed lines skipped", warning.allText())
        self.assertIn(f"{self.logs[0]} line 3 (not JSON)", warning.allText())


class FileTests(SynchronousTestCase):
    """
    How log files are read.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)

    def write(self, name: str, content: bytes) -> str:
        """
        Write a file in the test's directory; return its path.
        """
        path = os.path.join(self.directory, name)
        with open(path, "wb") as stream:
            stream.write(content)
        return path

    def test_gzipByContent(self) -> None:
        """
        A gzip'd file is recognised by its magic bytes whatever its name,
        and a plain file named C{.gz} is read as it is.
        """
        text = "".join(map(line, HOUR_8)).encode()
        compressed = self.write("access.log.2", gzip.compress(text))
        plain = self.write("access.log.3.gz", text)
        stdout, stderr, status = runStats([compressed, plain], asJSON=True)
        self.assertEqual((stderr, status), ("", 0))
        report = json.loads(stdout)
        self.assertEqual(
            [(file["compressed"], file["records"], file["malformed"]) for file in report["files"]],
            [(True, 4, 0), (False, 4, 0)],
        )
        self.assertEqual(report["sessions"]["total"], 8)

    def test_longLine(self) -> None:
        """
        A line longer than L{MAX_LINE} is malformed and skipped without
        being held whole; the line after it counts.
        """
        path = self.write("access.log", b"x" * (MAX_LINE * 3 + 5) + b"\n" + line(HOUR_8[0]).encode())
        summary = Summary()
        file = summary.readFile(path)
        self.assertEqual((file.records, file.malformed), (1, 1))
        self.assertEqual(summary.malformedExamples, [(path, 1, f"longer than {MAX_LINE} bytes")])

    def test_garbage(self) -> None:
        """
        Binary garbage, invalid UTF-8, deep nesting and badly typed fields
        are malformed lines, never an exception.
        """
        good = HOUR_8[0]
        lines = [
            b"\x00\xff\xfe garbage",
            b'{"time": "2026-11-21T08:00:00Z", "outcome": "closed", "user": "\xff"}',
            b"[" * 100_000,
            json.dumps({**good, "bytes_out": -1}).encode(),
            json.dumps({**good, "bytes_in": "12"}).encode(),
            json.dumps({**good, "bytes_in": 1.5}).encode(),
            json.dumps({**good, "outcome": None}).encode(),
            json.dumps({**good, "user": 12}).encode(),
            json.dumps({**good, "rule": "3"}).encode(),
            json.dumps({**good, "reply": True}).encode(),
            json.dumps({**good, "datagrams_in": -3}).encode(),
            json.dumps({key: value for key, value in good.items() if key != "time"}).encode(),
            json.dumps(good).encode(),
        ]
        summary = Summary()
        file = summary.readFile(self.write("access.log", b"\n".join(lines)))
        self.assertEqual((file.records, file.malformed, summary.malformed), (1, 12, 12))
        self.assertEqual(
            [reason for _, _, reason in summary.malformedExamples],
            ["not JSON", "not JSON", "not JSON", "bytes_out is not a count", "bytes_in is not a count"],
        )

    def test_emptyLog(self) -> None:
        """
        An empty log gives a summary of nothing in each form.
        """
        path = self.write("access.log", b"")
        stdout, stderr, status = runStats([path])
        self.assertEqual((stderr, status), ("", 0))
        self.assertIn("Period:       no records\n", stdout)
        self.assertIn("Sessions 0\n", squeezed(stdout))
        stdout, stderr, status = runStats([path], asJSON=True)
        report = json.loads(stdout)
        self.assertEqual(report["format"], FORMAT)
        self.assertEqual(report["period"], {"first": None, "last": None})
        self.assertEqual(report["hours"]["entries"], [])
        page = os.path.join(self.directory, "report.html")
        self.assertEqual(runStats([path], htmlPath=page)[2], 0)


class RenderingTests(SynchronousTestCase):
    """
    What the text and the page make of what clients put in the log.
    """

    def test_terminalControlCharacters(self) -> None:
        """
        Control characters in names (a SOCKS user name is the client's
        choice) are escaped in the text, never sent to the terminal.
        """
        summary = Summary()
        summary.addRecord(
            record("2026-11-21T08:00:00Z", "10.0.0.1:1", "\x1b[2J\x1b]0;owned\x07", "a\rb:80", "closed", 0)
        )
        text = renderText(summary.asDict())
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\x07", text)
        self.assertNotIn("\r", text)
        self.assertIn("\\x1b[2J\\x1b]0;owned\\x07", text)
        self.assertIn("a\\rb:80", text)

    def test_notUTF8(self) -> None:
        """
        A name that was not UTF-8 on the wire, which the access log writes
        as a lone surrogate escape (C{\\udcff}), is counted, and shown as
        that escape in the text and the page.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        log = os.path.join(directory, "access.log")
        with open(log, "w", encoding="ascii") as stream:
            stream.write(line(record("2026-11-21T08:00:00Z", "10.0.0.1:1", "b\udcffd", "a:1", "closed", 0)))
        stdout, stderr, status = runStats([log])
        self.assertEqual((stderr, status), ("", 0))
        self.assertIn("    b\\udcffd ", stdout)
        page = os.path.join(directory, "report.html")
        self.assertEqual(runStats([log], htmlPath=page)[1:], ("", 0))
        with open(page, encoding="utf-8") as stream:
            self.assertIn("b\\udcffd", stream.read())
        stdout, stderr, status = runStats([log], asJSON=True)
        self.assertEqual(json.loads(stdout)["users"]["by_sessions"][0]["name"], "b\udcffd")

    def test_htmlEscaping(self) -> None:
        """
        Names and messages are escaped in the page: markup in them stays
        text.
        """
        summary = Summary()
        summary.addRecord(
            record(
                "2026-11-21T08:00:00Z",
                "10.0.0.1:1",
                "<script>alert(1)</script>",
                "<img src=x onerror=alert(2)>:80",
                "denied",
                2,
                rule=1,
                message='"><svg onload=alert(3)>',
            )
        )
        page = renderHTML(summary.asDict())
        self.assertNotIn("<script>alert", page)
        self.assertNotIn("<img", page)
        self.assertNotIn("<svg onload", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("&lt;img src=x onerror=alert(2)&gt;:80", page)

    def test_longSpanByDay(self) -> None:
        """
        A log spanning more than a month is charted by day: one bar for
        each day with sessions.
        """
        summary = Summary()
        days = [0, 1, 20, 40]
        for day in days:
            for hour in (3, 15):
                moment = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=day, hours=hour)
                time = moment.isoformat().replace("+00:00", "Z")
                summary.addRecord(record(time, "10.0.0.1:1", None, "a:1", "closed", 0, 10, 10))
        page = parseDocument(renderHTML(summary.asDict()))
        [svg] = page.find("svg", id="sessions-chart")
        self.assertEqual(len(svg.find("g", class_="bar")), len(days))
        self.assertIn("Sessions per day", page.allText())

    def test_formatBytes(self) -> None:
        """
        Byte counts are written in decimal units with three significant
        digits.
        """
        self.assertEqual(
            [formatBytes(count) for count in (0, 999, 1000, 1499, 12_345_678, 999_499, 999_500, 10**15)],
            ["0 B", "999 B", "1 kB", "1.5 kB", "12.3 MB", "999 kB", "1 MB", "1 PB"],
        )


class BoundedCounterTests(SynchronousTestCase):
    """
    L{TopCounter} and the summary's counters keep at most their capacity of
    keys, and the heavy ones among them.
    """

    def test_exactWithinCapacity(self) -> None:
        """
        While the distinct keys fit, every count is exact.
        """
        counter: TopCounter[str] = TopCounter(3)
        for key in "abacab":
            counter.add(key, 1, 10, 20)
        self.assertTrue(counter.exact)
        self.assertEqual(counter.maxError, 0)
        self.assertEqual(
            counter.top(), [("a", 3, 0, 3, 30, 60), ("b", 2, 0, 2, 20, 40), ("c", 1, 0, 1, 10, 20)]
        )

    def test_capacityKept(self) -> None:
        """
        More distinct keys than the capacity leave the counter at its
        capacity; a key with more than total / capacity of the weight is
        kept, its count never too low and too high by at most its error,
        which is at most total / capacity.
        """
        counter: TopCounter[str] = TopCounter(100)
        heavy = 0
        for index in range(10_000):
            if index % 5 == 0:
                counter.add("heavy", 1)
                heavy += 1
            else:
                counter.add(f"client-{index}", 1)
        self.assertEqual(len(counter), 100)
        self.assertFalse(counter.exact)
        self.assertEqual(counter.total, 10_000)
        [(key, count, error, *_)] = counter.top(1)
        self.assertEqual(key, "heavy")
        self.assertGreaterEqual(count, heavy)
        self.assertLessEqual(count - error, heavy)
        self.assertLessEqual(error, counter.total // 100)
        self.assertLessEqual(counter.maxError, counter.total // 100)

    def test_weighted(self) -> None:
        """
        Weighted (by bytes), a key with a large share of the bytes is kept
        among many light ones.
        """
        counter: TopCounter[str] = TopCounter(10)
        for index in range(1000):
            counter.add(f"light-{index}", 1)
            if index % 100 == 0:
                counter.add("big", 1_000)
        self.assertEqual(len(counter), 10)
        self.assertEqual(counter.top(1)[0][0], "big")
        self.assertGreaterEqual(counter.top(1)[0][1], 10_000)

    def test_longNamesCut(self) -> None:
        """
        Names and messages longer than SOCKS allows are cut to C{MAX_KEY}
        characters before they are counted, so that each key kept has a
        bounded size.
        """
        summary = Summary()
        long = "x" * 100_000
        summary.addRecord(
            record("2026-11-21T08:00:00Z", long, long, long, "denied", 2, rule=1, message=long, command=long)
        )
        report = summary.asDict()
        for key in ("users", "clients", "destinations"):
            [entry] = report[key]["by_sessions"]
            self.assertEqual(entry["name"], "x" * 300)
        self.assertEqual(report["denials"]["entries"][0]["message"], "x" * 300)
        self.assertEqual(report["commands"], {"x" * 300: 1})

    def test_summaryCapsClients(self) -> None:
        """
        A log with more distinct clients than the cap keeps the client
        counters at the cap and says its figures are estimates.
        """
        summary = Summary(capacity=50)
        for index in range(2_000):
            client = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}:1080"
            summary.addRecord(
                record("2026-11-21T08:00:00Z", client, f"user{index % 7}", "a:1", "closed", 0, 1, 1)
            )
        bySessions, byBytes = summary.counters["clients"]
        self.assertEqual((len(bySessions), len(byBytes)), (50, 50))
        report = summary.asDict()
        self.assertEqual(report["sessions"]["total"], 2_000)
        self.assertEqual(report["clients"]["tracked"], 50)
        self.assertFalse(report["clients"]["exact"])
        self.assertTrue(report["users"]["exact"])
        self.assertEqual(len(report["clients"]["by_sessions"]), 10)
        self.assertIn("Busiest clients (approximate: more than 50 distinct;", renderText(report))
        self.assertIn("More than 50 distinct: figures are estimates", renderHTML(report))
