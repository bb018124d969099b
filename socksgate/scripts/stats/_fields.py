"""
What the fields of a session record mean to the summary: client
addresses without their port, times, outcomes and reply codes, and the
small capped tables of commands, versions and methods.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...vocabulary import Outcome
from ._limits import CATEGORY_CAPACITY, MAX_KEY

__all__ = ["OUTCOMES", "REPLY_MEANINGS"]

#: The outcomes of the session log; a record with another is counted as
#: C{other}.
OUTCOMES = tuple(Outcome)


#: What reply codes mean: SOCKS5 REP (and method selection 0xFF), SOCKS4 CD.
REPLY_MEANINGS = {
    0: "succeeded",
    1: "general failure",
    2: "not allowed by the rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "timed out",
    7: "command not supported",
    8: "address type not supported",
    90: "granted (SOCKS4)",
    91: "rejected or failed (SOCKS4)",
    92: "no identd (SOCKS4)",
    93: "identd user differs (SOCKS4)",
    255: "no acceptable authentication method",
}


def _hostOf(client: str) -> str:
    """
    The address of a C{host:port} or C{[v6]:port} client, without the port.
    """
    if client.startswith("["):
        end = client.find("]")
        return client[1:end] if end > 0 else client
    if client.count(":") == 1:
        return client.partition(":")[0]
    return client


def _timestamp(text: str) -> float | None:
    """
    The POSIX time of an ISO 8601 time (UTC when it has no offset), or
    C{None} when it is not one.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _bump(counts: dict[str, int], key: str | None, cap: int = CATEGORY_CAPACITY) -> None:
    """
    Count C{key} (C{"(none)"} for C{None}) in a small table of at most
    C{cap} keys, the rest going to C{"(other)"}.
    """
    name = "(none)" if key is None else key[:MAX_KEY]
    if name in counts or len(counts) < cap:
        counts[name] = counts.get(name, 0) + 1
    else:
        counts["(other)"] = counts.get("(other)", 0) + 1


def _sortedCounts(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _meaning(reply: int | None) -> str:
    if reply is None:
        return "no reply sent"
    return REPLY_MEANINGS.get(reply, "unknown reply code")
