"""
L{SOCKS5ClientEndpoint} with GSS-API (RFC 1961) through socksgate, over
the tests' own Kerberos realm (L{tests.gssapi_helpers}): integrity and
confidentiality with what the gateway receives recorded, a principal the
rules deny, a level the gateway does not agree to, and no ticket.
"""

from __future__ import annotations

import os

from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from socksgate.client import GSSAPIClientOptions, SOCKS5ClientEndpoint
from socksgate.client.errors import (
    AuthenticationFailed,
    ConnectionNotAllowed,
    GSSAPIAuthenticationFailed,
    GSSAPIProtectionRefused,
)
from socksgate.testing import startEchoServer, startSinkServer
from socksgate.wire import GSSAPIMessageType, ProtectionLevel, parseGSSAPIMessage

from .client_helpers import collectorFactory
from .gssapi_helpers import REALM, UNAVAILABLE, startRecordingForwarder
from .helpers import collectSessions
from .test_gssapi import GSSAPITestCase

PAYLOAD = b"secret payload that only alice and the gateway may read " * 3000


def messageTypes(recording: bytes) -> list[GSSAPIMessageType]:
    """
    The RFC 1961 messages of what a GSS-API client sent after its greeting
    (C{05 01 01}): every byte must belong to one.
    """
    assert recording[:3] == b"\x05\x01\x01", recording[:3]
    rest, kinds = recording[3:], []
    while rest:
        parsed = parseGSSAPIMessage(rest)
        assert parsed is not None, f"{len(rest)} bytes that are not a whole RFC 1961 message"
        message, consumed = parsed
        kinds.append(message.type)
        rest = rest[consumed:]
    return kinds


