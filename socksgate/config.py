"""
The TOML configuration file, read into frozen values.

Errors name the file, the line (where one can be found), the key and what
is wrong, as C{FILE:LINE: [table] key: problem}.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from typing import Any

#: The listener used when neither the command line nor the file names one.
DEFAULT_LISTEN = "tcp:1080:interface=127.0.0.1"

VERSIONS = ("4", "4a", "5")
COMMANDS = ("connect", "bind", "udp")

#: Tables that SPEC defines and that this version does not read yet.  A
#: file that has them is refused rather than half applied.
_NOT_YET_SUPPORTED = ("auth", "log", "rule", "upstream", "expect")


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
        what = problem if key is None else f"{_describeKey(key)}: {problem}"
        super().__init__(f"{where}: {what}")


def _describeKey(key: str) -> str:
    table, _, name = key.partition(".")
    return f"[{table}] {name}" if name else f"[{table}]"


@dataclass(frozen=True)
class ServerConfig:
    """
    The C{[server]} table; attribute names are the keys in camelCase.
    """

    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    external: str = "0.0.0.0"
    advertise: str = ""
    versions: frozenset[str] = frozenset(VERSIONS)
    commands: frozenset[str] = frozenset(COMMANDS)
    handshakeTimeout: float = 10.0
    connectTimeout: float = 30.0
    bindTimeout: float = 120.0
    idleTimeout: float = 0.0
    udpIdleTimeout: float = 300.0
    maxSessions: int = 10000
    maxSessionsPerClient: int = 512


@dataclass(frozen=True)
class Config:
    """
    A whole configuration.

    @ivar path: the file it came from, or L{None} for the defaults.
    """

    server: ServerConfig = field(default_factory=ServerConfig)
    path: str | None = None

    def withListen(self, listen: tuple[str, ...]) -> Config:
        """
        A copy whose listeners are C{listen} (the command line's, which win
        over the file's).
        """
        return replace(self, server=replace(self.server, listen=listen))


class _Checker:
    """
    Validates the values of one table, reporting errors with their lines.
    """

    def __init__(self, path: str, text: str, table: str, values: dict[str, Any]):
        self.path, self.text, self.table, self.values = path, text, table, values

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, problem, f"{self.table}.{key}", _lineOf(self.text, self.table, key))

    def get(self, key: str, kind: type, default: Any, check: Callable[[Any], str | None]) -> Any:
        if key not in self.values:
            return default
        value = self.values[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"must be {_KIND_NAMES[kind]}, not {value!r}")
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


_KIND_NAMES = {float: "a number", int: "an integer", str: "a string", list: "a list"}


def _lineOf(text: str, table: str, key: str) -> int | None:
    """
    Find the line on which C{key} is set inside C{[table]}.
    """
    current = None
    keyPattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\[?\s*([A-Za-z0-9_-]+)\s*\]\]?", line)
        if header:
            current = header.group(1)
        elif current == table and keyPattern.match(line):
            return number
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _notNegative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _ipAddress(value: str) -> str | None:
    try:
        ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address"
    return None


def _ipAddressOrEmpty(value: str) -> str | None:
    return _ipAddress(value) if value else None


def _parseServer(checker: _Checker) -> ServerConfig:
    known = {
        "listen",
        "external",
        "advertise",
        "versions",
        "commands",
        "handshake-timeout",
        "connect-timeout",
        "bind-timeout",
        "idle-timeout",
        "udp-idle-timeout",
        "max-sessions",
        "max-sessions-per-client",
    }
    for key in checker.values:
        if key not in known:
            raise checker.error(key, "unknown key")
    defaults = ServerConfig()
    listen = checker.strings("listen", defaults.listen)
    if not listen:
        raise checker.error("listen", "must name at least one endpoint")
    return ServerConfig(
        listen=listen,
        external=checker.get("external", str, defaults.external, _ipAddress),
        advertise=checker.get("advertise", str, defaults.advertise, _ipAddressOrEmpty),
        versions=frozenset(checker.strings("versions", VERSIONS, VERSIONS)),
        commands=frozenset(checker.strings("commands", COMMANDS, COMMANDS)),
        handshakeTimeout=checker.get("handshake-timeout", float, defaults.handshakeTimeout, _positive),
        connectTimeout=checker.get("connect-timeout", float, defaults.connectTimeout, _positive),
        bindTimeout=checker.get("bind-timeout", float, defaults.bindTimeout, _positive),
        idleTimeout=checker.get("idle-timeout", float, defaults.idleTimeout, _notNegative),
        udpIdleTimeout=checker.get("udp-idle-timeout", float, defaults.udpIdleTimeout, _positive),
        maxSessions=checker.get("max-sessions", int, defaults.maxSessions, _positive),
        maxSessionsPerClient=checker.get(
            "max-sessions-per-client", int, defaults.maxSessionsPerClient, _positive
        ),
    )


def parseConfig(text: str, path: str = "<config>") -> Config:
    """
    Read a configuration from TOML text.

    @param path: the file name to put in error messages.
    @raise ConfigError: the text is not TOML or a value is wrong.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"\(at line (\d+)", str(error))
        raise ConfigError(
            path, f"not valid TOML: {error}", line=int(match.group(1)) if match else None
        ) from None
    for table in document:
        if table in _NOT_YET_SUPPORTED:
            raise ConfigError(
                path,
                "is not supported by this version of socksgate",
                table,
                _tableLine(text, table),
            )
        if table != "server":
            raise ConfigError(path, "unknown table or key", table, _tableLine(text, table))
    server = document.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(path, "must be a table", "server", _tableLine(text, "server"))
    return Config(_parseServer(_Checker(path, text, "server", server)), path)


def _tableLine(text: str, name: str) -> int | None:
    pattern = re.compile(rf"^\s*(?:\[\[?\s*{re.escape(name)}\s*\]\]?|{re.escape(name)}\s*=)")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def loadConfig(path: str) -> Config:
    """
    Read the configuration file at C{path}.

    This reads the file synchronously: call it before the reactor runs, or
    in a thread.

    @raise ConfigError: the file cannot be read or its contents are wrong.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        raise ConfigError(path, f"cannot be read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(path, f"is not UTF-8 (byte {error.start})") from None
    return parseConfig(text, path)
