"""
The session log: real traffic of every kind through one gateway, and every
field of every record checked, as the JSON the access log writes.
"""

from __future__ import annotations

import json
import re

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol

from socksgate.auth import LoginThrottle
from socksgate.config import AuthConfig, ServerConfig, makeChecker, parseConfig
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .helpers import (
    LoopbackTestCase,
    RawClient,
    collectSessions,
    connectRaw,
    freePort,
    socks4Connect,
    socks5Connect,
)
from .test_bind import connectFrom, socks5Bind

RULES = """
[[rule]]
action = "deny"
ports = ["23"]
message = "no telnet"

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
message = "loopback"
"""

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "time", "session", "listener", "client", "version", "auth", "user", "ident", "command",
    "destination", "remote", "upstream", "server", "outcome", "reply", "rule", "message", "bytes_out",
    "bytes_in", "duration",
}  # fmt: skip


class _UDPClient(DatagramProtocol):
    def __init__(self) -> None:
        self.received: Deferred[bytes] = Deferred()

    def datagramReceived(self, data: bytes, address: object) -> None:
        if not self.received.called:
            self.received.callback(data)


class _UDPEcho(DatagramProtocol):
    def datagramReceived(self, data: bytes, address: object) -> None:
        self.transport.write(data, address)


class RecordTests(LoopbackTestCase):
    """
    One gateway, every kind of session, every field.
    """

    timeout = 60

    async def test_everyFieldOfEveryRecord(self) -> None:
        """
        CONNECT (SOCKS5, SOCKS4 with a USERID, with a password), a denial,
        a failure, a refused login, BIND, UDP ASSOCIATE, a malformed
        request and a handshake time-out each produce one record with
        exactly SPEC's fields (and BIND's and UDP's own), of the right
        types and values.
        """
        echo = startEchoServer(self)
        policy = parseConfig(RULES, "rules.toml").policy
        auth = AuthConfig(("none", "userpass"), makeChecker("memory:alice:s3cret"), "memory")
        gateway = startGateway(
            self, policy=policy, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}), auth=auth,
            config=ServerConfig(handshakeTimeout=0.5),
        )  # fmt: skip
        gateway.factory.throttle = LoginThrottle(reactor, first=0.01)
        records = collectSessions(self)
        listener = gateway.factory.listener

        async def exchange(request: bytes, replyLength: int, payload: bytes = b"") -> tuple[RawClient, bytes]:
            client = await connectRaw(gateway.port)
            client.transport.write(request + payload)
            reply = await client.receive(replyLength)
            if payload:
                self.assertEqual(await client.receive(len(payload)), payload)
            client.transport.loseConnection()
            await client.closed
            await gateway.sessions.whenEmpty()
            return client, reply

        # 1. SOCKS5 CONNECT to a name, 5 bytes each way.
        await exchange(socks5Connect(b"echo.test", echo.port), 12, b"hello")
        # 2. Denied by rule 1.
        await exchange(socks5Connect(b"\x7f\x00\x00\x01", 23, atyp=1), 12)
        # 3. Refused destination.
        refusedPort = freePort()
        await exchange(socks5Connect(b"\x7f\x00\x00\x01", refusedPort, atyp=1), 12)
        # 4. SOCKS4 with a USERID.
        await exchange(socks4Connect(echo.port, userid=b"bob"), 8, b"four")
        # 5. Username/password.
        login = b"\x05\x01\x02" + b"\x01\x05alice\x06s3cret" + b"\x05\x01\x00\x01\x7f\x00\x00\x01"
        await exchange(login + echo.port.to_bytes(2, "big"), 14, b"pw")
        # 6. A refused login.
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x05\x01\x02" + b"\x01\x05alice\x05wrong")
        self.assertEqual(await client.receiveAll(), b"\x05\x02\x01\x01")
        await gateway.sessions.whenEmpty()
        # 7. BIND.
        client = await connectRaw(gateway.port)
        client.transport.write(socks5Bind())
        listening = int.from_bytes((await client.receive(12))[10:12], "big")
        peer = await connectFrom("127.0.0.1", listening)
        peerPort = peer.transport.getHost().port
        await client.receive(10)
        peer.transport.write(b"xyz")
        self.assertEqual(await client.receive(3), b"xyz")
        client.transport.loseConnection()
        await peer.closed
        await gateway.sessions.whenEmpty()
        # 8. UDP ASSOCIATE: one datagram out and back.
        udpEcho = reactor.listenUDP(0, _UDPEcho(), interface="127.0.0.1")
        self.addCleanup(udpEcho.stopListening)
        udpClient = _UDPClient()
        udpPort = reactor.listenUDP(0, udpClient, interface="127.0.0.1")
        self.addCleanup(udpPort.stopListening)
        control = await connectRaw(gateway.port)
        control.transport.write(
            b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01" + udpPort.getHost().port.to_bytes(2, "big")
        )
        reply = (await control.receive(12))[2:]
        relayPort = int.from_bytes(reply[8:10], "big")
        header = b"\x00\x00\x00\x01\x7f\x00\x00\x01" + udpEcho.getHost().port.to_bytes(2, "big")
        udpPort.write(header + b"datagram", ("127.0.0.1", relayPort))
        self.assertEqual((await udpClient.received)[10:], b"datagram")
        control.transport.loseConnection()
        await control.closed
        await gateway.sessions.whenEmpty()
        # 9. Malformed, 10. silent (handshake time-out).
        await exchange(b"\x05\x01\x00\x05\x01\x00\x09", 4)
        silent = await connectRaw(gateway.port)
        await silent.closed
        await gateway.sessions.whenEmpty()

        logged = [json.loads(json.dumps(record)) for record in records]
        self.assertEqual(len(logged), 10)
        for record in logged:
            extra = set(record) - FIELDS
            self.assertTrue(FIELDS <= set(record), record)
            self.assertTrue(extra <= {"bind", "peer", "datagrams_out", "datagrams_in", "datagrams_denied",
                                      "datagrams_dropped"}, record)  # fmt: skip
            self.assertRegex(record["time"], TIME)
            self.assertRegex(record["session"], r"^[0-9a-f]{8}$")
            self.assertEqual(record["listener"], listener)
            self.assertRegex(record["client"], r"^127\.0\.0\.1:\d+$")
            self.assertIsInstance(record["duration"], float)
            self.assertGreaterEqual(record["duration"], 0.0)
        echoAt = f"127.0.0.1:{echo.port}"
        summary = [
            (r["version"], r["auth"], r["user"], r["ident"], r["command"], r["destination"], r["remote"],
             r["outcome"], r["reply"], r["rule"], r["message"], r["bytes_out"], r["bytes_in"])
            for r in logged
        ]  # fmt: skip
        connected = ("closed", 0, 2, "loopback")
        expected = [
            ("5", "none", None, None, "connect", f"echo.test:{echo.port}", echoAt, *connected, 5, 5),
            ("5", "none", None, None, "connect", "127.0.0.1:23", None, "denied", 2, 1, "no telnet", 0, 0),
            ("5", "none", None, None, "connect", f"127.0.0.1:{refusedPort}", None, "failed", 5, 2,
             summary[2][10], 0, 0),
            ("4", "none", "bob", None, "connect", echoAt, echoAt, "closed", 90, 2, "loopback", 4, 4),
            ("5", "userpass", "alice", None, "connect", echoAt, echoAt, *connected, 2, 2),
            ("5", "userpass", "alice", None, None, None, None, "denied", 1, None, "authentication failed",
             0, 0),
            ("5", "none", None, None, "bind", "127.0.0.1:0", f"127.0.0.1:{peerPort}", *connected, 0, 3),
            # The policy decides the association (the rule that permits it), then each datagram.
            ("5", "none", None, None, "udp", f"127.0.0.1:{udpPort.getHost().port}", None, "closed", 0, 2,
             summary[7][10], 8, 8),
            ("5", "none", None, None, None, None, None, "error", 8, None, summary[8][10], 0, 0),
            (None, "none", None, None, None, None, None, "timeout", None, None,
             "no complete request within 0.5 seconds", 0, 0),
        ]  # fmt: skip
        self.assertEqual(summary, expected)
        # The rule that permitted the failed connection is named; its message gives way to the
        # failure's, which says what went wrong.
        self.assertIn("Connection was refused", logged[2]["message"])
        self.assertEqual(logged[6]["bind"], f"127.0.0.1:{listening}")
        self.assertEqual(logged[6]["peer"], f"127.0.0.1:{peerPort}")
        self.assertEqual((logged[7]["datagrams_out"], logged[7]["datagrams_in"]), (1, 1))
        self.assertEqual((logged[7]["datagrams_denied"], logged[7]["datagrams_dropped"]), (0, 0))
