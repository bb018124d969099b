"""
The SVG charts of the HTML report: stacked bars along a time axis, and
horizontal bars for the busiest destinations.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import Any

from ._format import _BUCKET_FIELDS, _number, formatBytes
from ._limits import MAX_CHART_HOURS

__all__: list[str] = []


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
