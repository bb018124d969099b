"""
Real SOCKS clients through the gateway: curl in its four SOCKS modes,
ncat as a half-closing client, and PySocks.
"""

from __future__ import annotations

import hashlib
import os
import socket

import socks
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.server import Site
from twisted.web.static import File

from socksgate.testing import startEchoServer, startGateway

from .helpers import AnswerAfterFIN, LoopbackTestCase

SIZE = 5 * 1024 * 1024 + 123


class CurlTests(LoopbackTestCase):
    """
    curl fetches a multi-megabyte file through the gateway, intact, in
    every SOCKS mode it has.
    """

    def setUp(self) -> None:
        directory = self.mktemp()
        os.makedirs(directory)
        content = os.urandom(SIZE)
        self.digest = hashlib.sha256(content).hexdigest()
        with open(os.path.join(directory, "big.bin"), "wb") as stream:
            stream.write(content)
        site = Site(File(directory))
        site.noisy = False
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.webPort = port.getHost().port
        self.gateway = startGateway(self)

    async def fetch(self, mode: str, host: str) -> None:
        out, err, code = await getProcessOutputAndValue(
            "curl",
            [
                "--silent",
                "--show-error",
                "--max-time",
                "20",
                f"--{mode}",
                f"127.0.0.1:{self.gateway.port}",
                f"http://{host}:{self.webPort}/big.bin",
            ],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out), SIZE)
        self.assertEqual(hashlib.sha256(out).hexdigest(), self.digest)

    async def test_socks4(self) -> None:
        """
        curl --socks4 (curl resolves, sends an IPv4 address).
        """
        await self.fetch("socks4", "127.0.0.1")

    async def test_socks4a(self) -> None:
        """
        curl --socks4a (the gateway resolves the name).
        """
        await self.fetch("socks4a", "localhost")

    async def test_socks5(self) -> None:
        """
        curl --socks5 (curl resolves).
        """
        await self.fetch("socks5", "127.0.0.1")

    async def test_socks5Hostname(self) -> None:
        """
        curl --socks5-hostname (the gateway resolves the name).
        """
        await self.fetch("socks5-hostname", "localhost")

    async def test_refusedDestination(self) -> None:
        """
        curl reports the gateway's refusal as a proxy error, not a hang.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        out, err, code = await getProcessOutputAndValue(
            "curl",
            [
                "--silent",
                "--max-time",
                "20",
                "--socks5",
                f"127.0.0.1:{self.gateway.port}",
                f"http://127.0.0.1:{free}/",
            ],
        )
        self.assertEqual(code, 97, err)  # CURLE_PROXY: the proxy refused


class NcatTests(LoopbackTestCase):
    """
    ncat, which half-closes the connection when its input ends.
    """

    async def check(self, proxyType: str) -> None:
        destination = AnswerAfterFIN()
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: destination), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        gateway = startGateway(self)
        inputFile = self.mktemp()
        with open(inputFile, "wb") as stream:
            stream.write(b"question from ncat")
        out, err, code = await getProcessOutputAndValue(
            "/bin/sh",
            [
                "-c",
                f"exec ncat --proxy 127.0.0.1:{gateway.port} --proxy-type {proxyType} "
                f'127.0.0.1 {port.getHost().port} < "{inputFile}"',
            ],
        )
        self.assertEqual((code, out), (0, b"answer to question from ncat"), err)

    async def test_socks5HalfClose(self) -> None:
        """
        ncat over SOCKS5 sends, shuts down its sending side, and still gets
        the answer the destination sends after that.
        """
        await self.check("socks5")

    async def test_socks4HalfClose(self) -> None:
        """
        The same over SOCKS4.
        """
        await self.check("socks4")


class PySocksTests(LoopbackTestCase):
    """
    PySocks, the SOCKS client most Python programs use.
    """

    async def test_socks5RemoteDNS(self) -> None:
        """
        A PySocks socket with remote DNS talks to an echo server by name.
        """
        gateway, echo = startGateway(self), startEchoServer(self)

        def talk() -> bytes:
            with socks.socksocket() as sock:
                sock.set_proxy(socks.SOCKS5, "127.0.0.1", gateway.port, rdns=True)
                sock.settimeout(10)
                sock.connect(("localhost", echo.port))
                sock.sendall(b"hello pysocks")
                received = b""
                while len(received) < 13:
                    received += sock.recv(100)
                return received

        self.assertEqual(await deferToThread(talk), b"hello pysocks")

    async def test_socks4(self) -> None:
        """
        A PySocks socket over SOCKS4.
        """
        gateway, echo = startGateway(self), startEchoServer(self)

        def talk() -> bytes:
            with socks.socksocket() as sock:
                sock.set_proxy(socks.SOCKS4, "127.0.0.1", gateway.port, rdns=False)
                sock.settimeout(10)
                sock.connect(("127.0.0.1", echo.port))
                sock.sendall(b"four")
                return sock.recv(100)

        self.assertEqual(await deferToThread(talk), b"four")
