"""
Client routing for applications, the classic C{socks.conf}: a table of
routes by destination and port, each one C{deny}, C{direct}, or C{via} a
list of proxies tried in order (L{socksgate.client.failover}).

The first route that matches decides; a destination no route matches is
denied, as in C{socks.conf}.  A route matches a name by its name patterns
(C{"www.example.com"}, C{".example.com"}) and an address literal by its
address patterns (IP, CIDR); a name is never resolved to match a route,
so choosing a route leaks no DNS query.  The table is read from TOML::

    [[route]]
    destinations = ["127.0.0.0/8", "localhost"]
    action = "direct"

    [[route]]
    destinations = [".example.com"]
    ports = ["443", "8000-8999"]
    action = "via"
    proxies = ["socks5h://proxy1.example:1080", "socks5h://proxy2.example:1080"]
    username = "alice"
    password-file = "alice.secret"

L{RoutingTable.endpointFor} gives the L{IStreamClientEndpoint} for a
destination.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IHostnameResolver, IProtocol, IProtocolFactory, IStreamClientEndpoint
from zope.interface import implementer

from .._tablecheck import ConfigError, LineIndex, TableChecker, loadTOML, positive
from ..rules import DestinationPatterns
from ..ruletables import _destinations, _optional, _portRange
from .failover import FailoverEndpoint, ProxyHealth
from .urls import ProxyURL, parseProxyURL

__all__ = ["ConfigError", "Route", "RouteDenied", "RoutingTable", "loadRoutes", "parseRoutes", "singleProxy"]

ACTIONS = ("deny", "direct", "via")
_ROUTE_KEYS = {
    "destinations",
    "ports",
    "action",
    "proxies",
    "username",
    "password",
    "password-file",
    "timeout",
}


@dataclass(frozen=True)
class Route:
    """
    One C{[[route]]} table.

    @ivar index: its number in the file, from 1.
    @ivar line: the line of its header, if known.
    @ivar action: C{"deny"}, C{"direct"} or C{"via"}.
    @ivar ports: inclusive C{(low, high)} ranges; L{None}: any port.
    @ivar proxies: for C{via}, the proxies in the order to try them, with
        the route's credentials filled in.
    @ivar timeout: seconds a direct connection, or each proxy, has to
        connect (and answer).
    """

    index: int
    action: str
    line: int | None = None
    destinations: DestinationPatterns = DestinationPatterns()
    ports: tuple[tuple[int, int], ...] | None = None
    proxies: tuple[ProxyURL, ...] = ()
    timeout: float = 30.0

    def matches(self, host: str, port: int) -> bool:
        """
        Whether C{host}:C{port} takes this route: an address literal by the
        address patterns, a name by the name and domain patterns.
        """
        if self.ports is not None and not any(low <= port <= high for low, high in self.ports):
            return False
        if self.destinations.anything:
            return True
        address = _literal(host)
        if address is None:
            return self.destinations.matchesName(host)
        return any(address in network for network in self.destinations.networks)

    def describe(self, path: str) -> str:
        """
        Where the route is written: C{route #2 (routes.toml:7)}.
        """
        where = path if self.line is None else f"{path}:{self.line}"
        return f"route #{self.index} ({where})"


def _literal(host: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


class RouteDenied(ConnectError):
    """
    The routing table denies the destination: a C{deny} route, or no
    route at all.

    @ivar route: the C{deny} route, or L{None} when no route matched.
    """

    def __init__(self, destination: str, route: Route | None, path: str) -> None:
        self.route = route
        why = "no route matches it" if route is None else f"{route.describe(path)} denies it"
        super().__init__(string=f"{destination} is denied: {why}")

    def __str__(self) -> str:
        return self.args[0] if self.args else "denied by the routing table"


@implementer(IStreamClientEndpoint)
class _DeniedEndpoint:
    """
    An endpoint whose every connection fails with the same error.
    """

    def __init__(self, error: Exception) -> None:
        self._error = error

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Fail at once.
        """
        return fail(self._error)


class RoutingTable:
    """
    Routes, and the proxy failures remembered between connections (by the
    clock of the first reactor given to L{endpointFor}).

    @ivar routes: in the order they are tried.
    @ivar path: the file they came from, for messages.
    """

    def __init__(self, routes: tuple[Route, ...], path: str = "<routes>") -> None:
        self.routes = routes
        self.path = path
        self._health: ProxyHealth | None = None

    def routeFor(self, host: str, port: int) -> Route | None:
        """
        The first route C{host}:C{port} matches, or L{None} (denied).
        """
        for route in self.routes:
            if route.matches(host, port):
                return route
        return None

    def endpointFor(
        self, reactor: Any, host: str, port: int, *, resolver: IHostnameResolver | None = None
    ) -> IStreamClientEndpoint:
        """
        The endpoint that connects to C{host}:C{port} as the table says: a
        L{HostnameEndpoint} for C{direct}, a L{FailoverEndpoint} for
        C{via}, and for a denied destination one whose C{connect} fails
        with L{RouteDenied}.

        @param resolver: resolves names for C{socks5://} and C{socks4://}
            proxies (the reactor's by default); C{direct} routes use the
            reactor's.
        """
        route = self.routeFor(host, port)
        destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if route is None or route.action == "deny":
            return _DeniedEndpoint(RouteDenied(destination, route, self.path))
        if route.action == "direct":
            return HostnameEndpoint(reactor, host.strip("[]"), port, timeout=route.timeout)
        if self._health is None:
            self._health = ProxyHealth(reactor)
        return FailoverEndpoint(
            reactor, route.proxies, host, port, health=self._health, timeout=route.timeout, resolver=resolver
        )


def singleProxy(url: ProxyURL, timeout: float = 30.0) -> RoutingTable:
    """
    The table of C{socksgate connect --proxy URL}: every destination via
    that proxy.
    """
    return RoutingTable((Route(1, "via", proxies=(url,), timeout=timeout),), path="--proxy")


def parseRoutes(text: str, path: str = "<routes>") -> RoutingTable:
    """
    Read a routing table from TOML text: C{[[route]]} tables, nothing else.

    @param path: the file, for messages and as the directory a relative
        C{password-file} is found in.
    @raise ConfigError: the text is not TOML, or a table or value is wrong.
    """
    document = loadTOML(path, text)
    lines = LineIndex(text)
    for name in document:
        if name != "route":
            raise ConfigError(
                path, "unknown table or key (a routing table has [[route]] tables)", name, lines.header(name)
            )
    tables = document.get("route", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ConfigError(
            path, "must be written [[route]], one table for each", "route", lines.header("route")
        )
    return RoutingTable(
        tuple(
            _parseRoute(TableChecker(path, lines, "route", table, number), number + 1)
            for number, table in enumerate(tables)
        ),
        path,
    )


def _parseRoute(checker: TableChecker, index: int) -> Route:
    checker.checkKeys(_ROUTE_KEYS)
    if "action" not in checker.values:
        raise checker.error(None, 'has no action: give action = "deny", "direct" or "via"')
    action = checker.get(
        "action",
        str,
        None,
        lambda value: None if value in ACTIONS else f"{value!r} is not one of {', '.join(ACTIONS)}",
    )
    proxies: tuple[ProxyURL, ...] = ()
    if action == "via":
        if "proxies" not in checker.values:
            raise checker.error(None, 'action = "via" needs proxies = ["socks5h://host:port", ...]')
        proxies = _proxies(checker)
    else:
        for key in ("proxies", "username", "password", "password-file"):
            if key in checker.values:
                raise checker.error(key, f'is only for action = "via", not {action!r}')
    return Route(
        index=index,
        action=action,
        line=checker.line,
        destinations=_destinations(checker),
        ports=_optional(checker, "ports", _portRange),
        proxies=proxies,
        timeout=checker.get("timeout", float, 30.0, positive),
    )


def _proxies(checker: TableChecker) -> tuple[ProxyURL, ...]:
    urls = _optional(
        checker, "proxies", lambda item: parseProxyURL(item) if isinstance(item, str) else _notText(item)
    )
    assert urls is not None
    username = checker.get("username", str, None, lambda value: None if value else "must not be empty")
    password = checker.get("password", str, None, lambda value: None)
    if "password-file" in checker.values:
        if password is not None:
            raise checker.error("password-file", "give password or password-file, not both")
        password = _readPassword(checker)
    if password is not None and username is None:
        raise checker.error("password", "needs a username")
    try:
        return tuple(url.withCredentials(username, password) for url in urls)
    except ValueError as problem:
        raise checker.error(
            "password-file" if "password-file" in checker.values else "password", str(problem)
        ) from None


def _notText(item: Any) -> ProxyURL:
    raise ValueError(f"{item!r} is not a proxy URL")


def _readPassword(checker: TableChecker) -> str:
    """
    The first line of the password file, relative to the routing file's
    directory.
    """
    name = checker.get("password-file", str, "", lambda value: None if value else "must not be empty")
    where = os.path.join(os.path.dirname(checker.path), os.path.expanduser(name))
    try:
        with open(where, encoding="utf-8") as stream:
            return stream.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "not UTF-8"
        raise checker.error("password-file", f"{where} cannot be read: {problem}") from None


def loadRoutes(path: str) -> RoutingTable:
    """
    Read the routing table file at C{path} (synchronously: before the
    reactor runs, or in a thread).

    @raise ConfigError: the file cannot be read or is wrong.
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
    return parseRoutes(text, path)
