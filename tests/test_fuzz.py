"""
A live gateway fuzzed with mutated handshakes over real loopback sockets.

Every SOCKS version and method (SOCKS4, SOCKS4a, SOCKS5 with no
authentication and with a user name and password) and every command
(CONNECT, BIND, UDP ASSOCIATE) is sent, whole or mutated: cut short, a
byte flipped, a length field changed, bytes added, the connection closed
early or reset.  The seed is fixed, so a failure is reproducible.  At the
end the gateway must still serve, nothing may have been logged as a
failure, and every session (and every UDP association) must be gone.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from socksgate.config import AuthConfig, ServerConfig, makeChecker, parseConfig
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .helpers import LoopbackTestCase, connectRaw, socks5Connect
from .test_teardown import collectFailures, waitUntilEmpty

#: How many mutated handshakes, and how many are in flight at once (fewer
#: than the listen backlog of 50, so no SYN waits to be sent again).
CASES = 3000
BATCH = 40

#: How long (seconds) a fuzz client waits for the gateway to close before
#: it closes itself: a bound on each case, not an expectation of speed.
HOLD = 0.15

USER, PASSWORD = b"fuzz", b"s3cret"

RULES = """
[[rule]]
action = "deny"
destinations = ["127.0.0.9"]
message = "not that one"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
destinations = ["127.0.0.0/8", "echo.test"]
"""


def _socks4(command: int, port: int, name: bytes | None) -> bytes:
    """
    A SOCKS4 request, or a SOCKS4a one naming C{name}.
    """
    if name is None:
        return bytes([4, command]) + struct.pack("!H", port) + b"\x7f\x00\x00\x01" + b"user\x00"
    return bytes([4, command]) + struct.pack("!H", port) + b"\x00\x00\x00\x01" + b"user\x00" + name + b"\x00"


def _socks5(command: int, port: int, atyp: int, userpass: bool) -> bytes:
    """
    A SOCKS5 greeting, the RFC 1929 sub-negotiation when C{userpass}, and
    a request.
    """
    if userpass:
        head = b"\x05\x01\x02" + b"\x01" + bytes([len(USER)]) + USER + bytes([len(PASSWORD)]) + PASSWORD
    else:
        head = b"\x05\x01\x00"
    address = {
        1: b"\x01\x7f\x00\x00\x01",
        3: b"\x03" + bytes([len(b"echo.test")]) + b"echo.test",
        4: b"\x04" + b"\x00" * 15 + b"\x01",
    }[atyp]
    return head + bytes([5, command, 0]) + address + struct.pack("!H", port)


def handshakes(echoPort: int) -> list[tuple[str, bytes]]:
    """
    The well-formed handshakes the fuzzer starts from, each with a name.
    """
    cases = []
    for command, name in ((1, "connect"), (2, "bind")):
        port = echoPort if command == 1 else 0
        cases.append((f"socks4 {name}", _socks4(command, port, None)))
        cases.append((f"socks4a {name}", _socks4(command, port, b"echo.test")))
    for command, name in ((1, "connect"), (2, "bind"), (3, "udp")):
        port = echoPort if command == 1 else 0
        for atyp in (1, 3, 4):
            for userpass in (False, True):
                method = "userpass" if userpass else "none"
                cases.append((f"socks5 {method} {name} atyp {atyp}", _socks5(command, port, atyp, userpass)))
    return cases


def mutate(rnd: random.Random, data: bytes) -> tuple[str, bytes]:
    """
    One mutation of C{data}, and its name.
    """
    kind = rnd.choice(("whole", "truncate", "flip", "length", "extra", "flip", "truncate"))
    if kind == "truncate":
        return kind, data[: rnd.randrange(len(data))]
    if kind == "flip":
        buffer = bytearray(data)
        for _ in range(rnd.randint(1, 3)):
            buffer[rnd.randrange(len(buffer))] ^= 1 << rnd.randrange(8)
        return kind, bytes(buffer)
    if kind == "length":
        # The bytes that count others: NMETHODS, ULEN, PLEN, a name's
        # length; any byte may be one in a mutated message.
        buffer = bytearray(data)
        buffer[rnd.randrange(len(buffer))] = rnd.choice((0, 1, 255, rnd.randrange(256)))
        return kind, bytes(buffer)
    if kind == "extra":
        return kind, data + rnd.randbytes(rnd.randint(1, 600))
    return kind, data


class FuzzClient(Protocol):
    """
    Sends one handshake, then ends as told: by waiting for the gateway to
    close (at most L{HOLD} seconds, then a reset), by closing, or by a
    reset (SO_LINGER 0).

    @ivar closed: fires when the connection is gone.
    """

    def __init__(self, data: bytes, ending: str, delay: float) -> None:
        self.data, self.ending, self.delay = data, ending, delay
        self.received = bytearray()
        self.closed: Deferred[None] = Deferred()
        self._call: Any = None

    def connectionMade(self) -> None:
        """
        Send the handshake and arrange the ending.
        """
        if self.ending == "split" and len(self.data) > 1:
            cut = len(self.data) // 2
            self.transport.write(self.data[:cut])
            self._call = reactor.callLater(self.delay / 2, self._rest, self.data[cut:])
            return
        self.transport.write(self.data)
        self._arrange()

    def _rest(self, data: bytes) -> None:
        self.transport.write(data)
        self._arrange()

    def _arrange(self) -> None:
        if self.ending == "close":
            self._call = reactor.callLater(self.delay, self.transport.loseConnection)
        elif self.ending == "reset":
            self._call = reactor.callLater(self.delay, self.reset)
        else:
            self._call = reactor.callLater(HOLD, self.reset)

    def reset(self) -> None:
        """
        Reset the connection: SO_LINGER 0, then close.
        """
        self._call = None
        handle = self.transport.getHandle()
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        """
        Keep what the gateway says.
        """
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Stop the ending's timer and report the end.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.closed.callback(None)


async def runCase(port: int, data: bytes, ending: str, delay: float) -> None:
    """
    Connect a L{FuzzClient} to the gateway and wait for its end.
    """
    client = FuzzClient(data, ending, delay)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    await client.closed


class LiveFuzzTests(LoopbackTestCase):
    """
    A running gateway under mutated handshakes.
    """

    timeout = 120

    async def test_mutatedHandshakes(self) -> None:
        """
        L{CASES} mutated handshakes of every version, method and command,
        sent in batches of L{BATCH} with a fixed seed, leave no logged
        failure and no session or UDP association behind, and a good
        CONNECT works afterwards.
        """
        failures = collectFailures(self)
        echo = startEchoServer(self)
        auth = AuthConfig(("userpass", "none"), makeChecker(f"memory:{USER.decode()}:{PASSWORD.decode()}"))
        gateway = startGateway(
            self,
            policy=parseConfig(RULES, "fuzz.toml").policy,
            config=ServerConfig(bindTimeout=5.0),
            resolver=StaticResolver({"echo.test": ["127.0.0.1"]}),
            auth=auth,
        )
        rnd = random.Random(20261121)
        bases = handshakes(echo.port)
        endings: list[str] = ["wait", "wait", "close", "reset", "reset", "split"]
        done = 0
        while done < CASES:
            batch: list[Deferred[None]] = []
            for _ in range(min(BATCH, CASES - done)):
                _, base = rnd.choice(bases)
                _, data = mutate(rnd, base)
                ending = rnd.choice(endings)
                batch.append(Deferred.fromCoroutine(runCase(gateway.port, data, ending, rnd.random() * 0.02)))
            results = await DeferredList(batch, consumeErrors=True)
            self.assertEqual([r for ok, r in results if not ok], [])
            done += len(batch)

        await waitUntilEmpty(self, gateway)
        self.assertEqual(dict(gateway.sessions.associations), {})
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, 1))
        reply = await client.receive(12)
        self.assertEqual(reply[:4], b"\x05\x00\x05\x00")
        client.transport.write(b"still serving")
        self.assertEqual(await client.receive(13), b"still serving")
        client.transport.loseConnection()
        await client.closed
        await waitUntilEmpty(self, gateway)
        self.assertEqual(failures, [])
