"""
L{Summary}: the running summary of session records, in bounded memory,
and the stable structure C{--json} prints (L{Summary.asDict}).
"""

from __future__ import annotations

import gzip
from typing import IO, Any

from ...timestamps import isoTime
from ...vocabulary import Command, Outcome
from ._fields import OUTCOMES, _bump, _hostOf, _meaning, _sortedCounts, _timestamp
from ._limits import (
    CAPACITY,
    FORMAT,
    MALFORMED_EXAMPLES,
    MAX_HOURS,
    MAX_KEY,
    MAX_LINE,
    SMALL_CAPACITY,
    TOP,
)
from ._logs import FileSummary, _describeError, _unique, openLog, readLines
from ._topcounter import TopCounter

__all__ = ["Summary", "summariseFiles"]

_TEXT_FIELDS = ("client", "user", "destination", "command", "version", "auth", "message")


_DATAGRAM_FIELDS = ("datagrams_out", "datagrams_in", "datagrams_denied", "datagrams_dropped")


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
        if command == Command.UDP or datagrams != [None] * 4:
            if command == Command.UDP:
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

        if outcome == Outcome.DENIED:
            self.denials.add((rule, (get("message") or "")[:MAX_KEY]))
        elif outcome != Outcome.CLOSED:
            self.failures.add((outcome, reply))

        hour = int(timestamp // 3600)
        bucket = self.hours.get(hour)
        if bucket is None:
            if len(self.hours) >= MAX_HOURS:
                self.hoursDropped += 1
                return None
            bucket = self.hours[hour] = [0, 0, 0, 0, 0]
        bucket[0] += 1
        if outcome == Outcome.CLOSED:
            bucket[1] += 1
        elif outcome == Outcome.DENIED:
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
        readLines(stream, file, self.addRecord, self.noteMalformed)

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
                "first": None if self.first is None else isoTime(self.first),
                "last": None if self.last is None else isoTime(self.last),
            },
            "sessions": {
                "total": self.records,
                "granted": outcomes.get(Outcome.CLOSED, 0),
                "denied": outcomes.get(Outcome.DENIED, 0),
                "failed": outcomes.get(Outcome.FAILED, 0),
                "error": outcomes.get(Outcome.ERROR, 0),
                "timeout": outcomes.get(Outcome.TIMEOUT, 0),
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
                        "hour": isoTime(hour * 3600, milliseconds=False),
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


def summariseFiles(paths: list[str], capacity: int = CAPACITY, top: int = TOP) -> Summary:
    """
    The summary of the log files C{paths}, each read once.

    @raise OSError: when a file cannot be opened.
    """
    summary = Summary(capacity, top)
    for path in _unique(paths):
        summary.readFile(path)
    return summary
