"""
The guard against events of a descriptor closed and reused within one poll:
on a fresh epoll (and poll) reactor driven by hand with real sockets, and in
a real twistd under the load that first showed the fault.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.abstract import FileDescriptor
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.pollreactor import PollReactor
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from socksgate.descriptors import guardAgainstDescriptorReuse

from .helpers import LoopbackTestCase, connectRaw, listeningPort, startProcess
from .test_twistd import TWISTD


class Descriptor(FileDescriptor):
    """
    A socket under a hand-driven reactor, which records what it is told.
    """

    def __init__(self, testReactor: Any, sock: socket.socket, onRead: Any = None) -> None:
        super().__init__(testReactor)
        self.socket = sock
        self.onRead = onRead
        self.calls: list[str] = []
        self.connected = True

    def fileno(self) -> int:
        """
        The socket's descriptor.
        """
        return self.socket.fileno()

    def doRead(self) -> None:
        """
        Note it, read what is there, and run C{onRead}.
        """
        self.calls.append("read")
        self.socket.recv(100)
        if self.onRead is not None:
            self.onRead()

    def doWrite(self) -> None:
        """
        Note it.
        """
        self.calls.append("write")

    def connectionLost(self, reason: Any) -> None:
        """
        Note it.
        """
        self.calls.append("lost")


class ReuseWithinOnePollTests(SynchronousTestCase):
    """
    A reader whose handling closes a writer and opens a new socket, which
    gets the writer's number, within the same poll.
    """

    def scenario(self, testReactor: Any) -> tuple[Descriptor, Descriptor]:
        """
        Register a readable descriptor, then an always writable one; when
        the first is read, it closes the second and registers a new
        listening socket in its place.

        @return: the reader and the new descriptor, after one iteration.
        """
        readable, peer = socket.socketpair()
        writable, other = socket.socketpair()
        self.addCleanup(readable.close)
        self.addCleanup(peer.close)
        self.addCleanup(other.close)
        peer.send(b"x")
        replacement: list[Descriptor] = []
        writer = Descriptor(testReactor, writable)

        def closeAndReplace() -> None:
            number = writable.fileno()
            testReactor.removeWriter(writer)
            writable.close()
            listener = socket.socket()
            self.addCleanup(listener.close)
            self.assertEqual(listener.fileno(), number, "the number was not reused")
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            new = Descriptor(testReactor, listener)
            testReactor.addReader(new)
            replacement.append(new)

        reader = Descriptor(testReactor, readable, closeAndReplace)
        testReactor.addReader(reader)
        testReactor.addWriter(writer)
        testReactor.doIteration(0)
        self.assertEqual(reader.calls, ["read"])
        self.addCleanup(testReactor.removeAll)
        return reader, replacement[0]

    def test_unguardedEPoll(self) -> None:
        """
        Without the guard, the new listening socket is handed the closed
        socket's "writable" event: the fault the guard is for.
        """
        reader, new = self.scenario(EPollReactor())
        self.assertEqual(new.calls, ["write"])

    def test_guardedEPoll(self) -> None:
        """
        With the guard, the closed descriptor's event is skipped; the new
        socket gets only its own events, from the next poll on.
        """
        testReactor = EPollReactor()
        self.assertTrue(guardAgainstDescriptorReuse(testReactor))
        reader, new = self.scenario(testReactor)
        self.assertEqual(new.calls, [])
        testReactor.doIteration(0)
        self.assertEqual(new.calls, [])

    def test_registrationCallsBound(self) -> None:
        """
        The calls the reactor makes on every registration change
        (C{register}, C{modify}, C{unregister}) are the poller's own, bound
        on the guard once, not looked up through C{__getattr__} each time.
        """
        for testReactor in (EPollReactor(), PollReactor()):
            original = testReactor._poller
            self.assertTrue(guardAgainstDescriptorReuse(testReactor))
            guard = vars(testReactor._poller)
            for name in ("register", "modify", "unregister"):
                if hasattr(original, name):
                    self.assertEqual(guard[name], getattr(original, name))

    def test_guardedPoll(self) -> None:
        """
        The poll reactor is guarded the same way.
        """
        testReactor = PollReactor()
        self.assertTrue(guardAgainstDescriptorReuse(testReactor))
        reader, new = self.scenario(testReactor)
        self.assertEqual(new.calls, [])

    def test_selectLeftAlone(self) -> None:
        """
        The select reactor, which checks each object itself, is left as it
        is; guarding twice is harmless.
        """
        self.assertFalse(guardAgainstDescriptorReuse(SelectReactor()))
        testReactor = EPollReactor()
        self.assertTrue(guardAgainstDescriptorReuse(testReactor))
        self.assertTrue(guardAgainstDescriptorReuse(testReactor))


#: A client that opens 150 BINDs and 300 CONNECTs to a closed port, resets
#: the CONNECTs at once, connects peers to half the BIND ports, and resets
#: or closes everything, for a few rounds.
LOAD = """
import random, socket, struct, sys, time
port, closed = int(sys.argv[1]), int(sys.argv[2])
random.seed(7)
def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
for _ in range(3):
    binds, connects, peers = [], [], []
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
        s.send(b"\\x05\\x01\\x00\\x05\\x02\\x00\\x01\\x7f\\x00\\x00\\x01\\x00\\x00"); binds.append(s)
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
        s.send(b"\\x05\\x01\\x00\\x05\\x01\\x00\\x01\\x7f\\x00\\x00\\x01" + closed.to_bytes(2, "big"))
        connects.append(s)
    for s in connects:
        reset(s)
    time.sleep(0.05)
    for s in binds:
        try:
            reply = s.recv(100)
        except OSError:
            continue
        if len(reply) >= 12 and reply[3] == 0 and random.random() < 0.5:
            q = socket.socket(); q.setblocking(False)
            q.connect_ex(("127.0.0.1", int.from_bytes(reply[10:12], "big"))); peers.append(q)
    for s in binds:
        reset(s) if random.random() < 0.5 else s.close()
    for q in peers:
        reset(q)
    time.sleep(0.05)
