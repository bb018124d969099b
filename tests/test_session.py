"""
Tests for L{socksgate.session}: the session record and the one place that
emits it.
"""

from __future__ import annotations

import re

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from socksgate.session import TEXT_LINE_INTERVAL, SessionRecord, TextLineSampler, emitSession, newSessionID

#: The fields of every record, in SPEC's order (written out from SPEC's
#: example record, not taken from the code under test).
SPEC_FIELDS = [
    "time",
    "session",
    "listener",
    "client",
    "version",
    "auth",
    "user",
    "ident",
    "command",
    "destination",
    "remote",
    "upstream",
    "server",
    "outcome",
    "reply",
    "rule",
    "message",
    "bytes_out",
    "bytes_in",
    "duration",
]


def _record(**fields: object) -> SessionRecord:
    """
    A record of a CONNECT session that started at clock time 100.
    """
    return SessionRecord(
        session="3f2a9c01",
        listener="tcp:1080:interface=127.0.0.1",
        client="127.0.0.1:53122",
        started=100.0,
        **fields,  # type: ignore[arg-type]
    )


class SessionRecordTests(SynchronousTestCase):
    """
    L{SessionRecord} and its C{asDict}.
    """

    def test_fieldsInSpecOrder(self) -> None:
        """
        C{asDict} has SPEC's fields, in SPEC's order, time first; the
        reactor-clock C{started} is not among them.
        """
        self.assertEqual(list(_record().asDict()), SPEC_FIELDS)

    def test_defaults(self) -> None:
        """
        A new record says no authentication, no user, nothing relayed, and
        carries the time it was made, in ISO 8601 UTC with milliseconds.
        """
        record = _record().asDict()
        self.assertEqual(
            (record["auth"], record["user"], record["outcome"], record["bytes_out"], record["bytes_in"]),
            ("none", None, None, 0, 0),
        )
        self.assertRegex(str(record["time"]), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_timeGiven(self) -> None:
        """
        A time given to the record is kept.
        """
        self.assertEqual(
            _record(time="2026-11-21T10:00:00.123Z").asDict()["time"], "2026-11-21T10:00:00.123Z"
        )

    def test_bindFieldsOnlyWhenSet(self) -> None:
        """
        C{bind} and C{peer} appear, after the common fields, only once set.
        """
        self.assertNotIn("bind", _record(command="connect").asDict())
        record = _record(command="bind", bind="127.0.0.1:40000")
        self.assertEqual(list(record.asDict()), SPEC_FIELDS + ["bind"])
        record.peer = "127.0.0.1:40001"
        self.assertEqual(list(record.asDict())[-2:], ["bind", "peer"])
        self.assertEqual(record.asDict()["peer"], "127.0.0.1:40001")

    def test_udpFieldsOnlyWhenSet(self) -> None:
        """
        The datagram counts appear only once set, and then even when zero.
        """
        names = ["datagrams_out", "datagrams_in", "datagrams_denied", "datagrams_dropped"]
        self.assertEqual([name for name in names if name in _record().asDict()], [])
        record = _record(
            command="udp", datagrams_out=3, datagrams_in=0, datagrams_denied=1, datagrams_dropped=0
        )
        self.assertEqual(list(record.asDict())[len(SPEC_FIELDS) :], names)
        self.assertEqual([record.asDict()[name] for name in names], [3, 0, 1, 0])

    def test_newSessionID(self) -> None:
        """
        Session identifiers are eight hexadecimal digits, and differ.
        """
        identifiers = {newSessionID() for _ in range(100)}
        self.assertEqual(len(identifiers), 100)
        self.assertTrue(all(re.fullmatch("[0-9a-f]{8}", identifier) for identifier in identifiers))


class EmitSessionTests(SynchronousTestCase):
    """
    L{emitSession} sets the duration and emits one log event.
    """

    def emit(self, record: SessionRecord, now: float, sampler: TextLineSampler | None = None) -> list[dict]:
        """
        Emit C{record} at clock time C{now} (with C{sampler}, by default a
        fresh one: the record gets a text), and return the events logged.
        """
        with capturedLogs() as events:
            emitSession(record, now, sampler or TextLineSampler())
        return list(events)

    def test_duration(self) -> None:
        """
        The duration is C{now} less C{started}, in seconds rounded to the
        millisecond, set on the record and in the event.
        """
        record = _record(outcome="closed")
        [event] = self.emit(record, 112.0344)
        self.assertEqual(record.duration, 12.034)
        self.assertEqual(event["record"]["duration"], 12.034)

    def test_durationNeverNegative(self) -> None:
        """
        A clock that went back gives a duration of zero, not a negative one.
        """
        record = _record(outcome="denied")
        self.emit(record, 99.0)
        self.assertEqual(record.duration, 0.0)

    def test_event(self) -> None:
        """
        The event carries the record as the session log writes it, in the
        C{socksgate.session} namespace at level info, and its text says the
        session, its outcome, client, command, destination and reply.
        """
        record = _record(
            command="connect", destination="www.example.com:443", outcome="denied", reply=2, message="no"
        )
        [event] = self.emit(record, 100.5)
        self.assertEqual(event["record"], record.asDict())
        self.assertEqual(event["log_namespace"], "socksgate.session")
        self.assertEqual(event["log_level"].name, "info")
        self.assertEqual(
            formatEvent(event),
            "session 3f2a9c01 denied: 127.0.0.1:53122 connect www.example.com:443 reply=2 no"
            " (0 more since the last session line; the session log has every record)",
        )

    def test_textSampled(self) -> None:
        """
        Only the first record, and then the first one at least
        L{TEXT_LINE_INTERVAL} seconds after the last record with a text,
        have a text (what twistd's text log shows), which says how many
        records were left without one; every record is in its event.
        """
        sampler = TextLineSampler()
        texts, records = [], []
        for now in (100.0, 101.0, 130.0, 100.0 + TEXT_LINE_INTERVAL, 100.0 + TEXT_LINE_INTERVAL + 1):
            record = _record(outcome="closed")
            [event] = self.emit(record, now, sampler)
            texts.append(formatEvent(event))
            records.append(event["record"]["session"])
        self.assertEqual(records, ["3f2a9c01"] * 5)
        first = "(0 more since the last session line; the session log has every record)"
        self.assertEqual([text.endswith(first) for text in texts], [True, False, False, False, False])
        self.assertEqual(texts[1:3], ["", ""])
        self.assertIn("(2 more since the last session line;", texts[3])
        self.assertEqual(texts[4], "")

    def test_textAfterClockWentBack(self) -> None:
        """
        A record from a clock earlier than the last record with a text gets
        a text: the interval counts as over.
        """
        sampler = TextLineSampler()
        self.emit(_record(outcome="closed"), 500.0, sampler)
        [event] = self.emit(_record(outcome="closed"), 10.0, sampler)
        self.assertIn("session 3f2a9c01 closed", formatEvent(event))
