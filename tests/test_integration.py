"""
The gateway over real loopback sockets, driven byte by byte as the
protocol documents describe.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

from socksgate.config import ServerConfig
from socksgate.testing import StaticResolver, startEchoServer, startGateway, startSinkServer

from .helpers import (
    AnswerAfterFIN,
    LoopbackTestCase,
    SpeakThenFIN,
    StreamRelay,
    collectSessions,
    connectRaw,
    freePort,
    socks4aConnect,
    socks4Connect,
    socks5Connect,
)

SUCCESS_V4_HEAD = b"\x05\x00\x00\x01"


class SOCKS5ConnectTests(LoopbackTestCase):
    """
    SOCKS5 CONNECT to IPv4, IPv6 and named destinations.
    """

    async def test_connectIPv4(self) -> None:
        """
        The reply is success with BND.ADDR/BND.PORT the gateway's own end
        of the outgoing connection, and bytes are relayed both ways.
        """
        gateway, echo = startGateway(self), startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        reply = await client.receive(10)
        self.assertEqual(reply[:4], SUCCESS_V4_HEAD)
        self.assertEqual(reply[4:8], b"\x7f\x00\x00\x01")
        outgoing = echo.connections[0].transport.getPeer()
        self.assertEqual(int.from_bytes(reply[8:10], "big"), outgoing.port)
        client.transport.write(b"ping" * 1000)
        self.assertEqual(await client.receive(4000), b"ping" * 1000)
        client.transport.loseConnection()
        await client.closed

    async def test_connectIPv6(self) -> None:
        """
        A request with ATYP 4 reaches an IPv6 destination, and the reply's
        BND.ADDR is IPv6 too.
        """
        gateway, echo = startGateway(self), startEchoServer(self, interface="::1")
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x00" * 15 + b"\x01", echo.port, atyp=4))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        reply = await client.receive(22)
        self.assertEqual(reply[:4], b"\x05\x00\x00\x04")
        self.assertEqual(reply[4:20], b"\x00" * 15 + b"\x01")
        client.transport.write(b"six")
        self.assertEqual(await client.receive(3), b"six")
        client.transport.loseConnection()

    async def test_connectName(self) -> None:
        """
        A name is resolved through the gateway's resolver and connected.
        """
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        gateway, echo = startGateway(self, resolver=resolver), startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"echo.test", echo.port))
        await client.receive(2)
        self.assertEqual((await client.receive(10))[:4], SUCCESS_V4_HEAD)
        client.transport.write(b"named")
        self.assertEqual(await client.receive(5), b"named")
        self.assertEqual(resolver.asked, ["echo.test"])
        client.transport.loseConnection()

    async def test_nameTriesEveryAddress(self) -> None:
        """
        When the first address a name resolves to refuses, the next one is
        tried, as HostnameEndpoint does.
        """
        echo = startEchoServer(self)
        resolver = StaticResolver({"two.test": ["127.0.0.2", "127.0.0.1"]})
        gateway = startGateway(self, resolver=resolver)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"two.test", echo.port))
        await client.receive(2)
        self.assertEqual((await client.receive(10))[:4], SUCCESS_V4_HEAD)
        client.transport.write(b"x")
        self.assertEqual(await client.receive(1), b"x")
        client.transport.loseConnection()

    async def test_earlyDataIsRelayed(self) -> None:
        """
        Bytes sent in the same write as the greeting and request are not
        lost: they reach the destination once it is connected.
        """
        gateway, echo = startGateway(self), startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"localhost", echo.port) + b"early bird")
        await client.receive(2)
        await client.receive(10)
        self.assertEqual(await client.receive(10), b"early bird")
        client.transport.loseConnection()

    async def test_connectionRefused(self) -> None:
        """
        A destination port nobody listens on gets REP 0x05.
        """
        gateway = startGateway(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", freePort(), atyp=1))
        await client.receive(2)
        self.assertEqual(await client.receive(10), b"\x05\x05\x00\x01" + b"\x00" * 6)
        await client.closed
        self.assertEqual([r["outcome"] for r in records], ["failed"])
        self.assertEqual(records[0]["reply"], 5)

    async def test_nameDoesNotResolve(self) -> None:
        """
        A name that resolves to nothing gets REP 0x04.
        """
        resolver = StaticResolver({})
        gateway = startGateway(self, resolver=resolver)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"nowhere.test", 80))
        await client.receive(2)
        self.assertEqual(await client.receive(10), b"\x05\x04\x00\x01" + b"\x00" * 6)
        await client.closed
        self.assertEqual(resolver.asked, ["nowhere.test"])

    async def test_externalOfOtherFamily(self) -> None:
        """
        With an IPv4 C{external} address, an IPv6 destination cannot be
        reached: REP 0x03, network unreachable.
        """
        gateway = startGateway(self, config=ServerConfig(external="127.0.0.1"))
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x00" * 15 + b"\x01", 80, atyp=4))
        await client.receive(2)
        self.assertEqual((await client.receive(10))[:2], b"\x05\x03")

    async def test_externalIsSourceAddress(self) -> None:
        """
        Outgoing connections leave from the C{external} address.
        """
        gateway = startGateway(self, config=ServerConfig(external="127.0.0.3"))
        echo = startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1))
        await client.receive(2)
        reply = await client.receive(10)
        self.assertEqual(reply[4:8], IPv4Address("127.0.0.3").packed)
        self.assertEqual(echo.connections[0].transport.getPeer().host, "127.0.0.3")
        client.transport.loseConnection()

    async def test_disabledCommand(self) -> None:
        """
        Commands left out of [server] commands get REP 0x07.
        """
        gateway = startGateway(self, config=ServerConfig(commands=frozenset({"connect"})))
        for command in (2, 3):
            client = await connectRaw(gateway.port)
            client.transport.write(b"\x05\x01\x00\x05" + bytes([command]) + b"\x00\x01" + b"\x00" * 6)
            await client.receive(2)
            self.assertEqual((await client.receive(10))[:2], b"\x05\x07")
            await client.closed

    async def test_disabledVersion(self) -> None:
        """
        With only SOCKS4 enabled, a SOCKS5 greeting is answered with
        "no acceptable methods".
        """
        gateway = startGateway(self, config=ServerConfig(versions=frozenset({"4"})))
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x05\x01\x00")
        self.assertEqual(await client.receiveAll(), b"\x05\xff")


class SOCKS4ConnectTests(LoopbackTestCase):
    """
    SOCKS4 and SOCKS4a CONNECT.
    """

    async def test_socks4(self) -> None:
        """
        A SOCKS4 request is granted with CD 90 and relayed; the USERID is
        recorded as the claimed user.
        """
        gateway, echo = startGateway(self), startEchoServer(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks4Connect(echo.port, userid=b"alice"))
        reply = await client.receive(8)
        self.assertEqual(reply[:2], b"\x00\x5a")
        client.transport.write(b"four")
        self.assertEqual(await client.receive(4), b"four")
        client.transport.loseConnection()
        await client.closed
        await gateway.sessions.whenEmpty()
        self.assertEqual(records[0]["user"], "alice")
        self.assertEqual(records[0]["version"], "4")
        self.assertEqual((records[0]["bytes_out"], records[0]["bytes_in"]), (4, 4))

    async def test_socks4a(self) -> None:
        """
        A SOCKS4a request's host name is resolved by the gateway.
        """
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        gateway, echo = startGateway(self, resolver=resolver), startEchoServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks4aConnect(echo.port, b"echo.test") + b"early")
        self.assertEqual((await client.receive(8))[:2], b"\x00\x5a")
        self.assertEqual(await client.receive(5), b"early")
        client.transport.loseConnection()

    async def test_socks4Refused(self) -> None:
        """
        A refused connection gets CD 91.
        """
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks4Connect(freePort()))
        self.assertEqual((await client.receiveAll())[:2], b"\x00\x5b")


class HalfCloseTests(LoopbackTestCase):
    """
    A FIN from either side is passed on, and the other direction goes on.
    """

    async def listen(self, protocol: Protocol) -> int:
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def test_clientFinishesFirst(self) -> None:
        """
        A client that shuts down its sending side still receives the
        destination's answer, and the session then ends.
        """
        destination = AnswerAfterFIN()
        port = await self.listen(destination)
        gateway = startGateway(self)
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", port, atyp=1))
        await client.receive(12)
        client.transport.write(b"question")
        client.transport.loseWriteConnection()
        self.assertEqual(await client.receiveAll(), b"answer to question")
        await client.closed
        await destination.done
        await gateway.sessions.whenEmpty()
        self.assertEqual(records[0]["outcome"], "closed")
        self.assertEqual((records[0]["bytes_out"], records[0]["bytes_in"]), (8, 18))

    async def test_clientFinishesWithRequest(self) -> None:
        """
        A client that sends its request, data and FIN all at once gets the
        answer: the FIN waits until the destination is connected.
        """
        destination = AnswerAfterFIN()
        port = await self.listen(destination)
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks4Connect(port) + b"all at once")
        client.transport.loseWriteConnection()
        received = await client.receiveAll()
        self.assertEqual(received[8:], b"answer to all at once")

    async def test_destinationFinishesFirst(self) -> None:
        """
        When the destination sends its FIN first, the client sees the end
        of the stream and can still send.
        """
        destination = SpeakThenFIN()
        port = await self.listen(destination)
        gateway = startGateway(self)
        client = await connectRaw(gateway.port)
        client.closeOnFIN = False
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", port, atyp=1))
        await client.receive(12)
        self.assertEqual(await client.receiveAll(), b"bye")
        client.transport.write(b"still talking")
        client.transport.loseWriteConnection()
        self.assertEqual(await destination.finished, b"still talking")
        await gateway.sessions.whenEmpty()
        client.transport.loseConnection()


class TeardownTests(LoopbackTestCase):
    """
    The gateway lets go of connections it no longer needs.
    """

    async def test_clientGoneClosesDestination(self) -> None:
        """
        When the client disconnects, the destination connection is closed
        and the session table empties.
        """
        gateway, sink = startGateway(self), startSinkServer(self)
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", sink.port, atyp=1) + b"data")
        await client.receive(12)
        client.transport.abortConnection()
        await gateway.sessions.whenEmpty()
        await sink.connections[0].closed
        self.assertEqual(sink.bytesReceived, 4)


class IdleTimeoutTests(LoopbackTestCase):
    """
    idle-timeout ends a relayed session that moves no byte, and its record
    says so.
    """

    async def test_recordedAsTimeout(self) -> None:
        """
        A CONNECT with no byte either way for idle-timeout seconds is closed;
        its record has outcome C{timeout} and the reason in C{message}.
        """
        records = collectSessions(self)
        echo = startEchoServer(self)
        gateway = startGateway(self, config=ServerConfig(idleTimeout=0.3))
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"ping")
        self.assertEqual((await client.receive(16))[12:], b"ping")
        await client.closed
        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual((record["outcome"], record["reply"], record["bytes_out"]), ("timeout", 0, 4))
        self.assertEqual(record["message"], "no byte either way for 0.3 seconds (idle-timeout)")


class StreamSOCKS5ConnectTests(StreamRelay, SOCKS5ConnectTests):
    """
    L{SOCKS5ConnectTests} over the stream relay.
    """


class StreamSOCKS4ConnectTests(StreamRelay, SOCKS4ConnectTests):
    """
    L{SOCKS4ConnectTests} over the stream relay.
    """


class StreamHalfCloseTests(StreamRelay, HalfCloseTests):
    """
    L{HalfCloseTests} over the stream relay.
    """


class StreamTeardownTests(StreamRelay, TeardownTests):
    """
    L{TeardownTests} over the stream relay.
    """


class StreamIdleTimeoutTests(StreamRelay, IdleTimeoutTests):
    """
    L{IdleTimeoutTests} over the stream relay.
    """
