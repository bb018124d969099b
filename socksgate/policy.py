"""
Access requests, decisions, and the default policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Union

from zope.interface import implementer

from .interfaces import IAccessPolicy

#: An IP address of either family.
IPAddress = Union[IPv4Address, IPv6Address]

PERMIT = "permit"
DENY = "deny"


@dataclass(frozen=True)
class AccessRequest:
    """
    What a policy decides about.

    @ivar client: the client's IP address, or L{None} when it came through
        a transport without one (a UNIX socket).
    @ivar clientPort: the client's port (0 without one).
    @ivar listener: the description of the endpoint the request came in on,
        as given to C{--listen}.
    @ivar version: C{"4"}, C{"4a"} or C{"5"}.
    @ivar command: C{"connect"}, C{"bind"} or C{"udp"}.
    @ivar destinationName: the host name the client asked for, in the
        form it is resolved in (L{socksgate.hostnames.normalHostname}),
        or L{None} when it gave an address.
    @ivar destinationAddress: the address the gateway would use, or L{None}
        while a name is not resolved yet.
    @ivar port: the destination port.
    @ivar user: the authenticated or claimed user name, or L{None}.
    @ivar auth: how the user was established: C{"none"}, C{"userpass"},
        C{"gssapi"} or C{"ident"}.
    """

    client: IPAddress | None
    clientPort: int
    listener: str
    version: str
    command: str
    destinationName: str | None
    destinationAddress: IPAddress | None
    port: int
    user: str | None = None
    auth: str = "none"


@dataclass(frozen=True)
class Decision:
    """
    A policy's answer.

    @ivar action: L{PERMIT} or L{DENY}.
    @ivar rule: the number of the rule that decided (1 for the first), or
        L{None} when no rule did.
    @ivar message: the reason, for the session log.
    @ivar route: C{"direct"}, or the name of the upstream to go through.
    """

    action: str
    rule: int | None = None
    message: str = ""
    route: str = "direct"

    @property
    def permitted(self) -> bool:
        """
        Whether the request may proceed.
        """
        return self.action == PERMIT


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


_IPV4_LOOPBACK = IPv4Address("127.0.0.1")
_IPV6_LOOPBACK = IPv6Address("::1")


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
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def withoutPassword(version: str) -> Decision:
    """
    The denial of a SOCKS4 or SOCKS4a request when passwords are required
    and no rule for its version permits it.
    """
    return Decision(DENY, message=f"SOCKS{version} carries no password, and this gateway requires passwords")


@implementer(IAccessPolicy)
class LoopbackOnlyPolicy:
    """
    The policy with no configuration: clients on loopback (or a UNIX
    socket) may reach any destination; every other client is denied.

    @ivar passwordsRequired: whether SOCKS5 requires a password (no C{"none"}
        among the methods), in which case SOCKS4 and SOCKS4a, which carry
        none, are denied even to loopback clients.
    """

    def __init__(self, passwordsRequired: bool = False) -> None:
        self.passwordsRequired = passwordsRequired

    def decide(self, request: AccessRequest) -> Decision:
        """
        Permit loopback clients, deny the rest (and SOCKS4 and 4a when
        passwords are required).
        """
        if self.passwordsRequired and request.version != "5":
            return withoutPassword(request.version)
        if isLoopback(request.client):
            return Decision(PERMIT, message="loopback client")
        return Decision(DENY, message="only loopback clients are permitted by default")
