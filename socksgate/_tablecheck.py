"""
Checking the values of TOML tables, with errors that name the file, the
line, the table and key, and the problem.
"""

from __future__ import annotations

import re
import tomllib
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
        self,
        path: str,
        lines: LineIndex,
        table: str,
        values: dict[str, Any],
        occurrence: int | None = None,
    ):
        self.path, self.lines, self.table, self.values = path, lines, table, values
        self.occurrence = occurrence
        self.label = table if occurrence is None else f"{table} #{occurrence + 1}"

    @property
    def line(self) -> int | None:
        """
        The line of the table's header.
        """
        return self.lines.header(self.table, self.occurrence or 0)

    def error(self, key: str | None, problem: str) -> ConfigError:
        if key is None:
            return ConfigError(self.path, problem, self.label, self.line)
        line = self.lines.key(self.table, key, self.occurrence or 0)
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


def positive(value: float) -> str | None:
    """
    Whether a number is above 0 (L{None}), or what is wrong.
    """
    return None if value > 0 else "must be greater than 0"


def notNegative(value: float) -> str | None:
    """
    Whether a number is 0 or more (L{None}), or what is wrong.
    """
    return None if value >= 0 else "must be 0 or more"


def ipAddressProblem(value: str) -> str | None:
    """
    Whether a string is an IP address (L{None}), or what is wrong.
    """
    try:
        ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address"
    return None


def ipAddressOrEmpty(value: str) -> str | None:
    """
    Like L{ipAddressProblem}, but an empty string is fine too.
    """
    return ipAddressProblem(value) if value else None


class LineIndex:
    """
    Where each table header and each key stands in a TOML text, found in
    one pass, so that an error can name its line.
    """

    _HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_-]+)\s*\]\]?")
    _KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self._headers: dict[str, list[int]] = {}
        self._keys: dict[tuple[str, int], dict[str, int]] = {}
        current = ("", 0)
        for number, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                lines = self._headers.setdefault(header.group(1), [])
                current = (header.group(1), len(lines))
                lines.append(number)
                continue
            key = self._KEY.match(line)
            if key:
                name = key.group(1) or key.group(2) or key.group(3)
                self._keys.setdefault(current, {}).setdefault(name, number)

    def header(self, table: str, occurrence: int = 0) -> int | None:
        """
        The line of the C{occurrence}th header of C{table} (from 0), or of
        a top-level key of that name.
        """
        lines = self._headers.get(table, [])
        if occurrence < len(lines):
            return lines[occurrence]
        return self._keys.get(("", 0), {}).get(table)

    def key(self, table: str, key: str, occurrence: int = 0) -> int | None:
        """
        The line on which C{key} is set in that table.
        """
        return self._keys.get((table, occurrence), {}).get(key)


def loadTOML(path: str, text: str) -> dict[str, Any]:
    """
    The TOML document C{text} of the file C{path}.

    @raise ConfigError: the text is not TOML (with the line TOML names).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"\(at line (\d+)", str(error))
        raise ConfigError(
            path, f"not valid TOML: {error}", line=int(match.group(1)) if match else None
        ) from None
