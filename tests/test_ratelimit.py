"""
Tests for L{socksgate.ratelimit}: the token buckets of C{sessions-per-second}
(with a L{Clock}), the rules' identities across a reload, and the refusals
counted for C{/metrics}.
"""

from __future__ import annotations

from ipaddress import ip_address
from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import parseConfig
from socksgate.ratelimit import CLIENT, TABLE, USER, RateExceeded, SessionRates, TokenBuckets
from socksgate.rules import Rule
from socksgate.status import GatewayStatus
from socksgate.status._metrics import metricFamilies

ALICE = "alice"
ONE, TWO = ip_address("127.0.0.2"), ip_address("127.0.0.3")


def limited(index: int, perSecond: int, message: str = "") -> Rule:
    """
    A permit rule number C{index} with C{sessions-per-second = perSecond}.
    """
    return Rule(index=index, action="permit", message=message, sessionsPerSecond=perSecond)


class TokenBucketTests(SynchronousTestCase):
    """
    L{TokenBuckets}: N tokens, refilled at N a second, full ones forgotten.
    """

    def test_burstThenEmpty(self) -> None:
        """
        A new key has a full bucket of C{rate} tokens: that many takes at
        one instant succeed, the next is refused with the key's index.
        """
        buckets = TokenBuckets()
        self.assertEqual([buckets.take(10.0, 3, ["a"]) for _ in range(4)], [-1, -1, -1, 0])

    def test_refill(self) -> None:
        """
        Tokens come back at C{rate} a second: a third of a second gives one
        back at 3 a second; a whole second refills the bucket, never
        beyond its size.
        """
        clock = Clock()
        buckets = TokenBuckets()
        for _ in range(3):
            self.assertEqual(buckets.take(clock.seconds(), 3, ["a"]), -1)
        clock.advance(1 / 3)
        self.assertEqual(buckets.take(clock.seconds(), 3, ["a"]), -1)
        self.assertEqual(buckets.take(clock.seconds(), 3, ["a"]), 0)
        clock.advance(60)
        self.assertEqual(buckets.tokens("a", clock.seconds(), 3), 3.0)

    def test_twoKeysAllOrNothing(self) -> None:
        """
        A take from two buckets takes from both, or, when either is empty,
        from neither: the answer names the empty one.
        """
        buckets = TokenBuckets()
        self.assertEqual(buckets.take(0.0, 2, ["client", "user"]), -1)
        self.assertEqual(buckets.take(0.0, 2, ["other", "user"]), -1)
        self.assertEqual(buckets.take(0.0, 2, ["client", "user"]), 1)
        # The refused take left the client's last token in place.
        self.assertEqual(buckets.tokens("client", 0.0, 2), 1.0)
        self.assertEqual(buckets.take(0.0, 2, ["client"]), -1)
        self.assertEqual(buckets.take(0.0, 2, ["client", "third"]), 0)
        self.assertNotIn("third", buckets._buckets)

    def test_idleBucketsDropped(self) -> None:
        """
        A bucket is held only until it is full again: a second after its
        last use (N tokens at N a second), the next take forgets it.
        """
        clock = Clock()
        buckets = TokenBuckets()
        buckets.take(clock.seconds(), 5, ["a"])
        buckets.take(clock.seconds(), 5, ["b"])
        self.assertEqual(len(buckets), 2)
        clock.advance(0.5)
        for _ in range(5):
            buckets.take(clock.seconds(), 5, ["b"])
        clock.advance(0.5)
        buckets.take(clock.seconds(), 5, ["c"])
        # "a" is full (a second idle) and gone; "b" was emptied half a
        # second ago.
        self.assertEqual(sorted(buckets._buckets), ["b", "c"])
        clock.advance(1)
        buckets.take(clock.seconds(), 5, ["c"])
        self.assertEqual(sorted(buckets._buckets), ["c"])

    def test_capFailsClosed(self) -> None:
        """
        At C{maxBuckets}, a take that needs a new bucket is refused (-2)
        and takes nothing; keys already held still get tokens; once the
        held buckets are full again they are dropped and new keys get in.
        """
        clock = Clock()
        buckets = TokenBuckets(maxBuckets=2)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["a"]), -1)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["b"]), -1)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["c"]), -2)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["a", "c"]), -2)
        self.assertEqual(buckets.tokens("a", clock.seconds(), 4), 3.0)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["b"]), -1)
        self.assertEqual(len(buckets), 2)
        clock.advance(1)
        self.assertEqual(buckets.take(clock.seconds(), 4, ["c"]), -1)
        self.assertEqual(sorted(buckets._buckets), ["c"])

    def test_clockBack(self) -> None:
        """
        A clock that goes back refills nothing, and does not lock a key
        out until it catches up: the bucket is counted from the new time.
        """
        buckets = TokenBuckets()
        self.assertEqual(buckets.take(100.0, 1, ["a"]), -1)
        self.assertEqual(buckets.take(50.0, 1, ["a"]), 0)
        self.assertEqual(buckets.take(51.0, 1, ["a"]), -1)


