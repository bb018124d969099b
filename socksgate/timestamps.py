"""
Times as the session log, C{/status.json} and C{socksgate stats} write
them: ISO 8601, UTC, with a C{Z} (C{2026-11-21T10:00:00.123Z}).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["isoNow", "isoTime"]


def isoTime(seconds: float, milliseconds: bool = True) -> str:
    """
    A POSIX time in ISO 8601, UTC, with a C{Z}.

    @param seconds: seconds since the epoch.
    @param milliseconds: whether to write the milliseconds
        (C{2026-11-21T10:00:00.123Z}) or stop at the second
        (C{2026-11-21T10:00:00Z}); the fraction is cut, not rounded.
    """
    return _format(datetime.fromtimestamp(seconds, UTC), milliseconds)


def isoNow() -> str:
    """
    The time now, as L{isoTime} writes it (with milliseconds).
    """
    return _format(datetime.now(UTC), True)


def _format(moment: datetime, milliseconds: bool) -> str:
    if milliseconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
