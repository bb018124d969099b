"""
Tests for L{socksgate.bandwidth}: the C{bandwidth} key, the token buckets
and their use by the stream, zero-copy and UDP relays.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from socksgate.bandwidth import (
    QUANTUM,
    Allowance,
    BandwidthLimits,
    ThrottledReader,
    TokenBucket,
    parseBandwidth,
)
from socksgate.config import ConfigError, parseConfig
from socksgate.relay import Relay
from socksgate.splicing import SPLICE_AVAILABLE, SpliceRelay
from socksgate.status._bandwidth import bandwidthFamilies, bandwidthStates
from socksgate.testing import startEchoServer, startGateway, startSinkServer, startSourceServer

from .helpers import LoopbackTestCase, StreamRelay, connectRaw, socks5Connect
from .test_udprelay import UDPEcho, UDPPeer, associate, openUDP, toIPv4


def _config(bandwidth: str) -> Any:
    return parseConfig(f'[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\nbandwidth = "{bandwidth}"\n')


class ParseTests(SynchronousTestCase):
    """
    L{parseBandwidth} and the C{bandwidth} key of a C{[[rule]]}.
    """

    def test_units(self) -> None:
        """
        k, K, M, G are powers of 1000, Ki, Mi, Gi of 1024; B is bytes, bit
        is bits; the result is bytes per second.
        """
        cases = {
            "10MB/s": 10_000_000,
            "512kB/s": 512_000,
            "512KB/s": 512_000,
            "1MiB/s": 1_048_576,
            "100kbit/s": 12_500,
            "1.5GB/s": 1_500_000_000,
            " 64 KiB/s ": 65_536,
            "8bit/s": 1,
        }
        self.assertEqual({text: parseBandwidth(text) for text in cases}, cases)

    def test_empty(self) -> None:
        """
        C{""} means no limit.
        """
        self.assertIsNone(parseBandwidth(""))

    def test_invalid(self) -> None:
        """
        A value without its unit and C{/s}, with an unknown prefix or unit,
        or below one byte per second is refused.
        """
        for text in ("10MB", "10", "10 mb/s", "10mB/s", "10MiBit/s", "fast", "0B/s", "7bit/s", "-1kB/s"):
            self.assertRaises(ValueError, parseBandwidth, text)

    def test_rule(self) -> None:
        """
        A rule's C{bandwidth} is read in bytes per second; a rule without
        it has none.
        """
        self.assertEqual(_config("100kbit/s").rules[0].bandwidth, 12_500)
        self.assertIsNone(parseConfig('[[rule]]\naction = "permit"\n').rules[0].bandwidth)

    def test_ruleError(self) -> None:
        """
        A bad value names the file, the line, the key and what is wrong.
        """
        text = '[[rule]]\naction = "permit"\nbandwidth = "10 megabytes"\n'
        error = self.assertRaises(ConfigError, parseConfig, text, "gw.toml")
        self.assertEqual((error.path, error.line, error.key), ("gw.toml", 3, "rule #1.bandwidth"))
        self.assertIn("is not a bandwidth", str(error))
        error = self.assertRaises(ConfigError, parseConfig, text.replace('"10 megabytes"', "10"), "gw.toml")
        self.assertIn("must be a string", str(error))


class BucketTests(SynchronousTestCase):
    """
    L{TokenBucket} and L{Allowance}, on a fake clock.
    """

    def test_burst(self) -> None:
        """
        A bucket starts full with one second of its rate, at least a
        L{QUANTUM}, and never holds more.
        """
        clock = Clock()
        self.assertEqual(TokenBucket(1_000_000, clock).burst, 1_000_000)
        bucket = TokenBucket(1000, clock)
        self.assertEqual(bucket.burst, QUANTUM)
        clock.advance(1000)
        self.assertEqual(bucket.tokens, QUANTUM)

    def test_debtAndRefill(self) -> None:
        """
        Spending more than there is puts the bucket in debt; it refills at
        its rate, and gives tokens again once it holds a quantum (here its
        whole burst).
        """
        clock = Clock()
        bucket = TokenBucket(1000, clock, burst=5000)
        allowance = Allowance(bucket)
        self.assertEqual(allowance.available(), 5000)
        allowance.spend(7000)
        self.assertEqual((bucket.tokens, allowance.available()), (-2000, 0))
        clock.advance(3)
        self.assertEqual(allowance.available(), 0)
        clock.advance(4)
        self.assertEqual(allowance.available(), 5000)

    def test_wait(self) -> None:
        """
        A waiting session is called once the bucket holds a quantum (here,
        its whole burst) again, with that as its credit; not before.
        """
        clock = Clock()
        bucket = TokenBucket(1000, clock, burst=4000)
        allowance = Allowance(bucket)
        allowance.spend(4000)
        ready: list[int] = []
        allowance.wait(lambda: ready.append(allowance.credit))
        clock.advance(3.9)
        self.assertEqual(ready, [])
        clock.advance(0.1)
        self.assertEqual(ready, [4000])
        self.assertEqual((bucket.waits, bucket.waiting, bucket.throttledSeconds), (1, 0, 4.0))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_turns(self) -> None:
        """
        Waiters are served in order, a quantum each; while any waits, a
        session without credit gets nothing, so none starves.
        """
        clock = Clock()
        bucket = TokenBucket(QUANTUM, clock)
        first, second, third, late = (Allowance(bucket) for _ in range(4))
        first.spend(QUANTUM)
        served: list[str] = []
        for name, allowance in (("first", first), ("second", second), ("third", third)):
            allowance.wait(lambda name=name: served.append(name))  # type: ignore[misc]
        self.assertEqual(late.available(), 0)
        clock.advance(1)
        self.assertEqual(served, ["first"])
        self.assertEqual(late.available(), 0)
        # The one served comes back to the end of the queue.
        first.spend(first.credit)
        first.wait(lambda: served.append("first"))
        clock.advance(1)
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(served, ["first", "second", "third", "first"])
        self.assertEqual(late.available(), 0)
        clock.advance(1)
        self.assertEqual(late.available(), QUANTUM)

    def test_cancel(self) -> None:
        """
        A session that ends leaves the queue: it is not called, and with
        nobody waiting the bucket has no timer.
        """
        clock = Clock()
        bucket = TokenBucket(1000, clock, burst=2000)
        allowance = Allowance(bucket)
        allowance.spend(2000)
        called: list[bool] = []
        allowance.wait(lambda: called.append(True))
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        allowance.cancel()
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        self.assertEqual((called, bucket.waiting), ([], 0))

    def test_admit(self) -> None:
        """
        A datagram is sent while the session has tokens, and dropped (not
        queued) when it has none; its turn gives it credit for later ones.
        """
        clock = Clock()
        bucket = TokenBucket(1000, clock, burst=3000)
        allowance = Allowance(bucket)
        self.assertEqual([allowance.admit(1500) for _ in range(3)], [True, True, False])
        self.assertEqual(bucket.dropped, 1)
        clock.advance(3)
        self.assertTrue(allowance.admit(1500))
        self.assertEqual(allowance.credit, 3000 - 1500)


class ThrottledReaderTests(SynchronousTestCase):
    """
    L{ThrottledReader} pauses its transport while its bucket is empty,
    and keeps the consumer's back-pressure.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.reader = ThrottledReader(self.transport, TokenBucket(1000, self.clock, burst=2 * QUANTUM))

    def test_pausedWhenEmpty(self) -> None:
        """
        Bytes relayed that leave less than a quantum pause the transport
        until the bucket holds one again.
        """
        self.reader.relayed(QUANTUM)
        self.assertEqual(self.transport.producerState, "producing")
        self.reader.relayed(1000)
        self.assertEqual(self.transport.producerState, "paused")
        self.reader.resumeProducing()
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0.999)
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0.001)
        self.assertEqual(self.transport.producerState, "producing")

    def test_consumerPause(self) -> None:
        """
        A transport paused by its consumer's back-pressure stays paused when
        the tokens come, until the consumer resumes it.
        """
        self.reader.relayed(2 * QUANTUM)
        self.reader.pauseProducing()
        self.clock.advance(1000)
        self.assertEqual(self.transport.producerState, "paused")
        self.reader.resumeProducing()
        self.assertEqual(self.transport.producerState, "producing")