class SessionRatesTests(SynchronousTestCase):
    """
    L{SessionRates.admit}: a client bucket and a user bucket per rule
    identity.
    """

    def test_noLimit(self) -> None:
        """
        A rule with C{sessions-per-second = 0} admits everything and holds
        no bucket.
        """
        rates = SessionRates()
        rule = limited(1, 0)
        self.assertEqual([rates.admit((rule,), rule, 0.0, ONE, ALICE) for _ in range(100)], [None] * 100)
        self.assertEqual(len(rates.buckets), 0)

    def test_clientLimit(self) -> None:
        """
        N sessions at once from one client address, then a refusal that
        says so; another client address has its own bucket.
        """
        rates = SessionRates()
        rule = limited(1, 2)
        rules = (rule,)
        self.assertIsNone(rates.admit(rules, rule, 0.0, ONE, None))
        self.assertIsNone(rates.admit(rules, rule, 0.0, ONE, None))
        self.assertEqual(
            rates.admit(rules, rule, 0.0, ONE, None),
            RateExceeded(CLIENT, "sessions-per-second 2 exceeded for client 127.0.0.2"),
        )
        self.assertIsNone(rates.admit(rules, rule, 0.0, TWO, None))

    def test_userLimitAcrossClients(self) -> None:
        """
        One user from two client addresses shares the user's bucket: the
        third session is refused for the user, though its client has a
        token left; another user is not affected.
        """
        rates = SessionRates()
        rule = limited(1, 2)
        rules = (rule,)
        self.assertIsNone(rates.admit(rules, rule, 0.0, ONE, ALICE))
        self.assertIsNone(rates.admit(rules, rule, 0.0, TWO, ALICE))
        self.assertEqual(
            rates.admit(rules, rule, 0.0, ONE, ALICE),
            RateExceeded(USER, "sessions-per-second 2 exceeded for user alice"),
        )
        self.assertIsNone(rates.admit(rules, rule, 0.0, ONE, "bob"))

    def test_unixClients(self) -> None:
        """
        Clients without an address (a UNIX socket) share one bucket, named
        C{unix}.
        """
        rates = SessionRates()
        rule = limited(1, 1)
        self.assertIsNone(rates.admit((rule,), rule, 0.0, None, None))
        self.assertEqual(
            rates.admit((rule,), rule, 0.0, None, None),
            RateExceeded(CLIENT, "sessions-per-second 1 exceeded for client unix"),
        )

    def test_rulesHaveTheirOwnBuckets(self) -> None:
        """
        Two limited rules count a client apart.
        """
        rates = SessionRates()
        first, second = limited(1, 1, "first"), limited(2, 1, "second")
        rules = (first, second)
        self.assertIsNone(rates.admit(rules, first, 0.0, ONE, None))
        self.assertIsNone(rates.admit(rules, second, 0.0, ONE, None))
        self.assertIsNotNone(rates.admit(rules, first, 0.0, ONE, None))

    def test_reload(self) -> None:
        """
        The buckets are the rule's identity's: a reload that moves an
        unchanged rule to another number keeps its (empty) buckets; one
        that changes the rule (its limit, here) starts it with full ones.
        """
        rates = SessionRates()
        rule = limited(1, 1, "office")
        self.assertIsNone(rates.admit((rule,), rule, 0.0, ONE, None))
        moved = limited(2, 1, "office")
        reloaded = (limited(1, 0, "new"), moved)
        self.assertEqual(rates.admit(reloaded, moved, 0.0, ONE, None).limit, CLIENT)  # type: ignore[union-attr]
        changed = limited(2, 2, "office")
        again = (limited(1, 0, "new"), changed)
        self.assertIsNone(rates.admit(again, changed, 0.0, ONE, None))

    def test_tableFull(self) -> None:
        """
        With the table full, a session that needs a new bucket is refused
        for the table, saying so.
        """
        rates = SessionRates(maxBuckets=1)
        rule = limited(3, 5)
        self.assertIsNone(rates.admit((limited(1, 0), limited(2, 0), rule), rule, 0.0, ONE, None))
        exceeded = rates.admit((limited(1, 0), limited(2, 0), rule), rule, 0.0, TWO, None)
        assert exceeded is not None
        self.assertEqual(exceeded.limit, TABLE)
        self.assertIn("1 clients and users are being limited already", exceeded.message)


LISTENER = "tcp:1080:interface=127.0.0.1"
RULES = f"""
[server]
listen = ["{LISTENER}"]

[[rule]]
action = "permit"
users = ["alice"]
sessions-per-second = 5
message = "alice"

[[rule]]
action = "permit"
message = "others"
"""


class MetricTests(SynchronousTestCase):
    """
    C{socksgate_rate_limited_total}: the refusals, by rule and limit,
    counted from the session records.
    """

    def test_countedByRuleAndLimit(self) -> None:
        """
        Each limited rule has a series for every limit, at 0 until a
        record with that C{limit} names the rule; unlimited rules have
        none.  A record without C{limit} (a plain denial) counts no
        refusal; a reload that changes the rule's message starts new
        series at 0.
        """
        gateway = SimpleNamespace(
            config=parseConfig(RULES), sessions=SimpleNamespace(open=[]), factories={LISTENER: None}
        )
        status = GatewayStatus(gateway, MemoryReactorClock())
        base = {"listener": LISTENER, "command": "connect", "version": "5", "outcome": "denied", "rule": 1}
        for limit in ("client", "user", "user", None):
            record = dict(base, limit=limit) if limit else base
            status.observe({"log_namespace": "socksgate.session", "record": record})

        def series() -> dict[tuple[str, str, str], float]:
            return {
                (sample.labels["rule"], sample.labels["message"], sample.labels["limit"]): sample.value
                for family in metricFamilies(status.takeSnapshot())
                if family.name == "socksgate_rate_limited"
                for sample in family.samples
            }

        self.assertEqual(
            series(),
            {("1", "alice", "client"): 1.0, ("1", "alice", "user"): 2.0, ("1", "alice", "table"): 0.0},
        )
        gateway.config = parseConfig(RULES.replace('message = "alice"', 'message = "alice, limited"'))
        self.assertEqual(
            series(),
            {
                ("1", "alice, limited", "client"): 0.0,
                ("1", "alice, limited", "user"): 0.0,
                ("1", "alice, limited", "table"): 0.0,
            },
        )
