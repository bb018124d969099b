"""
The summary as text for a terminal (the default output of
C{socksgate stats}).
"""

from __future__ import annotations

from typing import Any

from ._format import _BUCKET_FIELDS, _day, _number, _percent, _plural, _replyName, _ruleName, formatBytes
from ._limits import MAX_HOURS, TOP

__all__ = ["renderText"]


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
