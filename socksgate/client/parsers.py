"""
The string forms of the SOCKS client endpoints, for
L{twisted.internet.endpoints.clientFromString}::

    socks5:host=example.com:port=443:proxy=tcp\\:127.0.0.1\\:1080:username=alice:password=secret
    socks4a:host=example.com:port=80:proxy=tcp\\:127.0.0.1\\:1080:userId=alice
    socks4:host=192.0.2.1:port=80:proxy=tcp\\:127.0.0.1\\:1080

C{proxy} is a client endpoint description of its own, its colons escaped
(C{tls:}, or another C{socks5:}, twice escaped).  Every value is given by
its key; an unknown key, a missing one or a positional value is a
L{ValueError} that names it.  The plugins are in
C{twisted/plugins/socksgate_endpoints.py}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamClientEndpointStringParserWithReactor
from twisted.plugin import IPlugin
from zope.interface import implementer

from .endpoints import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint

__all__ = ["SOCKS4ClientParser", "SOCKS4aClientParser", "SOCKS5ClientParser"]

_REQUIRED = ("host", "port", "proxy")


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _SOCKSClientParser:
    """
    Parses one prefix: checks the keys, builds the nested proxy endpoint.

    @cvar prefix: the description's prefix.
    @cvar optional: the keys besides C{host}, C{port} and C{proxy}.
    """

    prefix = ""
    optional: tuple[str, ...] = ()

    def parseStreamClient(self, reactor: Any, *args: str, **kwargs: str) -> IStreamClientEndpoint:
        """
        Build the endpoint of a description.

        @raise ValueError: a positional value, an unknown or missing key, or
            a port that is not a number from 0 to 65535.
        """
        known = (*_REQUIRED, *self.optional)
        if args:
            raise ValueError(
                f"{self.prefix}: give every value as key=value ({', '.join(known)}), not {args[0]!r}"
            )
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ValueError(
                f"{self.prefix}: unknown key {', '.join(unknown)} (known keys: {', '.join(known)})"
            )
        missing = [key for key in _REQUIRED if key not in kwargs]
        if missing:
            raise ValueError(f"{self.prefix}: missing key {', '.join(missing)}")
        try:
            port = int(kwargs["port"])
        except ValueError:
            raise ValueError(f"{self.prefix}: port {kwargs['port']!r} is not a number") from None
        proxy = clientFromString(reactor, kwargs["proxy"])
        options = {key: kwargs[key] for key in self.optional if key in kwargs}
        return self._build(reactor, proxy, kwargs["host"], port, options)

    def _build(
        self, reactor: Any, proxy: IStreamClientEndpoint, host: str, port: int, options: dict[str, str]
    ) -> IStreamClientEndpoint:
        raise NotImplementedError()


class SOCKS5ClientParser(_SOCKSClientParser):
    """
    C{socks5:host=H:port=P:proxy=DESCRIPTION[:username=U:password=W]}.
    """

    prefix = "socks5"
    optional = ("username", "password")

    def _build(
        self, reactor: Any, proxy: IStreamClientEndpoint, host: str, port: int, options: dict[str, str]
    ) -> IStreamClientEndpoint:
        return SOCKS5ClientEndpoint(
            proxy, host, port, username=options.get("username"), password=options.get("password")
        )


class SOCKS4aClientParser(_SOCKSClientParser):
    """
    C{socks4a:host=H:port=P:proxy=DESCRIPTION[:userId=U]}.
    """

    prefix = "socks4a"
    optional = ("userId",)

    def _build(
        self, reactor: Any, proxy: IStreamClientEndpoint, host: str, port: int, options: dict[str, str]
    ) -> IStreamClientEndpoint:
        return SOCKS4aClientEndpoint(proxy, host, port, userid=options.get("userId", ""))


class SOCKS4ClientParser(_SOCKSClientParser):
    """
    C{socks4:host=H:port=P:proxy=DESCRIPTION[:userId=U]}; a name is
    resolved through the reactor's C{nameResolver}.
    """

    prefix = "socks4"
    optional = ("userId",)

    def _build(
        self, reactor: Any, proxy: IStreamClientEndpoint, host: str, port: int, options: dict[str, str]
    ) -> IStreamClientEndpoint:
        return SOCKS4ClientEndpoint(proxy, host, port, userid=options.get("userId", ""), reactor=reactor)
