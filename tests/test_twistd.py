"""
C{twistd socksgate} as administrators run it: a real process.
"""

from __future__ import annotations

import os
import signal
import sys

from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue

from socksgate.testing import startEchoServer

from .helpers import (
    LoopbackTestCase,
    connectRaw,
    listeningPort,
    socks5Connect,
    startProcess,
    startWebServer,
)

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class TwistdTests(LoopbackTestCase):
    """
    The twistd plugin, end to end.
    """

    def twistd(self, *arguments: str) -> Deferred:
        """
        Run twistd with C{arguments} in a fresh directory.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        return getProcessOutputAndValue(
            TWISTD[0], TWISTD[1:] + list(arguments), env=os.environ, path=directory
        )

    async def test_pluginListed(self) -> None:
        """
        The plugin is found by twistd's plugin scan once installed.
        """
        out, err, code = await self.twistd("--help")
        self.assertEqual(code, 0, err)
        self.assertIn(b"socksgate", out)

    async def test_pluginHelp(self) -> None:
        """
        C{twistd socksgate --help} documents --listen and --config.
        """
        out, err, code = await self.twistd("socksgate", "--help")
        self.assertEqual(code, 0, err)
        self.assertIn(b"--listen", out)
        self.assertIn(b"--config", out)

    async def test_configErrorStops(self) -> None:
        """
        A configuration error stops twistd with a message naming the file,
        line, key and problem.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write("[server]\nconnect-timeout = 0\n")
        out, err, code = await self.twistd("-n", "--pidfile=", "socksgate", "-c", path)
        self.assertNotEqual(code, 0)
        self.assertIn(f"{path}:2: [server] connect-timeout: must be greater than 0".encode(), out + err)

    async def test_workers(self) -> None:
        """
        --workers is accepted as SPEC names it; 0 is refused with a clear
        usage message (see C{tests.test_workers} for N > 1).
        """
        out, err, code = await self.twistd("-n", "--pidfile=", "socksgate", "--workers", "0")
        self.assertNotEqual(code, 0)
        self.assertIn(b"--workers 0: give at least 1 process", out + err)
        out, err, code = await self.twistd("socksgate", "--workers", "1", "--help")
        self.assertEqual(code, 0, err)

    async def test_errorsInOneLine(self) -> None:
        """
        A configuration file error, a bad --listen or --status description
        and a bad --workers each stop twistd with status 1 and one line that
        says what is wrong, without the --help text before it and without a
        traceback.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write('[server]\nlisten = ["tcpp:31090"]\n')
        cases = [
            (
                ["-c", path],
                f"twistd socksgate: {path}:2: [server] listen: 'tcpp:31090': unknown endpoint type",
            ),
            (["-l", "tcp:abc"], "twistd socksgate: --listen: 'tcp:abc': 'abc' is not a number"),
            (["--status", "tcpx:9"], "twistd socksgate: --status: 'tcpx:9': unknown endpoint type 'tcpx'"),
            (["--workers", "0"], "twistd socksgate: --workers 0: give at least 1 process"),
        ]
        for arguments, expected in cases:
            out, err, code = await self.twistd("-n", "--pidfile=", "socksgate", *arguments)
            self.assertEqual(code, 1, out + err)
            self.assertIn(expected.encode(), out + err)
            self.assertNotIn(b"Usage:", out + err)
            self.assertNotIn(b"Traceback", out + err)

    async def test_portInUse(self) -> None:
        """
        A port already in use stops twistd with one line naming it.
        """
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            out, err, code = await self.twistd(
                "-n", "--pidfile=", "socksgate", "-l", f"tcp:{port}:interface=127.0.0.1"
            )
        self.assertEqual(code, 1)
        self.assertIn(
            f"twistd socksgate: cannot listen on 127.0.0.1:{port}: Address already in use".encode(), out + err
        )
        self.assertNotIn(b"Traceback", out + err)

    async def test_version(self) -> None:
        """
        C{twistd socksgate --version} prints socksgate's and Twisted's versions.
        """
        import socksgate

        out, err, code = await self.twistd("socksgate", "--version")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith(f"socksgate {socksgate.__version__} (Twisted ".encode()), out)

    async def test_failingExpectationStops(self) -> None:
        """
        A file whose [[expect]] check fails stops twistd, naming the
        expectation, its line and what the rules decided instead.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(
                '[[rule]]\naction = "permit"\n\n'
                '[[expect]]\nclient = "10.0.0.1"\ndestination = "192.0.2.1:25"\nresult = "deny"\n'
            )
        out, err, code = await self.twistd("-n", "--pidfile=", "socksgate", "-c", path)
        self.assertNotEqual(code, 0)
        self.assertIn(
            f"{path}:4: [expect #1]: client 10.0.0.1 SOCKS5 connect 192.0.2.1:25: "
            "expected deny, got permit by rule 1 (line 1)".encode(),
            out + err,
        )

    async def test_servesAndStops(self) -> None:
        """
        C{twistd -n socksgate --listen ...} serves SOCKS5 on the port it is
        given, logs sessions, and exits cleanly on SIGTERM.
        """
        echo = startEchoServer(self)
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1"],
            b"starting on ",
        )
        port = listeningPort(process.output)
        client = await connectRaw(port)
        client.transport.write(socks5Connect(b"localhost", echo.port) + b"through twistd")
        self.assertEqual((await client.receive(12))[2:4], b"\x05\x00")
        self.assertEqual(await client.receive(14), b"through twistd")
        client.transport.loseConnection()
        await client.closed
        transport.signalProcess(signal.SIGTERM)
        # twistd stops cleanly, then ends by the signal that stopped it.
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        self.assertIn(b"Server Shut Down.", process.output)
        self.assertIn(b"socksgate.session", process.output)

    async def test_authOption(self) -> None:
        """
        C{twistd socksgate --auth memory:alice:s3cret} asks SOCKS5 clients
        for a password: curl gets through with it and is refused without.
        """
        webPort = startWebServer(self)
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1",
                      "--auth", "memory:alice:s3cret"],
            b"starting on ",
        )  # fmt: skip
        port = listeningPort(process.output)
        codes = []
        for credentials in ("alice:s3cret@", ""):
            out, err, code = await getProcessOutputAndValue(
                "curl", ["--silent", "--max-time", "20", "-x", f"socks5h://{credentials}127.0.0.1:{port}",
                         f"http://localhost:{webPort}/"],
                env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
            )  # fmt: skip
            codes.append(code)
        self.assertEqual(codes, [0, 97])
        self.assertNotIn(b"s3cret", process.output)
        transport.signalProcess(signal.SIGTERM)
        await process.ended
