"""
The stream relay of a TCP session, over in-memory transports.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from socksgate.relay import Relay, makeRelay


class RelayTransport(StringTransport):
    """
    A L{StringTransport} that half-closes, and unregisters its producer as
    a TCP transport does: also when none is registered.

    @ivar writeClosed: whether C{loseWriteConnection} was called.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        """
        Note the half-close.
        """
        self.writeClosed = True

    def unregisterProducer(self) -> None:
        """
        Forget the producer, if any.
        """
        self.producer = None
        self.streaming = None


class RelayTests(SynchronousTestCase):
    """
    L{Relay} passes bytes both ways, counts them, passes half-closes on,
    and ends the session once, for the reason that ended it.
    """

    def setUp(self) -> None:
        self.client, self.destination = RelayTransport(), RelayTransport()
        self.clock = Clock()
        self.ended: list[str] = []
        self.closed: list[None] = []

    def relay(self, idleTimeout: float = 0.0) -> Relay:
        """
        A relay of the two transports, built as the gateway builds one.
        """
        return makeRelay(
            self.client, self.destination, self.ended.append, self.clock, idleTimeout,
            lambda: self.closed.append(None),
        )  # fmt: skip

    def assertBothClosing(self) -> None:
        """
        Both connections are being closed, with no producer left to wait for.
        """
        self.assertEqual((self.client.disconnecting, self.destination.disconnecting), (True, True))
        self.assertEqual((self.client.producer, self.destination.producer), (None, None))

    def test_makeRelay(self) -> None:
        """
        L{makeRelay} builds the stream L{Relay} of the two transports.
        """
        relay = self.relay()
        self.assertIsInstance(relay, Relay)
        self.assertEqual((relay.client, relay.destination), (self.client, self.destination))

    def test_producersBothWays(self) -> None:
        """
        Starting registers each transport as the streaming producer of the
        other, and resumes both (the destination was paused until then).
        """
        self.client.pauseProducing()
        self.destination.pauseProducing()
        self.relay().start()
        self.assertIs(self.destination.producer, self.client)
        self.assertIs(self.client.producer, self.destination)
        self.assertEqual((self.client.streaming, self.destination.streaming), (True, True))
        self.assertEqual(
            (self.client.producerState, self.destination.producerState), ("producing", "producing")
        )

    def test_bytesBothWaysCounted(self) -> None:
        """
        Bytes pass unchanged both ways and are counted exactly, whatever the
        sizes of the writes.
        """
        relay = self.relay()
        relay.start()
        sent = [b"a" * 7, b"b" * 1, b"c" * 65537]
        for chunk in sent:
            relay.fromClient(chunk)
        relay.fromDestination(b"d" * 13)
        relay.fromDestination(b"e" * 4099)
        self.assertEqual(self.destination.value(), b"".join(sent))
        self.assertEqual(self.client.value(), b"d" * 13 + b"e" * 4099)
        self.assertEqual((relay.bytesOut, relay.bytesIn), (65545, 4112))

    def test_initialDataAndClientFinished(self) -> None:
        """
        The bytes that came after the request go to the destination first,
        counted, and a client that had already finished has its FIN passed
        on at start.
        """
        relay = self.relay()
        relay.start(b"early bird", clientFinished=True)
        self.assertEqual(self.destination.value(), b"early bird")
        self.assertEqual(relay.bytesOut, 10)
        self.assertTrue(self.destination.writeClosed)
        self.assertIsNone(self.destination.producer)
        self.assertEqual(self.ended, [])

    def test_clientFinishesFirst(self) -> None:
        """
        The client's FIN is passed on with C{loseWriteConnection}; the
        destination's bytes still reach the client, and the session ends
        when the destination finishes too.
        """
        relay = self.relay()
        relay.start()
        relay.clientFinished()
        self.assertTrue(self.destination.writeClosed)
        self.assertFalse(self.client.writeClosed)
        self.assertEqual(self.ended, [])
        relay.fromDestination(b"answer")
        self.assertEqual(self.client.value(), b"answer")
        relay.destinationFinished()
        self.assertTrue(self.client.writeClosed)
        self.assertEqual(self.ended, ["both sides finished"])
        self.assertBothClosing()

    def test_destinationFinishesFirst(self) -> None:
        """
        The destination's FIN is passed on to the client; the client's bytes
        still reach the destination, and a repeated FIN changes nothing.
        """
        relay = self.relay()
        relay.start()
        relay.destinationFinished()
        relay.destinationFinished()
        self.assertTrue(self.client.writeClosed)
        self.assertFalse(self.destination.writeClosed)
        relay.fromClient(b"more")
        self.assertEqual(self.destination.value(), b"more")
        self.assertEqual(self.ended, [])
        relay.clientFinished()
        self.assertEqual(self.ended, ["both sides finished"])

    def test_clientLostClosesDestination(self) -> None:
        """
        The client's lost connection closes the destination's and ends the
        session; C{onClosed} waits for both connections to be gone.
        """
        relay = self.relay()
        relay.start()
        relay.clientLost(Failure(ConnectionLost()))
        self.assertTrue(self.destination.disconnecting)
        self.assertEqual(self.ended, ["client closed"])
        self.assertEqual(self.closed, [])
        relay.destinationLost(Failure(ConnectionDone()))
        self.assertEqual(self.ended, ["client closed"])
        self.assertEqual(self.closed, [None])

    def test_destinationLostClosesClient(self) -> None:
        """
        The destination's lost connection closes the client's.
        """
        relay = self.relay()
        relay.start()
        relay.destinationLost(Failure(ConnectionLost()))
        self.assertTrue(self.client.disconnecting)
        self.assertIsNone(self.client.producer)
        self.assertEqual(self.ended, ["destination closed"])
        relay.clientLost(Failure(ConnectionDone()))
        self.assertEqual(self.closed, [None])

    def test_idleTimeout(self) -> None:
        """
        A session with no byte either way for C{idleTimeout} seconds ends;
        each byte relayed starts the count again.
        """
        relay = self.relay(idleTimeout=10.0)
        relay.start()
        self.clock.advance(9.0)
        relay.fromDestination(b"x")
        self.clock.advance(9.5)
        self.assertEqual(self.ended, [])
        self.clock.advance(0.5)
        self.assertEqual(self.ended, ["idle timeout"])
        self.assertBothClosing()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noIdleTimeout(self) -> None:
        """
        With no idle timeout, no timer is set.
        """
        self.relay().start()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closeCancelsIdleTimer(self) -> None:
        """
        Closing from outside ends the session for the reason given, closes
        both connections, and stops the idle timer.
        """
        relay = self.relay(idleTimeout=10.0)
        relay.start()
        relay.close("shutdown")
        self.assertEqual(self.ended, ["shutdown"])
        self.assertBothClosing()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        relay.close("again")
        self.assertEqual(self.ended, ["shutdown"])

    def test_abort(self) -> None:
        """
        Aborting drops both connections at once.
        """
        relay = self.relay()
        relay.start()
        relay.abort()
        self.assertEqual((self.client.disconnected, self.destination.disconnected), (True, True))
