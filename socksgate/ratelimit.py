"""
C{sessions-per-second}: how many new sessions a rule permits each client
address and each user, with token buckets.

A rule with C{sessions-per-second = N} gives every client address, and
every user (authenticated, or claimed with a SOCKS4 USERID), a bucket of
N tokens that refills at N tokens a second.  A session the rule permits
takes one token from its client's bucket and one from its user's; when
either is empty the request is refused (SOCKS5 0x02, SOCKS4 CD 91) and
takes nothing.  Buckets belong to the rule's identity (every field but its
number and line): a reload that moves a rule keeps its buckets, one that
changes it starts it with full ones.

A full bucket carries no state, so it is forgotten: a bucket untouched for
a second (N tokens at N a second) is full and dropped, and the table holds
only the clients and users seen in about the last second.  It holds at
most L{MAX_BUCKETS}; a session that would need a new bucket beyond that is
refused (fail closed) until buckets fill up and are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.interfaces import IReactorTime

from .interfaces import IClientConnection
from .policy import DENY, AccessRequest, Decision, IPAddress
from .rules import Rule
from .vocabulary import Outcome, RequestRefused
from .wire import ReplyCode

__all__ = [
    "CLIENT",
    "LIMITS",
    "MAX_BUCKETS",
    "TABLE",
    "USER",
    "RateExceeded",
    "SessionRates",
    "TokenBuckets",
    "checkSessionRate",
]

#: The most buckets a gateway holds (clients and users of every limited
#: rule seen within about a second).
MAX_BUCKETS = 65536

#: The kinds of limit a session can exceed, as the session log's C{limit}
#: and the metrics' C{limit} label name them: a client address's bucket, a
#: user's, or the table of buckets being full.
CLIENT, USER, TABLE = "client", "user", "table"
LIMITS = (CLIENT, USER, TABLE)

#: What a refill may fall short of a whole token by, from rounding.
_EPSILON = 1e-9

#: L{TokenBuckets.take}'s answer when a new bucket would exceed its size.
_FULL = -2


class TokenBuckets:
    """
    Token buckets by key, each of C{rate} tokens (its burst) refilled at
    C{rate} a second, kept only while they are not full.

    The table is ordered by last use, so the buckets that were full
    longest are found first and dropped (a bucket is full at most a second
    after its last use).

    @ivar maxBuckets: the most buckets held at once.
    """

    def __init__(self, maxBuckets: int = MAX_BUCKETS) -> None:
        self.maxBuckets = maxBuckets
        # key -> (tokens, when they were counted, when the bucket is full)
        self._buckets: OrderedDict[Hashable, tuple[float, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def tokens(self, key: Hashable, now: float, rate: int) -> float:
        """
        The tokens in the bucket of C{key} at C{now} (a bucket not held is
        full).
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(rate)
        tokens, then, _ = bucket
        return min(float(rate), tokens + max(0.0, now - then) * rate)

    def take(self, now: float, rate: int, keys: Sequence[Hashable]) -> int:
        """
        Take one token from the bucket of every key in C{keys}, or none.

        @param now: the time, in the reactor's clock.
        @param rate: tokens a second, and the size of each bucket (at
            least 1).
        @return: -1 when every bucket gave a token; else nothing is taken,
            and the answer is the index of the first key whose bucket is
            empty, or -2 when a new bucket would be one more than
            C{maxBuckets}.
        """
        self._dropFull(now)
        levels = [self.tokens(key, now, rate) for key in keys]
        for index, level in enumerate(levels):
            if level + _EPSILON < 1:
                return index
        buckets = self._buckets
        new = sum(1 for key in keys if key not in buckets)
        if new and len(buckets) + new > self.maxBuckets:
            return _FULL
        for key, level in zip(keys, levels, strict=True):
            left = max(0.0, level - 1)
            buckets[key] = (left, now, now + (rate - left) / rate)
            buckets.move_to_end(key)
        return -1

    def _dropFull(self, now: float) -> None:
        """
        Forget the buckets, least recently used first, that are full by now.
        After the clock went back, buckets counted in the future are
        counted from now, as they were then.
        """
        buckets = self._buckets
        if buckets and next(reversed(buckets.values()))[1] > now:
            for key, (tokens, then, fullAt) in list(buckets.items()):
                if then > now:
                    buckets[key] = (tokens, now, fullAt - then + now)
        while buckets:
            key, (_, _, fullAt) = next(iter(buckets.items()))
            if fullAt > now:
                return
            del buckets[key]


