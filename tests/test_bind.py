"""
BIND for SOCKS4 and SOCKS5, with clients written from the protocol
documents: both replies, data both ways, a wrong peer refused while the
wait goes on, the timeout, the policy, and the session record.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from twisted.internet import error, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from socksgate.config import ServerConfig, parseConfig
from socksgate.testing import startGateway

from .helpers import LoopbackTestCase, RawClient, StreamRelay, collectSessions, connectRaw


def socks5Bind(address: bytes = b"\x7f\x00\x00\x01", port: int = 0) -> bytes:
    """
    A SOCKS5 greeting and a BIND request for an IPv4 address.
    """
    return b"\x05\x01\x00" + b"\x05\x02\x00\x01" + address + port.to_bytes(2, "big")


def socks4Bind(address: bytes = b"\x7f\x00\x00\x01", port: int = 0, userid: bytes = b"") -> bytes:
    """
    A SOCKS4 BIND request.
    """
    return b"\x04\x02" + port.to_bytes(2, "big") + address + userid + b"\x00"


async def connectFrom(source: str, port: int) -> RawClient:
    """
    Connect to 127.0.0.1:port from the loopback address C{source}, as the
    application server a BIND waits for would.
    """
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0))
    return await connectProtocol(endpoint, RawClient())


class SOCKS5BindTests(LoopbackTestCase):
    """
    SOCKS5 BIND (RFC 1928, section 4).
    """

    async def test_bothRepliesAndData(self) -> None:
        """
        The first reply gives the address and port to connect to; the
        connection from the expected host gets the second reply with its
        own address; then bytes pass both ways and the record has both.
        """
        gateway = startGateway(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind() + b"early")
        self.assertEqual(await client.receive(2), b"\x05\x00")
        first = await client.receive(10)
        self.assertEqual(first[:4], b"\x05\x00\x00\x01")
        self.assertEqual(first[4:8], b"\x7f\x00\x00\x01")
        listening = int.from_bytes(first[8:10], "big")

        peer = await connectFrom("127.0.0.1", listening)
        peerPort = peer.transport.getHost().port
        second = await client.receive(10)
        self.assertEqual(second[:8], b"\x05\x00\x00\x01\x7f\x00\x00\x01")
        self.assertEqual(int.from_bytes(second[8:10], "big"), peerPort)
        self.assertEqual(await peer.receive(5), b"early")
        peer.transport.write(b"from the peer")
        self.assertEqual(await client.receive(13), b"from the peer")
        client.transport.write(b"from the client")
        self.assertEqual(await peer.receive(15), b"from the client")

        peer.transport.loseConnection()
        await client.closed
        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual(record["command"], "bind")
        self.assertEqual(record["outcome"], "closed")
        self.assertEqual(record["bind"], f"127.0.0.1:{listening}")
        self.assertEqual(record["peer"], f"127.0.0.1:{peerPort}")
        self.assertEqual((record["bytes_out"], record["bytes_in"]), (20, 13))

    async def test_wrongPeerRefused(self) -> None:
        """
        A connection from another host than DST.ADDR is closed, and the
        gateway goes on waiting for the expected one.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind(address=IPv4Address("127.0.0.2").packed))
        await client.receive(2)
        listening = int.from_bytes((await client.receive(10))[8:10], "big")

        stranger = await connectFrom("127.0.0.1", listening)
        await stranger.closed
        self.assertEqual(client.buffer, b"")

        expected = await connectFrom("127.0.0.2", listening)
        second = await client.receive(10)
        self.assertEqual(second[:8], b"\x05\x00\x00\x01\x7f\x00\x00\x02")
        expected.transport.write(b"hi")
        self.assertEqual(await client.receive(2), b"hi")
        client.transport.loseConnection()
        await expected.closed

    async def test_anyPeer(self) -> None:
        """
        DST.ADDR all zeros: any host may connect.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind(address=b"\x00\x00\x00\x00"))
        await client.receive(2)
        listening = int.from_bytes((await client.receive(10))[8:10], "big")
        peer = await connectFrom("127.0.0.3", listening)
        self.assertEqual((await client.receive(10))[4:8], b"\x7f\x00\x00\x03")
        client.transport.loseConnection()
        await peer.closed

    async def test_timeout(self) -> None:
        """
        No connection within bind-timeout: REP 0x06, and the listening port
        is closed.
        """
        gateway = startGateway(self, config=ServerConfig(bindTimeout=0.3))
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind())
        await client.receive(2)
        listening = int.from_bytes((await client.receive(10))[8:10], "big")
        self.assertEqual((await client.receiveAll())[:2], b"\x05\x06")
        await gateway.sessions.whenEmpty()
        self.assertEqual(records[0]["outcome"], "timeout")
        with self.assertRaises(error.ConnectionRefusedError):
            await connectRaw(listening)

    async def test_policyDeniesBind(self) -> None:
        """
        The policy decides bind like any command: denied, REP 0x02 and no
        listening port.
        """
        rules = '[[rule]]\naction = "permit"\ncommands = ["connect"]\n'
        gateway = startGateway(self, policy=parseConfig(rules, "r.toml").policy)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind())
        await client.receive(2)
        self.assertEqual((await client.receive(10))[:2], b"\x05\x02")

    async def test_policyDeniesPeer(self) -> None:
        """
        The policy decides again for the incoming peer: a peer on a denied
        address is refused though DST.ADDR allows any.
        """
        rules = (
            '[[rule]]\naction = "deny"\ncommands = ["bind"]\ndestinations = ["127.0.0.5"]\n'
            '[[rule]]\naction = "permit"\n'
        )
        gateway = startGateway(self, policy=parseConfig(rules, "r.toml").policy)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind(address=b"\x00\x00\x00\x00"))
        await client.receive(2)
        listening = int.from_bytes((await client.receive(10))[8:10], "big")
        denied = await connectFrom("127.0.0.5", listening)
        await denied.closed
        allowed = await connectFrom("127.0.0.6", listening)
        self.assertEqual((await client.receive(10))[4:8], b"\x7f\x00\x00\x06")
        client.transport.loseConnection()
        await allowed.closed

    async def test_clientLeavesWhileWaiting(self) -> None:
        """
        A client that leaves during the wait closes the listening port and
        leaves nothing behind.
        """
        gateway = startGateway(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind())
        await client.receive(12)
        client.transport.loseConnection()
        await gateway.sessions.whenEmpty()
        self.assertEqual(records[0]["outcome"], "failed")


class SOCKS4BindTests(LoopbackTestCase):
    """
    SOCKS4 BIND (the SOCKS4 protocol document).
    """

    async def test_bothReplies(self) -> None:
        """
        Two replies with CD 90; the first carries DSTPORT/DSTIP of the
        listening socket; data passes both ways.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks4Bind(userid=b"ftp"))
        first = await client.receive(8)
        self.assertEqual(first[:2], b"\x00\x5a")
        self.assertEqual(first[4:8], b"\x7f\x00\x00\x01")
        listening = int.from_bytes(first[2:4], "big")
        peer = await connectFrom("127.0.0.1", listening)
        second = await client.receive(8)
        self.assertEqual(second[:2], b"\x00\x5a")
        self.assertEqual(second[4:8], b"\x7f\x00\x00\x01")
        peer.transport.write(b"data")
        self.assertEqual(await client.receive(4), b"data")
        client.transport.write(b"back")
        self.assertEqual(await peer.receive(4), b"back")
        client.transport.loseConnection()
        await peer.closed

    async def test_wrongPeerAndTimeout(self) -> None:
        """
        A peer other than DSTIP is refused; with nobody else, bind-timeout
        ends the wait with CD 91.
        """
        gateway = startGateway(self, config=ServerConfig(bindTimeout=0.5))
        client = await connectRaw(gateway.port)
        client.transport.write(socks4Bind(address=IPv4Address("127.0.0.2").packed))
        listening = int.from_bytes((await client.receive(8))[2:4], "big")
        stranger = await connectFrom("127.0.0.1", listening)
        await stranger.closed
        self.assertEqual(await client.receiveAll(), b"\x00\x5b" + b"\x00" * 6)


