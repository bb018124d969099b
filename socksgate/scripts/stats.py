"""
C{socksgate stats LOG... [--json] [--html FILE]}: an executive summary of
session logs (one JSON object a line, see SPEC's I{Session log}).

Every C{LOG} is read in turn: plain, rotated (C{access.log.1}, ...) or
compressed with gzip (recognised by its magic bytes, whatever its name);
C{socksgate stats /var/log/socksgate/access.log*} reads a whole rotation.
A file named twice is read once.  The summary has the sessions (granted,
denied, failed, error, timeout), the bytes each way, the busiest users,
clients (by address, without the port) and destinations (the top
L{TOP} by sessions and by bytes), the denials by rule and message, the
failures and errors by outcome and reply code, and the sessions and bytes
by hour (UTC, each session counted in the hour its request arrived).

Output: text for the terminal by default; C{--json} prints the structure
that L{Summary.asDict} documents (C{"format": "socksgate-stats/1"}); C{--html
FILE} writes a single self-contained page (inline CSS and SVG charts, no
external resource).

The summary streams: memory does not grow with the size of the logs.
Users, clients and destinations are counted with the Space-Saving
algorithm (L{TopCounter}): at most L{CAPACITY} distinct keys each, exact
while there are no more than that, and otherwise an over-estimate by at
most (total / capacity) for each key kept, every key above that share being
kept.  The other tables have caps of their own (L{SMALL_CAPACITY},
L{CATEGORY_CAPACITY}, L{MAX_HOURS}); a line is read up to L{MAX_LINE}
bytes, and names and messages are cut to L{MAX_KEY} characters.

A line that is not a JSON object with a valid C{time} and C{outcome} (and
well-typed other fields) is counted as malformed; the first
L{MALFORMED_EXAMPLES} are reported with their file and line number.
Blank lines are skipped.

Exit status: 0 when every file was read; 1 when one could not be opened
(nothing else is printed), could not be read to its end (the summary of
what was read is printed, and names the file), or when the HTML report
could not be written.
"""

from __future__ import annotations

import gzip
import heapq
import html
import itertools
import json
import math
import os
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Generic, TextIO, TypeVar

__all__ = [
    "CAPACITY",
    "FORMAT",
    "TOP",
    "FileSummary",
    "Summary",
    "TopCounter",
    "formatBytes",
    "openLog",
    "renderHTML",
    "renderText",
    "run",
    "summariseFiles",
]

#: The identifier and version of the C{--json} structure.
FORMAT = "socksgate-stats/1"

#: How many users, clients and destinations the tables list.
TOP = 10

#: The most distinct keys each user, client and destination counter keeps.
CAPACITY = 10_000

#: The most distinct (rule, message) denials and (outcome, reply) failures kept.
SMALL_CAPACITY = 1_000

#: The most distinct commands, versions and authentication methods kept;
#: the rest are counted as C{"(other)"}.
CATEGORY_CAPACITY = 64

#: The most distinct hours kept (more than eleven years).
MAX_HOURS = 100_000

#: The longest line read; a longer one is malformed and skipped.
MAX_LINE = 1 << 20

#: The longest user, client, destination or message counted: longer ones
#: are cut (SOCKS names have at most 255 bytes), which bounds the memory of
#: each key kept.
MAX_KEY = 300

#: How many malformed lines are reported by file and line number.
MALFORMED_EXAMPLES = 5

#: Past this many hours between the first and the last record, the HTML
#: charts show days instead of hours.
MAX_CHART_HOURS = 24 * 31

GZIP_MAGIC = b"\x1f\x8b"

OUTCOMES = ("closed", "denied", "failed", "error", "timeout")

#: What reply codes mean: SOCKS5 REP (and method selection 0xFF), SOCKS4 CD.
REPLY_MEANINGS = {
    0: "succeeded",
    1: "general failure",
    2: "not allowed by the rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "timed out",
    7: "command not supported",
    8: "address type not supported",
    90: "granted (SOCKS4)",
    91: "rejected or failed (SOCKS4)",
    92: "no identd (SOCKS4)",
    93: "identd user differs (SOCKS4)",
    255: "no acceptable authentication method",
}

_DECODER = json.JSONDecoder()

_TEXT_FIELDS = ("client", "user", "destination", "command", "version", "auth", "message")
_DATAGRAM_FIELDS = ("datagrams_out", "datagrams_in", "datagrams_denied", "datagrams_dropped")

K = TypeVar("K", bound=Hashable)


