"""
Bandwidth limits: the C{bandwidth} key of a C{[[rule]]}, a token bucket
per rule and direction shared by every session the rule permits.

A rule's limit (L{parseBandwidth}: C{"10MB/s"}, C{"512kB/s"},
C{"1MiB/s"}, C{"100kbit/s"}) is enforced by two L{TokenBucket}s, one for
the bytes clients send towards destinations (C{out}) and one for what comes
back (C{in}): a L{RuleBandwidth}.  Each bucket fills at the limit, up to
a burst of one second's worth (at least L{QUANTUM}).  The gateway keeps
one L{RuleBandwidth} per rule identity (L{BandwidthLimits}): a reload that
leaves a rule unchanged keeps its buckets, a changed rule gets new ones,
and sessions keep the buckets they started with until they end.

Each session takes tokens through an L{Allowance} of its own.  A session
that finds the bucket empty waits in the bucket's queue; when the bucket
holds a L{QUANTUM} again, the waiters are served in order, each given up
to a L{QUANTUM} of credit, and while anyone waits nobody else takes from
the bucket: every session gets its turn, none starves.  Bytes already read
are always delivered: the stream relay reads what the transport gives it
(up to 64 KiB at a time) and counts it, so a bucket may go into debt by up
to one read, which the next refills repay.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from zope.interface import implementer

__all__ = [
    "QUANTUM",
    "Allowance",
    "BandwidthLimits",
    "RuleBandwidth",
    "ThrottledReader",
    "TokenBucket",
    "describeBandwidth",
    "parseBandwidth",
]

#: The most credit one waiting session is given at its turn, the least a
#: bucket's burst holds, and what a bucket gathers before it serves its
#: waiters (so a throttled session moves bytes in chunks of this size,
#: never byte by byte): 64 KiB, one read of a Twisted TCP transport.
QUANTUM = 64 * 1024

#: A bucket holds at most this many seconds of its rate (the burst).
BURST_SECONDS = 1.0

_PREFIXES = {
    "": 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3,
}  # fmt: skip
_BANDWIDTH = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(|k|K|M|G|Ki|Mi|Gi)(B|bit)/s\s*")


def parseBandwidth(text: str) -> float | None:
    """
    Read a C{bandwidth} value: a number, an optional prefix (C{k} or C{K},
    C{M}, C{G}: powers of 1000; C{Ki}, C{Mi}, C{Gi}: powers of 1024), C{B}
    (bytes) or C{bit} (bits), and C{/s}.

    @return: bytes per second, or L{None} for C{""} (no limit).
    @raise ValueError: the text is not of that form, or is not at least
        one byte per second.
    """
    if text.strip() == "":
        return None
    match = _BANDWIDTH.fullmatch(text)
    if match is None:
        raise ValueError(
            f'{text!r} is not a bandwidth such as "10MB/s", "512kB/s", "1MiB/s" or "100kbit/s" '
            '(k, M, G: powers of 1000; Ki, Mi, Gi: powers of 1024; B: bytes, bit: bits); "" for no limit'
        )
    number, prefix, unit = match.groups()
    rate = float(number) * _PREFIXES[prefix] / (8 if unit == "bit" else 1)
    if rate < 1:
        raise ValueError(f'{text!r} is less than 1 B/s; give "" for no limit')
    return rate


def describeBandwidth(rate: float) -> str:
    """
    A rate in bytes per second, in words (C{"64000 B/s"}), for messages.
    """
    return f"{rate:g} B/s"


def _identity(rule: Any) -> Any:
    """
    What a rule is, whatever its place in the file (as the status
    service's C{ruleIdentity}): the rule with its number and line left out.
    """
    return replace(rule, index=0, line=None)


class TokenBucket:
    """
    Bytes per second, shared by the sessions of one rule in one direction.

    Sessions take tokens through their L{Allowance}s; the bucket may go
    into debt (bytes already read are counted, not refused).

    @ivar rate: tokens (bytes) added each second.
    @ivar burst: the most tokens it holds.
    @ivar waits: how many times a session waited for tokens (its reading
        paused, or a datagram dropped).
    @ivar dropped: datagrams dropped because the bucket was empty.
    """

    def __init__(self, rate: float, clock: IReactorTime, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate * BURST_SECONDS, QUANTUM)
        self._threshold = min(self.burst, QUANTUM)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock.seconds()
        self._waiters: deque[Allowance] = deque()
        self._call: IDelayedCall | None = None
        self._throttled = 0.0
        self._throttledSince: float | None = None
        self.waits = self.dropped = 0

    @property
    def tokens(self) -> float:
        """
        The tokens in the bucket now (negative while in debt).
        """
        self._refill()
        return self._tokens

    @property
    def throttledSeconds(self) -> float:
        """
        The seconds during which at least one session waited for tokens.
        """
        since = self._throttledSince
        return self._throttled + (self._clock.seconds() - since if since is not None else 0.0)

    @property
    def waiting(self) -> int:
        """
        How many sessions wait for tokens now.
        """
        return len(self._waiters)

    def free(self, least: float | None = None) -> int:
        """
        The whole tokens a session that holds no credit may take now: none
        while other sessions wait (they are served first), and none while
        the bucket holds fewer than C{least} (by default a L{QUANTUM}, or
        the burst if smaller), so that a throttled session moves bytes in
        chunks rather than a few at each turn of the reactor.
        """
        if self._waiters:
            return 0
        self._refill()
        return int(self._tokens) if self._tokens >= (self._threshold if least is None else least) else 0

    def spend(self, count: int) -> None:
        """
        Take C{count} tokens, going into debt if there are fewer.
        """
        self._refill()
        self._tokens -= count

    def _refill(self) -> None:
        now = self._clock.seconds()
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _enqueue(self, allowance: Allowance) -> None:
        self._waiters.append(allowance)
        self.waits += 1
        if self._throttledSince is None:
            self._throttledSince = self._clock.seconds()
        self._schedule()

    def _dequeue(self, allowance: Allowance) -> None:
        try:
            self._waiters.remove(allowance)
        except ValueError:
            return
        if not self._waiters:
            self._idle()

    def _idle(self) -> None:
        """
        Nobody waits any more: no timer, and the throttled time stops.
        """
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._throttledSince is not None:
            self._throttled += self._clock.seconds() - self._throttledSince
            self._throttledSince = None

    def _schedule(self) -> None:
        if self._call is None and self._waiters:
            self._refill()
            delay = max(0.0, (self._threshold - self._tokens) / self.rate)
            self._call = self._clock.callLater(delay, self._serve)

    def _serve(self) -> None:
        """
        The bucket holds a quantum again: serve the waiters in order, each
        up to a L{QUANTUM} of credit, while there are tokens.
        """
        self._call = None
        self._refill()
        waiters = self._waiters
        while waiters and self._tokens >= self._threshold:
            allowance = waiters.popleft()
            grant = int(min(self._tokens, QUANTUM))
            self._tokens -= grant
            allowance._granted(grant)
        if waiters:
            self._schedule()
        else:
            self._idle()


class Allowance:
    """
    One session's use of a L{TokenBucket}: the credit its last turn gave
    it, and its place in the queue while it waits.

    @ivar bucket: the bucket.
    @ivar credit: tokens given to this session at its turn, not spent yet.
    """

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.credit = 0
        self._queued = False
        self._onReady: Callable[[], None] | None = None

    def available(self) -> int:
        """
        How many bytes the session may move now; 0: it must wait.
        """
        if self.credit > 0:
            return self.credit
        return self.bucket.free()

    def spend(self, count: int) -> None:
        """
        Count C{count} bytes moved: from the credit first, then the bucket.
        """
        fromCredit = min(count, max(self.credit, 0))
        self.credit -= fromCredit
        if count > fromCredit:
            self.bucket.spend(count - fromCredit)

    def wait(self, onReady: Callable[[], None]) -> None:
        """
        Wait for this session's turn; C{onReady} is called once, when it
        has credit (a later call replaces an earlier C{onReady}).
        """
        self._onReady = onReady
        if not self._queued:
            self._queued = True
            self.bucket._enqueue(self)

    def cancel(self) -> None:
        """
        Leave the queue (the session ended); C{onReady} is not called.
        """
        self._onReady = None
        if self._queued:
            self._queued = False
            self.bucket._dequeue(self)

    def admit(self, size: int) -> bool:
        """
        Whether a datagram of C{size} bytes may be sent now: if so it is
        counted; if not it is to be dropped, and the session waits for its
        turn (later datagrams use the credit it is given).
        """
        if self.credit > 0 or self.bucket.free(1) > 0:
            self.spend(size)
            return True
        self.bucket.dropped += 1
        self.wait(_nothing)
        return False

    def _granted(self, tokens: int) -> None:
        self._queued = False
        self.credit += tokens
        onReady, self._onReady = self._onReady, None
        if onReady is not None:
            onReady()


def _nothing() -> None:
    pass


class RuleBandwidth:
    """
    The two buckets of one rule: C{out} (clients towards destinations) and
    C{in} (what comes back).

    @ivar rate: the rule's limit, bytes per second, each direction.
    @ivar outgoing: the bucket of the bytes clients send.
    @ivar incoming: the bucket of the bytes that come back.
    """

    def __init__(self, rate: float, clock: IReactorTime) -> None:
        self.rate = rate
        self.outgoing = TokenBucket(rate, clock)
        self.incoming = TokenBucket(rate, clock)


class BandwidthLimits:
    """
    The L{RuleBandwidth} of each rule of a gateway that sets C{bandwidth},
    by rule identity, shared by all its listeners and kept across reloads
    for rules that did not change.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._limits: dict[Any, RuleBandwidth] = {}
        self._rulesSeen: Any = None

    def forRule(self, rule: Any) -> RuleBandwidth | None:
        """
        The buckets of C{rule}, made when first asked; L{None} when it sets
        no C{bandwidth}.
        """
        rate = getattr(rule, "bandwidth", None)
        if not rate:
            return None
        identity = _identity(rule)
        limits = self._limits.get(identity)
        if limits is None:
            limits = self._limits[identity] = RuleBandwidth(rate, self._clock)
        return limits

    def forDecision(self, policy: Any, decision: Any) -> RuleBandwidth | None:
        """
        The buckets of the rule of C{policy} that made C{decision}, if it
        is a rule engine's and the rule sets C{bandwidth}.  Buckets of rules
        no longer in force are forgotten (their sessions keep them).
        """
        ruleFor = getattr(policy, "ruleFor", None)
        if ruleFor is None:
            return None
        rules = policy.rules
        if rules is not self._rulesSeen:
            self._rulesSeen = rules
            current = {_identity(rule) for rule in rules if getattr(rule, "bandwidth", None)}
            self._limits = {key: value for key, value in self._limits.items() if key in current}
        return self.forRule(ruleFor(decision))

    def existing(self, rule: Any) -> RuleBandwidth | None:
        """
        The buckets of C{rule} if any session has used them (for metrics).
        """
        return self._limits.get(_identity(rule)) if getattr(rule, "bandwidth", None) else None


@implementer(IPushProducer)
class ThrottledReader:
    """
    A transport as the streaming producer of its peer in the stream relay:
    it is read only while its consumer wants more (back-pressure) and its
    session's L{Allowance} has tokens.

    @ivar transport: the transport read.
    @ivar allowance: its session's share of the bucket.
    """

    def __init__(self, transport: Any, bucket: TokenBucket) -> None:
        self.transport = transport
        self.allowance = Allowance(bucket)
        self._consumerPaused = self._throttled = False

    def pauseProducing(self) -> None:
        """
        The consumer's buffer is full: stop reading.
        """
        self._consumerPaused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The consumer drained: read again, unless waiting for tokens.
        """
        self._consumerPaused = False
        if not self._throttled:
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """
        The consumer is gone.
        """
        self.cancel()
        self.transport.stopProducing()

    def relayed(self, count: int) -> None:
        """
        C{count} bytes read from the transport were passed on: count them,
        and stop reading until the session's turn if no tokens are left.
        """
        allowance = self.allowance
        allowance.spend(count)
        if not self._throttled and allowance.available() <= 0:
            self._throttled = True
            self.transport.pauseProducing()
            allowance.wait(self._refilled)

    def cancel(self) -> None:
        """
        The session ended: wait no more.
        """
        self.allowance.cancel()

    def _refilled(self) -> None:
        self._throttled = False
        if not self._consumerPaused:
            self.transport.resumeProducing()
