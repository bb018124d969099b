"""
Tests of BIND (and UDP ASSOCIATE) routed C{via} an C{[[upstream]]}, over
real loopback sockets: gateway A asks gateway B (or Dante) to BIND and
announces B's address; a peer connects to it and bytes go both ways.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from socksgate.config import parseConfig
from socksgate.testing import RunningGateway, startGateway

from .client_helpers import startDante
from .helpers import LoopbackTestCase, RawClient, collectSessions, connectRaw, freePort
from .test_chaining import chainedGateway, until
from .test_udprelay import UDPEcho, UDPPeer, associate, openUDP, toIPv4

#: A SOCKS5 greeting (no authentication) and BIND for a peer on 127.0.0.1.
BIND5 = b"\x05\x01\x00" + b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x00"


def reply5(data: bytes) -> tuple[int, str, int]:
    """
    The code, IPv4 address and port of a 10-byte SOCKS5 reply.
    """
    return data[1], str(IPv4Address(data[4:8])), struct.unpack("!H", data[8:10])[0]


async def bindAndConnect(
    testCase: LoopbackTestCase, a: RunningGateway
) -> tuple[RawClient, tuple[int, str, int], RawClient]:
    """
    BIND through gateway A, check that the first reply is success, and
    connect a peer (from 127.0.0.1) to the address it announces.

    @return: the client, the first reply and the peer.
    """
    client = await connectRaw(a.port)
    client.transport.write(BIND5)
    first = reply5((await client.receive(2 + 10))[2:])
    testCase.assertEqual(first[0], 0)
    endpoint = TCP4ClientEndpoint(reactor, first[1], first[2], bindAddress=("127.0.0.1", 0))
    return client, first, await connectProtocol(endpoint, RawClient())


async def bindThrough(testCase: LoopbackTestCase, a: RunningGateway) -> tuple[tuple[int, str, int], str]:
    """
    BIND through gateway A, connect a peer to the announced address, check
    both replies and bytes both ways.

    @return: the first reply, and the second reply's peer as C{host:port}.
    """
    client, first, peer = await bindAndConnect(testCase, a)
    second = reply5(await client.receive(10))
    testCase.assertEqual(second[:2], (0, "127.0.0.1"))
    testCase.assertEqual(second[2], peer.transport.getHost().port)
    peer.transport.write(b"from the peer")
    testCase.assertEqual(await client.receive(13), b"from the peer")
    client.transport.write(b"from the client")
    testCase.assertEqual(await peer.receive(15), b"from the client")
    client.transport.loseConnection()
    await client.closed
    await peer.closed
    return first, f"{second[1]}:{second[2]}"


class UpstreamBindTests(LoopbackTestCase):
    """
    BIND via an upstream: the upstream's server listens, the client is
    told its address.
    """

    async def test_socksgate(self) -> None:
        """
        Gateway A, routing via gateway B, announces the address B listens
        on; the peer connects to B, the second reply names it, bytes go
        both ways; both records say so, A's naming the upstream and server.
        """
        b = startGateway(self)
        a = chainedGateway(self, [b.url("socks5")])
        records = collectSessions(self)
        first, peer = await bindThrough(self, a)
        await until(lambda: len(records) == 2, "both records")
        recordB = next(record for record in records if record["upstream"] is None)
        recordA = next(record for record in records if record["upstream"] is not None)
        self.assertEqual(recordB["bind"], f"{first[1]}:{first[2]}")
        for record in (recordA, recordB):
            self.assertEqual((record["command"], record["outcome"]), ("bind", "closed"))
            self.assertEqual((record["bind"], record["peer"]), (recordB["bind"], peer))
        self.assertEqual((recordA["upstream"], recordA["server"]), ("b", b.url("socks5")))
        self.assertEqual((recordA["bytes_in"], recordA["bytes_out"]), (13, 15))

    async def test_socks4(self) -> None:
        """
        A SOCKS4 client's BIND through a C{socks4} upstream: CD 90 with
        B's port, then CD 90 and the stream.
        """
        b = startGateway(self)
        a = chainedGateway(self, [b.url("socks4")])
        client = await connectRaw(a.port)
        client.transport.write(b"\x04\x02\x00\x00\x7f\x00\x00\x01\x00")
        first = await client.receive(8)
        self.assertEqual(first[:2], b"\x00\x5a")
        port = struct.unpack("!H", first[2:4])[0]
        self.assertNotIn(port, (a.port, b.port))
        peer = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawClient())
        self.assertEqual((await client.receive(8))[:2], b"\x00\x5a")
        peer.transport.write(b"hi")
        self.assertEqual(await client.receive(2), b"hi")
        client.transport.loseConnection()
        await peer.closed

    async def test_failover(self) -> None:
        """
        With the first server down, the second listens for the peer, and
        the first is marked down.
        """
        dead = f"socks5://127.0.0.1:{freePort()}"
        c = startGateway(self)
        a = chainedGateway(self, [dead, c.url("socks5")])
        records = collectSessions(self)
        await bindThrough(self, a)
        states = {state.server.url: state for _, state in a.factory.upstreams.states()}
        self.assertFalse(states[dead].isUp(reactor.seconds()))
        self.assertEqual(states[c.url("socks5")].sessions, 1)
        await until(lambda: any(record["upstream"] for record in records), "A's record")
        self.assertEqual([r["server"] for r in records if r["upstream"]], [c.url("socks5")])

    async def test_allDown(self) -> None:
        """
        With every server down the client gets 0x01, and A's record names
        the upstream.
        """
        a = chainedGateway(self, [f"socks5://127.0.0.1:{freePort()}"])
        records = collectSessions(self)
        client = await connectRaw(a.port)
        client.transport.write(BIND5)
        self.assertEqual((await client.receive(12))[:4], b"\x05\x00\x05\x01")
        await client.closed
        await until(lambda: records, "the record")
        self.assertEqual((records[0]["command"], records[0]["upstream"]), ("bind", "b"))
        self.assertIn("every server is down", records[0]["message"])

    async def test_peerDenied(self) -> None:
        """
        A peer that B accepts but A's policy denies (A decides C{bind} for
        the peer's address and port again) ends the session: 0x02 as the
        second reply, and the peer's connection is closed.
        """
        b = startGateway(self)
        # BIND is decided for port 0 (any), the peer for its own port.
        text = CHAINED_DENYING.format(server=b.url("socks5"), deny='ports = ["1-65535"]')
        a = startGateway(self, config=parseConfig(text))
        records = collectSessions(self)
        client, _, peer = await bindAndConnect(self, a)
        self.assertEqual((await client.receive(10))[:2], b"\x05\x02")
        await client.closed
        await peer.closed
        await until(lambda: any(record["upstream"] for record in records), "A's record")
        recordA = next(record for record in records if record["upstream"])
        self.assertEqual((recordA["reply"], recordA["outcome"]), (2, "denied"))
        self.assertIn("denied by the policy", recordA["message"])

    async def test_dante(self) -> None:
        """
        Dante as the upstream: it listens for the peer, A announces its
        address.
        """
        dante = await startDante(self, freePort())
        a = chainedGateway(self, [f"socks5://127.0.0.1:{dante._port}"])
        first, _ = await bindThrough(self, a)
        self.assertNotEqual(first[2], a.port)


class UpstreamUDPTests(LoopbackTestCase):
    """
    UDP ASSOCIATE via an upstream: gateway A's relay serves the client and
    sends through one association with gateway B.
    """

    async def test_echo(self) -> None:
        """
        A datagram to a loopback echo server goes from the client to A's
        relay, through B's association to the echo server, and its answer
        comes back to the client with the header naming the echo server;
        the echo server sees it from B's relay; both records count it, A's
        naming the upstream and server.
        """
        b = startGateway(self)
        a = chainedGateway(self, [b.url("socks5")])
        records = collectSessions(self)
        echo = openUDP(self, UDPEcho())
        client = openUDP(self, UDPPeer())
        association = await associate(a)
        self.assertEqual(association.reply[:2], b"\x05\x00")
        for payload in (b"one", b"two"):
            client.send(toIPv4(echo.port) + payload, association.relay)
            data, sender = await client.next()
            self.assertEqual((data, sender), (toIPv4(echo.port) + payload, association.relay))
        self.assertNotEqual(echo.everything[0][1], association.relay)
        association.control.transport.loseConnection()
        await until(lambda: len(records) == 2, "both records")
        recordB = next(record for record in records if record["upstream"] is None)
        recordA = next(record for record in records if record["upstream"] is not None)
        for record in (recordA, recordB):
            self.assertEqual((record["command"], record["outcome"]), ("udp", "closed"))
            self.assertEqual((record["datagrams_out"], record["datagrams_in"]), (2, 2))
        self.assertEqual((recordA["upstream"], recordA["server"]), ("b", b.url("socks5")))

    async def test_deniedNotSent(self) -> None:
        """
        A destination A's policy denies is not sent to the upstream: the
        datagram is counted as denied, and B never sees a datagram.
        """
        b = startGateway(self)
        text = CHAINED_DENYING.format(server=b.url("socks5"), deny='destinations = ["127.0.0.2"]')
        a = startGateway(self, config=parseConfig(text))
        records = collectSessions(self)
        echo = openUDP(self, UDPEcho())
        client = openUDP(self, UDPPeer())
        association = await associate(a)
        client.send(toIPv4(echo.port, b"\x7f\x00\x00\x02") + b"no", association.relay)
        client.send(toIPv4(echo.port) + b"yes", association.relay)
        self.assertEqual(await client.nextData(), toIPv4(echo.port) + b"yes")
        association.control.transport.loseConnection()
        await until(lambda: len(records) == 2, "both records")
        recordA = next(record for record in records if record["upstream"] is not None)
        recordB = next(record for record in records if record["upstream"] is None)
        self.assertEqual((recordA["datagrams_out"], recordA["datagrams_denied"]), (1, 1))
        self.assertEqual(recordB["datagrams_out"], 1)
        self.assertEqual(echo.payloads, [b"yes"])

    async def test_socks4Refused(self) -> None:
        """
        A SOCKS4 server cannot carry UDP: 0x07, the record naming the
        upstream and server.
        """
        b = startGateway(self)
        a = chainedGateway(self, [b.url("socks4")])
        records = collectSessions(self)
        client = await connectRaw(a.port)
        client.transport.write(b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x00")
        self.assertEqual((await client.receive(12))[:4], b"\x05\x00\x05\x07")
        await client.closed
        await until(lambda: records, "the record")
        self.assertEqual(
            (records[0]["command"], records[0]["reply"], records[0]["upstream"], records[0]["server"]),
            ("udp", 7, "b", b.url("socks4")),
        )


#: Gateway A denying what C{deny} matches and routing the rest via B.
CHAINED_DENYING = """\
[[upstream]]
name = "b"
servers = ["{server}"]

[[rule]]
action = "deny"
{deny}

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
via = "b"
"""
