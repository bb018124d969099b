"""
Tests for L{socksgate.testing_faults}, through socksgate's own client
endpoints: every error class from a gateway told to answer it, a reply
cut at every byte, a delayed reply (waited for, and cancelled), a close
after the greeting, refused logins, the methods offered, and the record
of what the client sent.
"""

from __future__ import annotations

import os
import sys
from ipaddress import IPv4Address

from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from socksgate.client import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from socksgate.client.errors import (
    AddressTypeNotSupported,
    AuthenticationFailed,
    CommandNotSupported,
    ConnectionNotAllowed,
    ConnectionRefused,
    GeneralServerFailure,
    HostUnreachable,
    IdentdMismatch,
    IdentdUnreachable,
    MalformedReply,
    NetworkUnreachable,
    NoAcceptableMethods,
    RequestRejected,
    TTLExpired,
)
from socksgate.policy import AccessRequest
from socksgate.testing import Faults, ReplyCodePolicy, startEchoServer, startGateway
from socksgate.vocabulary import RequestRefused
from socksgate.wire import Command, SOCKS4Request, SOCKS5Greeting, SOCKS5Request, UsernamePasswordRequest

from .client_helpers import collectorFactory, echoThrough
from .helpers import LoopbackTestCase, startProcess

SOCKS5_ERRORS = [
    (0x01, GeneralServerFailure),
    (0x02, ConnectionNotAllowed),
    (0x03, NetworkUnreachable),
    (0x04, HostUnreachable),
    (0x05, ConnectionRefused),
    (0x06, TTLExpired),
    (0x07, CommandNotSupported),
    (0x08, AddressTypeNotSupported),
]

SOCKS4_ERRORS = [(91, RequestRejected), (92, IdentdUnreachable), (93, IdentdMismatch)]


def proxyTo(gateway) -> TCP4ClientEndpoint:
    """
    An endpoint that reaches C{gateway}.
    """
    return TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port)


class ReplyCodePolicyTests(SynchronousTestCase):
    """
    L{ReplyCodePolicy} on its own.
    """

    def request(self, name, address, port) -> AccessRequest:
        """
        A CONNECT request from loopback.
        """
        return AccessRequest(IPv4Address("127.0.0.1"), 5000, "tcp:0", "5", "connect", name, address, port)

    def test_byHostAndPort(self) -> None:
        """
        A host matches at any port, a C{(host, port)} at that port only;
        the other requests go to the policy behind.
        """
        policy = ReplyCodePolicy({"down.test": 0x04, ("127.0.0.1", 81): 0x05})
        error = self.assertRaises(RequestRefused, policy.decide, self.request("down.test", None, 1))
        self.assertEqual(error.reply, 0x04)
        error = self.assertRaises(
            RequestRefused, policy.decide, self.request(None, IPv4Address("127.0.0.1"), 81)
        )
        self.assertEqual(error.reply, 0x05)
        self.assertTrue(policy.decide(self.request(None, IPv4Address("127.0.0.1"), 82)).permitted)

    def test_socks4Codes(self) -> None:
        """
        A SOCKS4 code is the refusal's C{socks4}.
        """
        policy = ReplyCodePolicy({"x.test": 93})
        error = self.assertRaises(RequestRefused, policy.decide, self.request("x.test", None, 1))
        self.assertEqual(error.socks4, 93)


