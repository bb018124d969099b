"""
C{[[upstream]]} chaining: the tables read from the configuration file, and
the state of each upstream's servers (which are up, which are left alone
for a while after a failure, how many sessions each carried).

The route that carries a session through an upstream is
L{socksgate.upstreamroute.UpstreamRoute}; this module knows nothing of
connections.

A server that fails (its connection refused or timed out, a TLS failure, a
malformed or missing reply) is I{down} for L{UpstreamConfig.downPeriod}
seconds (30 by default); a server that fails again on its first attempt
after that is down for twice as long, and so on up to
L{LONGEST_DOWN_PERIOD} (5 minutes, or the down period if it is longer).
A session it carries makes it up again, and its next failure starts again
from the down period.  The periods are kept by the client side's
L{ProxyHealth}, the server URLs read by its L{parseProxyURL}.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import Logger

from ._tablecheck import ConfigError, TableChecker, positive
from .client.failover import FIRST_DOWN_PERIOD, LONGEST_DOWN_PERIOD, ProxyHealth
from .client.urls import ProxyURL, parseProxyURL
from .configschema import UPSTREAM
from .privileges import readAdvice

__all__ = ["ServerState", "UpstreamConfig", "UpstreamServer", "UpstreamTable", "parseUpstream"]

log = Logger(namespace="socksgate.upstream")


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """
    One server of an upstream.

    @ivar url: the URL as written in the file (it names the server on the
        status page, in C{/metrics} and in session records).
    @ivar proxy: that URL as L{parseProxyURL} reads it.
    """

    url: str
    proxy: ProxyURL


def _server(url: str) -> UpstreamServer:
    """
    Read one server URL with L{parseProxyURL}; credentials in it are
    refused (they go in C{username} and C{password}).

    @raise ValueError: with what is wrong.
    """
    proxy = parseProxyURL(url)
    if proxy.username is not None:
        raise ValueError(f"{str(proxy)!r}: give credentials as username and password, not in the URL")
    return UpstreamServer(url, proxy)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """
    One C{[[upstream]]} table.

    @ivar name: what rules' C{via} call it.
    @ivar servers: its servers, in the order they are tried.
    @ivar username: the user name sent to its servers (RFC 1929 for
        SOCKS5, the USERID for SOCKS4), or C{""} for none.
    @ivar password: the RFC 1929 password (from C{password} or the file
        C{password-file} names); never in C{repr}.
    @ivar tls: whether its servers are reached over TLS.
    @ivar caFile: the PEM file of the certificate authority that signs its
        servers' certificates, or C{""} for the system's trust roots.
    @ivar caData: that file's contents, read with the configuration.
    @ivar downPeriod: seconds a failed server is left alone first.
    @ivar line: the line of its header in the file.
    """

    name: str
    servers: tuple[UpstreamServer, ...]
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    caFile: str = ""
    caData: bytes = field(default=b"", repr=False)
    downPeriod: float = FIRST_DOWN_PERIOD
    line: int | None = None


def _readFile(checker: TableChecker, key: str, path: str) -> bytes:
    """
    The contents of the file C{path} that C{key} names.
    """
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except PermissionError as problem:
        raise checker.error(key, f"{path}: cannot be read: {problem.strerror}; {readAdvice(path)}") from None
    except OSError as problem:
        raise checker.error(key, f"{path}: cannot be read: {problem.strerror}") from None


def _credential(checker: TableChecker, key: str, value: str) -> str:
    if len(value.encode("utf-8")) > 255:
        raise checker.error(key, "is longer than 255 bytes (RFC 1929)")
    return value


def parseUpstream(checker: TableChecker) -> UpstreamConfig:
    """
    Read one C{[[upstream]]} table, and the files it names (C{password-file},
    C{ca-file}): call it before twistd drops its privileges, as the
    configuration is read.

    @raise ConfigError: a key is unknown, a value is wrong or a file cannot
        be read.
    """
    checker.checkKeys(UPSTREAM.names)
    name = checker.get("name", str, "", lambda value: None if value else "must not be empty")
    if not name:
        raise checker.error(None, 'has no name: give name = "..."')
    if name == "direct":
        raise checker.error("name", '"direct" is the route without an upstream')
    urls = checker.strings("servers", ())
    if not urls:
        raise checker.error("servers", "must name at least one server URL")
    servers = []
    for url in urls:
        try:
            servers.append(_server(url))
        except ValueError as problem:
            raise checker.error("servers", str(problem)) from None
    username = _credential(checker, "username", checker.get("username", str, "", lambda value: None))
    password = checker.get("password", str, "", lambda value: None)
    passwordFile = checker.get("password-file", str, "", lambda value: None)
    if password and passwordFile:
        raise checker.error("password-file", "give password or password-file, not both")
    if passwordFile:
        raw = _readFile(checker, "password-file", passwordFile)
        try:
            password = raw.decode("utf-8").splitlines()[0] if raw.strip() else ""
        except UnicodeDecodeError:
            raise checker.error("password-file", f"{passwordFile}: is not UTF-8") from None
    password = _credential(checker, "password" if not passwordFile else "password-file", password)
    if password and not username:
        raise checker.error("password", "a password needs a username")
    tls = checker.get("tls", bool, False, lambda value: None)
    caFile = checker.get("ca-file", str, "", lambda value: None)
    if caFile and not tls:
        raise checker.error("ca-file", "is only used with tls = true")
    caData = _readFile(checker, "ca-file", caFile) if caFile else b""
    if caFile and b"-----BEGIN CERTIFICATE-----" not in caData:
        raise checker.error("ca-file", f"{caFile}: holds no PEM certificate")
    return UpstreamConfig(
        name=name,
        servers=tuple(servers),
        username=username,
        password=password,
        tls=tls,
        caFile=caFile,
        caData=caData,
        downPeriod=checker.get("down-period", float, UPSTREAM.default("down-period"), positive),
        line=checker.line,
    )


def checkUpstreamNames(path: str, upstreams: Iterable[UpstreamConfig]) -> None:
    """
    Refuse two upstreams of one name.

    @raise ConfigError: naming the second one.
    """
    seen: set[str] = set()
    for upstream in upstreams:
        if upstream.name in seen:
            raise ConfigError(
                path, f"a second upstream named {upstream.name!r}", "upstream.name", upstream.line
            )
        seen.add(upstream.name)


class ServerState:
    """
    The running state of one server of one upstream: its counts here, its
    down periods in its upstream's L{ProxyHealth}.

    @ivar server: the server.
    @ivar downFor: the length of its last down period, 0 once it carried
        a session.
    @ivar sessions: sessions it carried.
    @ivar failures: times it failed.
    @ivar lastFailure: what went wrong the last time, or C{""}.
    """

    def __init__(self, server: UpstreamServer, health: ProxyHealth) -> None:
        self.server = server
        self.health = health
        self.downFor = 0.0
        self.sessions = 0
        self.failures = 0
        self.lastFailure = ""

    @property
    def downUntil(self) -> float:
        """
        Until when (the reactor's clock) it is left alone; 0 when it has not
        failed since it last carried a session.
        """
        return self.health.downUntil(self.server.proxy)

    def isUp(self, now: float) -> bool:
        """
        Whether it may be tried at C{now}.
        """
        return now >= self.downUntil


class UpstreamTable:
    """
    The upstreams of a gateway, with the state of their servers; shared by
    its listeners and kept across reloads (a server keeps its state while
    a reloaded file still names it in the same upstream).

    Each upstream has a L{ProxyHealth} (the client side's bookkeeping)
    whose first period is its C{down-period}; unlike a client's failover,
    a server that is down is not tried at all.

    @ivar upstreams: the configurations, by name.
    """

    def __init__(self, clock: Any, upstreams: Iterable[UpstreamConfig] = ()) -> None:
        self._clock = clock
        self.upstreams: dict[str, UpstreamConfig] = {}
        self._health: dict[str, ProxyHealth] = {}
        self._states: dict[tuple[str, str], ServerState] = {}
        self.configure(upstreams)

    def _healthOf(self, upstream: UpstreamConfig) -> ProxyHealth:
        health = self._health.get(upstream.name)
        if health is None:
            health = self._health[upstream.name] = ProxyHealth(self._clock)
        health.firstPeriod = upstream.downPeriod
        health.longestPeriod = max(LONGEST_DOWN_PERIOD, upstream.downPeriod)
        return health

    def configure(self, upstreams: Iterable[UpstreamConfig]) -> None:
        """
        Use C{upstreams} from now on (a reload).
        """
        self.upstreams = {upstream.name: upstream for upstream in upstreams}
        states = {}
        for upstream in self.upstreams.values():
            health = self._healthOf(upstream)
            for server in upstream.servers:
                key = (upstream.name, server.url)
                states[key] = self._states.get(key) or ServerState(server, health)
        kept = {(name, state.server.proxy) for (name, _), state in states.items()}
        for (name, _), state in self._states.items():
            if (name, state.server.proxy) not in kept:
                state.health.worked(state.server.proxy)
        self._states = states
        self._health = {name: self._health[name] for name in self.upstreams}

    def state(self, upstream: str, server: UpstreamServer) -> ServerState:
        """
        The state of C{server} of C{upstream}.
        """
        key = (upstream, server.url)
        if key not in self._states:
            self._states[key] = ServerState(server, self._healthOf(self.upstreams[upstream]))
        return self._states[key]

    def states(self) -> list[tuple[str, ServerState]]:
        """
        Every server's state, with its upstream's name, in the file's order.
        """
        return [
            (upstream.name, self.state(upstream.name, server))
            for upstream in self.upstreams.values()
            for server in upstream.servers
        ]

    def serversToTry(self, upstream: UpstreamConfig) -> list[UpstreamServer]:
        """
        The servers of C{upstream} that are up now, in order.
        """
        now = self._clock.seconds()
        return [server for server in upstream.servers if self.state(upstream.name, server).isUp(now)]

    def failed(self, upstream: UpstreamConfig, server: UpstreamServer, reason: str) -> None:
        """
        C{server} failed: leave it alone for its next down period (a server
        already down, failed by an attempt started earlier, stays as it is).
        """
        state = self.state(upstream.name, server)
        state.failures += 1
        state.lastFailure = reason
        if not state.isUp(self._clock.seconds()):
            return
        state.downFor = state.health.failed(server.proxy)
        log.warn(
            "upstream {upstream}: server {server} failed ({reason}); not tried for {seconds:g} seconds",
            upstream=upstream.name,
            server=server.url,
            reason=reason,
            seconds=state.downFor,
        )

    def carried(self, upstream: UpstreamConfig, server: UpstreamServer) -> None:
        """
        C{server} carried a session: it is up.
        """
        state = self.state(upstream.name, server)
        if state.downFor:
            log.info(
                "upstream {upstream}: server {server} is up again", upstream=upstream.name, server=server.url
            )
        state.health.worked(server.proxy)
        state.downFor = 0.0
        state.sessions += 1
