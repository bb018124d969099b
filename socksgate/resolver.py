"""
A name resolver that answers from a table, without any lookup: tests (and
embedders) use it to decide what names resolve to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet.address import IPv4Address as TwistedIPv4Address
from twisted.internet.address import IPv6Address as TwistedIPv6Address
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from zope.interface import implementer

__all__ = [
    "Addresses",
    "StaticResolver",
]

Addresses = Sequence["str | IPv4Address | IPv6Address"]


@implementer(IHostnameResolver)
class StaticResolver:
    """
    Resolves the names of a table, and every other name to C{default}.

    @ivar asked: the names it was asked for, in order.
    """

    def __init__(self, names: Mapping[str, Addresses] | None = None, default: Addresses = ()) -> None:
        self._names = {
            name: [ip_address(address) for address in addresses] for name, addresses in (names or {}).items()
        }
        self._default = [ip_address(address) for address in default]
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IResolutionReceiver:
        """
        Deliver the addresses of C{hostName} at once.
        """
        self.asked.append(hostName)
        resolutionReceiver.resolutionBegan(None)
        for address in self._names.get(hostName, self._default):
            kind = TwistedIPv6Address if address.version == 6 else TwistedIPv4Address
            resolutionReceiver.addressResolved(kind("TCP", str(address), portNumber))
        resolutionReceiver.resolutionComplete()
        return resolutionReceiver