class LimitsTests(SynchronousTestCase):
    """
    L{BandwidthLimits}: one pair of buckets per rule identity.
    """

    def test_identity(self) -> None:
        """
        A reload that keeps a rule keeps its buckets (whatever its number);
        a changed rule gets new ones; a rule without C{bandwidth} none.
        """
        limits = BandwidthLimits(Clock())
        before = parseConfig(
            '[[rule]]\naction = "permit"\nusers = ["alice"]\nbandwidth = "1MB/s"\n'
            '[[rule]]\naction = "permit"\nusers = ["bob"]\nbandwidth = "1MB/s"\n'
            '[[rule]]\naction = "permit"\n'
        )
        policy = before.policy
        alice, bob = (limits.forDecision(policy, rule.decision()) for rule in policy.rules[:2])
        self.assertIsNotNone(alice)
        self.assertIsNot(alice, bob)
        self.assertIsNone(limits.forDecision(policy, policy.rules[2].decision()))
        after = parseConfig(
            '[[rule]]\naction = "deny"\nusers = ["mallory"]\n'
            '[[rule]]\naction = "permit"\nusers = ["alice"]\nbandwidth = "1MB/s"\n'
            '[[rule]]\naction = "permit"\nusers = ["bob"]\nbandwidth = "2MB/s"\n'
        ).policy
        self.assertIs(limits.forDecision(after, after.rules[1].decision()), alice)
        newBob = limits.forDecision(after, after.rules[2].decision())
        self.assertIsNot(newBob, bob)
        self.assertEqual(newBob.rate, 2_000_000)  # type: ignore[union-attr]
        self.assertIsNone(limits.forDecision(object(), after.rules[1].decision()))

    def test_metrics(self) -> None:
        """
        Every running rule that sets C{bandwidth} has its series each way,
        at 0 until a session waits.
        """

        class Gateway:
            config = parseConfig('[[rule]]\naction = "permit"\nmessage = "office"\nbandwidth = "1kB/s"\n')
            bandwidth = BandwidthLimits(Clock())

        gateway = Gateway()
        limits = gateway.bandwidth.forRule(gateway.config.rules[0])
        limits.incoming.waits = 3  # type: ignore[union-attr]
        families = {family.name: family for family in bandwidthFamilies(bandwidthStates(gateway))}
        waits = {
            sample.labels["direction"]: sample.value
            for sample in families["socksgate_bandwidth_waits"].samples
        }
        self.assertEqual(waits, {"out": 0, "in": 3})
        [limit] = {sample.value for sample in families["socksgate_bandwidth_limit_bytes_per_second"].samples}
        self.assertEqual(limit, 1000)
        self.assertEqual(families["socksgate_bandwidth_waits"].samples[0].labels["message"], "office")


