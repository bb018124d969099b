"""
Reloading the configuration: new requests see the new policy, sessions
under way go on, and a broken file is refused while the old policy stays.
"""

from __future__ import annotations

import os
import signal
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater

from socksgate.config import loadConfig
from socksgate.service import buildService
from socksgate.testing import startEchoServer

from .helpers import LoopbackTestCase, connectRaw, listeningPort, socks5Connect, startProcess

PERMIT_ALL = '[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\n'
DENY_ALL = '[[rule]]\naction = "deny"\nmessage = "closed for the night"\n'
BROKEN = '[[rule]]\naction = "permit"\nports = ["not a port"]\n'
FAILING = PERMIT_ALL + '[[expect]]\nclient = "127.0.0.1"\ndestination = "127.0.0.1:80"\nresult = "deny"\n'


class ReloadTests(LoopbackTestCase):
    """
    GatewayService.reload in process.
    """

    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        self.write(PERMIT_ALL)
        self.service = buildService(loadConfig(self.path).withListen(("tcp:0:interface=127.0.0.1",)), reactor)

    def write(self, text: str) -> None:
        with open(self.path, "w") as stream:
            stream.write(text)

    async def test_newPolicy(self) -> None:
        """
        A good file replaces the policy of every listener.
        """
        self.write(DENY_ALL)
        self.assertTrue(await self.service.reload())
        [factory] = self.service.factories.values()
        self.assertIs(factory.policy, self.service.policy)
        self.assertEqual(self.service.config.rules[0].message, "closed for the night")

    async def test_brokenFileRefused(self) -> None:
        """
        A file that does not load is refused and the old policy stays; the
        log says why, with file and line.
        """
        before = self.service.policy
        self.write(BROKEN)
        self.assertFalse(await self.service.reload())
        self.assertIs(self.service.policy, before)

    async def test_failingExpectationRefused(self) -> None:
        """
        A file whose expectations fail is refused too.
        """
        before = self.service.policy
        self.write(FAILING)
        self.assertFalse(await self.service.reload())
        self.assertIs(self.service.policy, before)


class ReloadOrderTests(LoopbackTestCase):
    """
    Reloads take effect in the order they were asked for.
    """

    async def test_laterReloadWins(self) -> None:
        """
        When a reload that was asked first finishes reading after one that
        was asked later (a large file, then a small one), the later one's
        file stays in force; the earlier result is dropped, and the log
        says so.
        """
        import threading

        from socksgate import service as serviceModule

        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(PERMIT_ALL)
        gateway = buildService(loadConfig(path).withListen(("tcp:0:interface=127.0.0.1",)), reactor)
        release = threading.Event()
        self.addCleanup(release.set)
        calls = []
        realLoad = serviceModule.loadConfig

        def slowFirst(*arguments: object) -> object:
            calls.append(arguments)
            config = realLoad(*arguments)  # type: ignore[arg-type]
            if len(calls) == 1:
                release.wait(10)
            return config

        self.patch(serviceModule, "loadConfig", slowFirst)
        first = gateway.reload()
        for _ in range(200):
            if calls:
                break
            await deferLater(reactor, 0.01, lambda: None)
        with open(path, "w") as stream:
            stream.write(DENY_ALL)
        self.assertTrue(await gateway.reload())
        self.assertEqual(gateway.config.rules[0].message, "closed for the night")
        release.set()
        self.assertFalse(await first)
        self.assertEqual(gateway.config.rules[0].message, "closed for the night")
        [factory] = gateway.factories.values()
        self.assertIs(factory.policy, gateway.policy)


class SIGHUPTests(LoopbackTestCase):
    """
    SIGHUP to a running twistd.
    """

    async def request(self, port: int, echoPort: int) -> bytes:
        client = await connectRaw(port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echoPort, atyp=1))
        reply = await client.receive(12)
        client.transport.loseConnection()
        await client.closed
        return reply[2:4]

    async def waitFor(self, process: object, text: bytes) -> None:
        for _ in range(200):
            if text in process.output:  # type: ignore[attr-defined]
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail(f"{text!r} not in {process.output!r}")  # type: ignore[attr-defined]

    async def test_reloadOnSIGHUP(self) -> None:
        """
        A running gateway takes a new policy on SIGHUP, refuses a broken
        file with a clear message and keeps serving with the policy it had.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(PERMIT_ALL)
        echo = startEchoServer(self)
        transport, process = await startProcess(
            self,
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
             "socksgate", "-c", path, "--listen", "tcp:0:interface=127.0.0.1"],
            b"starting on ",
        )  # fmt: skip
        port = listeningPort(process.output)
        self.assertEqual(await self.request(port, echo.port), b"\x05\x00")

        with open(path, "w") as stream:
            stream.write(DENY_ALL)
        transport.signalProcess(signal.SIGHUP)
        await self.waitFor(process, b"reloaded " + path.encode())
        self.assertEqual(await self.request(port, echo.port), b"\x05\x02")

        with open(path, "w") as stream:
            stream.write(BROKEN)
        transport.signalProcess(signal.SIGHUP)
        await self.waitFor(process, b"refused to reload")
        self.assertIn(f"{path}:3: [rule #1] ports".encode(), process.output)
        self.assertEqual(await self.request(port, echo.port), b"\x05\x02")

        transport.signalProcess(signal.SIGTERM)
        await process.ended
