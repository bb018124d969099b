"""
Tests for C{socksgate connect} (L{socksgate.scripts.connect}), run as a
child process through a socksgate gateway on loopback, and as OpenSSH's
C{ProxyCommand} to a real sshd.
"""

from __future__ import annotations

import getpass
import os
import shutil
import sys

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from socksgate.scripts.connect import _Connection, _StandardIO
from socksgate.testing import StaticResolver, startEchoServer, startGateway

from .helpers import AnswerAfterFIN, CollectingProcess, LoopbackTestCase, freePort, startProcess

#: How long a child process may take, at most (a bound, not a measure).
_LIMIT = 30.0


def connectCommand() -> list[str]:
    """
    The command that runs C{socksgate connect}: the console script next to
    this Python, or the module.
    """
    script = os.path.join(os.path.dirname(sys.executable), "socksgate")
    if os.path.exists(script):
        return [script, "connect"]
    return [sys.executable, "-m", "socksgate.scripts.main", "connect"]


async def waitForEnd(testCase: LoopbackTestCase, process: CollectingProcess) -> tuple[int | None, int | None]:
    """
    Wait (at most L{_LIMIT} seconds) for a child process to end.
    """
    for _ in range(int(_LIMIT / 0.05)):
        if process.ended.called:
            break
        await deferLater(reactor, 0.05, lambda: None)
    testCase.assertTrue(process.ended.called, process.output)
    return await process.ended


async def runConnect(
    testCase: LoopbackTestCase, arguments: list[str], input: bytes | None = b""
) -> CollectingProcess:
    """
    Run C{socksgate connect ARGUMENTS} with C{input} on standard input
    (then closed), to its end; it is killed at clean-up if still running.
    """
    process = CollectingProcess(input)
    command = connectCommand() + arguments
    transport = reactor.spawnProcess(process, command[0], command, env=os.environ)
    testCase.addCleanup(lambda: process.ended.called or transport.signalProcess("KILL"))
    process.status = await waitForEnd(testCase, process)  # type: ignore[attr-defined]
    return process


class _HalfCloseTransport(StringTransport):
    """
    A L{StringTransport} that records a write shutdown.
    """

    writeShut = False

    def loseWriteConnection(self) -> None:
        self.writeShut = True


class RelayProtocolTests(SynchronousTestCase):
    """
    The two protocols of C{socksgate connect}, over L{StringTransport}s.
    """

    def setUp(self) -> None:
        self.network = _HalfCloseTransport()
        self.connection = _Connection()
        self.connection.makeConnection(self.network)
        self.stdio = StringTransport()
        self.terminal = _StandardIO(self.connection)

    def attach(self) -> None:
        self.terminal.makeConnection(self.stdio)
        self.connection.attach(self.terminal)

    def test_earlyBytesKept(self) -> None:
        """
        Bytes that arrive with the proxy's reply, before standard output is
        attached, are written first, in order.
        """
        self.connection.dataReceived(b"SSH-2.0-banner\r\n")
        self.attach()
        self.connection.dataReceived(b"more")
        self.assertEqual(self.stdio.value(), b"SSH-2.0-banner\r\nmore")

    def test_bothWays(self) -> None:
        """
        Standard input goes to the connection; each side is the other's
        producer.
        """
        self.attach()
        self.terminal.dataReceived(b"up")
        self.assertEqual(self.network.value(), b"up")
        self.assertIs(self.network.producer, self.stdio)
        self.assertIs(self.stdio.producer, self.network)

    def test_endOfInput(self) -> None:
        """
        End of standard input shuts the connection for writing only.
        """
        self.attach()
        self.terminal.readConnectionLost()
        self.assertTrue(self.network.writeShut)
        self.assertFalse(self.network.disconnecting)

    def test_endOfStream(self) -> None:
        """
        The other side's end of stream closes the connection, then standard
        output; the status is 0.
        """
        self.attach()
        self.connection.readConnectionLost()
        self.assertTrue(self.network.disconnecting)
        self.connection.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.stdio.disconnecting)
        self.terminal.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(self.terminal.done), 0)

    def test_lostBeforeAttached(self) -> None:
        """
        A connection that ended before standard output was attached ends it
        at once; an error is status 1.
        """
        self.connection.connectionLost(Failure(ConnectionLost()))
        self.attach()
        self.assertTrue(self.stdio.disconnecting)
        self.terminal.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(self.terminal.done), 1)