#: The limit of the relay tests, and the bytes of each transfer.
RATE = "500kB/s"
RATE_BYTES = 500_000
TRANSFER = 1_000_000


async def _connected(gateway: Any, port: int) -> Any:
    client = await connectRaw(gateway.port)
    client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", port, atyp=1))
    await client.receive(12)
    return client


class RelayLimitTests(LoopbackTestCase):
    """
    Sessions of a rule with C{bandwidth} over real loopback sockets,
    through the zero-copy relay (where it is available; L{StreamLimitTests}
    runs them through the stream relay).
    """

    relayClass: type = SpliceRelay

    def setUp(self) -> None:
        if self.relayClass is SpliceRelay and not SPLICE_AVAILABLE:
            self.skipTest("no os.splice on this platform")
        self.config = _config(RATE)
        self.gateway = startGateway(self, config=self.config)

    def buckets(self) -> Any:
        return self.gateway.factory.bandwidth.existing(self.config.rules[0])

    async def watch(self, relays: list[Any], done: Any) -> float:
        """
        Until C{done()}, check often that the bytes the sessions moved each
        way never exceed the burst, the limit times the time gone and one
        read (or quantum) per session; return the time it took.
        """
        started = reactor.seconds()
        for _ in range(2000):
            elapsed = reactor.seconds() - started
            bound = RATE_BYTES + RATE_BYTES * elapsed + 2 * QUANTUM * len(relays)
            self.assertLessEqual(sum(relay.bytesOut for relay in relays), bound)
            self.assertLessEqual(sum(relay.bytesIn for relay in relays), bound)
            if done():
                return reactor.seconds() - started
            await deferLater(reactor, 0.01, lambda: None)
        self.fail("the transfer did not finish")

    async def test_echo(self) -> None:
        """
        1 MB through an echo server under a 500 kB/s limit arrives intact;
        reading paused for tokens (towards the destination: the echo's
        answers come back no faster than they left, so whether the other
        way waits depends on timing; L{test_download} shows it does), the
        bytes moved never ran ahead of the limit either way, and the whole
        could not take less than the limit allows: (1 MB - one second's
        burst) / 500 kB/s = 1 s.
        """
        echo = startEchoServer(self)
        client = await _connected(self.gateway, echo.port)
        [protocol] = self.gateway.sessions.open
        relay = protocol.session
        self.assertIsInstance(relay, self.relayClass)
        payload = os.urandom(TRANSFER)
        client.transport.write(payload)
        receiving = client.receive(TRANSFER)
        elapsed = await self.watch([relay], lambda: receiving.called)
        self.assertEqual(hashlib.sha256(await receiving).digest(), hashlib.sha256(payload).digest())
        self.assertGreaterEqual(elapsed, 0.95 * (TRANSFER - RATE_BYTES) / RATE_BYTES)
        self.assertGreater(self.buckets().outgoing.waits, 0)
        client.transport.loseConnection()
        await client.closed

    async def test_download(self) -> None:
        """
        1 MB sent by the destination at once arrives intact and no faster
        than the limit: reading from the destination paused for tokens.
        """
        source = startSourceServer(self, TRANSFER)
        client = await _connected(self.gateway, source.port)
        [protocol] = self.gateway.sessions.open
        relay = protocol.session
        self.assertIsInstance(relay, self.relayClass)
        receiving = client.receive(TRANSFER)
        elapsed = await self.watch([relay], lambda: receiving.called)
        self.assertEqual(len(await receiving), TRANSFER)
        self.assertGreaterEqual(elapsed, 0.95 * (TRANSFER - RATE_BYTES) / RATE_BYTES)
        self.assertGreater(self.buckets().incoming.waits, 0)
        client.transport.loseConnection()
        await client.closed

    async def test_shared(self) -> None:
        """
        Two sessions of one rule share its limit: what they move together
        stays within it, the two take at least as long as their total
        allows, and both finish (neither starves).
        """
        sink = startSinkServer(self)
        clients = [await _connected(self.gateway, sink.port) for _ in range(2)]
        relays = [protocol.session for protocol in self.gateway.sessions.open]
        each = TRANSFER * 3 // 4
        for client in clients:
            client.transport.write(b"\x5a" * each)
        elapsed = await self.watch(relays, lambda: sum(relay.bytesOut for relay in relays) == 2 * each)
        self.assertGreaterEqual(elapsed, 0.95 * (2 * each - RATE_BYTES) / RATE_BYTES)
        for _ in range(200):
            if sum(connection.received for connection in sink.connections) == 2 * each:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(sorted(connection.received for connection in sink.connections), [each, each])
        self.assertGreater(self.buckets().outgoing.waits, 1)
        for client in clients:
            client.transport.loseConnection()
        await gatherResults([client.closed for client in clients])


