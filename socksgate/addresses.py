"""
IP addresses as the gateway handles them, written once: the address a
transport address or a text names (IPv4-mapped addresses unmapped, an IPv6
scope dropped), the address a destination really reaches, and the
C{host:port} text of the session log.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Union

__all__ = [
    "LOOPBACK_HOSTS",
    "UNSPECIFIED_HOSTS",
    "IPAddress",
    "addressText",
    "formatHostPort",
    "hostAddress",
    "isLoopback",
    "parseAddress",
    "reachedAddress",
    "unmapped",
    "withoutScope",
]

#: An IP address of either family.
IPAddress = Union[IPv4Address, IPv6Address]

#: The loopback and the unspecified address of each IP version, as text.
LOOPBACK_HOSTS = {4: "127.0.0.1", 6: "::1"}
UNSPECIFIED_HOSTS = {4: "0.0.0.0", 6: "::"}

_IPV4_LOOPBACK = IPv4Address("127.0.0.1")
_IPV6_LOOPBACK = IPv6Address("::1")


def unmapped(address: IPAddress) -> IPAddress:
    """
    The IPv4 address an IPv4-mapped IPv6 address (C{::ffff:a.b.c.d}) stands
    for, or C{address} itself.  Every address is unmapped before the policy
    sees it: a connection to C{::ffff:127.0.0.2} reaches 127.0.0.2, so it
    must be decided as 127.0.0.2.
    """
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reachedAddress(address: IPAddress) -> IPAddress:
    """
    The address a connection or datagram sent to C{address} really
    reaches, as the policy must decide it: IPv4-mapped addresses
    L{unmapped}, and the unspecified addresses as the local host they
    reach on Linux (C{0.0.0.0} and C{::ffff:0.0.0.0} as 127.0.0.1, C{::}
    as ::1).  The gateway connects or sends to the address this returns,
    so what is decided is what is reached.
    """
    address = unmapped(address)
    if address.is_unspecified:
        return _IPV4_LOOPBACK if address.version == 4 else _IPV6_LOOPBACK
    return address


def isLoopback(address: IPAddress | None) -> bool:
    """
    Whether C{address} is a loopback address (127.0.0.0/8, ::1, or an
    IPv4-mapped loopback address), or no IP address at all (a UNIX socket,
    which only local processes can reach).
    """
    if address is None:
        return True
    return unmapped(address).is_loopback


def withoutScope(host: str) -> str:
    """
    C{host} without an IPv6 scope (C{fe80::1%eth0} is C{fe80::1}).
    """
    return host.split("%", 1)[0]


def parseAddress(host: str) -> IPAddress | None:
    """
    The IP address C{host} (a transport's host text) names, unmapped and
    without its scope, or L{None} if it is no IP address.
    """
    try:
        return unmapped(ip_address(withoutScope(host)))
    except ValueError:
        return None


def hostAddress(transportAddress: Any) -> IPAddress | None:
    """
    The IP address of a transport's address (C{getPeer()}, C{getHost()}),
    unmapped, or L{None} when it has none (a UNIX socket).
    """
    host = getattr(transportAddress, "host", None)
    return parseAddress(host) if isinstance(host, str) else None


@lru_cache(maxsize=1024)
def addressText(host: str) -> str:
    """
    C{host} (a datagram's sender) as the text of its address unmapped and
    without a scope, so that one host has one spelling; anything that is no
    IP address is returned as it is.
    """
    if ":" not in host:
        return host
    address = parseAddress(host)
    return host if address is None else str(address)


def formatHostPort(host: object, port: int) -> str:
    """
    C{host:port}, with an IPv6 address in brackets.  C{host} is turned
    into text once (an address's text is computed anew each time).
    """
    text = str(host)
    return f"[{text}]:{port}" if isinstance(host, IPv6Address) or ":" in text else f"{text}:{port}"