class TopCounter(Generic[K]):
    """
    The heaviest keys of a stream, in bounded memory: the Space-Saving
    algorithm (Metwally, Agrawal and El Abbadi, "Efficient computation of
    frequent and top-k elements in data streams", 2005), weighted.

    At most C{capacity} keys are kept.  A new key arriving when the counter
    is full replaces the key with the smallest count, and starts from that
    count (its C{error}, by which its count may be too high).  Hence: while
    no more than C{capacity} distinct keys have been seen, every figure is
    exact; after that, every key whose true weight exceeds
    C{total / capacity} is kept, and no kept count is too high by more than
    that.  A new key of weight 0 is kept only while there is room.

    Beside its ranking weight, each key carries the sessions and bytes
    added since it was last admitted (exact while C{exact}).

    @ivar capacity: the most keys kept.
    @ivar total: the sum of all the weights added.
    @ivar evicted: how many keys were replaced.
    @ivar skipped: how many new keys of weight 0 were not kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.total = 0
        self.evicted = 0
        self.skipped = 0
        # key -> [weight, error, sessions, bytes out, bytes in]
        self._entries: dict[K, list[int]] = {}
        # (weight when pushed, tie-breaker, key), one for each key kept; a
        # weight that grew since is corrected when the entry reaches the top.
        self._heap: list[tuple[int, int, K]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        """
        The number of keys kept (at most C{capacity}).
        """
        return len(self._entries)

    @property
    def exact(self) -> bool:
        """
        Whether every key seen is kept, with exact figures.
        """
        return not (self.evicted or self.skipped)

    @property
    def maxError(self) -> int:
        """
        The most by which any kept weight may be too high: 0 while exact.
        """
        if self.exact:
            return 0
        return min(entry[0] for entry in self._entries.values())

    def add(self, key: K, weight: int = 1, bytesOut: int = 0, bytesIn: int = 0) -> None:
        """
        Count a session of C{key} with this ranking C{weight} and bytes.
        """
        self.total += weight
        entry = self._entries.get(key)
        if entry is not None:
            entry[0] += weight
            entry[2] += 1
            entry[3] += bytesOut
            entry[4] += bytesIn
            return
        heap = self._heap
        if len(self._entries) < self.capacity:
            self._entries[key] = [weight, 0, 1, bytesOut, bytesIn]
            heapq.heappush(heap, (weight, next(self._order), key))
            return
        if weight == 0:
            self.skipped += 1
            return
        entries = self._entries
        while True:
            pushed, order, victim = heap[0]
            current = entries[victim][0]
            if current == pushed:
                break
            heapq.heapreplace(heap, (current, order, victim))
        del entries[victim]
        self.evicted += 1
        entries[key] = [pushed + weight, pushed, 1, bytesOut, bytesIn]
        heapq.heapreplace(heap, (pushed + weight, next(self._order), key))

    def top(self, count: int | None = None) -> list[tuple[K, int, int, int, int, int]]:
        """
        The heaviest keys, heaviest first (ties in the order of the keys'
        text).

        @return: up to C{count} (all when C{None}) tuples of C{(key,
            weight, error, sessions, bytesOut, bytesIn)}.
        """
        ranked = sorted(self._entries.items(), key=lambda item: (-item[1][0], str(item[0])))
        if count is not None:
            ranked = ranked[:count]
        return [(key, *entry) for key, entry in ranked]  # type: ignore[misc]


@dataclass
class FileSummary:
    """
    What was read from one log file.

    @ivar path: the file's name, as given.
    @ivar compressed: whether it is gzip'd.
    @ivar records: the records read from it.
    @ivar malformed: its malformed lines.
    @ivar error: why it could not be read to its end, or C{None}.
    """

    path: str
    compressed: bool = False
    records: int = 0
    malformed: int = 0
    error: str | None = None


def openLog(path: str) -> tuple[IO[bytes], bool]:
    """
    Open a log file for reading, decompressing it when it starts with
    gzip's magic bytes.

    @return: the binary stream of its lines, and whether it is gzip'd.
    @raise OSError: when it cannot be opened.
    """
    stream = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        compressed = stream.peek(2)[:2] == GZIP_MAGIC
    except BaseException:
        stream.close()
        raise
    if compressed:
        return gzip.GzipFile(fileobj=stream, mode="rb"), True  # type: ignore[return-value]
    return stream, False


def _hostOf(client: str) -> str:
    """
    The address of a C{host:port} or C{[v6]:port} client, without the port.
    """
    if client.startswith("["):
        end = client.find("]")
        return client[1:end] if end > 0 else client
    if client.count(":") == 1:
        return client.partition(":")[0]
    return client


def _timestamp(text: str) -> float | None:
    """
    The POSIX time of an ISO 8601 time (UTC when it has no offset), or
    C{None} when it is not one.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _isoTime(timestamp: float, milliseconds: bool = True) -> str:
    """
    A POSIX time in ISO 8601, UTC, with a C{Z}.
    """
    moment = datetime.fromtimestamp(timestamp, UTC)
    if milliseconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bump(counts: dict[str, int], key: str | None, cap: int = CATEGORY_CAPACITY) -> None:
    """
    Count C{key} (C{"(none)"} for C{None}) in a small table of at most
    C{cap} keys, the rest going to C{"(other)"}.
    """
    name = "(none)" if key is None else key[:MAX_KEY]
    if name in counts or len(counts) < cap:
        counts[name] = counts.get(name, 0) + 1
    else:
        counts["(other)"] = counts.get("(other)", 0) + 1