@dataclass(frozen=True)
class RateExceeded:
    """
    Why a session was refused by a rule's C{sessions-per-second}.

    @ivar limit: L{CLIENT}, L{USER} or L{TABLE}.
    @ivar message: the session log's C{message}.
    """

    limit: str
    message: str


class SessionRates:
    """
    The C{sessions-per-second} buckets of a gateway, shared by its
    listeners: for each rule's identity, one bucket per client address and
    one per user.

    @ivar buckets: the L{TokenBuckets}.
    @ivar clock: the C{IReactorTime} the buckets are filled by, or L{None}
        for the reactor of the listener a request came in on.
    """

    def __init__(self, clock: IReactorTime | None = None, maxBuckets: int = MAX_BUCKETS) -> None:
        self.clock = clock
        self.buckets = TokenBuckets(maxBuckets)
        self._rulesOf: Any = None
        self._serialOf: dict[Rule, int] = {}
        self._serials: tuple[int, ...] = ()

    def _serial(self, rules: Sequence[Rule], rule: Rule) -> int:
        """
        A small number for the identity of C{rule} (one of C{rules}),
        worked out again only when other rules come (a reload): the same
        for a rule that is unchanged, a new one for a changed rule.
        """
        if rules is not self._rulesOf:
            identities = [replace(each, index=0, line=None) for each in rules]
            known = self._serialOf
            following = max(known.values(), default=0)
            serialOf = {}
            for identity in identities:
                if identity not in serialOf:
                    if identity in known:
                        serialOf[identity] = known[identity]
                    else:
                        following += 1
                        serialOf[identity] = following
            self._serialOf = serialOf
            self._serials = tuple(serialOf[identity] for identity in identities)
            self._rulesOf = rules
        return self._serials[rule.index - 1]

    def admit(
        self,
        rules: Sequence[Rule],
        rule: Rule,
        now: float,
        client: IPAddress | None,
        user: str | None,
    ) -> RateExceeded | None:
        """
        Count a new session that C{rule} permits, from C{client} (L{None}:
        a UNIX socket; all of those share one bucket) for C{user}.

        @param rules: the rules C{rule} is one of, in order.
        @param now: the time, in the reactor's clock.
        @return: L{None} when the session may start (a token was taken
            from each bucket), else why not (nothing was taken).
        """
        rate = rule.sessionsPerSecond
        if rate <= 0:
            return None
        serial = self._serial(rules, rule)
        keys: list[Hashable] = [(serial, CLIENT, client)]
        if user is not None:
            keys.append((serial, USER, user))
        answer = self.buckets.take(now, rate, keys)
        if answer == -1:
            return None
        if answer == _FULL:
            return RateExceeded(
                TABLE,
                f"sessions-per-second {rate}: {self.buckets.maxBuckets} clients and users "
                "are being limited already; refused until some are idle",
            )
        if answer == 0:
            who = "unix" if client is None else str(client)
            return RateExceeded(CLIENT, f"sessions-per-second {rate} exceeded for client {who}")
        return RateExceeded(USER, f"sessions-per-second {rate} exceeded for user {user}")


def checkSessionRate(
    client: IClientConnection, policy: Any, request: AccessRequest, decision: Decision
) -> None:
    """
    Count the session C{decision} permits against its rule's
    C{sessions-per-second}; a policy other than the rule engine sets no
    such limit.

    @param client: the request's client connection; when refused, its
        record's C{limit} says which limit.
    @param policy: the policy that made C{decision}.
    @raise RequestRefused: with 0x02 (SOCKS4: CD 91), outcome C{denied},
        the rule's number and a message saying which limit.
    """
    ruleFor = getattr(policy, "ruleFor", None)
    rule = ruleFor(decision) if ruleFor is not None else None
    if rule is None or not rule.sessionsPerSecond:
        return
    gateway = client.gateway
    rates: SessionRates = gateway.sessions.rates
    clock = rates.clock if rates.clock is not None else gateway.reactor
    exceeded = rates.admit(policy.rules, rule, clock.seconds(), request.client, request.user)
    if exceeded is None:
        return
    client.record.limit = exceeded.limit
    refusal = Decision(DENY, decision.rule, exceeded.message)
    raise RequestRefused(ReplyCode.NOT_ALLOWED, Outcome.DENIED, exceeded.message, refusal)