class ReplyCodeTests(LoopbackTestCase):
    """
    A gateway told to answer a code for a destination: the client
    endpoints fail with that code's error.
    """

    async def test_socks5(self) -> None:
        """
        Every SOCKS5 code, for a name (never resolved) and an address.
        """
        replies = {f"code{code}.test": code for code, _ in SOCKS5_ERRORS}
        replies.update({("127.0.0.1", 60000 + code): code for code, _ in SOCKS5_ERRORS})
        gateway = startGateway(self, faults=Faults(replies=replies))
        for code, errorClass in SOCKS5_ERRORS:
            for host, port in ((f"code{code}.test", 80), ("127.0.0.1", 60000 + code)):
                endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), host, port)
                error = await self.assertFailure(endpoint.connect(collectorFactory()), errorClass)
                self.assertEqual((error.code, error.version), (code, 5))

    async def test_socks4(self) -> None:
        """
        Every SOCKS4 code, SOCKS4a by name; a SOCKS5 code reaches a
        SOCKS4 client as 91.
        """
        replies = {f"code{code}.test": code for code, _ in SOCKS4_ERRORS}
        replies["refused.test"] = 0x05
        gateway = startGateway(self, faults=Faults(replies=replies))
        for code, errorClass in SOCKS4_ERRORS:
            endpoint = SOCKS4aClientEndpoint(proxyTo(gateway), f"code{code}.test", 80)
            error = await self.assertFailure(endpoint.connect(collectorFactory()), errorClass)
            self.assertEqual((error.code, error.version), (code, 4))
        endpoint = SOCKS4aClientEndpoint(proxyTo(gateway), "refused.test", 80)
        await self.assertFailure(endpoint.connect(collectorFactory()), RequestRejected)

    async def test_othersPass(self) -> None:
        """
        A destination not named is served as usual.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, faults=Faults(replies={"down.test": 0x04}))
        await echoThrough(self, SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port))


class CutAndDelayTests(LoopbackTestCase):
    """
    The gateway's bytes cut at an offset, or held back.
    """

    async def test_cutEverywhere(self) -> None:
        """
        A SOCKS5 answer (2 bytes of method selection, 10 of reply) cut at
        every offset before its end: L{MalformedReply}, never a hang; with
        username/password (2 + 2 + 10 bytes) too.
        """
        echo = startEchoServer(self)
        for cutAt in range(12):
            gateway = startGateway(self, faults=Faults(cutAt=cutAt))
            endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port)
            await self.assertFailure(endpoint.connect(collectorFactory()), MalformedReply)
        for cutAt in range(14):
            gateway = startGateway(self, faults=Faults(cutAt=cutAt, methods=("userpass",), users={"u": "p"}))
            endpoint = SOCKS5ClientEndpoint(
                proxyTo(gateway), "127.0.0.1", echo.port, username="u", password="p"
            )
            await self.assertFailure(endpoint.connect(collectorFactory()), MalformedReply)

    async def test_cutSOCKS4(self) -> None:
        """
        A SOCKS4 reply (8 bytes) cut at every offset: L{MalformedReply}.
        """
        echo = startEchoServer(self)
        for cutAt in range(8):
            gateway = startGateway(self, faults=Faults(cutAt=cutAt))
            endpoint = SOCKS4ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port)
            await self.assertFailure(endpoint.connect(collectorFactory()), MalformedReply)

    async def test_delayed(self) -> None:
        """
        A reply held back for a while, then sent: the connection is made.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, faults=Faults(delayAt=2, delay=0.05))
        await echoThrough(self, SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port))

    async def test_cancelDuringDelayedReply(self) -> None:
        """
        Cancelling while the reply is held back: L{CancelledError}, and the
        connection to the gateway is closed (its session ends).
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, faults=Faults(delayAt=2))
        connecting = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port).connect(
            collectorFactory()
        )
        for _ in range(500):
            if gateway.clients and gateway.clients[0].requests:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertFalse(connecting.called)
        connecting.cancel()
        await self.assertFailure(connecting, CancelledError)
        await gateway.sessions.whenEmpty()
        for _ in range(500):
            if gateway.clients[0].closed:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(gateway.clients[0].closed)


class AuthenticationTests(LoopbackTestCase):
    """
    Closing after the greeting, refused logins, the methods offered.
    """

    async def test_closeAfterGreeting(self) -> None:
        """
        The gateway closes without a method selection: L{MalformedReply}.
        """
        gateway = startGateway(self, faults=Faults(closeAfterGreeting=True))
        endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", 7)
        await self.assertFailure(endpoint.connect(collectorFactory()), MalformedReply)
        self.assertEqual(gateway.clients[0].messages, [SOCKS5Greeting((0,))])

    async def test_refuseAuthentication(self) -> None:
        """
        Every login refused: L{AuthenticationFailed}; a client without
        credentials gets L{NoAcceptableMethods}.
        """
        gateway = startGateway(self, faults=Faults(refuseAuthentication=True))
        endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", 7, username="u", password="p")
        await self.assertFailure(endpoint.connect(collectorFactory()), AuthenticationFailed)
        endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", 7)
        await self.assertFailure(endpoint.connect(collectorFactory()), NoAcceptableMethods)

    async def test_onlySomeMethods(self) -> None:
        """
        A gateway that offers only username/password logs the users given
        in, and answers C{05 FF} to a client that offers only no
        authentication.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, faults=Faults(methods=("userpass",), users={"alice": "s3cret"}))
        endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port)
        await self.assertFailure(endpoint.connect(collectorFactory()), NoAcceptableMethods)
        endpoint = SOCKS5ClientEndpoint(
            proxyTo(gateway), "127.0.0.1", echo.port, username="alice", password="s3cret"
        )
        await echoThrough(self, endpoint)