class Summary:
    """
    The running summary of session records: feed it records, lines or
    files, then ask for L{asDict}.
    """

    def __init__(self, capacity: int = CAPACITY, top: int = TOP) -> None:
        """
        @param capacity: the most distinct users, clients and destinations
            kept by each of their counters.
        @param top: how many of each the summary lists.
        """
        self.capacity = capacity
        self.topCount = top
        self.files: list[FileSummary] = []
        self.records = 0
        self.outcomes: dict[str, int] = {}
        self.bytesOut = 0
        self.bytesIn = 0
        self.udpSessions = 0
        self.datagrams = dict.fromkeys(_DATAGRAM_FIELDS, 0)
        self.commands: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.auth: dict[str, int] = {}
        self.anonymous = 0
        self.noDestination = 0
        self.first: float | None = None
        self.last: float | None = None
        #: name -> (by sessions, by bytes)
        self.counters: dict[str, tuple[TopCounter[str], TopCounter[str]]] = {
            name: (TopCounter(capacity), TopCounter(capacity))
            for name in ("users", "clients", "destinations")
        }
        self.denials: TopCounter[tuple[int | None, str]] = TopCounter(SMALL_CAPACITY)
        self.failures: TopCounter[tuple[str, int | None]] = TopCounter(SMALL_CAPACITY)
        #: hour (POSIX time // 3600) -> [sessions, granted, denied, bytes out, bytes in]
        self.hours: dict[int, list[int]] = {}
        self.hoursDropped = 0
        self.malformed = 0
        self.malformedExamples: list[tuple[str, int, str]] = []

    def addRecord(self, record: Any) -> str | None:
        """
        Count one decoded record.

        @return: C{None}, or why the record is malformed (and then it is
            not counted).
        """
        if type(record) is not dict:
            return "not a JSON object"
        get = record.get
        time = get("time")
        if type(time) is not str:
            return "no time"
        timestamp = _timestamp(time)
        if timestamp is None:
            return "time is not an ISO 8601 time"
        outcome = get("outcome")
        if type(outcome) is not str:
            return "no outcome"
        bytesOut = get("bytes_out", 0)
        if type(bytesOut) is not int or bytesOut < 0:
            return "bytes_out is not a count"
        bytesIn = get("bytes_in", 0)
        if type(bytesIn) is not int or bytesIn < 0:
            return "bytes_in is not a count"
        for name in _TEXT_FIELDS:
            value = get(name)
            if value is not None and type(value) is not str:
                return f"{name} is not a string"
        reply = get("reply")
        if reply is not None and type(reply) is not int:
            return "reply is not an integer"
        rule = get("rule")
        if rule is not None and type(rule) is not int:
            return "rule is not an integer"
        datagrams = []
        for name in _DATAGRAM_FIELDS:
            value = get(name)
            if value is not None and (type(value) is not int or value < 0):
                return f"{name} is not a count"
            datagrams.append(value)

        self.records += 1
        if self.first is None or timestamp < self.first:
            self.first = timestamp
        if self.last is None or timestamp > self.last:
            self.last = timestamp
        outcomeKey = outcome if outcome in OUTCOMES else "other"
        self.outcomes[outcomeKey] = self.outcomes.get(outcomeKey, 0) + 1
        self.bytesOut += bytesOut
        self.bytesIn += bytesIn
        moved = bytesOut + bytesIn
        command = get("command")
        _bump(self.commands, command)
        _bump(self.versions, get("version"))
        _bump(self.auth, get("auth"))
        if command == "udp" or datagrams != [None] * 4:
            if command == "udp":
                self.udpSessions += 1
            for name, value in zip(_DATAGRAM_FIELDS, datagrams, strict=True):
                if value:
                    self.datagrams[name] += value

        user = get("user")
        if user:
            user = user[:MAX_KEY]
            bySessions, byBytes = self.counters["users"]
            bySessions.add(user, 1, bytesOut, bytesIn)
            byBytes.add(user, moved, bytesOut, bytesIn)
        else:
            self.anonymous += 1
        client = get("client")
        if client:
            host = _hostOf(client[:MAX_KEY])
            bySessions, byBytes = self.counters["clients"]
            bySessions.add(host, 1, bytesOut, bytesIn)
            byBytes.add(host, moved, bytesOut, bytesIn)
        destination = get("destination")
        if destination:
            destination = destination[:MAX_KEY]
            bySessions, byBytes = self.counters["destinations"]
            bySessions.add(destination, 1, bytesOut, bytesIn)
            byBytes.add(destination, moved, bytesOut, bytesIn)
        else:
            self.noDestination += 1

        if outcome == "denied":
            self.denials.add((rule, (get("message") or "")[:MAX_KEY]))
        elif outcome != "closed":
            self.failures.add((outcome, reply))

        hour = int(timestamp // 3600)
        bucket = self.hours.get(hour)
        if bucket is None:
            if len(self.hours) >= MAX_HOURS:
                self.hoursDropped += 1
                return None
            bucket = self.hours[hour] = [0, 0, 0, 0, 0]
        bucket[0] += 1
        if outcome == "closed":
            bucket[1] += 1
        elif outcome == "denied":
            bucket[2] += 1
        bucket[3] += bytesOut
        bucket[4] += bytesIn
        return None

    def noteMalformed(self, path: str, line: int, reason: str) -> None:
        """
        Count a malformed line, keeping the first few by place.
        """
        self.malformed += 1
        if len(self.malformedExamples) < MALFORMED_EXAMPLES:
            self.malformedExamples.append((path, line, reason))

    def readStream(self, stream: IO[bytes], file: FileSummary) -> None:
        """
        Count every line of a binary stream, on behalf of C{file}.

        @raise OSError, EOFError: when the stream breaks (a truncated or
            corrupt gzip file raises these).
        """
        readline = stream.readline
        decode = _DECODER.decode
        addRecord = self.addRecord
        number = 0
        records = 0
        try:
            while True:
                line = readline(MAX_LINE)
                if not line:
                    break
                number += 1
                if len(line) == MAX_LINE and not line.endswith(b"\n"):
                    while True:
                        rest = readline(MAX_LINE)
                        if not rest or rest.endswith(b"\n"):
                            break
                    reason = f"longer than {MAX_LINE} bytes"
                else:
                    try:
                        record = decode(line.decode("utf-8"))
                    except (ValueError, RecursionError):
                        if not line.strip():
                            continue
                        reason = "not JSON"
                    else:
                        reason = addRecord(record)
                        if reason is None:
                            records += 1
                            continue
                file.malformed += 1
                self.noteMalformed(file.path, number, reason)
        finally:
            file.records += records

    def readFile(self, path: str) -> FileSummary:
        """
        Count every line of the log file C{path} (gzip'd or not).  A file
        that breaks part-way keeps what was read, and says why in its
        C{error}.

        @raise OSError: when it cannot be opened.
        """
        stream, compressed = openLog(path)
        file = FileSummary(path, compressed)
        self.files.append(file)
        with stream:
            try:
                self.readStream(stream, file)
            except (OSError, EOFError, gzip.BadGzipFile) as problem:
                file.error = _describeError(problem)
        return file

    def _topTable(self, name: str) -> dict[str, Any]:
        bySessions, byBytes = self.counters[name]

        def entries(counter: TopCounter[str]) -> list[dict[str, Any]]:
            ranked = [entry for entry in counter.top() if entry[1] > 0][: self.topCount]
            return [
                {
                    "name": key,
                    "sessions": sessions,
                    "bytes_out": bytesOut,
                    "bytes_in": bytesIn,
                    "error": error,
                }
                for key, _, error, sessions, bytesOut, bytesIn in ranked
            ]

        return {
            "by_sessions": entries(bySessions),
            "by_bytes": entries(byBytes),
            "exact": bySessions.exact and byBytes.exact,
            "tracked": len(bySessions),
            "capacity": self.capacity,
            "max_error_sessions": bySessions.maxError,
            "max_error_bytes": byBytes.maxError,
        }

    def asDict(self) -> dict[str, Any]:
        """
        The summary as the stable structure that C{--json} prints.

        Top level: C{format} (L{FORMAT}); C{files} (C{path}, C{compressed},
        C{records}, C{malformed}, C{error}); C{period} (C{first} and
        C{last} record times, or C{null}); C{sessions} (C{total},
        C{granted} (outcome C{closed}), C{denied}, C{failed}, C{error},
        C{timeout}, C{other}); C{bytes} (C{out}: from clients towards
        destinations, C{in}: back); C{udp} (C{sessions} and the four
        C{datagrams_*} totals); C{commands}, C{versions}, C{auth} (counts by
        value); C{users} (with C{anonymous}: sessions without a user),
        C{clients} (by address), C{destinations} (with C{none}: records
        without one), each with C{by_sessions} and C{by_bytes} lists of
        C{name}, C{sessions}, C{bytes_out}, C{bytes_in} and C{error} (how
        much the ranking figure may be too high), and C{exact},
        C{tracked}, C{capacity}, C{max_error_sessions},
        C{max_error_bytes}; C{denials} (C{entries}: C{rule}, C{message},
        C{sessions}; C{exact}); C{failures} (C{entries}: C{outcome},
        C{reply}, C{meaning}, C{sessions}; C{exact}); C{hours}
        (C{entries}: C{hour} (its start), C{sessions}, C{granted},
        C{denied}, C{bytes_out}, C{bytes_in}, in time order; C{dropped});
        C{malformed} (C{lines}; C{examples}: C{file}, C{line}, C{reason});
        C{limits} (C{top}, C{capacity}, C{small_capacity}, C{max_hours},
        C{max_line}, C{max_key}).
        """
        outcomes = self.outcomes
        users = self._topTable("users")
        users["anonymous"] = self.anonymous
        destinations = self._topTable("destinations")
        destinations["none"] = self.noDestination
        return {
            "format": FORMAT,
            "files": [
                {
                    "path": file.path,
                    "compressed": file.compressed,
                    "records": file.records,
                    "malformed": file.malformed,
                    "error": file.error,
                }
                for file in self.files
            ],
            "period": {
                "first": None if self.first is None else _isoTime(self.first),
                "last": None if self.last is None else _isoTime(self.last),
            },
            "sessions": {
                "total": self.records,
                "granted": outcomes.get("closed", 0),
                "denied": outcomes.get("denied", 0),
                "failed": outcomes.get("failed", 0),
                "error": outcomes.get("error", 0),
                "timeout": outcomes.get("timeout", 0),
                "other": outcomes.get("other", 0),
            },
            "bytes": {"out": self.bytesOut, "in": self.bytesIn},
            "udp": {"sessions": self.udpSessions, **self.datagrams},
            "commands": _sortedCounts(self.commands),
            "versions": _sortedCounts(self.versions),
            "auth": _sortedCounts(self.auth),
            "users": users,
            "clients": self._topTable("clients"),
            "destinations": destinations,
            "denials": {
                "entries": [
                    {"rule": rule, "message": message, "sessions": count}
                    for (rule, message), count, *_ in self.denials.top()
                ],
                "exact": self.denials.exact,
            },
            "failures": {
                "entries": [
                    {
                        "outcome": outcome,
                        "reply": reply,
                        "meaning": _meaning(reply),
                        "sessions": count,
                    }
                    for (outcome, reply), count, *_ in self.failures.top()
                ],
                "exact": self.failures.exact,
            },
            "hours": {
                "entries": [
                    {
                        "hour": _isoTime(hour * 3600, milliseconds=False),
                        "sessions": bucket[0],
                        "granted": bucket[1],
                        "denied": bucket[2],
                        "bytes_out": bucket[3],
                        "bytes_in": bucket[4],
                    }
                    for hour, bucket in sorted(self.hours.items())
                ],
                "dropped": self.hoursDropped,
            },
            "malformed": {
                "lines": self.malformed,
                "examples": [
                    {"file": path, "line": line, "reason": reason}
                    for path, line, reason in self.malformedExamples
                ],
            },
            "limits": {
                "top": self.topCount,
                "capacity": self.capacity,
                "small_capacity": SMALL_CAPACITY,
                "max_hours": MAX_HOURS,
                "max_line": MAX_LINE,
                "max_key": MAX_KEY,
            },
        }


def _sortedCounts(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _meaning(reply: int | None) -> str:
    if reply is None:
        return "no reply sent"
    return REPLY_MEANINGS.get(reply, "unknown reply code")


def _describeError(problem: BaseException) -> str:
    if isinstance(problem, OSError) and problem.strerror:
        return problem.strerror
    if isinstance(problem, EOFError):
        return "the compressed file is truncated"
    return str(problem) or type(problem).__name__


def summariseFiles(paths: list[str], capacity: int = CAPACITY, top: int = TOP) -> Summary:
    """
    The summary of the log files C{paths}, each read once.

    @raise OSError: when a file cannot be opened.
    """
    summary = Summary(capacity, top)
    for path in _unique(paths):
        summary.readFile(path)
    return summary


def _unique(paths: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


# Rendering.


def formatBytes(count: int) -> str:
    """
    A byte count for people: C{"512 B"}, C{"1.5 kB"}, C{"12.3 MB"},
    C{"123 GB"} (decimal units, three significant digits).
    """
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.5:
            return f"{value:.3g} {unit}"
    return f"{value / 1000:.3g} EB"


def _number(count: int) -> str:
    return f"{count:,}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _printable(text: str, width: int | None = None) -> str:
    """
    C{text} made safe for a terminal: control and other unprintable
    characters escaped, and cut to C{width} characters.
    """
    if not text.isprintable():
        text = "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "\u2026"
    return text


def _day(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]}"


def _table(rows: list[list[str]], right: set[int], indent: str = "  ") -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _ruleName(rule: int | None) -> str:
    return "no rule" if rule is None else f"rule {rule}"


def _replyName(reply: int | None) -> str:
    return "no reply" if reply is None else f"reply {reply}"


def renderText(report: dict[str, Any]) -> str:
    """
    The summary (as L{Summary.asDict} gives it) as text for a terminal.
    """
    out: list[str] = ["socksgate access log summary", ""]
    files = report["files"]
    out.append(f"Files:        {len(files)}")
    for file in files:
        notes = ["gzip"] if file["compressed"] else []
        notes.append(f"{_number(file['records'])} records")
        if file["malformed"]:
            notes.append(f"{_number(file['malformed'])} malformed")
        if file["error"]:
            notes.append(f"NOT READ TO THE END: {file['error']}")
        out.append(f"  {_printable(file['path'])}: {', '.join(notes)}")
    period = report["period"]
    if period["first"]:
        out.append(f"Period:       {_day(period['first'])} to {_day(period['last'])} UTC")
    else:
        out.append("Period:       no records")
    malformed = report["malformed"]
    out.append(f"Malformed:    {_plural(malformed['lines'], 'line')}")
    for example in malformed["examples"]:
        out.append(f"  {_printable(example['file'])} line {example['line']}: {example['reason']}")
    if malformed["lines"] > len(malformed["examples"]):
        out.append(f"  and {_number(malformed['lines'] - len(malformed['examples']))} more")
    out.append("")

    sessions = report["sessions"]
    total = sessions["total"]
    rows = [["Sessions", _number(total), ""]]
    for name in ("granted", "denied", "failed", "error", "timeout", "other"):
        if name in ("granted", "denied") or sessions[name]:
            rows.append([f"  {name}", _number(sessions[name]), _percent(sessions[name], total)])
    out.extend(_table(rows, {1, 2}, indent=""))
    data = report["bytes"]
    out.append(f"Bytes out:    {_number(data['out'])} ({formatBytes(data['out'])}), clients to destinations")
    out.append(f"Bytes in:     {_number(data['in'])} ({formatBytes(data['in'])}), destinations to clients")
    udp = report["udp"]
    if udp["sessions"]:
        out.append(
            f"UDP:          {_plural(udp['sessions'], 'association')}, datagrams"
            f" out {_number(udp['datagrams_out'])}, in {_number(udp['datagrams_in'])},"
            f" denied {_number(udp['datagrams_denied'])}, dropped {_number(udp['datagrams_dropped'])}"
        )
    for title, key in (("Commands", "commands"), ("Versions", "versions"), ("Auth", "auth")):
        counts = ", ".join(f"{_printable(name, 24)} {_number(count)}" for name, count in report[key].items())
        out.append(f"{title + ':':<14}{counts or '-'}")

    for title, key in (("users", "users"), ("clients", "clients"), ("destinations", "destinations")):
        table = report[key]
        out.append("")
        note = ""
        if not table["exact"]:
            note = (
                f" (approximate: more than {_number(table['capacity'])} distinct; figures may be high by"
                f" up to {_number(table['max_error_sessions'])} sessions,"
                f" {formatBytes(table['max_error_bytes'])})"
            )
        out.append(f"Busiest {title}{note}")
        if key == "users":
            out.append(f"  sessions without a user: {_number(table['anonymous'])}")
        rows = []
        for ranking, entries in (("by sessions", table["by_sessions"]), ("by bytes", table["by_bytes"])):
            if not entries:
                rows.append([f"{ranking}: none", "", "", ""])
                continue
            rows.append([ranking, "sessions", "bytes out", "bytes in"])
            rows.extend(
                [
                    f"  {_printable(entry['name'], 48)}",
                    _number(entry["sessions"]),
                    formatBytes(entry["bytes_out"]),
                    formatBytes(entry["bytes_in"]),
                ]
                for entry in entries
            )
        out.extend(_table(rows, {1, 2, 3}))

    out.append("")
    denials = report["denials"]["entries"]
    out.append("Denials by rule")
    if denials:
        rows = [["rule", "sessions", "message"]]
        rows.extend(
            [_ruleName(entry["rule"]), _number(entry["sessions"]), _printable(entry["message"], 72)]
            for entry in denials[: 3 * TOP]
        )
        out.extend(_table(rows, {1}))
        if len(denials) > 3 * TOP:
            out.append(f"  and {len(denials) - 3 * TOP} more (see --json)")
    else:
        out.append("  none")

    out.append("")
    failures = report["failures"]["entries"]
    out.append("Failures and errors")
    if failures:
        rows = [["outcome", "reply", "sessions", "meaning"]]
        rows.extend(
            [
                _printable(entry["outcome"], 24),
                _replyName(entry["reply"]),
                _number(entry["sessions"]),
                entry["meaning"],
            ]
            for entry in failures[: 3 * TOP]
        )
        out.extend(_table(rows, {2}))
        if len(failures) > 3 * TOP:
            out.append(f"  and {len(failures) - 3 * TOP} more (see --json)")
    else:
        out.append("  none")

    out.append("")
    hours = report["hours"]["entries"]
    byDay = len(hours) > 72
    out.append("By day (UTC)" if byDay else "By hour (UTC)")
    if hours:
        rows = [["", "sessions", "granted", "denied", "bytes out", "bytes in"]]
        for label, bucket in _buckets(hours, byDay):
            rows.append(
                [
                    label,
                    _number(bucket["sessions"]),
                    _number(bucket["granted"]),
                    _number(bucket["denied"]),
                    formatBytes(bucket["bytes_out"]),
                    formatBytes(bucket["bytes_in"]),
                ]
            )
        out.extend(_table(rows, {1, 2, 3, 4, 5}))
    else:
        out.append("  none")
    if report["hours"]["dropped"]:
        out.append(f"  {_number(report['hours']['dropped'])} records beyond {MAX_HOURS} distinct hours")
    return "\n".join(out) + "\n"


_BUCKET_FIELDS = ("sessions", "granted", "denied", "bytes_out", "bytes_in")


def _buckets(hours: list[dict[str, Any]], byDay: bool) -> list[tuple[str, dict[str, int]]]:
    """
    The hourly entries labelled for a table, or added up by day.
    """
    if not byDay:
        return [(_day(entry["hour"]), entry) for entry in hours]
    days: dict[str, dict[str, int]] = {}
    for entry in hours:
        day = days.setdefault(entry["hour"][:10], dict.fromkeys(_BUCKET_FIELDS, 0))
        for name in _BUCKET_FIELDS:
            day[name] += entry[name]
    return list(days.items())


# The HTML report.

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --granted: #2f855a; --denied: #c53030;
  --failed: #d69e2e; --out: #2b6cb0; --in: #38b2ac; --top: #6b46c1; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fa; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 12px; }
.subtitle { color: var(--muted); margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
  margin-bottom: 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .value { font-size: 24px; font-weight: 650; }
.card .label { color: var(--muted); font-size: 13px; }
.card.granted .value { color: var(--granted); } .card.denied .value { color: var(--denied); }
.card.failed .value { color: #b7791f; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
  margin-bottom: 16px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.grid section { margin-bottom: 0; }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--muted); }
svg.chart .grid-line { stroke: var(--line); }
svg.chart .axis { stroke: #9aa5b1; }
.s-granted { fill: var(--granted); } .s-denied { fill: var(--denied); } .s-failed { fill: var(--failed); }
.s-out { fill: var(--out); } .s-in { fill: var(--in); } .s-top { fill: var(--top); }
svg.chart .value { fill: var(--ink); }
.legend { display: flex; gap: 16px; color: var(--muted); font-size: 13px; margin: -4px 0 8px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; background: var(--swatch); }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 13px; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { word-break: break-all; }
.note { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
.warning { background: #fffaf0; border-color: #f6ad55; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""

# Run by the browser after layout: it records the size each chart and bar
# was given (the page reads the same without it; tests read these sizes
# from the rendered DOM).
_SCRIPT = """
for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  svg.setAttribute("data-rendered-size", Math.round(box.width) + "x" + Math.round(box.height));
  for (const bar of svg.querySelectorAll(".bar")) {
    const b = bar.getBBox();
    bar.setAttribute("data-rendered-size", b.width.toFixed(2) + "x" + b.height.toFixed(2));
  }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _axis(value: float) -> tuple[int, int]:
    """
    The top of an axis for counts up to C{value}, and its number of
    intervals (at most 5, each a whole round number: 1, 2, 2.5 or 5 times
    a power of ten).
    """
    if value <= 0:
        return 1, 1
    rough = value / 4
    magnitude = 10 ** max(0, math.floor(math.log10(rough))) if rough >= 1 else 1
    step = next(
        factor * magnitude
        for factor in (1, 2, 2.5, 5, 10)
        if factor * magnitude >= rough and float(factor * magnitude).is_integer()
    )
    intervals = math.ceil(value / step)
    if intervals < 3 and step % 2 == 0:
        step //= 2
        intervals = math.ceil(value / step)
    return int(step * intervals), intervals


def _timeChart(
    name: str,
    buckets: list[tuple[int, str, list[int]]],
    span: int,
    series: list[tuple[str, str]],
    formatValue: Any,
    slotLabel: Any,
) -> str:
    """
    An SVG chart of stacked bars along a time axis.

    @param buckets: C{(slot, tooltip title, values)}, C{slot} counting
        from 0 at the first slot of the axis.
    @param span: the number of slots on the axis.
    @param series: the class and name of each value, bottom first.
    @param formatValue: formats an axis value.
    @param slotLabel: the label of a slot of the axis.
    """
    width, height = 1000, 280
    left, right, top, bottom = 76, 12, 12, 36
    plotWidth, plotHeight = width - left - right, height - top - bottom
    peak, intervals = _axis(max((sum(values) for _, _, values in buckets), default=0))
    slot = plotWidth / max(span, 1)
    barWidth = max(slot * 0.8, 0.6)
    parts = [
        f'<svg class="chart" id="{name}" viewBox="0 0 {width} {height}" role="img"'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
    ]
    for tick in range(intervals + 1):
        value = peak * tick / intervals
        y = top + plotHeight - plotHeight * tick / intervals
        parts.append(f'<line class="grid-line" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(formatValue(value))}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}"'
        f' y1="{top + plotHeight}" y2="{top + plotHeight}"/>'
    )
    labels = max(1, min(span, int(plotWidth // 110)))
    every = -(-span // labels)
    for index in range(0, span, every):
        x = left + slot * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{_e(slotLabel(index))}</text>'
        )
    for index, title, values in buckets:
        x = left + slot * index + (slot - barWidth) / 2
        base = top + plotHeight
        parts.append(f'<g class="bar"><title>{_e(title)}</title>')
        for (kind, _), value in zip(series, values, strict=True):
            if value <= 0:
                continue
            size = max(plotHeight * value / peak, 1.0)
            base -= size
            parts.append(
                f'<rect class="s-{kind}" x="{x:.2f}" y="{base:.2f}"'
                f' width="{barWidth:.2f}" height="{size:.2f}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _rankChart(name: str, entries: list[tuple[str, int, str]]) -> str:
    """
    An SVG chart of horizontal bars: C{(label, value, value's text)},
    largest first.
    """
    width, rowHeight = 1000, 30
    labelWidth, valueWidth = 330, 90
    height = max(len(entries), 1) * rowHeight + 8
    peak = max((value for _, value, _ in entries), default=0) or 1
    barSpace = width - labelWidth - valueWidth - 16
    parts = [
        f'<svg class="chart" id="{name}" viewBox="0 0 {width} {height}" role="img"'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
    ]
    for row, (label, value, text) in enumerate(entries):
        y = 4 + row * rowHeight
        shown = label if len(label) <= 44 else label[:43] + "\u2026"
        size = max(barSpace * value / peak, 1.0)
        parts.append(
            f'<g class="bar"><title>{_e(label)}: {_e(text)}</title>'
            f'<text x="{labelWidth - 8}" y="{y + 19}" text-anchor="end">{_e(shown)}</text>'
            f'<rect class="s-top" x="{labelWidth}" y="{y + 5}" width="{size:.2f}" height="{rowHeight - 10}"/>'
            f'<text class="value" x="{labelWidth + size + 6:.2f}" y="{y + 19}">{_e(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span style="--swatch: var(--{kind})">{_e(label)}</span>' for kind, label in series)
        + "</div>"
    )


def _hourCharts(hours: list[dict[str, Any]]) -> tuple[str, str, str]:
    """
    The sessions and bytes charts along the time axis: one bar for each
    hour with records, or each day when the log spans more than
    L{MAX_CHART_HOURS} hours.

    @return: the unit (C{"hour"} or C{"day"}), and the two charts.
    """
    if not hours:
        return "hour", "", ""
    starts = [int(datetime.fromisoformat(entry["hour"]).timestamp()) // 3600 for entry in hours]
    first, last = starts[0], starts[-1]
    unit, size = ("hour", 1) if last - first < MAX_CHART_HOURS else ("day", 24)
    origin = first // size * size
    slots: dict[int, dict[str, int]] = {}
    for start, entry in zip(starts, hours, strict=True):
        slot = slots.setdefault((start - origin) // size, dict.fromkeys(_BUCKET_FIELDS, 0))
        for name in _BUCKET_FIELDS:
            slot[name] += entry[name]
    span = (last - origin) // size + 1

    def slotTime(index: int) -> datetime:
        return datetime.fromtimestamp((origin + index * size) * 3600, UTC)

    def slotLabel(index: int) -> str:
        moment = slotTime(index)
        return moment.strftime("%d %b") if unit == "day" else moment.strftime("%d %b %H:00")

    def title(index: int) -> str:
        moment = slotTime(index)
        return moment.strftime("%Y-%m-%d") if unit == "day" else moment.strftime("%Y-%m-%d %H:00 UTC")

    sessions = _timeChart(
        "sessions-chart",
        [
            (
                index,
                f"{title(index)}: {_number(slot['sessions'])} sessions, {_number(slot['granted'])} granted,"
                f" {_number(slot['denied'])} denied",
                [slot["granted"], slot["denied"], slot["sessions"] - slot["granted"] - slot["denied"]],
            )
            for index, slot in sorted(slots.items())
        ],
        span,
        [("granted", "granted"), ("denied", "denied"), ("failed", "failed, errors, time-outs")],
        lambda value: _number(round(value)),
        slotLabel,
    )
    data = _timeChart(
        "bytes-chart",
        [
            (
                index,
                f"{title(index)}: {formatBytes(slot['bytes_in'])} in, {formatBytes(slot['bytes_out'])} out",
                [slot["bytes_in"], slot["bytes_out"]],
            )
            for index, slot in sorted(slots.items())
        ],
        span,
        [("in", "in (to clients)"), ("out", "out (from clients)")],
        lambda value: formatBytes(round(value)),
        slotLabel,
    )
    return unit, sessions, data


def _topRows(entries: list[dict[str, Any]]) -> str:
    return "".join(
        f'<tr><td class="name">{_e(entry["name"])}</td><td class="n">{_number(entry["sessions"])}</td>'
        f'<td class="n">{_e(formatBytes(entry["bytes_out"]))}</td>'
        f'<td class="n">{_e(formatBytes(entry["bytes_in"]))}</td></tr>'
        for entry in entries
    )


def _estimateNote(table: dict[str, Any]) -> str:
    """
    A note saying that a top table's figures are estimates, when they are.
    """
    if table["exact"]:
        return ""
    return (
        f'<p class="note">More than {_number(table["capacity"])} distinct: figures are estimates,'
        f" high by at most {_number(table['max_error_sessions'])} sessions"
        f" or {_e(formatBytes(table['max_error_bytes']))}.</p>"
    )


def _topSection(title: str, table: dict[str, Any]) -> str:
    head = '<tr><th>{}</th><th class="n">sessions</th><th class="n">out</th><th class="n">in</th></tr>'
    return (
        f"<section><h2>{_e(title)}</h2><div class='grid'>"
        f"<table>{head.format('by sessions')}{_topRows(table['by_sessions'])}</table>"
        f"<table>{head.format('by data')}{_topRows(table['by_bytes'])}</table></div>"
        f"{_estimateNote(table)}</section>"
    )


def renderHTML(report: dict[str, Any]) -> str:
    """
    The summary (as L{Summary.asDict} gives it) as a self-contained HTML
    page: inline CSS, inline SVG charts, and no external resource.
    """
    sessions = report["sessions"]
    total = sessions["total"]
    failures = sessions["failed"] + sessions["error"] + sessions["timeout"] + sessions["other"]
    period = report["period"]
    if period["first"]:
        subtitle = f"{_day(period['first'])} to {_day(period['last'])} UTC"
    else:
        subtitle = "no records"
    files = report["files"]
    subtitle += f" \u00b7 {len(files)} log file{'s' if len(files) != 1 else ''}"
    cards = [
        ("", _number(total), "sessions"),
        ("granted", _number(sessions["granted"]), f"granted ({_percent(sessions['granted'], total)})"),
        ("denied", _number(sessions["denied"]), f"denied ({_percent(sessions['denied'], total)})"),
        ("failed", _number(failures), "failed, errors, time-outs"),
        ("", formatBytes(report["bytes"]["in"]), "data in (to clients)"),
        ("", formatBytes(report["bytes"]["out"]), "data out (from clients)"),
    ]
    unit, sessionsChart, bytesChart = _hourCharts(report["hours"]["entries"])
    destinations = report["destinations"]
    bySessions = _rankChart(
        "destinations-chart",
        [
            (entry["name"], entry["sessions"], f"{_number(entry['sessions'])}")
            for entry in destinations["by_sessions"]
        ],
    )
    byBytes = _rankChart(
        "destinations-bytes-chart",
        [
            (
                entry["name"],
                entry["bytes_out"] + entry["bytes_in"],
                formatBytes(entry["bytes_out"] + entry["bytes_in"]),
            )
            for entry in destinations["by_bytes"]
        ],
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>socksgate access report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>SOCKS gateway access report</h1>",
        f'<p class="subtitle">{_e(subtitle)}</p>',
        '<div class="cards">',
        *(
            f'<div class="card {kind}"><div class="value">{_e(value)}</div>'
            f'<div class="label">{_e(label)}</div></div>'
            for kind, value, label in cards
        ),
        "</div>",
    ]
    problems = [file for file in files if file["error"]]
    malformed = report["malformed"]
    if problems or malformed["lines"]:
        items = [
            f"<li>{_e(file['path'])} could not be read to its end: {_e(file['error'])}</li>"
            for file in problems
        ]
        if malformed["lines"]:
            places = ", ".join(
                f"{_e(example['file'])} line {example['line']} ({_e(example['reason'])})"
                for example in malformed["examples"]
            )
            items.append(f"<li>{_plural(malformed['lines'], 'malformed line')} skipped: {places}</li>")
        parts.append(f'<section class="warning"><h2>Not counted</h2><ul>{"".join(items)}</ul></section>')
    parts += [
        f"<section><h2>Sessions per {unit}</h2>",
        _legend([("granted", "granted"), ("denied", "denied"), ("failed", "failed, errors, time-outs")]),
        sessionsChart or '<p class="note">No sessions.</p>',
        "</section>",
        f"<section><h2>Data per {unit}</h2>",
        _legend([("in", "in (to clients)"), ("out", "out (from clients)")]),
        bytesChart or '<p class="note">No sessions.</p>',
        "</section>",
        "<section><h2>Top destinations by sessions</h2>",
        bySessions,
        "</section>",
        "<section><h2>Top destinations by data</h2>",
        byBytes,
        _estimateNote(destinations),
        "</section>",
        _topSection("Busiest users", report["users"]),
        _topSection("Busiest clients", report["clients"]),
        '<div class="grid">',
        "<section><h2>Denials by rule</h2><table>",
        '<tr><th>rule</th><th>message</th><th class="n">sessions</th></tr>',
        *(
            f"<tr><td>{_e(_ruleName(entry['rule']))}</td><td>{_e(entry['message'])}</td>"
            f'<td class="n">{_number(entry["sessions"])}</td></tr>'
            for entry in report["denials"]["entries"][: 3 * TOP]
        ),
        "</table></section>",
        "<section><h2>Failures and errors</h2><table>",
        '<tr><th>outcome</th><th>reply</th><th class="n">sessions</th></tr>',
        *(
            f"<tr><td>{_e(entry['outcome'])}</td>"
            f"<td>{_e(_replyName(entry['reply']))}: {_e(entry['meaning'])}</td>"
            f'<td class="n">{_number(entry["sessions"])}</td></tr>'
            for entry in report["failures"]["entries"][: 3 * TOP]
        ),
        "</table></section></div>",
        "<footer>",
        _e(
            "Made by socksgate stats from "
            + ", ".join(f"{file['path']} ({_number(file['records'])} records)" for file in files)
            + ". Times are UTC; a session is counted in the hour its request arrived. 1 MB = 1,000,000 bytes."
        ),
        "</footer>",
        f"</main><script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts) + "\n"


def run(logs: list[str], asJSON: bool, htmlPath: str | None, stdout: TextIO, stderr: TextIO) -> int:
    """
    Summarise the log files C{logs}: text on C{stdout}, or JSON with
    C{asJSON}; with C{htmlPath}, also write the HTML report there.

    @return: the exit status: 0 when every file was read, 1 when one was
        not (or the report could not be written).
    """
    paths = _unique(logs)
    for path in paths:
        try:
            open(path, "rb").close()
        except OSError as problem:
            stderr.write(f"socksgate stats: {path}: cannot be read: {_describeError(problem)}\n")
            return 1
    summary = Summary()
    status = 0
    for path in paths:
        try:
            file = summary.readFile(path)
        except OSError as problem:
            stderr.write(f"socksgate stats: {path}: cannot be read: {_describeError(problem)}\n")
            return 1
        if file.error:
            stderr.write(
                f"socksgate stats: {path}: read error after {file.records} records: {file.error};"
                " the summary counts what was read\n"
            )
            status = 1
    report = summary.asDict()
    if htmlPath is not None:
        try:
            # Names that were not UTF-8 on the wire are logged as lone
            # surrogates (\udcff): they are written as such escapes.
            with open(htmlPath, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(renderHTML(report))
        except OSError as problem:
            stderr.write(f"socksgate stats: {htmlPath}: cannot be written: {_describeError(problem)}\n")
            return 1
    if asJSON:
        output = json.dumps(report, indent=2) + "\n"
    elif htmlPath is not None:
        output = f"Wrote {htmlPath}: {_plural(report['sessions']['total'], 'session')}\n"
    else:
        output = renderText(report)
    try:
        stdout.write(output)
        stdout.flush()
    except BrokenPipeError:
        # The reader went away (`socksgate stats --json LOG | head`): stop
        # quietly, and keep the interpreter from failing to flush at exit.
        _discard(stdout)
        return 1
    return status


def _discard(stream: TextIO) -> None:
    """
    Send what is left to write on C{stream}'s file to C{/dev/null}.
    """
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)
