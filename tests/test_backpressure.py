"""
Back-pressure: a destination that sends far more than a client reads does
not make the gateway buffer without bound, with either relay.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater

from socksgate.relay import Relay
from socksgate.splicing import PIPE_SIZE, SpliceRelay
from socksgate.testing import startGateway, startSourceServer

from .helpers import LoopbackTestCase, StreamRelay, connectRaw, socks5Connect

SIZE = 64 * 1024 * 1024
BOUND = 512 * 1024


def bufferedBytes(transport: object) -> int:
    """
    The bytes a Twisted TCP transport holds in its own write buffer.
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen  # type: ignore[attr-defined]


def heldBytes(relay: Relay | SpliceRelay) -> int:
    """
    The bytes the gateway holds for a session: in its transports' write
    buffers (the stream relay), or in its pipes (the zero-copy relay).
    """
    held = bufferedBytes(relay.client) + bufferedBytes(relay.destination)
    if isinstance(relay, SpliceRelay):
        held += relay.inFlight
    return held


def sourcePaused(relay: Relay | SpliceRelay) -> bool:
    """
    Whether the relay has stopped reading the destination (the source).
    """
    if isinstance(relay, SpliceRelay):
        return not relay._destination.reading
    return bool(relay.client.producerPaused)  # type: ignore[attr-defined]


class BackPressureTests(LoopbackTestCase):
    """
    The relay stops reading from one side while the other cannot keep up.
    """

    async def test_slowReaderBoundsBuffer(self) -> None:
        """
        A source sends 64 MB to a client that reads nothing after the
        reply.  The gateway stops reading from the source, the source is
        paused, and the gateway's own buffers never held more than a few
        hundred KB on the way there.
        """
        gateway = startGateway(self)
        source = startSourceServer(self, SIZE)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", source.port, atyp=1))
        reply = await client.receive(12)
        self.assertEqual(reply[2:4], b"\x05\x00")
        client.transport.pauseProducing()

        [session] = gateway.sessions.open
        relay = session.session
        sender = source.connections[0]
        largest = 0
        stalled: Deferred[None] = Deferred()

        def sample() -> None:
            nonlocal largest
            largest = max(largest, heldBytes(relay))
            stalledOrDone = (sender.paused and sourcePaused(relay)) or sender.sent >= SIZE
            if stalledOrDone and not stalled.called:
                stalled.callback(None)

        sampler = LoopingCall(sample)
        sampler.start(0.001)
        self.addCleanup(lambda: sampler.running and sampler.stop())
        await stalled
        # Let whatever was in flight settle, then look again.
        await deferLater(reactor, 0.2, sample)
        sampler.stop()

        self.assertTrue(sender.paused, "the source was never made to wait")
        self.assertLess(sender.sent, SIZE)
        self.assertLess(largest, BOUND)
        self.assertLess(relay.bytesIn, SIZE)
        if isinstance(relay, SpliceRelay):
            # One pipe at most, and the reply long delivered.
            self.assertLessEqual(relay.inFlight, PIPE_SIZE)
            self.assertFalse(relay._destination.reading)


class StreamBackPressureTests(StreamRelay, BackPressureTests):
    """
    L{BackPressureTests} over the stream relay.
    """
