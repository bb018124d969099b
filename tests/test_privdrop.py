"""
C{twistd --uid nobody --gid nogroup socksgate}, started as root the way
Dante is run: what the gateway opens and loads before the drop of
privileges, and what it does with files it cannot read afterwards.

The twistd of these tests refuses every import after the drop (as an
interpreter whose files only root may read would fail them), so a module
that a request imports on first use fails the test.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from socksgate.accesslog import AccessLogService
from socksgate.config import LogConfig
from socksgate.tap import _TwistdService

from .helpers import LoopbackTestCase, listeningPort, startProcess, startWebServer
from .test_passwd import socksgatePasswd

#: twistd, with every import after the drop of privileges refused and
#: reported on standard error.
TWISTD_ROOT_ONLY_MODULES = [
    sys.executable,
    "-c",
    """
import os, sys

class RootOnlyModules:
    def find_spec(self, name, path=None, target=None):
        if os.geteuid() != 0:
            sys.stderr.write("refused import after the drop: " + name + "\\n")
            raise ImportError(name + ": Permission denied (only root may read it)")
        return None

sys.meta_path.insert(0, RootOnlyModules())
from twisted.scripts.twistd import run
run()
""",
]

#: curl's exit status when the SOCKS5 handshake (the password) is refused.
CURL_PROXY_REFUSED = 97


def _requireRoot() -> None:
    """
    Skip unless this process is root and the system has user nobody and
    group nogroup (Debian's; CI runs the tests as root there).
    """
    if os.geteuid() != 0:
        raise SkipTest("starting twistd that drops to nobody needs root (CI runs the tests as root)")
    try:
        pwd.getpwnam("nobody")
        grp.getgrnam("nogroup")
    except KeyError:
        raise SkipTest("this system has no user nobody or no group nogroup") from None


class PrivilegeDropTests(LoopbackTestCase):
    """
    twistd started as root, dropping to C{--uid nobody --gid nogroup}.
    """

    timeout = 90

    def setUp(self) -> None:
        """
        Skip unless root.
        """
        _requireRoot()

    def directory(self) -> str:
        """
        A fresh directory, owned by root, mode 0755, that user nobody can
        reach (trial makes the test's own directory 0700).
        """
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        for directory in (root, os.path.dirname(root)):
            os.chmod(directory, 0o755)
        return root

    async def curl(self, port: int, credentials: str, webPort: int) -> int:
        """
        Fetch the web server's page at C{localhost} (a name, which the
        gateway resolves: C{socks5h}) through the gateway with
        C{credentials}.

        @return: curl's exit status.
        """
        out, err, code = await getProcessOutputAndValue(
            "curl",
            ["--silent", "--max-time", "10", "-x", f"socks5h://{credentials}@127.0.0.1:{port}",
             f"http://localhost:{webPort}/"],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )  # fmt: skip
        return code

    async def waitForRecords(self, path: str, count: int) -> list[dict]:
        """
        The records of the session log at C{path}, once it has C{count} of
        them (or after five seconds).
        """
        for _ in range(100):
            with open(path, "rb") as stream:
                records = [json.loads(line) for line in stream if line.strip()]
            if len(records) >= count:
                break
            await deferLater(reactor, 0.05, lambda: None)
        return records

    async def test_openedBeforeTheDrop(self) -> None:
        """
        With the session log in a directory only root may write and an
        htpasswd file from C{socksgate passwd} that only root may read
        (0600): the gateway starts, logs a session to a named destination
        (its C{idna} codec loaded before the drop), and lets alice in.
        Once alice is removed from the file and SIGHUP comes, every user
        of the file is refused (curl: the password was refused), and the
        log says why once, naming the file, the user and what to change;
        after a chmod that lets nobody read it, bob gets in again and
        alice stays out.
        """
        root = self.directory()
        logs = os.path.join(root, "logs")
        os.makedirs(logs)
        os.chmod(logs, 0o755)
        passwords = os.path.join(root, "users.htpasswd")
        for user in ("alice", "bob"):
            out, err, code = await socksgatePasswd(passwords, user, f"{user}-secret\n".encode())
            self.assertEqual(code, 0, err)
        self.assertEqual(os.stat(passwords).st_mode & 0o777, 0o600)
        accessLog = os.path.join(logs, "access.log")
        config = os.path.join(root, "socksgate.toml")
        with open(config, "w") as stream:
            stream.write(
                '[server]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
                f'[auth]\nmethods = ["userpass"]\nchecker = "htpasswd:{passwords}"\n'
                f'[log]\naccess = "{accessLog}"\n'
            )
        os.chmod(config, 0o644)
        webPort = startWebServer(self)
        transport, process = await startProcess(
            self,
            TWISTD_ROOT_ONLY_MODULES
            + ["-n", "--pidfile=", "--uid", "nobody", "--gid", "nogroup", "socksgate", "-c", config],
            b"set uid/gid",
        )
        port = listeningPort(process.output)
        self.assertEqual(await self.curl(port, "alice:alice-secret", webPort), 0, process.output)
        records = await self.waitForRecords(accessLog, 1)
        self.assertEqual(
            [(record["user"], record["destination"], record["outcome"]) for record in records],
            [("alice", f"localhost:{webPort}", "closed")],
        )
        self.assertEqual(os.stat(accessLog).st_uid, 0)

        with open(passwords, "rb") as stream:
            kept = [line for line in stream if not line.startswith(b"alice:")]
        with open(passwords, "wb") as stream:
            stream.writelines(kept)
        transport.signalProcess(signal.SIGHUP)
        codes = [await self.curl(port, credentials, webPort) for credentials in
                 ("alice:alice-secret", "bob:bob-secret", "alice:alice-secret")]  # fmt: skip
        self.assertEqual(codes, [CURL_PROXY_REFUSED] * 3, process.output)
        closed = [line for line in process.output.splitlines() if b"every user is refused" in line]
        self.assertEqual(len(closed), 1, process.output)
        self.assertIn(f"{passwords} was not reloaded".encode(), closed[0])
        self.assertIn(b"Permission denied", closed[0])
        self.assertIn(b"the gateway runs as user nobody (uid 65534)", closed[0])
        self.assertIn(b"or keep it readable by group nogroup", closed[0])

        os.chmod(passwords, 0o640)
        os.chown(passwords, 0, grp.getgrnam("nogroup").gr_gid)
        codes = [await self.curl(port, credentials, webPort) for credentials in
                 ("bob:bob-secret", "alice:alice-secret")]  # fmt: skip
        self.assertEqual(codes, [0, CURL_PROXY_REFUSED], process.output)
        self.assertNotIn(b"refused import after the drop", process.output)
        self.assertNotIn(b"Traceback", process.output)
        transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        records = await self.waitForRecords(accessLog, 6)
        self.assertEqual(
            [(record["user"], record["outcome"], record["reply"]) for record in records],
            [("alice", "closed", 0)]
            + [(user, "denied", 1) for user in ("alice", "bob", "alice")]
            + [("bob", "closed", 0), ("alice", "denied", 1)],
        )

    async def test_reopenRefused(self) -> None:
        """
        SIGUSR1 after the drop, with the session log in a directory only
        root may write: one line says the file cannot be reopened and what
        to change, and records go on to the file already open.
        """
        root = self.directory()
        accessLog = os.path.join(root, "access.log")
        webPort = startWebServer(self)
        transport, process = await startProcess(
            self,
            TWISTD_ROOT_ONLY_MODULES
            + ["-n", "--pidfile=", "--uid", "nobody", "--gid", "nogroup", "socksgate",
               "--listen", "tcp:0:interface=127.0.0.1", "--access-log", accessLog],
            b"set uid/gid",
        )  # fmt: skip
        port = listeningPort(process.output)
        os.rename(accessLog, accessLog + ".1")
        transport.signalProcess(signal.SIGUSR1)
        for _ in range(100):
            if b"cannot reopen" in process.output:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(await self.curl(port, "", webPort), 0, process.output)
        records = await self.waitForRecords(accessLog + ".1", 1)
        self.assertEqual([record["destination"] for record in records], [f"localhost:{webPort}"])
        reopen = [line for line in process.output.splitlines() if b"cannot reopen" in line]
        self.assertEqual(len(reopen), 1, process.output)
        self.assertIn(b"Permission denied", reopen[0])
        self.assertIn(f"user nobody (uid 65534): chown/chmod {root}".encode(), reopen[0])
        self.assertFalse(os.path.exists(accessLog))
        transport.signalProcess(signal.SIGTERM)
        await process.ended


class PreloadTests(SynchronousTestCase):
    """
    What the gateway loads before twistd drops its privileges.
    """

    def test_makeServiceLoadsCodecs(self) -> None:
        """
        Building the twistd service and calling its
        C{privilegedStartService} (what twistd does before the drop)
        imports the C{idna} codec and the C{idna} package's UTS 46 table,
        which requests would otherwise import on first use.
        """
        code = (
            "import sys\n"
            "from socksgate.tap import Options, makeService\n"
            "options = Options()\n"
            "options.parseOptions(['--listen', 'tcp:0:interface=127.0.0.1'])\n"
            "service = makeService(options)\n"
            "before = {name: name in sys.modules for name in ('encodings.idna', 'idna.uts46data')}\n"
            "service.privilegedStartService()\n"
            "after = {name: name in sys.modules for name in ('encodings.idna', 'idna.uts46data')}\n"
            "print(before, after)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        before, after = result.stdout.strip().split("} {")
        self.assertEqual(before, "{'encodings.idna': False, 'idna.uts46data': False")
        self.assertEqual(after, "'encodings.idna': True, 'idna.uts46data': True}")


class PrivilegedStartTests(SynchronousTestCase):
    """
    The twistd service's C{privilegedStartService}, which runs as root.
    """

    def test_accessLogProblemInOneLine(self) -> None:
        """
        A session log that cannot be opened when twistd opens it (before
        the drop) stops twistd with one line naming the file, not a
        traceback.
        """
        missing = os.path.join(os.path.abspath(self.mktemp()), "access.log")
        parent = _TwistdService()
        AccessLogService(LogConfig(access=missing), Clock()).setServiceParent(parent)
        error = self.assertRaises(SystemExit, parent.privilegedStartService)
        self.assertEqual(
            str(error),
            f"twistd socksgate: cannot open the session log {missing}: "
            f"there is no directory {os.path.dirname(missing)}",
        )