class StreamLimitTests(StreamRelay, RelayLimitTests):
    """
    L{RelayLimitTests} over the stream relay.
    """

    relayClass = Relay


class UDPLimitTests(LoopbackTestCase):
    """
    Datagrams of an association count against its rule's buckets.
    """

    async def test_dropped(self) -> None:
        """
        Under 1 kB/s (a bucket of one L{QUANTUM}), of twenty 10,000-byte
        datagrams, the first seven go out and come back (the bucket is then
        in debt for seconds); the rest are dropped and counted, not queued.
        """
        config = _config("1kB/s")
        gateway = startGateway(self, config=config)
        echo = openUDP(self, UDPEcho())
        client = openUDP(self, UDPPeer())
        association = await associate(gateway)
        # The first decides the destination; the others go by the decision
        # kept, one at a time (a burst of them could overflow a socket's
        # receive buffer, which would drop some before the relay sees them).
        client.send(toIPv4(echo.port) + bytes([0]) * 10_000, association.relay)
        answers = [await client.nextData()]
        buckets = gateway.factory.bandwidth.existing(config.rules[0])
        for number in range(1, 20):
            client.send(toIPv4(echo.port) + bytes([number]) * 10_000, association.relay)
            for _ in range(500):
                if len(echo.payloads) + buckets.outgoing.dropped > number:
                    break
                await deferLater(reactor, 0.01, lambda: None)
        answers += [await client.nextData() for _ in range(6)]
        self.assertEqual([answer[10] for answer in answers], list(range(7)))
        self.assertEqual(len(echo.payloads), 7)
        [protocol] = gateway.sessions.open
        self.assertEqual(protocol.session.dropped, 13)
        self.assertEqual((buckets.outgoing.dropped, buckets.incoming.dropped), (13, 0))
        association.control.transport.loseConnection()
        await association.control.closed
