"""
ident in the gateway: SOCKS4 requests under [auth] ident = off, log and
require, against a real oidentd, with the client's own user, another user,
and no identd at all.
"""

from __future__ import annotations

import os
import pwd
import shutil
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest

from socksgate.config import AuthConfig
from socksgate.policy import LoopbackOnlyPolicy
from socksgate.testing import startEchoServer, startGateway

from .helpers import CollectingProcess, LoopbackTestCase, collectSessions, connectRaw, freePort, socks4Connect
from .ident_helpers import startOidentd

ME = pwd.getpwuid(os.geteuid()).pw_name

# Run by the system's Python as another user: a SOCKS4 CONNECT with USERID,
# printing the reply in hex.
_SOCKS4_AS_USER = """\
import socket, sys
gateway, port, userid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
connection = socket.create_connection(("127.0.0.1", gateway))
connection.sendall(b"\\x04\\x01" + port.to_bytes(2, "big") + b"\\x7f\\x00\\x00\\x01" + userid + b"\\x00")
reply = b""
while len(reply) < 8:
    data = connection.recv(8 - len(reply))
    if not data:
        break
    reply += data
print(reply.hex(), flush=True)
"""


class IdentGatewayTests(LoopbackTestCase):
    """
    SOCKS4 requests decided with the help of the client's identd.
    """

    async def gateway(self, mode: str, identPort: int) -> int:
        self.echo = startEchoServer(self)
        self.records = collectSessions(self)
        gateway = startGateway(self, auth=AuthConfig(ident=mode))
        gateway.factory.identPort = identPort
        self.gatewayObject = gateway
        return gateway.port

    async def socks4(self, port: int, userid: str) -> bytes:
        client = await connectRaw(port)
        client.transport.write(socks4Connect(self.echo.port, userid=userid.encode()))
        reply = await client.receive(8)
        client.transport.loseConnection()
        await client.closed
        await self.gatewayObject.sessions.whenEmpty()
        return reply[:2]

    async def socks4AsUser(self, user: str, port: int, userid: str) -> bytes:
        """
        A SOCKS4 request from a process running as C{user}.
        """
        if os.geteuid() != 0:
            raise SkipTest("only root can run a process as another user")
        python = shutil.which("python3", path=os.defpath)
        assert python is not None, "no system python3"
        account = pwd.getpwnam(user)
        process = CollectingProcess()
        arguments = [python, "-I", "-S", "-c", _SOCKS4_AS_USER, str(port), str(self.echo.port), userid]
        reactor.spawnProcess(
            process, python, arguments, env={}, path="/", uid=account.pw_uid, gid=account.pw_gid
        )
        await process.ended
        await self.gatewayObject.sessions.whenEmpty()
        return bytes.fromhex(process.output.decode().strip())[:2]

    def lastRecord(self) -> tuple:
        record = self.records[-1]
        return record["reply"], record["auth"], record["user"], record["ident"]

    async def test_off(self) -> None:
        """
        ident = "off": the USERID is taken as claimed and no identd is
        asked (none runs here).
        """
        port = await self.gateway("off", freePort())
        self.assertEqual(await self.socks4(port, "claimed"), b"\x00\x5a")
        self.assertEqual(self.lastRecord(), (90, "none", "claimed", None))

    async def test_logMatching(self) -> None:
        """
        ident = "log": identd's answer is recorded; the claim decides.
        """
        port = await self.gateway("log", await startOidentd(self))
        self.assertEqual(await self.socks4(port, "someone-else"), b"\x00\x5a")
        self.assertEqual(self.lastRecord(), (90, "none", "someone-else", ME))

    async def test_logNoIdentd(self) -> None:
        """
        ident = "log" with no identd: granted, nothing recorded as ident.
        """
        port = await self.gateway("log", freePort())
        self.assertEqual(await self.socks4(port, ME), b"\x00\x5a")
        self.assertEqual(self.lastRecord(), (90, "none", ME, None))

    async def test_requireMatching(self) -> None:
        """
        ident = "require": a USERID that identd confirms is granted, as a
        user verified by ident.
        """
        port = await self.gateway("require", await startOidentd(self))
        self.assertEqual(await self.socks4(port, ME), b"\x00\x5a")
        self.assertEqual(self.lastRecord(), (90, "ident", ME, ME))

    async def test_requireClaimDiffers(self) -> None:
        """
        ident = "require": a USERID other than identd's user gets CD 93.
        """
        port = await self.gateway("require", await startOidentd(self))
        self.assertEqual(await self.socks4(port, "alice"), b"\x00\x5d")
        self.assertEqual(self.lastRecord()[0], 93)

    async def test_requireOtherUser(self) -> None:
        """
        ident = "require" with a client really running as nobody: claiming
        root gets CD 93, claiming nobody is granted.
        """
        port = await self.gateway("require", await startOidentd(self))
        self.assertEqual(await self.socks4AsUser("nobody", port, ME), b"\x00\x5d")
        self.assertEqual(await self.socks4AsUser("nobody", port, "nobody"), b"\x00\x5a")
        self.assertEqual(self.lastRecord(), (90, "ident", "nobody", "nobody"))

    async def test_requireNoIdentd(self) -> None:
        """
        ident = "require" with no identd: CD 92.
        """
        port = await self.gateway("require", freePort())
        self.assertEqual(await self.socks4(port, ME), b"\x00\x5c")
        self.assertEqual(self.lastRecord()[0], 92)