class ConnectTests(LoopbackTestCase):
    """
    C{socksgate connect} relays standard input and output through a route.
    """

    def setUp(self) -> None:
        self.echo = startEchoServer(self)
        self.gateway = startGateway(self, resolver=StaticResolver({"echo.test": ["127.0.0.1"]}))

    def routes(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as stream:
            stream.write(text)
        return path

    async def test_echoBothWays(self) -> None:
        """
        A megabyte written to standard input comes back on standard output
        through the gateway (the name sent unresolved with socks5h); end
        of input half-closes, the echo server's FIN then ends the command
        with exit 0.
        """
        data = os.urandom(1 << 20)
        process = await runConnect(
            self, ["--proxy", self.gateway.url("socks5h"), "echo.test", str(self.echo.port)], data
        )
        self.assertEqual(process.status, (0, None), process.err)
        self.assertEqual(process.out, data)
        self.assertEqual(process.err, b"")

    async def test_answerAfterEndOfInput(self) -> None:
        """
        End of standard input reaches the destination as a FIN while the
        connection still reads: a server that answers only after the
        client's FIN is heard, then the command exits 0.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(AnswerAfterFIN), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        process = await runConnect(
            self, ["--proxy", self.gateway.url("socks5"), "127.0.0.1", str(port.getHost().port)], b"hello"
        )
        self.assertEqual(process.status, (0, None), process.err)
        self.assertEqual(process.out, b"answer to hello")

    async def test_routeFileFailover(self) -> None:
        """
        With C{--route}, the route's first proxy is down: the second carries
        the connection.
        """
        path = self.routes(
            '[[route]]\ndestinations = [".test"]\naction = "via"\n'
            f'proxies = ["socks5h://127.0.0.1:{freePort()}", "{self.gateway.url("socks4a")}"]\n'
        )
        process = await runConnect(
            self, ["--route", path, "echo.test", str(self.echo.port)], b"through the second"
        )
        self.assertEqual(process.status, (0, None), process.err)
        self.assertEqual(process.out, b"through the second")

    async def test_denied(self) -> None:
        """
        A destination the table denies: one line on standard error naming
        the route, exit 1, nothing on standard output.
        """
        path = self.routes('[[route]]\ndestinations = ["echo.test"]\naction = "deny"\n')
        process = await runConnect(self, ["--route", path, "echo.test", str(self.echo.port)])
        self.assertEqual(process.status, (1, None))
        self.assertEqual(
            process.err.decode(),
            f"socksgate connect: echo.test:{self.echo.port} is denied: route #1 ({path}:1) denies it\n",
        )
        self.assertEqual(process.out, b"")

    async def test_noRouteDenied(self) -> None:
        """
        A destination no route matches is denied too.
        """
        path = self.routes('[[route]]\ndestinations = ["other.test"]\naction = "direct"\n')
        process = await runConnect(self, ["--route", path, "echo.test", "7"])
        self.assertEqual(process.status, (1, None))
        self.assertEqual(
            process.err.decode(), "socksgate connect: echo.test:7 is denied: no route matches it\n"
        )

    async def test_proxyRefuses(self) -> None:
        """
        The gateway refuses the destination (a name it cannot resolve): one
        line with its reply, exit 1.
        """
        process = await runConnect(self, ["--proxy", self.gateway.url(), "nowhere.test", "7"])
        self.assertEqual(process.status, (1, None))
        self.assertEqual(process.err.count(b"\n"), 1, process.err)
        self.assertIn(b"socksgate connect: nowhere.test:7: ", process.err)
        self.assertIn(b"(0x04)", process.err)

    async def test_proxyDown(self) -> None:
        """
        A proxy that cannot be reached: one line, exit 1, no traceback.
        """
        process = await runConnect(self, ["--proxy", f"socks5h://127.0.0.1:{freePort()}", "echo.test", "7"])
        self.assertEqual(process.status, (1, None))
        self.assertEqual(process.err.count(b"\n"), 1, process.err)
        self.assertIn(b"no proxy could carry the connection", process.err)

    async def test_badArguments(self) -> None:
        """
        A bad URL, a routing file with an error, or a port out of range:
        one line naming the problem, exit 1.
        """
        path = self.routes('[[route]]\naction = "maybe"\n')
        cases = [
            (["--proxy", "http://127.0.0.1:3128", "echo.test", "7"], b"the scheme must be one of"),
            (["--route", path, "echo.test", "7"], f"{path}:2: [route #1] action:".encode()),
            (["--proxy", self.gateway.url(), "echo.test", "70000"], b"port 70000 is not between 1 and 65535"),
        ]
        for arguments, problem in cases:
            process = await runConnect(self, arguments)
            self.assertEqual(process.status, (1, None))
            self.assertEqual(process.err.count(b"\n"), 1, process.err)
            self.assertIn(problem, process.err)
            self.assertNotIn(b"Traceback", process.err)


_SSHD_CONFIG = """\
ListenAddress 127.0.0.1
HostKey {directory}/host_key
AuthorizedKeysFile {directory}/authorized_keys
PidFile {directory}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {user}
"""


class ProxyCommandTests(LoopbackTestCase):
    """
    OpenSSH's C{ssh} logs in to a real C{sshd} on loopback with C{socksgate
    connect} as its C{ProxyCommand}.
    """

    async def test_ssh(self) -> None:
        """
        C{ssh -o ProxyCommand='socksgate connect --proxy socks5h://... %h
        %p' sshd.test} runs C{echo ok}: the gateway resolves C{sshd.test}.
        """
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
        if not (os.path.exists(sshd) and ssh and keygen):
            raise SkipTest("needs openssh-server and openssh-client (sshd, ssh, ssh-keygen)")
        if os.getuid() == 0:
            # What Debian's sshd service makes before it starts sshd as root:
            # its privilege separation directory.
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for name in ("host_key", "id_key"):
            keygen_run = await runProgram(
                self, [keygen, "-q", "-t", "ed25519", "-N", "", "-f", f"{directory}/{name}"]
            )
            self.assertEqual(keygen_run.status, (0, None), keygen_run.output)
        shutil.copy(f"{directory}/id_key.pub", f"{directory}/authorized_keys")
        user = getpass.getuser()
        with open(f"{directory}/sshd_config", "w") as stream:
            stream.write(_SSHD_CONFIG.format(directory=directory, user=user))
        port = freePort()
        server, serverProcess = await startProcess(
            self, [sshd, "-D", "-e", "-p", str(port), "-f", f"{directory}/sshd_config"], b"Server listening"
        )

        def stopServer() -> object:
            if not serverProcess.ended.called:
                server.signalProcess("TERM")
            return serverProcess.ended

        self.addCleanup(stopServer)
        gateway = startGateway(self, resolver=StaticResolver({"sshd.test": ["127.0.0.1"]}))
        proxyCommand = " ".join([*connectCommand(), "--proxy", gateway.url("socks5h"), "%h", "%p"])
        login = await runProgram(
            self,
            [
                ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={directory}/known_hosts", "-o", "IdentitiesOnly=yes",
                "-i", f"{directory}/id_key", "-o", f"ProxyCommand={proxyCommand}",
                "-p", str(port), f"{user}@sshd.test", "echo", "ok",
            ],
        )  # fmt: skip
        self.assertEqual(login.status, (0, None), login.output)
        self.assertEqual(login.out, b"ok\n")


async def runProgram(testCase: LoopbackTestCase, arguments: list[str]) -> CollectingProcess:
    """
    Run a program, standard input closed, to its end (at most L{_LIMIT}
    seconds).
    """
    process = CollectingProcess(b"")
    transport = reactor.spawnProcess(process, arguments[0], arguments, env=os.environ)
    testCase.addCleanup(lambda: process.ended.called or transport.signalProcess("KILL"))
    process.status = await waitForEnd(testCase, process)  # type: ignore[attr-defined]
    return process
