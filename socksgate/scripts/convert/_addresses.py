"""
Addresses and ports, as both source formats write them, turned into
L{_Match}es: dotted quads, address and mask pairs, port numbers and service
names, and unions of port ranges.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv4Network

from ._output import _exact, _Invalid, _Match, _nothing

__all__: list[str] = []


class _UnknownService(Exception):
    """
    A port is given by a service name this host does not know.
    """


_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _ipv4(text: str) -> IPv4Address | None:
    """
    C{text} as an address if it is a dotted quad, else L{None}.
    """
    if not _DOTTED_QUAD.fullmatch(text):
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _networkMatch(key: str, address: IPv4Address, mask: IPv4Address, shown: str) -> _Match:
    """
    The addresses whose bits under C{mask}'s one bits equal C{address}'s.

    A contiguous mask is a CIDR; any other is reported, widened to the CIDR
    of the mask's leading one bits.
    """
    bits = int(mask)
    prefix = 0
    while prefix < 32 and bits & (1 << (31 - prefix)):
        prefix += 1
    leading = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    network = IPv4Network((int(address) & leading, prefix))
    wide = {} if prefix == 0 else {key: [_networkText(network)]}
    if bits == leading:
        return _Match(wide, wide)
    return _Match(wide, None, f"mask {mask} is not contiguous, so {shown} is no CIDR")


def _networkText(network: IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)


def _portNumber(text: str) -> int:
    """
    A port given by number or by service name.

    @raise _Invalid: a number out of range.
    @raise _UnknownService: a name this host does not know.
    """
    if text.isdigit():
        if int(text) > 65535:
            raise _Invalid(f"port {text} is out of range")
        return int(text)
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError):
        raise _UnknownService(text) from None


def _portMatch(ranges: list[tuple[int, int]], shown: str) -> _Match:
    """
    The C{ports} key for the union of inclusive C{ranges}.
    """
    clipped = sorted((max(low, 1), min(high, 65535)) for low, high in ranges)
    merged: list[tuple[int, int]] = []
    for low, high in clipped:
        if low > high:
            continue
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    if not merged:
        return _nothing(f"{shown} matches no port")
    if merged == [(1, 65535)]:
        return _exact()
    return _exact(ports=[str(low) if low == high else f"{low}-{high}" for low, high in merged])


def _unknownService(name: str) -> _Match:
    return _Match({}, None, f"service {name!r} is unknown on this host")
