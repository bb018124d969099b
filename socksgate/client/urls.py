"""
Proxy URLs, as curl and the classic C{socks.conf} server lists write them,
and the client endpoint each one gives::

    socks5h://alice:s3cret@proxy.example:1080   SOCKS5, names sent to the proxy unresolved
    socks5://[::1]:1080                        SOCKS5, names resolved here, the address sent
    socks4a://bob@127.0.0.1:1080               SOCKS4a (USERID "bob"), names sent unresolved
    socks4://127.0.0.1                         SOCKS4, names resolved here (IPv4), port 1080

L{parseProxyURL} reads one into a L{ProxyURL}; L{endpointFor} makes the
L{IStreamClientEndpoint} that reaches a destination through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from twisted.internet import address as twistedAddress
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IProtocol,
    IProtocolFactory,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from .endpoints import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint, destinationHost

__all__ = ["DEFAULT_PORT", "SCHEMES", "ProxyURL", "endpointFor", "parseProxyURL"]

#: The schemes a proxy URL may have.
SCHEMES = ("socks5", "socks5h", "socks4", "socks4a")

#: The port of a proxy URL that gives none.
DEFAULT_PORT = 1080


@dataclass(frozen=True)
class ProxyURL:
    """
    One SOCKS proxy, as a URL names it.

    @ivar scheme: C{"socks5h"} and C{"socks4a"} send a destination's name
        to the proxy unresolved; C{"socks5"} and C{"socks4"} resolve it on
        the client's side and send the address (SOCKS4: the first IPv4
        one).
    @ivar host: the proxy's name or address (an IPv6 one without brackets).
    @ivar port: the proxy's port.
    @ivar username: the SOCKS5 (RFC 1929) user name, or the SOCKS4 USERID;
        L{None} when the URL has none.
    @ivar password: the SOCKS5 password; never in C{repr}.
    """

    scheme: str
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """
        The URL, its password left out (C{socks5h://alice@proxy:1080}).
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = "" if self.username is None else f"{quote(self.username, safe='')}@"
        return f"{self.scheme}://{user}{host}:{self.port}"

    def withCredentials(self, username: str | None, password: str | None) -> ProxyURL:
        """
        This proxy with C{username} and C{password} where the URL itself
        gives no user name.

        @raise ValueError: a password for a SOCKS4 proxy.
        """
        if self.username is not None or username is None:
            return self
        return _checked(replace(self, username=username, password=password))


def _checked(url: ProxyURL) -> ProxyURL:
    if url.password is not None and url.scheme in ("socks4", "socks4a"):
        raise ValueError(f"{url}: SOCKS4 has no passwords (give a USERID alone, as the user name)")
    if url.password is not None and url.username is None:
        raise ValueError(f"{url}: a password needs a user name")
    for text in (url.username, url.password):
        if text is not None and len(text.encode("utf-8")) > 255:
            raise ValueError(f"{url}: a user name or password is longer than 255 bytes")
    return url


def _hidden(text: str) -> str:
    """
    A URL as an error message may show it: a password as C{***}.
    """
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", text)


def parseProxyURL(text: str) -> ProxyURL:
    """
    Read a proxy URL: C{SCHEME://[USER[:PASSWORD]@]HOST[:PORT]}, the
    scheme one of L{SCHEMES}, an IPv6 host in brackets, the port 1080 when
    left out, the user name and password percent-decoded.  A trailing
    C{/} is allowed; a path, query or fragment is not.

    @raise ValueError: the text is not such a URL; the message says why.
    """
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as problem:
        raise ValueError(f"{_hidden(text)!r} is not a proxy URL ({problem})") from None
    text = _hidden(text)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{text!r}: the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: a proxy URL has no path, query or fragment")
    if not parts.hostname:
        raise ValueError(f"{text!r}: the URL names no proxy host")
    host = parts.hostname
    if "[" in parts.netloc and ":" not in host:
        raise ValueError(f"{text!r}: only an IPv6 address goes in brackets")
    if ":" in host:
        ip_address(host)
    if port == 0:
        raise ValueError(f"{text!r}: port 0 is not a proxy's port")
    username = unquote(parts.username) if parts.username else None
    password = None if parts.password is None else unquote(parts.password)
    return _checked(ProxyURL(parts.scheme, host, DEFAULT_PORT if port is None else port, username, password))


def endpointFor(
    reactor: Any,
    proxyURL: ProxyURL,
    host: str,
    port: int,
    *,
    proxyEndpoint: IStreamClientEndpoint | None = None,
    resolver: IHostnameResolver | None = None,
    timeout: float = 30,
) -> IStreamClientEndpoint:
    """
    The endpoint that connects to C{host}:C{port} through the proxy.

    @param proxyEndpoint: reaches the proxy; by default a
        L{HostnameEndpoint} to the URL's host and port (so
        C{wrapClientTLS(...)} around one gives TLS to the proxy).
    @param resolver: resolves a destination name for C{socks5://} and
        C{socks4://}; the reactor's C{nameResolver} by default.  The other
        two schemes never resolve one.
    @param timeout: seconds the default proxy endpoint gives the TCP
        connection.
    @raise ValueError: the destination cannot be sent with this scheme (an
        IPv6 one through SOCKS4, a port out of range, a name too long).
    """
    if proxyEndpoint is None:
        proxyEndpoint = HostnameEndpoint(
            reactor, proxyURL.host.encode("ascii"), proxyURL.port, timeout=timeout
        )
    username, password = proxyURL.username, proxyURL.password
    if proxyURL.scheme == "socks5h":
        return SOCKS5ClientEndpoint(proxyEndpoint, host, port, username=username, password=password)
    if proxyURL.scheme == "socks4a":
        return SOCKS4aClientEndpoint(proxyEndpoint, host, port, userid=username or "")
    if proxyURL.scheme == "socks4":
        return SOCKS4ClientEndpoint(
            proxyEndpoint, host, port, userid=username or "", reactor=reactor, resolver=resolver
        )
    destination = destinationHost(host)
    if not isinstance(destination, str):
        return SOCKS5ClientEndpoint(proxyEndpoint, host, port, username=username, password=password)
    # Made only to check the port and the credentials now, not at connect.
    SOCKS5ClientEndpoint(proxyEndpoint, host, port, username=username, password=password)
    return _ResolvingSOCKS5Endpoint(
        resolver if resolver is not None else reactor.nameResolver,
        proxyEndpoint,
        destination,
        port,
        username,
        password,
    )


@implementer(IResolutionReceiver)
class _FirstAddress:
    """
    Collects a resolution; C{done} fires with its first address's text.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._first: str | None = None
        self.done: Deferred[str] = Deferred()

    def resolutionBegan(self, resolutionInProgress: Any) -> None:
        """
        Nothing to do.
        """

    def addressResolved(self, address: IAddress) -> None:
        """
        Keep the first address.
        """
        if self._first is None and isinstance(
            address, (twistedAddress.IPv4Address, twistedAddress.IPv6Address)
        ):
            self._first = address.host

    def resolutionComplete(self) -> None:
        """
        Fire C{done}, unless the wait was cancelled.
        """
        if self.done.called:
            return
        if self._first is None:
            self.done.errback(DNSLookupError(f"{self._name} does not resolve"))
        else:
            self.done.callback(self._first)


@implementer(IStreamClientEndpoint)
class _ResolvingSOCKS5Endpoint:
    """
    C{socks5://} to a name: resolve it here, then CONNECT to its first
    address.
    """

    def __init__(
        self,
        resolver: IHostnameResolver,
        proxyEndpoint: IStreamClientEndpoint,
        name: str,
        port: int,
        username: str | None,
        password: str | None,
    ) -> None:
        self._resolver = resolver
        self._proxyEndpoint = proxyEndpoint
        self._name, self._port = name, port
        self._username, self._password = username, password

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Resolve the name, then connect through the proxy to its first
        address; cancellable while resolving too.
        """
        receiver = _FirstAddress(self._name)
        current: list[Deferred[Any]] = [receiver.done]

        def cancel(outer: Deferred[IProtocol]) -> None:
            current[0].cancel()

        outer: Deferred[IProtocol] = Deferred(cancel)

        def resolved(address: str) -> Deferred[IProtocol]:
            endpoint = SOCKS5ClientEndpoint(
                self._proxyEndpoint, address, self._port, username=self._username, password=self._password
            )
            current[0] = endpoint.connect(protocolFactory)
            return current[0]

        def finished(result: IProtocol | Failure) -> None:
            if isinstance(result, Failure) and result.check(CancelledError) and outer.called:
                return
            outer.callback(result) if not isinstance(result, Failure) else outer.errback(result)

        receiver.done.addCallback(resolved).addBoth(finished)
        self._resolver.resolveHostName(receiver, self._name, self._port)
        return outer
