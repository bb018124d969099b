"""
Socket activation: the example units in examples/systemd run as written,
under Debian's C{systemd-socket-activate}, which opens the socket and starts
twistd with it as systemd would.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater

from socksgate.testing import startEchoServer

from .helpers import LoopbackTestCase, connectRaw, freePort, socks5Connect, startProcess

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "systemd")

# Debian's systemd package has it; .ci/run installs systemd.
ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


def unitSetting(unit: str, key: str) -> list[str]:
    """
    The values of C{key} in the example unit file C{unit}.
    """
    with open(os.path.join(EXAMPLES, unit)) as stream:
        return [line.split("=", 1)[1].strip() for line in stream if line.startswith(key + "=")]


class SocketActivationTests(LoopbackTestCase):
    """
    twistd socksgate on a socket that systemd passed it.
    """

    timeout = 60

    async def test_exampleUnits(self) -> None:
        """
        The example service's command line, given the example socket's
        descriptor name, serves SOCKS5 on the socket it inherited, writes
        the session log, and stops cleanly on SIGTERM.
        """
        self.assertTrue(
            os.path.exists(ACTIVATE), "these tests need systemd-socket-activate (Debian: systemd)"
        )
        [execStart] = unitSetting("socksgate.service", "ExecStart")
        [fdName] = unitSetting("socksgate.socket", "FileDescriptorName")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        config = os.path.join(directory, "socksgate.toml")
        with open(config, "w") as stream:
            stream.write('[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\n')
        log = os.path.join(directory, "access.log")
        arguments = shlex.split(execStart)[1:]
        arguments[arguments.index("/etc/socksgate/socksgate.toml")] = config
        arguments[arguments.index("/var/log/socksgate/access.log")] = log
        port = freePort()
        twistd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
        transport, process = await startProcess(
            self,
            [ACTIVATE, f"--fdname={fdName}", "-l", f"127.0.0.1:{port}", *twistd, *arguments],
            b"Listening on ",
        )
        # systemd-socket-activate starts the service at the first connection,
        # as a socket unit without Accept= does; it is accepted once twistd runs.
        echo = startEchoServer(self)
        client = await connectRaw(port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"ping")
        self.assertEqual((await client.receive(16))[12:], b"ping")
        client.transport.loseConnection()
        await client.closed
        transport.signalProcess(signal.SIGTERM)
        await process.ended
        self.assertNotIn(b"Traceback", process.output)
        for _ in range(100):
            if os.path.exists(log) and os.path.getsize(log):
                break
            await deferLater(reactor, 0.05, lambda: None)
        with open(log, "rb") as stream:
            self.assertIn(b'"outcome":"closed"', stream.read())