class GSSAPIEndpointTests(GSSAPITestCase):
    """
    L{SOCKS5ClientEndpoint} with C{gssapi=GSSAPIClientOptions(...)}.
    """

    def endpoint(
        self, port: int, destination: int, protection: str = "confidentiality", user: str = "alice"
    ) -> SOCKS5ClientEndpoint:
        """
        An endpoint through the gateway (or forwarder) at C{port} to
        C{127.0.0.1:destination}, as C{user}.
        """
        options = GSSAPIClientOptions("rcmd@localhost", protection, ccache=self.realm.ccaches[user])
        proxy = TCP4ClientEndpoint(self.reactor(), "127.0.0.1", port)
        return SOCKS5ClientEndpoint(proxy, "127.0.0.1", destination, gssapi=options)

    def reactor(self) -> object:
        """
        The global reactor.
        """
        from twisted.internet import reactor

        return reactor

    async def relay(self, level: str) -> bytes:
        """
        Echo L{PAYLOAD} through a recording forwarder in front of a gateway
        that accepts integrity and confidentiality: it comes back intact,
        the record names alice's principal, and everything after the
        greeting is RFC 1961 messages, the request and the data in
        encapsulated ones.

        @return: what the gateway received.
        """
        gateway = self.gateway(["integrity", "confidentiality"])
        port, recording = startRecordingForwarder(self, gateway.port)
        echo = startEchoServer(self)
        records = collectSessions(self)
        protocol = await self.endpoint(port, echo.port, level).connect(collectorFactory())
        protocol.transport.write(PAYLOAD)
        protocol.transport.loseWriteConnection()
        await protocol.closed
        self.assertEqual(protocol.received, PAYLOAD)
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["bytes_out"], r["bytes_in"]) for r in records],
            [("closed", "gssapi", f"alice@{REALM}", len(PAYLOAD), len(PAYLOAD))],
        )
        kinds = messageTypes(bytes(recording))
        self.assertEqual(kinds[0], GSSAPIMessageType.AUTHENTICATION)
        protection = kinds.index(GSSAPIMessageType.PROTECTION)
        self.assertEqual(set(kinds[:protection]), {GSSAPIMessageType.AUTHENTICATION})
        self.assertEqual(set(kinds[protection + 1 :]), {GSSAPIMessageType.ENCAPSULATED})
        self.assertGreater(len(kinds) - protection - 1, len(PAYLOAD) // 0xFFFF)
        return bytes(recording)

    async def test_confidentiality(self) -> None:
        """
        At confidentiality neither the request (its address) nor the
        payload is on the wire in clear.
        """
        recording = await self.relay("confidentiality")
        self.assertNotIn(b"secret payload", recording)
        self.assertNotIn(b"\x7f\x00\x00\x01", recording)

    async def test_integrity(self) -> None:
        """
        At integrity the payload is readable inside its wrapped tokens, but
        what the gateway receives is not the plaintext: every byte is in a
        checked RFC 1961 message.
        """
        recording = await self.relay("integrity")
        self.assertIn(b"secret payload", recording)
        self.assertNotIn(PAYLOAD, recording)

    async def test_principalDenied(self) -> None:
        """
        A principal the rules deny gets reply 0x02, sealed:
        L{ConnectionNotAllowed}; nothing is relayed.
        """
        rules = (
            '[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\nusers = ["alice@EXAMPLE.TEST"]\n'
            '[[rule]]\naction = "deny"\nmessage = "not alice"\n'
        )
        gateway = self.gateway(["confidentiality"], rules)
        sink = startSinkServer(self)
        records = collectSessions(self)
        error = await self.assertFailure(
            self.endpoint(gateway.port, sink.port, user="bob").connect(collectorFactory()),
            ConnectionNotAllowed,
        )
        self.assertEqual(error.code, 2)
        self.assertEqual(sink.connections, [])
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["user"], r["reply"]) for r in records], [("denied", f"bob@{REALM}", 2)]
        )

    async def test_levelRefused(self) -> None:
        """
        A gateway that agrees to another level than the one asked for
        (integrity, where confidentiality was asked) is refused with
        L{GSSAPIProtectionRefused}, which says both; nothing is relayed.
        """
        gateway = self.gateway(["none", "integrity"])
        sink = startSinkServer(self)
        error = await self.assertFailure(
            self.endpoint(gateway.port, sink.port).connect(collectorFactory()), GSSAPIProtectionRefused
        )
        self.assertIsInstance(error, AuthenticationFailed)
        self.assertEqual(
            (error.asked, error.agreed), (ProtectionLevel.CONFIDENTIALITY, ProtectionLevel.INTEGRITY)
        )
        self.assertIn("the gateway agreed to protection integrity, not confidentiality", str(error))
        await gateway.sessions.whenEmpty()
        self.assertEqual(sink.connections, [])

    async def test_none(self) -> None:
        """
        At level C{none} (what curl relays at) the connection works
        unprotected.
        """
        gateway = self.gateway(["none"])
        echo = startEchoServer(self)
        protocol = await self.endpoint(gateway.port, echo.port, "none").connect(collectorFactory())
        protocol.transport.write(b"ping")
        self.assertEqual(await protocol.waitFor(4), b"ping")
        protocol.transport.loseConnection()
        await protocol.closed

    async def test_noTicket(self) -> None:
        """
        A credential cache without tickets fails with
        L{GSSAPIAuthenticationFailed}, which says why.
        """
        gateway = self.gateway(["confidentiality"])
        sink = startSinkServer(self)
        options = GSSAPIClientOptions(
            "rcmd@localhost", ccache=os.path.join(self.realm.directory, "empty.ccache")
        )
        proxy = TCP4ClientEndpoint(self.reactor(), "127.0.0.1", gateway.port)
        endpoint = SOCKS5ClientEndpoint(proxy, "127.0.0.1", sink.port, gssapi=options)
        error = await self.assertFailure(endpoint.connect(collectorFactory()), GSSAPIAuthenticationFailed)
        self.assertIn("No credentials cache found", str(error))
        await gateway.sessions.whenEmpty()
        self.assertEqual(sink.connections, [])


class GSSAPIOptionsTests(TestCase):
    """
    L{GSSAPIClientOptions} and the endpoint check their arguments when
    made.
    """

    if UNAVAILABLE:
        skip = UNAVAILABLE

    def test_unknownLevel(self) -> None:
        """
        A level that is not C{none}, C{integrity} or C{confidentiality} is a
        L{ValueError}.
        """
        self.assertRaises(ValueError, GSSAPIClientOptions, "rcmd@localhost", "selective")

    def test_notWithPassword(self) -> None:
        """
        GSS-API and a username are not offered together.
        """
        options = GSSAPIClientOptions("rcmd@localhost")
        proxy = TCP4ClientEndpoint(None, "127.0.0.1", 1080)
        self.assertRaises(ValueError, SOCKS5ClientEndpoint, proxy, "h", 1, username="a", gssapi=options)
