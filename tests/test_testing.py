"""
Tests for L{socksgate.testing}'s L{startGateway}: it takes the same
L{Config} that L{socksgate.service.buildService} takes, and still a
L{ServerConfig}.
"""

from __future__ import annotations

from zope.interface import implementer

from socksgate.config import Config, ServerConfig, parseConfig
from socksgate.interfaces import IAccessPolicy
from socksgate.policy import PERMIT, Decision
from socksgate.testing import startEchoServer, startGateway

from .helpers import LoopbackTestCase, connectRaw, socks5Connect


def _rules(port: int) -> str:
    """
    A configuration that permits loopback clients to C{port} only, with
    CONNECT alone enabled.
    """
    return f"""
[server]
commands = ["connect"]

[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
destinations = ["127.0.0.1"]
ports = ["{port}"]

[[rule]]
action = "deny"
message = "nothing else"
"""


#: A SOCKS5 BIND request for 127.0.0.1:0 after a no-authentication greeting.
BIND = b"\x05\x01\x00" + b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x00"


@implementer(IAccessPolicy)
class _PermitAll:
    """
    A policy that permits every request.
    """

    def decide(self, request: object) -> Decision:
        """
        Permit.
        """
        return Decision(PERMIT, rule=99, message="test")


class StartGatewayConfigTests(LoopbackTestCase):
    """
    L{startGateway} with a L{Config} and with a L{ServerConfig}.
    """

    async def reply(self, port: int, request: bytes) -> bytes:
        """
        Send C{request} (a greeting and a request) to the gateway on
        C{port} and return the REP of the request's reply, after the
        method selection.
        """
        client = await connectRaw(port)
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(request)
        await client.receive(2)
        return (await client.receive(10))[:2]

    async def test_configRules(self) -> None:
        """
        With a L{Config}, the gateway decides with the policy of its rules:
        a CONNECT to the permitted port gets 0x00 and is relayed, one to
        another port 0x02.
        """
        echo, other = startEchoServer(self), startEchoServer(self)
        gateway = startGateway(self, config=parseConfig(_rules(echo.port)))
        self.assertEqual(
            await self.reply(gateway.port, socks5Connect(b"\x7f\x00\x00\x01", echo.port, 1)), b"\x05\x00"
        )
        self.assertEqual(
            await self.reply(gateway.port, socks5Connect(b"\x7f\x00\x00\x01", other.port, 1)), b"\x05\x02"
        )

    async def test_configServer(self) -> None:
        """
        With a L{Config}, the gateway uses its C{[server]} settings: BIND,
        left out of C{commands}, gets 0x07.
        """
        gateway = startGateway(self, config=parseConfig(_rules(1)))
        self.assertEqual(await self.reply(gateway.port, BIND), b"\x05\x07")

    async def test_configAuth(self) -> None:
        """
        With a L{Config}, the gateway uses its C{[auth]} settings: when it
        requires a password, a greeting that offers only "no
        authentication" is refused with method 0xFF.
        """
        config = parseConfig('[auth]\nmethods = ["userpass"]\nchecker = "memory:alice:secret"\n')
        gateway = startGateway(self, config=config)
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x05\x01\x00")
        self.assertEqual(await client.receiveAll(), b"\x05\xff")

    async def test_policyWinsOverConfig(self) -> None:
        """
        A policy given with a L{Config} is used instead of the rules'.
        """
        echo, other = startEchoServer(self), startEchoServer(self)
        gateway = startGateway(self, _PermitAll(), parseConfig(_rules(echo.port)))
        self.assertEqual(
            await self.reply(gateway.port, socks5Connect(b"\x7f\x00\x00\x01", other.port, 1)), b"\x05\x00"
        )
        self.assertEqual(gateway.factory.policy.__class__, _PermitAll)

    async def test_defaultConfig(self) -> None:
        """
        A default L{Config} (no rules) gives the default policy, loopback
        clients only, which permits this loopback client.
        """
        echo = startEchoServer(self)
        gateway = startGateway(self, config=Config())
        self.assertEqual(
            await self.reply(gateway.port, socks5Connect(b"\x7f\x00\x00\x01", echo.port, 1)), b"\x05\x00"
        )

    async def test_serverConfigStillAccepted(self) -> None:
        """
        A L{ServerConfig}, as earlier versions took, still sets the
        C{[server]} settings: BIND, left out of C{commands}, gets 0x07.
        """
        gateway = startGateway(self, config=ServerConfig(commands=frozenset({"connect"})))
        self.assertEqual(gateway.factory.config.commands, frozenset({"connect"}))
        self.assertEqual(await self.reply(gateway.port, BIND), b"\x05\x07")


class EchoServerTests(LoopbackTestCase):
    """
    startEchoServer's echo suits half-closing clients.
    """

    async def test_halfCloseGetsEverythingBack(self) -> None:
        """
        A client that sends 1 MiB and half-closes gets all of it back, then
        the server's FIN, directly and through a gateway.
        """
        echo = startEchoServer(self)
        payload = bytes(range(256)) * 4096
        direct = await connectRaw(echo.port)
        direct.transport.write(payload)
        direct.transport.loseWriteConnection()
        self.assertEqual(await direct.receiveAll(), payload)
        gateway = startGateway(self)
        proxied = await connectRaw(gateway.port)
        proxied.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + payload)
        proxied.transport.loseWriteConnection()
        self.assertEqual((await proxied.receiveAll())[12:], payload)
        await proxied.closed
        await gateway.sessions.whenEmpty()
