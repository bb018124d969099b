"""
The rule engine deciding real requests on the wire: denials answer 0x02 or
CD 91 and are recorded with their rule, and DNS cannot be used to reach
what the rules forbid.
"""

from __future__ import annotations

from ipaddress import IPv6Address

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

RULES = """
[[rule]]
action = "permit"
destinations = [".corp.example"]
message = "internal names"

[[rule]]
action = "deny"
destinations = ["127.0.0.2/32", "10.0.0.0/8"]
message = "internal addresses"

[[rule]]
action = "deny"
ports = ["1-1023"]
message = "no privileged ports"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
"""


class RuleOnTheWireTests(LoopbackTestCase):
    """
    Requests through a gateway whose policy is RULES.
    """

    def setUp(self) -> None:
        self.records = collectSessions(self)
        self.echo = startEchoServer(self)
        self.resolver = StaticResolver(
            {
                "innocent.example": ["127.0.0.2"],
                "mixed.example": ["127.0.0.2", "127.0.0.1"],
                "intranet.corp.example": ["127.0.0.1"],
            }
        )
        self.gateway = startGateway(
            self, policy=parseConfig(RULES, "rules.toml").policy, resolver=self.resolver
        )

    async def roundTrip(self, request: bytes, replyLength: int) -> bytes:
        client = await connectRaw(self.gateway.port)
        client.transport.write(request + b"ping")
        reply = await client.receive(replyLength)
        granted = reply[3] == 0x00 if replyLength == 12 else reply[1] == 0x5A
        if granted:
            self.assertEqual(await client.receive(4), b"ping")
            client.transport.loseConnection()
        await client.closed
        await self.gateway.sessions.whenEmpty()
        return reply

    async def test_socks5Denied(self) -> None:
        """
        SOCKS5 to a privileged port: REP 0x02, and a denied record naming
        rule 3 and its message.
        """
        reply = await self.roundTrip(socks5Connect(b"\x7f\x00\x00\x01", 22, atyp=1), 12)
        self.assertEqual(reply[2:4], b"\x05\x02")
        [record] = self.records
        self.assertEqual(
            (record["outcome"], record["reply"], record["rule"], record["message"]),
            ("denied", 2, 3, "no privileged ports"),
        )

    async def test_socks4Denied(self) -> None:
        """
        SOCKS4 to a denied address: CD 91 and the rule in the record.
        """
        reply = await self.roundTrip(socks4Connect(self.echo.port, ip=b"\x7f\x00\x00\x02"), 8)
        self.assertEqual(reply[:2], b"\x00\x5b")
        self.assertEqual((self.records[0]["reply"], self.records[0]["rule"]), (91, 2))

    async def test_socks4aPermitted(self) -> None:
        """
        SOCKS4a to an internal name: permitted by rule 1 though its address
        is loopback, and relayed.
        """
        reply = await self.roundTrip(socks4aConnect(self.echo.port, b"intranet.corp.example"), 8)
        self.assertEqual(reply[:2], b"\x00\x5a")
        self.assertEqual((self.records[0]["outcome"], self.records[0]["rule"]), ("closed", 1))

    async def test_nameResolvingToDeniedAddress(self) -> None:
        """
        A harmless-looking name that resolves to a denied address is
        refused with 0x02, and nothing connects to that address.
        """
        reply = await self.roundTrip(socks5Connect(b"innocent.example", self.echo.port), 12)
        self.assertEqual(reply[2:4], b"\x05\x02")
        self.assertEqual(self.resolver.asked, ["innocent.example"])
        self.assertEqual(self.echo.connections, [])
        self.assertEqual(self.records[0]["rule"], 2)

    async def test_onlyPermittedAddressesTried(self) -> None:
        """
        Of a name's addresses, the denied one is skipped and the permitted
        one connected.
        """
        reply = await self.roundTrip(socks5Connect(b"mixed.example", self.echo.port), 12)
        self.assertEqual(reply[2:4], b"\x05\x00")
        self.assertEqual(self.echo.connections[0].transport.getPeer().host, "127.0.0.1")
        self.assertEqual(self.records[0]["rule"], 4)

    async def test_socks4aDenied(self) -> None:
        """
        SOCKS4a to a name with a denied address: CD 91.
        """
        reply = await self.roundTrip(socks4aConnect(self.echo.port, b"innocent.example"), 8)
        self.assertEqual(reply[:2], b"\x00\x5b")

    async def test_mappedAddressIsDecidedAsIPv4(self) -> None:
        """
        ::ffff:127.0.0.2 reaches 127.0.0.2, so it is decided as 127.0.0.2:
        denied by rule 2, never connected.
        """
        mapped = IPv6Address("::ffff:127.0.0.2").packed
        reply = await self.roundTrip(socks5Connect(mapped, self.echo.port, atyp=4), 12)
        self.assertEqual(reply[2:4], b"\x05\x02")
        self.assertEqual(self.records[0]["rule"], 2)
        self.assertEqual(self.echo.connections, [])
