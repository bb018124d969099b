"""
The words the gateway's parts share: the outcomes of the session log, the
SOCKS versions and the commands as the policy, the configuration and the
log spell them, and the refusal every command raises.

The enums are L{StrEnum}s whose values are the strings of the session log
and the configuration file, so a record or a config written with them reads
exactly as one written with the strings (C{Outcome.DENIED == "denied"}).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .policy import Decision
    from .wire import ReplyCode

__all__ = ["IDLE_TIMEOUT", "Command", "Outcome", "RequestRefused", "Version", "endedAs"]


class Outcome(StrEnum):
    """
    How a request ended, as the session log's C{outcome} says it.
    """

    #: A granted session that ended.
    CLOSED = "closed"
    #: Refused by the policy, a limit or a disabled version or command.
    DENIED = "denied"
    #: A permitted request that could not be carried out (connect or
    #: resolve error).
    FAILED = "failed"
    #: A malformed request or a protocol error.
    ERROR = "error"
    #: A handshake, connection, BIND or idle time-out.
    TIMEOUT = "timeout"


class Version(StrEnum):
    """
    A SOCKS version, as rules and records name it.
    """

    SOCKS4 = "4"
    SOCKS4A = "4a"
    SOCKS5 = "5"


class Command(StrEnum):
    """
    A SOCKS command, as rules and records name it.
    """

    CONNECT = "connect"
    BIND = "bind"
    UDP = "udp"


class RequestRefused(Exception):
    """
    A request ends before a session starts.

    @ivar reply: the SOCKS5 reply code that reports it.
    @ivar outcome: the session log's outcome (C{denied}, C{failed},
        C{timeout} or C{error}).
    @ivar reason: what happened, for the log.
    @ivar decision: the policy decision involved, if any.
    @ivar socks4: the SOCKS4 CD that reports it, when it is not simply 91
        (92 and 93 for ident).
    @ivar upstream: the C{[[upstream]]} the request was routed through, if
        any (the session record's C{upstream}).
    @ivar server: that upstream's server that refused or failed it, if any.
    """

    upstream: str | None = None
    server: str | None = None

    def __init__(
        self,
        reply: ReplyCode,
        outcome: str,
        reason: str,
        decision: Decision | None = None,
        socks4: int | None = None,
    ):
        super().__init__(reason)
        self.reply, self.outcome, self.reason, self.decision = reply, Outcome(outcome), reason, decision
        self.socks4 = socks4


#: The reason a relay gives C{onEnd} when the idle timeout ended it.
IDLE_TIMEOUT = "idle timeout"


def endedAs(why: str, idleTimeout: float) -> tuple[Outcome, str]:
    """
    The session log's outcome and message for a relayed session that ended
    for C{why}: C{timeout}, saying so, when the idle timeout ended it;
    C{closed} (and no message of its own) otherwise.
    """
    if why == IDLE_TIMEOUT:
        return Outcome.TIMEOUT, f"no byte either way for {idleTimeout:g} seconds (idle-timeout)"
    return Outcome.CLOSED, ""