class RecordTests(LoopbackTestCase):
    """
    What the client sent: its bytes and the messages they hold.
    """

    async def test_socks5(self) -> None:
        """
        The greeting, the RFC 1929 request and the request (its name
        unresolved), as bytes written from RFC 1928 and 1929 and as
        messages; the stream's bytes follow in C{data}.
        """
        gateway = startGateway(
            self, faults=Faults(replies={"echo.test": 0x05}, users={"alice": "pw"}, methods=("userpass",))
        )
        endpoint = SOCKS5ClientEndpoint(proxyTo(gateway), "echo.test", 7, username="alice", password="pw")
        await self.assertFailure(endpoint.connect(collectorFactory()), ConnectionRefused)
        [record] = gateway.clients
        self.assertEqual(
            record.data,
            b"\x05\x02\x00\x02" + b"\x01\x05alice\x02pw" + b"\x05\x01\x00\x03\x09echo.test\x00\x07",
        )
        self.assertEqual(
            record.messages,
            [
                SOCKS5Greeting((0, 2)),
                UsernamePasswordRequest(b"alice", b"pw"),
                SOCKS5Request(Command.CONNECT, "echo.test", 7),
            ],
        )
        self.assertEqual(record.requests, [SOCKS5Request(Command.CONNECT, "echo.test", 7)])

    async def test_socks4(self) -> None:
        """
        A SOCKS4 request, and the stream after it.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, faults=Faults())
        endpoint = SOCKS4ClientEndpoint(proxyTo(gateway), "127.0.0.1", echo.port, userid="bob")
        await echoThrough(self, endpoint, b"stream")
        [record] = gateway.clients
        self.assertEqual(
            record.requests, [SOCKS4Request(Command.CONNECT, IPv4Address("127.0.0.1"), echo.port, b"bob")]
        )
        self.assertTrue(record.data.endswith(b"bob\x00stream"))

    def test_withoutFaults(self) -> None:
        """
        A gateway without faults records nothing.
        """
        self.assertEqual(startGateway(self).clients, [])


class GuideExampleTests(LoopbackTestCase):
    """
    The example of docs/testing.md, examples/test_client_faults.py, passes.
    """

    async def test_example(self) -> None:
        """
        trial runs the example's tests, and they pass.
        """
        examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
        transport, process = await startProcess(
            self,
            [sys.executable, "-m", "twisted.trial", os.path.join(examples, "test_client_faults.py")],
            b"",
        )
        await process.ended
        self.assertIn(b"PASSED", process.output, process.output)
