"""
Tests for L{socksgate.timestamps}.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from socksgate.session import SessionRecord
from socksgate.timestamps import isoNow, isoTime


class TimestampTests(SynchronousTestCase):
    """
    ISO 8601 UTC times, as the session log, the status page and the stats
    write them.
    """

    def test_milliseconds(self) -> None:
        """
        A time is written in UTC with milliseconds, cut rather than
        rounded, and a C{Z}.
        """
        self.assertEqual(isoTime(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(isoTime(1795255200.1239), "2026-11-21T10:00:00.123Z")
        self.assertEqual(isoTime(1795255200.9999), "2026-11-21T10:00:00.999Z")

    def test_seconds(self) -> None:
        """
        Without milliseconds the time stops at the second.
        """
        self.assertEqual(isoTime(1795255200.9, milliseconds=False), "2026-11-21T10:00:00Z")

    def test_now(self) -> None:
        """
        L{isoNow} and a new session record's C{time} have the same form.
        """
        form = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        self.assertRegex(isoNow(), form)
        self.assertRegex(SessionRecord("s", "tcp:0", "127.0.0.1:1", 0.0).time, form)
        self.assertTrue(re.fullmatch(form, SessionRecord("s", "tcp:0", "127.0.0.1:1", 0.0).time))
