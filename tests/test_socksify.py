"""
BIND with Dante's client library: programs run under C{socksify} (Debian's
C{dante-client}), whose libdsocks turns their bind(), listen() and accept()
into a SOCKS BIND request to the gateway.

libdsocks asks for any peer (DST.ADDR 0.0.0.0) and, when the program bound
port 0, takes whatever port the gateway listens on; getsockname() then
gives the address of the first reply, and accept() waits for the second
reply and hands the program its connection to the gateway, with the
peer's address.
"""

from __future__ import annotations

import os
import re
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater

from socksgate.testing import RunningGateway, startGateway

from .helpers import LoopbackTestCase, RawClient, collectSessions, connectRaw, startProcess

PROGRAM = os.path.join(os.path.dirname(__file__), "data", "socksify", "bindaccept.py")

CONFIG = """\
route {{
    from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = {port}
    protocol: tcp
    proxyprotocol: {proxyProtocol}
    command: bind
}}
"""


class SocksifyTestCase(LoopbackTestCase):
    """
    Runs programs under socksify with a route to the test's gateway.
    """

    def socksify(self, gateway: RunningGateway, proxyProtocol: str, command: list[str]) -> list[str]:
        """
        The arguments that run C{command} under socksify, in an environment
        of its own: a client configuration whose only route, for BIND, goes
        to C{gateway} over C{proxyProtocol} (C{socks_v4} or C{socks_v5}),
        no direct routes added for the local networks, and libdsocks'
        messages on standard error.
        """
        configuration = self.mktemp()
        with open(configuration, "w") as stream:
            stream.write(CONFIG.format(port=gateway.port, proxyProtocol=proxyProtocol))
        return [
            "env",
            "-i",
            f"PATH={os.environ.get('PATH', os.defpath)}",
            f"SOCKS_CONF={configuration}",
            "SOCKS_AUTOADD_LANROUTES=no",
            "SOCKS_LOGOUTPUT=stderr",
            "SOCKS_DEBUG=1",
            "socksify",
            *command,
        ]

    async def exchange(self, peer: RawClient, sent: bytes) -> bytes:
        """
        Send C{sent} as the peer, then the peer's FIN, and return all that
        comes back until the program closes.
        """
        peer.transport.write(sent)
        peer.transport.loseWriteConnection()
        return await peer.receiveAll()


class ProgramTests(SocksifyTestCase):
    """
    A Python program (tests/data/socksify/bindaccept.py) that binds port 0
    of 127.0.0.1, listens, reports its address, accepts one connection,
    reports the peer, reads until the FIN and answers.
    """

    async def acceptThroughGateway(self, proxyProtocol: str, version: str, reply: int) -> None:
        gateway = startGateway(self)
        records = collectSessions(self)
        arguments = self.socksify(gateway, proxyProtocol, [sys.executable, PROGRAM])
        transport, process = await startProcess(self, arguments, b" accepting")
        match = re.search(rb"bound ([\d.]+):(\d+) accepting", process.output)
        self.assertIsNotNone(match, process.output)
        host, port = match.group(1).decode("ascii"), int(match.group(2))
        self.assertEqual(host, "127.0.0.1", process.output)
        self.assertNotEqual(port, gateway.port)

        peer = await connectRaw(port, host)
        peerAddress = f"127.0.0.1:{peer.transport.getHost().port}"
        answer = await self.exchange(peer, b"from the peer")
        self.assertEqual(answer, b"answer to from the peer", process.output)
        self.assertEqual(await process.ended, (0, None), process.output)
        self.assertIn(f"peer {peerAddress}\n".encode("ascii"), process.output)

        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual(record["command"], "bind")
        self.assertEqual(record["version"], version)
        self.assertEqual(record["destination"].split(":")[0], "0.0.0.0")
        self.assertEqual((record["outcome"], record["reply"]), ("closed", reply))
        self.assertEqual(record["bind"], f"{host}:{port}")
        self.assertEqual(record["peer"], peerAddress)
        self.assertEqual((record["bytes_out"], record["bytes_in"]), (23, 13))

    async def test_socks5(self) -> None:
        """
        Over SOCKS5, the program's getsockname() gives the address of the
        gateway's first reply, the peer that connects there is the
        program's accepted connection, with the peer's own address from the
        second reply, and bytes pass both ways, half-close included; the
        session record has command bind, the announced address and the
        peer.
        """
        await self.acceptThroughGateway("socks_v5", "5", 0)

    async def test_socks4(self) -> None:
        """
        The same over SOCKS4.
        """
        await self.acceptThroughGateway("socks_v4", "4", 90)


class NcatListenTests(SocksifyTestCase):
    """
    C{ncat --listen}, unmodified, under socksify.
    """

    async def announcedAddress(self, gateway: RunningGateway) -> str:
        """
        Wait (at most ten seconds) for the gateway's BIND session to have
        sent its first reply, and return the address it announced: ncat
        prints the address it was given (port 0), not the one it got.
        """
        for _ in range(200):
            for protocol in gateway.sessions.open:
                record = protocol.record
                if record is not None and record.bind is not None:
                    return record.bind
            await deferLater(reactor, 0.05, lambda: None)
        self.fail("no BIND request reached the gateway")

    async def test_socks5(self) -> None:
        """
        ncat listening on port 0 of 127.0.0.1 gets its connection through
        the gateway: it names the peer's address (from the second reply),
        sends its input and half-closes, and prints what the peer sent.
        """
        gateway = startGateway(self)
        records = collectSessions(self)
        inputFile = self.mktemp()
        with open(inputFile, "wb") as stream:
            stream.write(b"from ncat")
        command = ["sh", "-c", f'exec ncat --verbose --listen 127.0.0.1 0 < "{inputFile}"']
        transport, process = await startProcess(
            self, self.socksify(gateway, "socks_v5", command), b"Listening on"
        )
        announced = await self.announcedAddress(gateway)
        host, port = announced.rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")

        peer = await connectRaw(int(port), host)
        peerAddress = f"127.0.0.1:{peer.transport.getHost().port}"
        self.assertEqual(await self.exchange(peer, b"from the peer"), b"from ncat", process.output)
        self.assertEqual(await process.ended, (0, None), process.output)
        self.assertIn(f"Connection from {peerAddress}.".encode("ascii"), process.output)
        self.assertIn(b"from the peer", process.output)

        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual((record["command"], record["version"]), ("bind", "5"))
        self.assertEqual(record["bind"], announced)
        self.assertEqual(record["peer"], peerAddress)
