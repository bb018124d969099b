"""
The shared model of a conversion: what one part of a source line becomes
(L{_Match}), the converted file built line by line with its problems
(L{_Output}: the quoted source lines, the C{NOT CONVERTED}, C{NOT CONVERTED
EXACTLY} and C{LEFT OUT} reports, the C{[[rule]]} tables), and the result
(L{Conversion}).  It knows no source format.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

__all__ = ["Conversion"]


@dataclass(frozen=True)
class Conversion:
    """
    The result of a conversion.

    @ivar toml: the TOML text: comments and C{[[rule]]} tables.
    @ivar problems: C{(line number, message)} for everything that was not
        converted exactly, in line order.
    """

    toml: str
    problems: tuple[tuple[int, str], ...]


class _Invalid(Exception):
    """
    The line is not valid in its format: the original server ignored it.
    """


#: Some keys of a rule: TOML key to its list of strings.
_Fields = dict[str, list[str]]


@dataclass(frozen=True)
class _Match:
    """
    What one part of a source line becomes.

    @ivar wide: the fields to use in a deny rule: the same requests or more.
    @ivar narrow: the fields to use in a permit rule: the same or fewer.
    @ivar problem: why the two differ, or a remark worth reporting.
    @ivar guard: for a permit rule, fields that its C{narrow} fields still
        match too widely: a deny rule with them (and the other parts' narrow
        fields) is written just before the permit, so that it permits no
        more than the original did.
    @ivar line: the source line the part is on, when it is not the rule's
        first line (a rule of several lines); problems are reported there.
    """

    wide: _Fields | None
    narrow: _Fields | None
    problem: str | None = None
    guard: _Fields | None = None
    line: int | None = None


def _exact(**fields: list[str] | None) -> _Match:
    """
    A part converted exactly; keys given as L{None} are left out (any).
    """
    value = {key: items for key, items in fields.items() if items is not None}
    return _Match(value, value)


def _nothing(problem: str) -> _Match:
    """
    A part that matches no request socksgate can receive.
    """
    return _Match(None, None, problem)


_KEYS = ("clients", "destinations", "ports", "commands", "versions", "users")


class _Output:
    """
    The converted file, built line by line, and its problems.
    """

    def __init__(self, source: str, title: str) -> None:
        self.source, self.title = source, title
        self.lines: list[str] = []
        self.settings: list[str] = []
        self.problems: list[tuple[int, str]] = []

    def comment(self, text: str, wrap: bool = True) -> None:
        text = _commentSafe(text)
        lines = textwrap.wrap(text, 96, subsequent_indent="  ", break_on_hyphens=False) if wrap else [text]
        self.lines.extend(f"# {line}".rstrip() for line in lines or [""])

    def quote(self, number: int, original: str) -> None:
        self.lines.append("")
        self.comment(f"{self.source} line {number}: {original.strip()}", wrap=False)

    def report(self, number: int, message: str, marker: str = "NOT CONVERTED") -> None:
        self.problems.append((number, message))
        self.comment(f"{marker}: {message}")

    def invalid(self, number: int, original: str, why: str) -> None:
        self.quote(number, original)
        self.report(number, f"{why}; the original server ignored this line, and so does the conversion")

    def rule(
        self, number: int, original: str, action: str, parts: list[_Match], notes: list[str], message: str
    ) -> None:
        chosen = [part.wide if action == "deny" else part.narrow for part in parts]
        leftOut = any(fields is None for fields in chosen)
        self.quote(number, original)
        for note in notes:
            self.comment(note)
        for part in parts:
            if part.problem is None:
                continue
            exact = part.wide == part.narrow and part.guard is None
            if leftOut:
                suffix = "; the rule is left out" + ("" if exact else ", to fail closed")
            elif exact:
                suffix = ""
            elif action == "permit" and part.guard is not None:
                suffix = "; a deny rule written before the permit refuses those, to fail closed"
            else:
                suffix = (
                    f"; the {action} rule is {'widened' if action == 'deny' else 'narrowed'}, to fail closed"
                )
            marker = "LEFT OUT" if leftOut else "NOT CONVERTED EXACTLY"
            self.report(part.line or number, part.problem + suffix, marker)
        if leftOut:
            return
        fields: _Fields = {}
        for each in chosen:
            fields.update(each or {})
        if action == "permit":
            for part in parts:
                if part.guard is not None:
                    self.comment(
                        "A deny rule first, so that the permit after it permits no more than the line:"
                    )
                    self._table("deny", {**fields, **part.guard}, message + " (guard)")
        self._table(action, fields, message)

    def _table(self, action: str, fields: _Fields, message: str) -> None:
        self.lines.append("[[rule]]")
        self.lines.append(f"action = {_tomlString(action)}")
        for key in _KEYS:
            if key in fields:
                self.lines.append(f"{key} = [{', '.join(_tomlString(item) for item in fields[key])}]")
        self.lines.append(f"message = {_tomlString(message)}")

    def finish(self) -> Conversion:
        header = [
            f"# socksgate [[rule]] tables converted from {self.title} by `socksgate convert`.",
            "# The first rule that matches decides; a request that matches no rule is denied,",
            f"# as in {self.source}.",
        ]
        if self.problems:
            lines = sorted({number for number, _ in self.problems})
            header.append(
                f"# {len(lines)} source line(s) were not converted exactly: see the comments marked"
                " NOT CONVERTED and LEFT OUT."
            )
        problems = tuple(sorted(self.problems, key=lambda problem: problem[0]))
        return Conversion("\n".join(header + self.settings + self.lines) + "\n", problems)


def _commentSafe(text: str) -> str:
    """
    C{text} with the characters a TOML comment may not hold escaped.
    """
    return "".join(f"\\x{ord(char):02x}" if _isControl(char) else char for char in text)


def _isControl(char: str) -> bool:
    return (char < " " and char != "\t") or char == "\x7f"


def _tomlString(text: str) -> str:
    """
    C{text} as a TOML basic string.
    """
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif _isControl(char) or char == "\t":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