class AddressFamilyTests(LoopbackTestCase):
    """
    BIND across address families: the gateway listens on an address of the
    peer's family, whatever family the client reached it with.
    """

    async def bindOverIPv6(self, request: bytes, firstLength: int) -> tuple[RawClient, bytes]:
        """
        Send C{request} to a gateway listening on ::1, and read the first
        reply (C{firstLength} bytes after any method selection).
        """
        gateway = startGateway(self, interface="::1")
        self.gateway = gateway
        client = await connectRaw(gateway.port, host="::1")
        client.transport.write(request)
        if request[0] == 5:
            self.assertEqual(await client.receive(2), b"\x05\x00")
        return client, await client.receive(firstLength)

    async def finish(self, client: RawClient, listening: int, second: bytes) -> None:
        """
        Connect the peer from 127.0.0.1 to C{listening}, check the second
        reply (SOCKS5: 10 bytes, SOCKS4: 8) starts with C{second} and that
        bytes pass, then close.
        """
        peer = await connectFrom("127.0.0.1", listening)
        reply = await client.receive(10 if second[0] == 5 else 8)
        self.assertEqual(reply[: len(second)], second)
        peer.transport.write(b"hello")
        self.assertEqual(await client.receive(5), b"hello")
        peer.transport.loseConnection()
        await client.closed
        await self.gateway.sessions.whenEmpty()

    async def test_socks5IPv4PeerOverIPv6(self) -> None:
        """
        SOCKS5 BIND over ::1 for peer 127.0.0.1: the first reply announces
        127.0.0.1 (ATYP 1), and the peer connecting there is accepted.
        """
        client, first = await self.bindOverIPv6(socks5Bind(), 10)
        self.assertEqual(first[:8], b"\x05\x00\x00\x01\x7f\x00\x00\x01")
        await self.finish(client, int.from_bytes(first[8:10], "big"), b"\x05\x00\x00\x01\x7f\x00\x00\x01")

    async def test_socks4OverIPv6(self) -> None:
        """
        SOCKS4 BIND over ::1 for DSTIP 127.0.0.1: CD 90 with 127.0.0.1 and
        a port on it, where the IPv4 peer can connect.
        """
        client, first = await self.bindOverIPv6(socks4Bind(), 8)
        self.assertEqual((first[:2], first[4:8]), (b"\x00\x5a", b"\x7f\x00\x00\x01"))
        await self.finish(client, int.from_bytes(first[2:4], "big"), b"\x00\x5a")


class StreamSOCKS5BindTests(StreamRelay, SOCKS5BindTests):
    """
    L{SOCKS5BindTests} over the stream relay.
    """


class StreamSOCKS4BindTests(StreamRelay, SOCKS4BindTests):
    """
    L{SOCKS4BindTests} over the stream relay.
    """


class StreamAddressFamilyTests(StreamRelay, AddressFamilyTests):
    """
    L{AddressFamilyTests} over the stream relay.
    """
