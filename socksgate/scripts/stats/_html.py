"""
The summary as a self-contained HTML page (C{--html FILE}): inline CSS
and script from the package data in C{report/}, and inline SVG charts.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from ._charts import _e, _hourCharts, _rankChart
from ._format import _day, _number, _percent, _plural, _replyName, _ruleName, formatBytes
from ._limits import TOP

__all__ = ["renderHTML"]


def _asset(name: str) -> str:
    """
    The text of C{report/NAME}, a data file of this package.
    """
    return files(__package__).joinpath("report", name).read_text(encoding="utf-8")


#: The report's style sheet.
_CSS = _asset("report.css")

#: Run by the browser after layout: it records the size each chart and bar
#: was given (the page reads the same without it; tests read these sizes
#: from the rendered DOM).
_SCRIPT = _asset("report.js")


def _legend(series: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span style="--swatch: var(--{kind})">{_e(label)}</span>' for kind, label in series)
        + "</div>"
    )


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
