"""
The examples run as they are documented.
"""

from __future__ import annotations

import os
import signal
import sys

from socksgate.testing import startEchoServer

from .helpers import LoopbackTestCase, connectRaw, listeningPort, socks4Connect, socks5Connect, startProcess

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


class EmbedExampleTests(LoopbackTestCase):
    """
    examples/embed.py: a gateway inside another Twisted program.
    """

    async def test_embeddedPolicy(self) -> None:
        """
        The embedded gateway relays to a loopback destination on a high
        port, and its own policy refuses a privileged port with 0x02.
        """
        echo = startEchoServer(self)
        transport, process = await startProcess(
            self,
            [sys.executable, os.path.join(EXAMPLES, "embed.py"), "tcp:0:interface=127.0.0.1"],
            b"embedded gateway listening",
        )
        port = listeningPort(process.output)

        client = await connectRaw(port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"hi")
        self.assertEqual((await client.receive(12))[2:4], b"\x05\x00")
        self.assertEqual(await client.receive(2), b"hi")
        client.transport.loseConnection()

        refused = await connectRaw(port)
        refused.transport.write(socks5Connect(b"\x7f\x00\x00\x01", 22, atyp=1))
        self.assertEqual((await refused.receiveAll())[2:4], b"\x05\x02")

        transport.signalProcess(signal.SIGINT)
        await process.ended


class DirectoryPolicyExampleTests(LoopbackTestCase):
    """
    examples/directory_policy.py: a policy that answers with a Deferred.
    """

    async def test_lateAnswers(self) -> None:
        """
        A staff member is let through once the directory answers; a known
        user outside staff is denied (CD 91); an unknown user makes the
        lookup fail, which refuses the request and is logged.
        """
        echo = startEchoServer(self)
        transport, process = await startProcess(
            self,
            [sys.executable, os.path.join(EXAMPLES, "directory_policy.py"), "tcp:0:interface=127.0.0.1"],
            b"directory-policy gateway listening",
        )
        port = listeningPort(process.output)

        async def ask(user: bytes) -> bytes:
            client = await connectRaw(port)
            client.transport.write(socks4Connect(echo.port, userid=user) + b"hi")
            reply = await client.receive(8)
            client.transport.loseConnection()
            await client.closed
            return reply[:2]

        self.assertEqual(await ask(b"alice"), b"\x00\x5a")
        self.assertEqual(await ask(b"bob"), b"\x00\x5b")
        self.assertEqual(await ask(b"eve"), b"\x00\x5b")
        self.assertIn(b"no such user in the directory: eve", process.output)
        transport.signalProcess(signal.SIGINT)
        await process.ended
