"""
Numbers, byte counts and labels as the text and HTML reports write them.
"""

from __future__ import annotations

__all__ = ["formatBytes"]


_BUCKET_FIELDS = ("sessions", "granted", "denied", "bytes_out", "bytes_in")


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


def _day(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]}"


def _ruleName(rule: int | None) -> str:
    return "no rule" if rule is None else f"rule {rule}"


def _replyName(reply: int | None) -> str:
    return "no reply" if reply is None else f"reply {reply}"