class SilentIdentd(Protocol):
    """
    An identd that accepts and never answers.
    """

    def connectionMade(self) -> None:
        """
        Tell the test a query came.
        """
        self.factory.queried.callback(None)  # type: ignore[attr-defined]


class IdentLeaveTests(LoopbackTestCase):
    """
    A client that leaves while its ident lookup is under way leaves
    nothing behind, whatever its command.
    """

    async def test_resetDuringLookup(self) -> None:
        """
        SOCKS4 BIND with C{ident = "log"}: the client resets while identd
        is silent; the lookup is abandoned, no BIND starts, and the session
        table is empty (the client's slot is returned).
        """
        asked = await self.leaveDuringLookup(lambda client: client.transport.abortConnection())
        self.assertEqual(asked, [])

    async def test_finDuringLookup(self) -> None:
        """
        The same client sending its FIN instead: once the lookup has timed
        out the BIND is decided and ends at once (the client has left), and
        its slot is returned.
        """
        asked = await self.leaveDuringLookup(lambda client: client.transport.loseConnection(), 5)
        self.assertEqual(asked, ["bind"])

    async def leaveDuringLookup(self, leave: Any, timeout: float = 0.3) -> list[str]:
        """
        Send a SOCKS4 BIND to a gateway whose client's identd never
        answers, leave with C{leave(client)} once identd is queried, and
        wait for the session table to empty.

        @return: the commands the policy was asked about.
        """
        identd = Factory.forProtocol(SilentIdentd)
        identd.queried = Deferred()  # type: ignore[attr-defined]
        identPort = reactor.listenTCP(0, identd, interface="127.0.0.1")
        self.addCleanup(identPort.stopListening)
        asked: list[str] = []

        class Recording(LoopbackOnlyPolicy):
            def decide(self, request: Any) -> Any:
                """
                Note the command asked about.
                """
                asked.append(request.command)
                return super().decide(request)

        gateway = startGateway(self, policy=Recording(), auth=AuthConfig(ident="log"))
        gateway.factory.identPort = identPort.getHost().port
        gateway.factory.identTimeout = 0.2
        client = await connectRaw(gateway.port)
        client.transport.write(b"\x04\x02\x00\x00\x7f\x00\x00\x01bob\x00")
        await identd.queried  # type: ignore[attr-defined]
        leave(client)
        await client.closed
        await gateway.sessions.whenEmpty().addTimeout(timeout, reactor)
        await deferLater(reactor, 0.4, lambda: None)
        self.assertEqual(gateway.sessions.open, set())
        return asked
