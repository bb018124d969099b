"""
Running totals over the session records of one gateway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..vocabulary import Command, Outcome, Version

__all__ = ["COMMANDS", "UNKNOWN", "VERSIONS", "SessionCounts", "count", "label"]

#: The label value of a command or version a record does not have (a
#: request that ended before it was read).
UNKNOWN = "unknown"

#: Commands and versions in the order the page lists them; SOCKS4 has no UDP.
COMMANDS = tuple(Command)
VERSIONS = tuple(Version)


def label(value: object) -> str:
    """
    C{value} as a label: a non-empty string as it is, anything else
    L{UNKNOWN}.
    """
    return value if isinstance(value, str) and value else UNKNOWN


def count(value: object) -> int:
    """
    C{value} as a count: a positive integer as it is, anything else 0.
    """
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class SessionCounts:
    """
    Running totals over finished session records.

    @ivar sessions: records by C{(command, version, outcome)}.
    @ivar bytesOut: bytes the clients of finished sessions sent towards
        their destinations.
    @ivar bytesIn: bytes that came back to them.
    @ivar denials: records whose outcome is C{denied}.
    @ivar ruleHits: records by the rule that decided them: by its
        identity (L{ruleIdentity}) when the counts were told the rules, so a
        reload that moves a rule moves its count with it; else by number.
    @ivar rateLimited: records refused by a rule's C{sessions-per-second},
        by C{(rule, limit)}: the rule as in C{ruleHits}, the limit as the
        record's C{limit} names it.
    """

    def __init__(self) -> None:
        self.sessions: Counter[tuple[str, str, str]] = Counter()
        self.bytesOut = 0
        self.bytesIn = 0
        self.denials = 0
        self.ruleHits: Counter[Any] = Counter()
        self.rateLimited: Counter[tuple[Any, str]] = Counter()

    def add(self, record: Mapping[str, Any], identities: Sequence[Any] = ()) -> None:
        """
        Count one session record (a dict with the fields of the session
        log).

        @param identities: the L{ruleIdentity} of each rule in force, in
            order (the record's C{rule} is a number among them); when given,
            the hit is counted for the rule's identity rather than its
            number.
        """
        outcome = label(record.get("outcome"))
        self.sessions[label(record.get("command")), label(record.get("version")), outcome] += 1
        self.bytesOut += count(record.get("bytes_out"))
        self.bytesIn += count(record.get("bytes_in"))
        if outcome == Outcome.DENIED:
            self.denials += 1
        rule = record.get("rule")
        if isinstance(rule, int) and not isinstance(rule, bool):
            key = identities[rule - 1] if 0 < rule <= len(identities) else rule
            self.ruleHits[key] += 1
            limit = record.get("limit")
            if isinstance(limit, str) and limit:
                self.rateLimited[key, limit] += 1

    @property
    def finished(self) -> int:
        """
        How many records have been counted.
        """
        return sum(self.sessions.values())


def ruleIdentity(rule: Any) -> Any:
    """
    What a rule is, whatever its place in the file: the rule with its
    number and line left out.  A reload that inserts a rule before it
    keeps its hits; a rule whose content changed (its message, say) starts
    at zero.
    """
    return replace(rule, index=0, line=None)
