"""
Access requests, decisions, and the default policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from zope.interface import implementer

from .addresses import IPAddress, isLoopback, reachedAddress, unmapped
from .interfaces import IAccessPolicy
from .vocabulary import Version

__all__ = [
    "DENY",
    "PERMIT",
    "AccessRequest",
    "Decision",
    "IPAddress",
    "LoopbackOnlyPolicy",
    "isLoopback",
    "reachedAddress",
    "unmapped",
    "withoutPassword",
]

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
        if self.passwordsRequired and request.version != Version.SOCKS5:
            return withoutPassword(request.version)
        if isLoopback(request.client):
            return Decision(PERMIT, message="loopback client")
        return Decision(DENY, message="only loopback clients are permitted by default")
