"""
C{sessions-per-second} in a real gateway, over loopback sockets: SOCKS5
and SOCKS4, CONNECT, BIND and UDP ASSOCIATE, per client address and per
user.  The buckets read a L{Clock} of the test's, so no count depends on
how fast the machine is.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock

from socksgate.config import AuthConfig, makeChecker, parseConfig
from socksgate.ratelimit import SessionRates
from socksgate.testing import RunningGateway, StaticResolver, startEchoServer, startGateway

from .helpers import LoopbackTestCase, RawClient, collectSessions, socks4Connect, socks5Connect
from .test_bind import socks5Bind

LOOPBACK = b"\x7f\x00\x00\x01"


def limitedRules(perSecond: int, extra: str = "") -> str:
    """
    A deny rule for port 23, then a permit rule with C{sessions-per-second}.
    """
    return f"""
[[rule]]
action = "deny"
ports = ["23"]
message = "no telnet"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
sessions-per-second = {perSecond}
message = "loopback"
{extra}
"""


async def request(gateway: RunningGateway, data: bytes, replyLength: int, source: str = "127.0.0.1") -> bytes:
    """
    Connect from C{source}, send C{data} and return the first
    C{replyLength} bytes of the answer; the connection stays open (the
    test's clean-up drops it).
    """
    endpoint = TCP4ClientEndpoint(reactor, gateway.host, gateway.port, bindAddress=(source, 0))
    client = await connectProtocol(endpoint, RawClient())
    client.transport.write(data)
    return await client.receive(replyLength)


def login(user: bytes, password: bytes) -> bytes:
    """
    A SOCKS5 greeting offering username/password and its RFC 1929 request.
    """
    return b"\x05\x01\x02" + b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password


class SessionsPerSecondTests(LoopbackTestCase):
    """
    A rule's C{sessions-per-second} refuses the sessions beyond its rate
    with 0x02 (CD 91) and a record that names the rule and the limit.
    """

    def start(self, rules: str, **kwargs: object) -> tuple[RunningGateway, Clock]:
        """
        A gateway with C{rules}, its buckets on a clock that stands still.
        """
        gateway = startGateway(self, config=parseConfig(rules), **kwargs)  # type: ignore[arg-type]
        clock = Clock()
        clock.advance(1000)
        gateway.sessions.rates = SessionRates(clock)
        return gateway, clock

    async def test_socks5Connect(self) -> None:
        """
        With C{sessions-per-second = 3}, five CONNECTs at once from
        127.0.0.1: three are relayed, two get 0x02, and their records say
        C{denied} by rule 2, for the client, in C{message} and C{limit}.
        A request denied by another rule takes no token; a second later
        there are three again.
        """
        echo = startEchoServer(self)
        gateway, clock = self.start(limitedRules(3))
        records = collectSessions(self)
        self.assertEqual((await request(gateway, socks5Connect(LOOPBACK, 23, atyp=1), 12))[3], 0x02)
        connect = socks5Connect(LOOPBACK, echo.port, atyp=1)
        replies = await gatherResults(
            [Deferred.fromCoroutine(request(gateway, connect, 12)) for _ in range(5)]
        )
        codes = sorted(reply[3] for reply in replies)
        self.assertEqual(codes, [0x00, 0x00, 0x00, 0x02, 0x02])
        refused = [record for record in records if record["outcome"] == "denied" and record["rule"] == 2]
        self.assertEqual(
            [(r["reply"], r["message"], r["limit"]) for r in refused],
            [(2, "sessions-per-second 3 exceeded for client 127.0.0.1", "client")] * 2,
        )
        self.assertEqual(len(echo.connections), 3)
        # The denial by rule 1 has no limit.
        [telnet] = [record for record in records if record["rule"] == 1]
        self.assertNotIn("limit", telnet)
        clock.advance(1)
        replies = await gatherResults(
            [Deferred.fromCoroutine(request(gateway, connect, 12)) for _ in range(4)]
        )
        self.assertEqual(sorted(reply[3] for reply in replies), [0x00, 0x00, 0x00, 0x02])

    async def test_nameTakesOneToken(self) -> None:
        """
        A CONNECT to a name is decided for the name and again for each
        address, but is one session: it takes one token.
        """
        echo = startEchoServer(self)
        resolver = StaticResolver({"echo.test": ["127.0.0.1", "127.0.0.1"]})
        gateway, _ = self.start(limitedRules(2), resolver=resolver)
        connect = socks5Connect(b"echo.test", echo.port)
        self.assertEqual((await request(gateway, connect, 12))[3], 0x00)
        self.assertEqual((await request(gateway, connect, 12))[3], 0x00)
        self.assertEqual((await request(gateway, connect, 12))[3], 0x02)

    async def test_socks4Connect(self) -> None:
        """
        SOCKS4 beyond the limit gets CD 91, and its USERID has a bucket of
        its own: a second client address with the same USERID is refused
        for the user.
        """
        echo = startEchoServer(self)
        gateway, _ = self.start(limitedRules(1))
        records = collectSessions(self)
        connect = socks4Connect(echo.port, userid=b"bob")
        self.assertEqual((await request(gateway, connect, 8))[1], 90)
        self.assertEqual((await request(gateway, connect, 8))[1], 91)
        self.assertEqual((await request(gateway, connect, 8, "127.0.0.2"))[1], 91)
        refused = [(r["version"], r["reply"], r["limit"], r["message"]) for r in records]
        self.assertEqual(
            refused,
            [
                ("4", 91, "client", "sessions-per-second 1 exceeded for client 127.0.0.1"),
                ("4", 91, "user", "sessions-per-second 1 exceeded for user bob"),
            ],
        )

    async def test_userAcrossClients(self) -> None:
        """
        A user logged in with a password from 127.0.0.2 and 127.0.0.3
        shares one bucket: with C{sessions-per-second = 2}, the third of
        alice's sessions is refused for the user, though 127.0.0.2 has a
        token left, and bob from 127.0.0.3 is not.
        """
        echo = startEchoServer(self)
        auth = AuthConfig(("userpass",), makeChecker("memory:alice:s3cret:bob:hunter2"), "memory")
        gateway, _ = self.start(limitedRules(2), auth=auth)
        records = collectSessions(self)
        connect = b"\x05\x01\x00\x01" + LOOPBACK + echo.port.to_bytes(2, "big")
        alice, bob = login(b"alice", b"s3cret"), login(b"bob", b"hunter2")
        self.assertEqual((await request(gateway, alice + connect, 14, "127.0.0.2"))[5], 0x00)
        self.assertEqual((await request(gateway, alice + connect, 14, "127.0.0.3"))[5], 0x00)
        self.assertEqual((await request(gateway, alice + connect, 14, "127.0.0.2"))[5], 0x02)
        self.assertEqual((await request(gateway, bob + connect, 14, "127.0.0.3"))[5], 0x00)
        [refused] = records
        self.assertEqual(
            (refused["client"].split(":")[0], refused["user"], refused["limit"], refused["message"]),
            ("127.0.0.2", "alice", "user", "sessions-per-second 2 exceeded for user alice"),
        )
        self.assertEqual(len(echo.connections), 3)

    async def test_bindAndUDP(self) -> None:
        """
        BIND and UDP ASSOCIATE are sessions too: beyond the limit, each is
        refused with 0x02 before the gateway listens for it.
        """
        gateway, _ = self.start(limitedRules(1))
        records = collectSessions(self)
        self.assertEqual((await request(gateway, socks5Bind(), 12))[3], 0x00)
        self.assertEqual((await request(gateway, socks5Bind(), 12))[3], 0x02)
        udp = b"\x05\x01\x00" + b"\x05\x03\x00\x01" + bytes(6)
        self.assertEqual((await request(gateway, udp, 12, "127.0.0.2"))[3], 0x00)
        self.assertEqual((await request(gateway, udp, 12, "127.0.0.2"))[3], 0x02)
        self.assertEqual(
            [(r["command"], r["limit"], r["rule"]) for r in records],
            [("bind", "client", 2), ("udp", "client", 2)],
        )
        self.assertNotIn("bind", records[0])
