"""
A firewall that cannot be talked past, over real loopback sockets: Unicode
spellings of a denied name, and the unspecified addresses that reach the
local host, are decided as what the gateway would really reach, for
SOCKS5, SOCKS4, SOCKS4a and UDP ASSOCIATE.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any

from twisted.internet.interfaces import IResolutionReceiver

from socksgate.config import parseConfig
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .helpers import (
    LoopbackTestCase,
    collectSessions,
    connectRaw,
    socks4aConnect,
    socks4Connect,
    socks5Connect,
)
from .test_udprelay import UDPEcho, UDPPeer, associate, openUDP, toIPv4, toIPv6, toName

DENY_BLOCKED = """
[[rule]]
action = "deny"
destinations = ["blocked.test", "xn--bcher-kva.test"]

[[rule]]
action = "permit"
"""

DENY_LOOPBACK = """
[[rule]]
action = "deny"
destinations = ["127.0.0.0/8", "::1"]

[[rule]]
action = "permit"
"""

PERMIT_LOOPBACK = """
[[rule]]
action = "permit"
destinations = ["127.0.0.1", "::1"]
"""

#: Spellings of blocked.test (and bücher.test, the U-label of the denied
#: xn--bcher-kva.test) that getaddrinfo looks up as the denied host.
SPELLINGS = [
    "ｂｌｏｃｋｅｄ.ｔｅｓｔ",
    "blocked\u3002test",
    "blocked\uff0etest",
    "blocked\uff61test",
    "bl\u00adocked.test",
    "bl\u200bocked.test",
    "bücher.test",
]


class GetaddrinfoLikeResolver(StaticResolver):
    """
    A L{StaticResolver} that folds each name as getaddrinfo does (Python's
    IDNA 2003 codec, then any case) before it looks it up in its table:
    C{asked} still records each name as it was given.
    """

    def resolveHostName(
        self, resolutionReceiver: IResolutionReceiver, hostName: str, *args: Any, **kwargs: Any
    ) -> IResolutionReceiver:
        """
        Answer for the folded name, recording the name as asked.
        """
        folded = hostName.encode("idna").decode("ascii").lower().rstrip(".")
        receiver = super().resolveHostName(resolutionReceiver, folded, *args, **kwargs)
        self.asked[-1] = hostName
        return receiver


class Wire(LoopbackTestCase):
    """
    Shared set-up: an echo server on 127.0.0.1 and ::1, and a gateway with
    a policy and a resolver.
    """

    def startAll(self, rules: str, names: dict[str, list[str]] | None = None) -> None:
        """
        Start the echo servers and a gateway deciding by C{rules}, whose
        resolver answers as getaddrinfo would from C{names}.
        """
        self.records = collectSessions(self)
        self.echo = startEchoServer(self)
        self.echo6 = startEchoServer(self, interface="::1")
        self.resolver = GetaddrinfoLikeResolver(names or {})
        policy = parseConfig(rules, "wire.toml").policy
        self.gateway = startGateway(self, policy=policy, resolver=self.resolver)

    async def exchange(self, request: bytes) -> bytes:
        """
        Send C{request} and C{"ping"}, read the reply and, when granted,
        the echo; return the reply (SOCKS5: after the method selection,
        up to BND.ADDR).
        """
        client = await connectRaw(self.gateway.port)
        client.transport.write(request + b"ping")
        if request[0] == 4:
            reply = await client.receive(8)
            granted = reply[1] == 0x5A
        else:
            reply = (await client.receive(6))[2:]
            reply += await client.receive(18 if reply[3] == 4 else 6)
            granted = reply[1] == 0x00
        if granted:
            self.assertEqual(await client.receive(4), b"ping")
            client.transport.loseConnection()
        await client.closed
        await self.gateway.sessions.whenEmpty()
        return reply


class UnicodeSpellingTests(Wire):
    """
    C{deny ["blocked.test", "xn--bcher-kva.test"]} then permit-all: no
    spelling of a denied name gets through, and nothing is looked up.
    """

    def setUp(self) -> None:
        self.startAll(
            DENY_BLOCKED,
            {"blocked.test": ["127.0.0.1"], "xn--bcher-kva.test": ["127.0.0.1"], "echo.test": ["127.0.0.1"]},
        )

    async def test_socks5(self) -> None:
        """
        SOCKS5 CONNECT to each spelling: REP 0x02, no lookup, no
        connection; the record keeps the destination as sent.
        """
        for spelling in SPELLINGS:
            reply = await self.exchange(socks5Connect(spelling.encode("utf-8"), self.echo.port))
            self.assertEqual(reply[:2], b"\x05\x02", spelling)
            self.assertEqual(self.records[-1]["destination"], f"{spelling}:{self.echo.port}")
        self.assertEqual((self.resolver.asked, self.echo.connections), ([], []))

    async def test_socks4a(self) -> None:
        """
        SOCKS4a CONNECT to each spelling: CD 91, no lookup, no connection.
        """
        for spelling in SPELLINGS:
            reply = await self.exchange(socks4aConnect(self.echo.port, spelling.encode("utf-8")))
            self.assertEqual(reply[:2], b"\x00\x5b", spelling)
            self.assertEqual(self.records[-1]["outcome"], "denied")
        self.assertEqual((self.resolver.asked, self.echo.connections), ([], []))

    async def test_permittedSpellingResolvedAsDecided(self) -> None:
        """
        A permitted name in fullwidth capitals is handed to the resolver
        in the form the policy decided: C{echo.test}.
        """
        reply = await self.exchange(socks5Connect("ＥＣＨＯ。ｔｅｓｔ".encode(), self.echo.port))
        self.assertEqual(reply[:2], b"\x05\x00")
        self.assertEqual(self.resolver.asked, ["echo.test"])

    async def test_invalidName(self) -> None:
        """
        A name that is none in any spelling (a joiner out of context) gets
        0x04 (SOCKS4a: CD 91), outcome failed, and is never looked up.
        """
        name = "a\u200db.test".encode()
        reply = await self.exchange(socks5Connect(name, self.echo.port))
        self.assertEqual(reply[:2], b"\x05\x04")
        reply = await self.exchange(socks4aConnect(self.echo.port, name))
        self.assertEqual(reply[:2], b"\x00\x5b")
        self.assertEqual([record["outcome"] for record in self.records], ["failed", "failed"])
        self.assertEqual(self.resolver.asked, [])

    async def test_udp(self) -> None:
        """
        UDP datagrams to each spelling are dropped as denied, without a
        lookup; a datagram to a permitted address then passes.
        """
        echo = openUDP(self, UDPEcho())
        client = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        for spelling in SPELLINGS:
            client.send(toName(spelling.encode(), echo.port) + b"denied", association.relay)
        client.send(toIPv4(echo.port) + b"permitted", association.relay)
        self.assertEqual(await client.nextData(), toIPv4(echo.port) + b"permitted")
        self.assertEqual((echo.payloads, self.resolver.asked), ([b"permitted"], []))
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[-1]["datagrams_denied"], len(SPELLINGS))


#: SOCKS5 requests for the unspecified addresses, as literals and as the
#: names getaddrinfo turns into 0.0.0.0.
UNSPECIFIED = {
    "IPv4 0.0.0.0": lambda port: socks5Connect(b"\x00" * 4, port, atyp=1),
    "IPv6 ::": lambda port: socks5Connect(b"\x00" * 16, port, atyp=4),
    "IPv6 ::ffff:0.0.0.0": lambda port: socks5Connect(IPv6Address("::ffff:0.0.0.0").packed, port, atyp=4),
    "name 0.0.0.0": lambda port: socks5Connect(b"0.0.0.0", port),
    "name 0": lambda port: socks5Connect(b"0", port),
    "name 0x0": lambda port: socks5Connect(b"0x0", port),
}

#: What getaddrinfo answers for the names "0" and "0x0".
ZERO_NAMES = {"0": ["0.0.0.0"], "0x0": ["0.0.0.0"]}


class UnspecifiedDeniedTests(Wire):
    """
    C{deny 127.0.0.0/8 ::1} then permit-all: the unspecified addresses
    reach the local host, so they are denied.
    """

    def setUp(self) -> None:
        self.startAll(DENY_LOOPBACK, ZERO_NAMES)

    async def test_socks5(self) -> None:
        """
        SOCKS5 CONNECT to 0.0.0.0, ::, ::ffff:0.0.0.0 and the names
        C{0.0.0.0}, C{0} and C{0x0}: REP 0x02 by rule 1, never connected.
        """
        for label, build in UNSPECIFIED.items():
            port = self.echo6.port if label.endswith("::") else self.echo.port
            reply = await self.exchange(build(port))
            self.assertEqual(reply[:2], b"\x05\x02", label)
            self.assertEqual(self.records[-1]["rule"], 1, label)
        self.assertEqual((self.echo.connections, self.echo6.connections), ([], []))

    async def test_numericForms(self) -> None:
        """
        The other numeric spellings of a loopback address that
        getaddrinfo takes without a lookup (C{127.1}, C{0x7f.0.0.1},
        C{0177.0.0.1}, C{2130706433}) are decided as the address: REP 0x02
        by rule 1, nothing looked up or connected.
        """
        for spelling in (b"127.1", b"0x7f.0.0.1", b"0177.0.0.1", b"2130706433"):
            reply = await self.exchange(socks5Connect(spelling, self.echo.port))
            self.assertEqual(reply[:2], b"\x05\x02", spelling)
            self.assertEqual(self.records[-1]["rule"], 1, spelling)
        self.assertEqual((self.resolver.asked, self.echo.connections), ([], []))

    async def test_socks4(self) -> None:
        """
        SOCKS4 DSTIP 0.0.0.0: CD 91, never connected.
        """
        reply = await self.exchange(socks4Connect(self.echo.port, ip=b"\x00" * 4))
        self.assertEqual(reply[:2], b"\x00\x5b")
        self.assertEqual((self.records[-1]["outcome"], self.echo.connections), ("denied", []))

    async def test_udp(self) -> None:
        """
        UDP datagrams to 0.0.0.0 and :: are dropped as denied, without
        reaching the echo servers on 127.0.0.1 and ::1.
        """
        echo, echo6 = openUDP(self, UDPEcho()), openUDP(self, UDPEcho(), interface="::1")
        client = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        client.send(toIPv4(echo.port, b"\x00" * 4) + b"v4", association.relay)
        client.send(toIPv6(echo6.port, b"\x00" * 16) + b"v6", association.relay)
        client.send(toName(b"0x0", echo.port) + b"name", association.relay)
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[-1]["datagrams_denied"], 3)
        self.assertEqual((echo.payloads, echo6.payloads), ([], []))

    async def test_bindAnyPeerKept(self) -> None:
        """
        BIND's expected peer 0.0.0.0 still means any peer: it is decided
        as 0.0.0.0, not as the local host, so it is granted here; and a
        peer that arrives from 127.0.0.1 is then decided as itself and
        refused.
        """
        client = await connectRaw(self.gateway.port)
        client.transport.write(b"\x05\x01\x00" + b"\x05\x02\x00\x01" + b"\x00" * 4 + b"\x00\x00")
        reply = await client.receive(12)
        self.assertEqual(reply[:4], b"\x05\x00\x05\x00")
        peer = await connectRaw(int.from_bytes(reply[-2:], "big"))
        await peer.closed
        client.transport.loseConnection()
        await client.closed
        await self.gateway.sessions.whenEmpty()
        self.assertIsNone(self.records[-1].get("peer"))
        self.assertIn("bind", self.records[-1])


class UnspecifiedPermittedTests(Wire):
    """
    C{permit 127.0.0.1 ::1} only: the unspecified addresses are decided,
    and connected, as the loopback addresses they reach.
    """

    def setUp(self) -> None:
        self.startAll(PERMIT_LOOPBACK, ZERO_NAMES)

    async def test_socks5(self) -> None:
        """
        SOCKS5 CONNECT to each spelling of the unspecified address is
        permitted and relayed to the echo server on loopback, and the
        record names the loopback address as the remote end.
        """
        for label, build in UNSPECIFIED.items():
            v6 = label.endswith("::")
            port = self.echo6.port if v6 else self.echo.port
            reply = await self.exchange(build(port))
            self.assertEqual(reply[:2], b"\x05\x00", label)
            remote = f"[::1]:{port}" if v6 else f"127.0.0.1:{port}"
            self.assertEqual(self.records[-1]["remote"], remote, label)

    async def test_socks4(self) -> None:
        """
        SOCKS4 DSTIP 0.0.0.0 is relayed to 127.0.0.1.
        """
        reply = await self.exchange(socks4Connect(self.echo.port, ip=b"\x00" * 4))
        self.assertEqual(reply[:2], b"\x00\x5a")
        self.assertEqual(self.records[-1]["remote"], f"127.0.0.1:{self.echo.port}")

    async def test_udp(self) -> None:
        """
        UDP datagrams to 0.0.0.0 and :: go to 127.0.0.1 and ::1, and the
        answers come back naming the address that answered.
        """
        echo, echo6 = openUDP(self, UDPEcho()), openUDP(self, UDPEcho(), interface="::1")
        client = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        client.send(toIPv4(echo.port, b"\x00" * 4) + b"v4", association.relay)
        self.assertEqual(await client.nextData(), toIPv4(echo.port) + b"v4")
        client.send(toIPv6(echo6.port, b"\x00" * 16) + b"v6", association.relay)
        self.assertEqual(await client.nextData(), toIPv6(echo6.port) + b"v6")
        self.assertEqual((echo.payloads, echo6.payloads), ([b"v4"], [b"v6"]))
