"""
Checking the values of TOML tables, with errors that name the file, the
line, the table and key, and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any


class ConfigError(Exception):
    """
    The configuration cannot be used.

    @ivar path: the file.
    @ivar line: the line number, or L{None} when it is not known.
    @ivar key: the key, as C{table.key}, or L{None}.
    @ivar problem: what is wrong.
    """

    def __init__(self, path: str, problem: str, key: str | None = None, line: int | None = None):
        self.path, self.problem, self.key, self.line = path, problem, key, line
        where = path if line is None else f"{path}:{line}"
        what = problem if key is None else f"{describeKey(key)}: {problem}"
        super().__init__(f"{where}: {what}")


def describeKey(key: str) -> str:
    table, _, name = key.partition(".")
    return f"[{table}] {name}" if name else f"[{table}]"


class TableChecker:
    """
    Validates the values of one table (or one of an array of tables),
    reporting errors with their lines.
    """

    def __init__(
        self, path: str, text: str, table: str, values: dict[str, Any], occurrence: int | None = None
    ):
        self.path, self.text, self.table, self.values = path, text, table, values
        self.occurrence = occurrence
        self.label = table if occurrence is None else f"{table} #{occurrence + 1}"

    @property
    def line(self) -> int | None:
        """
        The line of the table's header.
        """
        return tableLine(self.text, self.table, self.occurrence or 0)

    def error(self, key: str | None, problem: str) -> ConfigError:
        if key is None:
            return ConfigError(self.path, problem, self.label, self.line)
        line = lineOf(self.text, self.table, key, self.occurrence or 0)
        return ConfigError(self.path, problem, f"{self.label}.{key}", line or self.line)

    def checkKeys(self, known: set[str]) -> None:
        for key in self.values:
            if key not in known:
                raise self.error(key, "unknown key")

    def get(self, key: str, kind: type, default: Any, check: Callable[[Any], str | None]) -> Any:
        if key not in self.values:
            return default
        value = self.values[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"must be {KIND_NAMES[kind]}, not {value!r}")
        problem = check(value)
        if problem:
            raise self.error(key, problem)
        return value

    def strings(self, key: str, default: Any, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        def check(value: list[Any]) -> str | None:
            for item in value:
                if not isinstance(item, str) or not item:
                    return f"every item must be a non-empty string, not {item!r}"
                if allowed is not None and item not in allowed:
                    return f"{item!r} is not one of {', '.join(allowed)}"
            return None

        value = self.get(key, list, None, check)
        return default if value is None else tuple(value)


KIND_NAMES = {float: "a number", int: "an integer", str: "a string", list: "a list"}


def lineOf(text: str, table: str, key: str, occurrence: int = 0) -> int | None:
    """
    Find the line on which C{key} is set inside C{[table]}, or inside its
    C{occurrence}th C{[[table]]} (from 0).
    """
    current, seen = None, -1
    keyPattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\[?\s*([A-Za-z0-9_-]+)\s*\]\]?", line)
        if header:
            current = header.group(1)
            if current == table:
                seen += 1
        elif current == table and seen == occurrence and keyPattern.match(line):
            return number
    return None


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def notNegative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def ipAddressProblem(value: str) -> str | None:
    try:
        ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address"
    return None


def ipAddressOrEmpty(value: str) -> str | None:
    return ipAddressProblem(value) if value else None


def tableLine(text: str, name: str, occurrence: int = 0) -> int | None:
    """
    The line of the C{occurrence}th header of table C{name} (or of a
    top-level key of that name).
    """
    pattern = re.compile(rf"^\s*(?:\[\[?\s*{re.escape(name)}\s*\]\]?|{re.escape(name)}\s*=)")
    seen = -1
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            seen += 1
            if seen == occurrence:
                return number
    return None