print("done", flush=True)
"""


class LoadTests(LoopbackTestCase):
    """
    The load that showed the fault, against a real twistd.
    """

    timeout = 120

    async def test_bindsWhileClientsReset(self) -> None:
        """
        150 BINDs at a time while 300 clients CONNECT to a closed port and
        reset, three rounds: twistd logs no Unhandled Error (without the
        guard it logs hundreds), still serves, and stops cleanly.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closedPort = probe.getsockname()[1]
        path = os.path.abspath(self.mktemp())
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--access-log", path,
                      "--listen", "tcp:0:interface=127.0.0.1:backlog=1024"],
            b"starting on ",
        )  # fmt: skip
        port = listeningPort(process.output)
        load, loader = await startProcess(self, [sys.executable, "-c", LOAD, str(port), str(closedPort)], b"")
        self.assertEqual(await loader.ended, (0, None), loader.output)

        def recorded() -> int:
            if not os.path.exists(path):
                return 0
            with open(path, "rb") as stream:
                return stream.read().count(b"\n")

        # Wait (30 s at most) until no record has come for a second: the
        # gateway has handled the load.  (A connection reset before the
        # gateway read its request leaves no record: nothing was asked.)
        counts = [-1]
        for _ in range(150):
            counts.append(recorded())
            if len(counts) > 5 and counts[-1] == counts[-6]:
                break
            await deferLater(reactor, 0.2, lambda: None)
        client = await connectRaw(port)
        client.transport.write(b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x00")
        reply = await client.receive(12)
        self.assertEqual(reply[:4], b"\x05\x00\x05\x00", process.output[-3000:])
        client.transport.loseConnection()
        await client.closed
        transport.signalProcess("TERM")
        await process.ended
        self.assertNotIn(b"Unhandled", process.output)
        self.assertNotIn(b"Traceback", process.output)
        with open(path, "rb") as stream:
            records = stream.read().splitlines()
        self.assertEqual(len(records), counts[-1] + 1)
