"""
Malformed input over real sockets: each bad connection gets its reply or a
close, and the gateway goes on serving with no state left behind.
"""

from __future__ import annotations

import random

from socksgate.config import ServerConfig
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .helpers import LoopbackTestCase, connectRaw, socks5Connect


class LoopbackDestinationsOnly:
    """
    Random bytes can spell a valid request to any address: this policy
    keeps every destination on loopback.
    """

    def decide(self, request: AccessRequest) -> Decision:
        address = request.destinationAddress
        if address is None or address.is_loopback:
            return Decision(PERMIT)
        return Decision(DENY, message="tests reach loopback only")


class MalformedInputTests(LoopbackTestCase):
    """
    Garbage in, an error reply or a close out, and service goes on.
    """

    async def assertStillServes(self, gateway: object) -> None:
        echo = startEchoServer(self)
        client = await connectRaw(gateway.port)  # type: ignore[attr-defined]
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"alive")
        self.assertEqual((await client.receive(12))[2:4], b"\x05\x00")
        self.assertEqual(await client.receive(5), b"alive")
        client.transport.loseConnection()
        await client.closed

    async def test_randomBytes(self) -> None:
        """
        Connections that send random bytes (a fixed seed, so a failure can
        be replayed) are each answered and closed, never left open; the
        gateway then serves a real request and holds no session.
        """
        gateway = startGateway(
            self,
            policy=LoopbackDestinationsOnly(),
            resolver=StaticResolver({}),
            config=ServerConfig(handshakeTimeout=5.0),
        )
        generator = random.Random(1928)
        for _ in range(60):
            junk = bytes(generator.getrandbits(8) for _ in range(generator.randint(1, 600)))
            if generator.random() < 0.5:
                junk = bytes([generator.choice((4, 5))]) + junk
            client = await connectRaw(gateway.port)
            client.transport.write(junk)
            client.transport.loseWriteConnection()
            await client.closed
        await gateway.sessions.whenEmpty()
        await self.assertStillServes(gateway)

    async def test_truncatedGreeting(self) -> None:
        """
        A SOCKS5 greeting cut short by the client's FIN is closed without
        a reply.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x05\x03\x00")
        client.transport.loseWriteConnection()
        self.assertEqual(await client.receiveAll(), b"")
        await self.assertStillServes(gateway)

    async def test_longHostname(self) -> None:
        """
        A SOCKS4a request whose host name runs 10,000 bytes without NUL is
        refused with CD 91 as soon as the limit is passed.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x04\x01\x00\x50\x00\x00\x00\x01user\x00" + b"h" * 10000)
        self.assertEqual(await client.receiveAll(), b"\x00\x5b" + b"\x00" * 6)
        await self.assertStillServes(gateway)

    async def test_unknownVersion(self) -> None:
        """
        An HTTP request sent to the SOCKS port is closed without a reply.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.assertEqual(await client.receiveAll(), b"")
        await self.assertStillServes(gateway)

    async def test_silentClient(self) -> None:
        """
        A client that connects and sends nothing is dropped after the
        handshake timeout.
        """
        gateway = startGateway(self, config=ServerConfig(handshakeTimeout=0.3))
        client = await connectRaw(gateway.port)
        self.assertEqual(await client.receiveAll(), b"")
        await client.closed
        await self.assertStillServes(gateway)
