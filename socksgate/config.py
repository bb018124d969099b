"""
The TOML configuration file, read into frozen values.

Errors name the file, the line (where one can be found), the key and what
is wrong, as C{FILE:LINE: [table] key: problem}.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from ._tablecheck import (
    ConfigError,
    LineIndex,
    TableChecker,
    ipAddressOrEmpty,
    ipAddressProblem,
    loadTOML,
    notNegative,
    positive,
)
from .configschema import AUTH, LOG, SERVER, TABLES
from .endpoints import endpointProblem, statusEndpoint
from .gssauth import LEVEL_NAMES, GSSAPIUnavailable, loadAcceptor
from .policy import LoopbackOnlyPolicy
from .privileges import readAdvice
from .rules import Rule, RulePolicy
from .ruletables import Expectation, checkExpectations, parseExpectation, parseRule
from .upstreams import UpstreamConfig, checkUpstreamNames, parseUpstream
from .vocabulary import Command, Version

__all__ = [
    "AuthConfig",
    "LogConfig",
    "COMMANDS",
    "DEFAULT_LISTEN",
    "VERSIONS",
    "Config",
    "ConfigError",
    "ServerConfig",
    "describeCheckerProblem",
    "loadConfig",
    "makeChecker",
    "parseConfig",
]

#: The listener used when neither the command line nor the file names one.
DEFAULT_LISTEN = SERVER.default("listen")[0]

#: The versions and commands C{[server]} may serve (all of them by default).
VERSIONS = tuple(Version)
COMMANDS = tuple(Command)

#: Tables that SPEC defines and that this version does not read yet.  A
#: file that has them is refused rather than half applied.
_NOT_YET_SUPPORTED: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    """
    The C{[server]} table; attribute names are the keys in camelCase.
    """

    listen: tuple[str, ...] = SERVER.default("listen")
    external: str = SERVER.default("external")
    advertise: str = SERVER.default("advertise")
    versions: frozenset[str] = frozenset(SERVER.default("versions"))
    commands: frozenset[str] = frozenset(SERVER.default("commands"))
    handshakeTimeout: float = SERVER.default("handshake-timeout")
    connectTimeout: float = SERVER.default("connect-timeout")
    bindTimeout: float = SERVER.default("bind-timeout")
    idleTimeout: float = SERVER.default("idle-timeout")
    udpIdleTimeout: float = SERVER.default("udp-idle-timeout")
    maxSessions: int = SERVER.default("max-sessions")
    maxSessionsPerClient: int = SERVER.default("max-sessions-per-client")
    gracePeriod: float = SERVER.default("grace-period")


#: SOCKS5 methods the [auth] table may name.
METHODS = ("userpass", "gssapi", "none")
IDENT_MODES = ("off", "log", "require")


@dataclass(frozen=True)
class AuthConfig:
    """
    The C{[auth]} table.

    @ivar methods: SOCKS5 methods in the server's order of preference.
    @ivar checker: the credentials checker for C{userpass}, if any.
    @ivar checkerDescription: the description it was made from.
    @ivar ident: C{"off"}, C{"log"} or C{"require"} (SOCKS4 requests).
    @ivar gssapi: the L{socksgate.gssauth.GSSAPIAcceptor} when C{methods}
        has C{gssapi} (its keytab, service and levels), else L{None}.
    """

    methods: tuple[str, ...] = AUTH.default("methods")
    checker: Any = None
    checkerDescription: str = AUTH.default("checker")
    ident: str = AUTH.default("ident")
    gssapi: Any = None

    def withChecker(self, checker: Any, description: str) -> AuthConfig:
        """
        A copy that checks passwords with C{checker} (C{--auth}, which wins
        over the file's): username/password becomes the preferred method.
        """
        methods = self.methods if "userpass" in self.methods else ("userpass",) + self.methods
        if self.methods == ("none",):
            methods = ("userpass",)
        return replace(self, methods=methods, checker=checker, checkerDescription=description)


ROTATIONS = ("none", "daily", "size")


@dataclass(frozen=True)
class LogConfig:
    """
    The C{[log]} table.

    @ivar access: the session log file (one JSON object a line), C{"-"}
        for standard output, or C{""} for none.
    @ivar rotate: C{"none"}, C{"daily"} (at midnight, as Twisted's
        C{DailyLogFile}) or C{"size"} (as Twisted's C{LogFile}).
    @ivar rotateSize: the size in bytes at which C{"size"} rotates.
    @ivar keep: how many rotated files C{"size"} keeps (0: all).
    @ivar status: the endpoint of the status page and C{/metrics}, or C{""}.
    """

    access: str = LOG.default("access")
    rotate: str = LOG.default("rotate")
    rotateSize: int = LOG.default("rotate-size")
    keep: int = LOG.default("keep")
    status: str = LOG.default("status")


@dataclass(frozen=True)
class Config:
    """
    A whole configuration.

    @ivar path: the file it came from, or L{None} for the defaults.
    @ivar rules: the C{[[rule]]} tables, in order; none means SPEC's
        default policy (loopback clients only).
    @ivar expectations: the C{[[expect]]} tables, all of which hold.
    @ivar upstreams: the C{[[upstream]]} tables, in order.
    """

    server: ServerConfig = field(default_factory=ServerConfig)
    path: str | None = None
    rules: tuple[Rule, ...] = ()
    auth: AuthConfig = field(default_factory=AuthConfig)
    log: LogConfig = field(default_factory=LogConfig)
    expectations: tuple[Expectation, ...] = ()
    upstreams: tuple[UpstreamConfig, ...] = ()

    @cached_property
    def policy(self) -> RulePolicy | LoopbackOnlyPolicy:
        """
        The access policy the file describes.  When SOCKS5 requires a
        password (no C{"none"} among the methods), SOCKS4 and SOCKS4a are
        denied unless a rule that names their version permits them.
        """
        required = "none" not in self.auth.methods
        return RulePolicy(self.rules, required) if self.rules else LoopbackOnlyPolicy(required)

    def withLog(self, access: str | None = None, status: str | None = None) -> Config:
        """
        A copy with the command line's C{--access-log} and C{--status},
        which win over the file's.
        """
        log = self.log
        if access is not None:
            log = replace(log, access=access)
        if status is not None:
            log = replace(log, status=status)
        return replace(self, log=log)

    def withListen(self, listen: tuple[str, ...]) -> Config:
        """
        A copy whose listeners are C{listen} (the command line's, which win
        over the file's).
        """
        return replace(self, server=replace(self.server, listen=listen))


def _parseServer(checker: TableChecker) -> ServerConfig:
    checker.checkKeys(SERVER.names)
    defaults = ServerConfig()
    listen = checker.strings("listen", defaults.listen)
    if not listen:
        raise checker.error("listen", "must name at least one endpoint")
    for description in listen:
        problem = endpointProblem(description)
        if problem is not None:
            raise checker.error("listen", problem)
    return ServerConfig(
        listen=listen,
        external=checker.get("external", str, defaults.external, ipAddressProblem),
        advertise=checker.get("advertise", str, defaults.advertise, ipAddressOrEmpty),
        versions=frozenset(checker.strings("versions", defaults.versions, VERSIONS)),
        commands=frozenset(checker.strings("commands", defaults.commands, COMMANDS)),
        handshakeTimeout=checker.get("handshake-timeout", float, defaults.handshakeTimeout, positive),
        connectTimeout=checker.get("connect-timeout", float, defaults.connectTimeout, positive),
        bindTimeout=checker.get("bind-timeout", float, defaults.bindTimeout, positive),
        idleTimeout=checker.get("idle-timeout", float, defaults.idleTimeout, notNegative),
        udpIdleTimeout=checker.get("udp-idle-timeout", float, defaults.udpIdleTimeout, positive),
        maxSessions=checker.get("max-sessions", int, defaults.maxSessions, positive),
        maxSessionsPerClient=checker.get(
            "max-sessions-per-client", int, defaults.maxSessionsPerClient, positive
        ),
        gracePeriod=checker.get("grace-period", float, defaults.gracePeriod, notNegative),
    )


def _parseAuth(checker: TableChecker, override: tuple[Any, str] | None) -> AuthConfig:
    checker.checkKeys(AUTH.names)
    defaults = AuthConfig()
    methods = checker.strings("methods", defaults.methods, METHODS)
    if not methods:
        raise checker.error("methods", "must name at least one method")
    description = checker.get("checker", str, defaults.checkerDescription, lambda value: None)
    credentialsChecker = None
    if description:
        try:
            credentialsChecker = makeChecker(description)
        except Exception as problem:
            raise checker.error("checker", f"{description!r}: {describeCheckerProblem(problem)}") from None
    auth = AuthConfig(
        methods=methods,
        checker=credentialsChecker,
        checkerDescription=description,
        ident=checker.get("ident", str, defaults.ident, lambda value: _oneOf(value, IDENT_MODES)),
        gssapi=_parseGSSAPI(checker, "gssapi" in methods),
    )
    if override is not None:
        auth = auth.withChecker(*override)
    if "userpass" in auth.methods and auth.checker is None:
        raise checker.error("methods", 'userpass needs a checker: set checker = "..." here or use --auth')
    return auth


def _parseGSSAPI(checker: TableChecker, wanted: bool) -> Any:
    """
    The GSS-API acceptor of C{[auth]}, acquired from its keytab when
    C{methods} has C{gssapi}, so that a wrong keytab stops the start.
    """
    keytab = checker.get("gssapi-keytab", str, AUTH.default("gssapi-keytab"), lambda value: None)
    service = checker.get(
        "gssapi-service",
        str,
        AUTH.default("gssapi-service"),
        lambda value: None if value else "must not be empty",
    )
    levels = checker.strings("gssapi-protection", AUTH.default("gssapi-protection"), tuple(LEVEL_NAMES))
    if not levels:
        raise checker.error("gssapi-protection", "must name at least one level")
    if not wanted:
        return None
    try:
        return loadAcceptor(keytab, service, levels)
    except GSSAPIUnavailable as problem:
        raise checker.error("methods", f"gssapi: {problem}") from None
    except ValueError as problem:
        raise checker.error("gssapi-keytab", str(problem)) from None


def _parseLog(checker: TableChecker) -> LogConfig:
    checker.checkKeys(LOG.names)
    defaults = LogConfig()
    return LogConfig(
        access=checker.get("access", str, defaults.access, lambda value: None),
        rotate=checker.get("rotate", str, defaults.rotate, lambda value: _oneOf(value, ROTATIONS)),
        rotateSize=checker.get("rotate-size", int, defaults.rotateSize, positive),
        keep=checker.get("keep", int, defaults.keep, notNegative),
        status=checker.get(
            "status", str, defaults.status, lambda value: value and endpointProblem(statusEndpoint(value))
        ),
    )


def _oneOf(value: str, allowed: tuple[str, ...]) -> str | None:
    return None if value in allowed else f"{value!r} is not one of {', '.join(allowed)}"


def makeChecker(description: str) -> Any:
    """
    Make a credentials checker from a description, as C{--auth} takes it
    (C{memory:alice:secret}, C{file:/etc/passwords}, C{unix},
    C{htpasswd:/etc/socksgate.htpasswd}), for username and password.

    @raise ValueError: the description names no such checker, or a checker
        that does not check usernames and passwords.
    """
    from twisted.cred.credentials import IUsernamePassword
    from twisted.cred.strcred import makeChecker as makeAnyChecker

    checker = makeAnyChecker(description)
    if IUsernamePassword not in checker.credentialInterfaces:
        raise ValueError("this checker does not check usernames and passwords")
    return checker


def describeCheckerProblem(problem: Exception) -> str:
    """
    Say what is wrong with a checker description, in words.
    """
    from twisted.cred.strcred import InvalidAuthType

    if isinstance(problem, InvalidAuthType):
        return f"no checker kind {str(problem)!r} (twistd socksgate --help-auth lists them)"
    return str(problem) or type(problem).__name__


def parseConfig(text: str, path: str = "<config>", authChecker: tuple[Any, str] | None = None) -> Config:
    """
    Read a configuration from TOML text.

    @param path: the file name to put in error messages.
    @param authChecker: a credentials checker and its description from the
        command line (C{--auth}), which win over the file's.
    @raise ConfigError: the text is not TOML or a value is wrong.
    """
    document = loadTOML(path, text)
    lines = LineIndex(text)
    for table in document:
        if table in _NOT_YET_SUPPORTED:
            raise ConfigError(
                path,
                "is not supported by this version of socksgate",
                table,
                lines.header(table),
            )
        if table not in {known.name for known in TABLES}:
            raise ConfigError(path, "unknown table or key", table, lines.header(table))
    server = document.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(path, "must be a table", "server", lines.header("server"))
    serverConfig = _parseServer(TableChecker(path, lines, "server", server))
    upstreams = tuple(
        parseUpstream(TableChecker(path, lines, "upstream", table, number))
        for number, table in enumerate(_arrayOfTables(path, lines, document, "upstream"))
    )
    checkUpstreamNames(path, upstreams)
    ruleTables = _arrayOfTables(path, lines, document, "rule")
    rules = tuple(
        parseRule(TableChecker(path, lines, "rule", table, number), number + 1)
        for number, table in enumerate(ruleTables)
    )
    names = {upstream.name for upstream in upstreams}
    for number, rule in enumerate(rules):
        if rule.via != "direct" and rule.via not in names:
            raise TableChecker(path, lines, "rule", ruleTables[number], number).error(
                "via", f'{rule.via!r}: no [[upstream]] has that name; give "direct" or an upstream\'s name'
            )
    expectations = tuple(
        parseExpectation(
            TableChecker(path, lines, "expect", table, number), number + 1, serverConfig.listen[0]
        )
        for number, table in enumerate(_arrayOfTables(path, lines, document, "expect"))
    )
    auth = document.get("auth", {})
    if not isinstance(auth, dict):
        raise ConfigError(path, "must be a table", "auth", lines.header("auth"))
    authConfig = _parseAuth(TableChecker(path, lines, "auth", auth), authChecker)
    logTable = document.get("log", {})
    if not isinstance(logTable, dict):
        raise ConfigError(path, "must be a table", "log", lines.header("log"))
    logConfig = _parseLog(TableChecker(path, lines, "log", logTable))
    config = Config(
        server=serverConfig,
        path=path,
        rules=rules,
        expectations=expectations,
        auth=authConfig,
        log=logConfig,
        upstreams=upstreams,
    )
    checkExpectations(path, config.policy, expectations)
    return config


def _arrayOfTables(path: str, lines: LineIndex, document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    tables = document.get(name, [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ConfigError(path, f"must be written [[{name}]], one table for each", name, lines.header(name))
    return tables


def loadConfig(path: str, authChecker: tuple[Any, str] | None = None) -> Config:
    """
    Read the configuration file at C{path}.

    This reads the file synchronously: call it before the reactor runs, or
    in a thread.

    @raise ConfigError: the file cannot be read or its contents are wrong.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except PermissionError as error:
        raise ConfigError(path, f"cannot be read: {error.strerror}; {readAdvice(path)}") from None
    except OSError as error:
        raise ConfigError(path, f"cannot be read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(path, f"is not UTF-8 (byte {error.start})") from None
    return parseConfig(text, path, authChecker)
