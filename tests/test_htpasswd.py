"""
L{socksgate.htpasswd}: htpasswd files written by Apache's C{htpasswd}
(apache2-utils) and by C{socksgate passwd}, checked in the reactor's thread
pool, re-read when they change; and the C{htpasswd:FILE} checker plugin.
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
from types import SimpleNamespace
from typing import Any

import bcrypt
from twisted.cred import strcred
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from socksgate import htpasswd as htpasswdModule
from socksgate.htpasswd import HtpasswdChecker, HtpasswdError

from .test_passwd import htpasswd, socksgatePasswd

# Written by Apache's htpasswd -nbB u pw (cost 5).
U_PW = b"u:$2y$05$89TW0SYS9/L.6vUXHVXja.W8gEJMErRgoXWdA2vKJtKS/3ZcdB/ce"


def writeFile(testCase: Any, content: bytes) -> str:
    """
    Write C{content} to a new file of the test, and return its path.
    """
    directory = os.path.abspath(testCase.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, "users")
    with open(path, "wb") as stream:
        stream.write(content)
    return path


class ParseTests(SynchronousTestCase):
    """
    Reading a file when the checker is made: what is accepted, and the
    errors, naming file, line and problem, for what is not.
    """

    def assertFileError(self, content: bytes, line: int | None, problem: str) -> HtpasswdError:
        """
        Making a checker of a file with C{content} raises L{HtpasswdError}
        for C{line}, with C{problem} in its message.
        """
        path = writeFile(self, content)
        error = self.assertRaises(HtpasswdError, HtpasswdChecker, path)
        self.assertIsInstance(error, ValueError)
        self.assertEqual((error.path, error.line), (path, line))
        where = path if line is None else f"{path}:{line}"
        self.assertTrue(str(error).startswith(f"{where}: "), str(error))
        self.assertIn(problem, str(error))
        return error

    def test_interface(self) -> None:
        """
        The checker provides C{ICredentialsChecker} for usernames and
        passwords.
        """
        checker = HtpasswdChecker(writeFile(self, U_PW + b"\n"))
        self.assertTrue(verifyObject(ICredentialsChecker, checker))
        self.assertEqual(checker.credentialInterfaces, (IUsernamePassword,))

    def test_apacheSyntax(self) -> None:
        """
        Lines are read as Apache reads them: comments and blank lines are
        skipped, white space around a line and CRLF endings are ignored, and
        a field after the hash is ignored.
        """
        content = b"# users\r\n\r\n   \n  " + U_PW + b"\r\n\t# more\nv" + U_PW[1:] + b":comment"
        users = htpasswdModule.parseHtpasswd(content, "f")
        self.assertEqual(users, {"u": U_PW[2:], "v": U_PW[2:]})

    def test_bcryptPrefixes(self) -> None:
        """
        C{$2y$}, C{$2b$} and C{$2a$} hashes are all accepted.
        """
        content = b"\n".join(U_PW.replace(b"u:$2y$", b"%s:$2%s$" % (x, x)) for x in (b"y", b"b", b"a"))
        self.assertEqual(sorted(htpasswdModule.parseHtpasswd(content, "f")), ["a", "b", "y"])

    def test_emptyFile(self) -> None:
        """
        An empty file is valid, with no users.
        """
        self.assertEqual(htpasswdModule.parseHtpasswd(b"", "f"), {})

    def test_noColon(self) -> None:
        """
        A line without a colon is malformed, and its content is not quoted.
        """
        error = self.assertFileError(U_PW + b"\nsecretword\n", 2, "not a 'user:hash' line (no ':')")
        self.assertNotIn("secretword", str(error))

    def test_emptyUser(self) -> None:
        """
        A line with no user name is malformed.
        """
        self.assertFileError(U_PW[1:] + b"\n", 1, "empty user name")

    def test_emptyHash(self) -> None:
        """
        A user without a hash is refused.
        """
        self.assertFileError(b"alice:\n", 1, "user 'alice' has no password hash")

    def test_duplicate(self) -> None:
        """
        A user defined twice is refused, naming both lines.
        """
        self.assertFileError(U_PW + b"\n# again\n" + U_PW + b"\n", 3, "user 'u' is already defined on line 1")

    def test_malformedBcrypt(self) -> None:
        """
        A truncated bcrypt hash, or one with a cost out of range, is refused.
        """
        self.assertFileError(U_PW[:-1] + b"\n", 1, "user 'u' has a malformed bcrypt hash")
        self.assertFileError(U_PW.replace(b"$05$", b"$32$") + b"\n", 1, "a malformed bcrypt hash")

    def test_buggyBcrypt(self) -> None:
        """
        A C{$2x$} hash (crypt_blowfish's marker for its old bug) is refused.
        """
        self.assertFileError(U_PW.replace(b"$2y$", b"$2x$"), 1, "an unsupported crypt ($2x$) hash")

    def test_notUTF8(self) -> None:
        """
        A user name that is not UTF-8 is refused.
        """
        self.assertFileError(b"\xff" + U_PW + b"\n", 1, "the user name is not UTF-8")

    def test_missingFile(self) -> None:
        """
        A missing file is refused, naming it.
        """
        path = os.path.abspath(self.mktemp())
        error = self.assertRaises(HtpasswdError, HtpasswdChecker, path)
        self.assertEqual(str(error), f"{path}: cannot be read: No such file or directory")

    def test_directory(self) -> None:
        """
        A directory is not an htpasswd file.
        """
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        error = self.assertRaises(HtpasswdError, HtpasswdChecker, path)
        self.assertEqual(str(error), f"{path}: cannot be read: Is a directory")


class RefusedHashTests(TestCase):
    """
    Every kind of hash Apache's htpasswd writes, except bcrypt, is refused
    with a clear error naming its line, and without quoting the password or
    the hash.
    """

    timeout = 30

    async def assertRefused(self, flag: str, kind: str) -> None:
        """
        A file where alice has a bcrypt hash and carol one written by
        C{htpasswd FLAG} is refused for carol's line, saying C{kind}.
        """
        path = writeFile(self, b"# users\n")
        for arguments in [("-bB", path, "alice", "alice-secret"), (flag, path, "carol", "carol-secret")]:
            output, code = await htpasswd(*arguments)
            self.assertEqual(code, 0, output)
        with open(path, "rb") as stream:
            hashed = stream.read().splitlines()[2].split(b":", 1)[1].decode()
        error = self.assertRaises(HtpasswdError, HtpasswdChecker, path)
        self.assertEqual(
            str(error),
            f"{path}:3: user 'carol' has {kind}: only bcrypt hashes are accepted"
            " (write them with htpasswd -B or socksgate passwd)",
        )
        self.assertNotIn("carol-secret", str(error))
        self.assertNotIn(hashed, str(error))

    async def test_md5(self) -> None:
        """
        MD5 (C{$apr1$}), htpasswd's default, is refused.
        """
        await self.assertRefused("-bm", "an MD5 ($apr1$) hash")

    async def test_sha1(self) -> None:
        """
        SHA-1 (C{{SHA}}) is refused.
        """
        await self.assertRefused("-bs", "a SHA-1 ({SHA}) hash")

    async def test_crypt(self) -> None:
        """
        DES crypt is refused.
        """
        await self.assertRefused("-bd", "a DES crypt hash (htpasswd -d) or a plain text password")

    async def test_plainText(self) -> None:
        """
        A plain text password is refused.
        """
        await self.assertRefused("-bp", "a plain text password (htpasswd -p) or a hash of an unknown kind")

    async def test_sha256Crypt(self) -> None:
        """
        SHA-256 crypt (C{$5$}) is refused.
        """
        await self.assertRefused("-b2", "a SHA-256 crypt ($5$) hash")

    async def test_sha512Crypt(self) -> None:
        """
        SHA-512 crypt (C{$6$}) is refused.
        """
        await self.assertRefused("-b5", "a SHA-512 crypt ($6$) hash")


class _FileTestCase(TestCase):
    """
    Tests with htpasswd files written by Apache's htpasswd.
    """

    timeout = 60

    async def makeFile(self, *users: tuple[str, str]) -> str:
        """
        An htpasswd file written by C{htpasswd -B} with C{users} (name and
        password).
        """
        path = writeFile(self, b"")
        for user, password in users:
            output, code = await htpasswd("-bB", path, user, password)
            self.assertEqual(code, 0, output)
        return path

    async def login(self, checker: HtpasswdChecker, user: Any, password: Any) -> str | None:
        """
        The avatar ID the checker gives, or C{None} when it refuses.
        """
        try:
            return await checker.requestAvatarId(UsernamePassword(user, password))
        except UnauthorizedLogin:
            return None


class CheckerTests(_FileTestCase):
    """
    Checking passwords against files written by Apache's htpasswd and by
    C{socksgate passwd}.
    """

    async def test_htpasswdB(self) -> None:
        """
        With a file written by C{htpasswd -B}, the right password gives the
        user name as a C{str}; a wrong password and an unknown user are
        refused.  Credentials are bytes, as the server gives them.
        """
        checker = HtpasswdChecker(await self.makeFile(("alice", "alice-secret"), ("bob", "bob-secret")))
        self.assertEqual(await self.login(checker, b"alice", b"alice-secret"), "alice")
        self.assertEqual(await self.login(checker, b"bob", b"bob-secret"), "bob")
        self.assertIsNone(await self.login(checker, b"alice", b"bob-secret"))
        self.assertIsNone(await self.login(checker, b"alice", b"alice-secreT"))
        self.assertIsNone(await self.login(checker, b"alice", b""))
        self.assertIsNone(await self.login(checker, b"Alice", b"alice-secret"))
        self.assertIsNone(await self.login(checker, b"carol", b"alice-secret"))
        self.assertIsNone(await self.login(checker, b"\xff", b"alice-secret"))

    async def test_text(self) -> None:
        """
        Credentials given as C{str} (UTF-8 in the file) work too.
        """
        checker = HtpasswdChecker(await self.makeFile(("zoë", "pässwörd")))
        self.assertEqual(await self.login(checker, "zoë", "pässwörd"), "zoë")
        self.assertEqual(await self.login(checker, "zoë".encode(), "pässwörd".encode()), "zoë")
        self.assertIsNone(await self.login(checker, "zoë", "passwörd"))

    async def test_longPassword(self) -> None:
        """
        As in Apache, only the first 72 bytes of a password count; a longer
        one is checked, not an error.
        """
        password = "p" * 71 + "q" + "r" * 28
        checker = HtpasswdChecker(await self.makeFile(("alice", password)))
        self.assertEqual(await self.login(checker, b"alice", password.encode()), "alice")
        self.assertEqual(await self.login(checker, b"alice", password[:72].encode()), "alice")
        self.assertIsNone(await self.login(checker, b"alice", password[:71].encode() + b"x" * 200))

    async def test_socksgatePasswd(self) -> None:
        """
        A file written by C{socksgate passwd} (cost 12, C{$2y$}) is accepted.
        """
        path = os.path.join(os.path.dirname(await self.makeFile()), "new")
        out, err, code = await socksgatePasswd(path, "alice", b"alice-secret\n")
        self.assertEqual(code, 0, err)
        checker = HtpasswdChecker(path)
        self.assertEqual(await self.login(checker, b"alice", b"alice-secret"), "alice")
        self.assertIsNone(await self.login(checker, b"alice", b"alice-secreT"))

    async def test_bcryptInThread(self) -> None:
        """
        bcrypt runs in the thread pool, never on the reactor thread, and
        exactly once for each check: also for an unknown user, against a
        hash of the same cost as the file's.
        """
        checker = HtpasswdChecker(await self.makeFile(("alice", "alice-secret")))
        calls: list[tuple[threading.Thread, bytes]] = []

        def checkpw(password: bytes, hashed: bytes) -> bool:
            calls.append((threading.current_thread(), hashed))
            return bcrypt.checkpw(password, hashed)

        self.patch(htpasswdModule, "bcrypt", SimpleNamespace(checkpw=checkpw))
        reactorThread = threading.current_thread()
        self.assertEqual(await self.login(checker, b"alice", b"alice-secret"), "alice")
        self.assertIsNone(await self.login(checker, b"alice", b"wrong"))
        self.assertIsNone(await self.login(checker, b"nobody", b"alice-secret"))
        self.assertEqual(len(calls), 3)
        self.assertNotIn(reactorThread, [thread for thread, hashed in calls])
        self.assertTrue(calls[0][1].startswith(b"$2y$05$"))
        self.assertTrue(calls[2][1].startswith(b"$2b$05$"))
        self.assertNotEqual(calls[2][1], calls[0][1])


class ReloadTests(_FileTestCase):
    """
    The file is re-read, in the thread pool, when it changes; a changed
    file that does not load leaves the previous users, and is logged once.
    """

    async def setUp(self) -> None:  # type: ignore[override]
        self.path = await self.makeFile(("alice", "alice-secret"))
        self.checker = HtpasswdChecker(self.path)
        self.events: list[dict] = []
        self.checker.log = Logger(namespace="test", observer=self.events.append)

    def logged(self) -> list[str]:
        """
        The messages logged so far.
        """
        return [formatEvent(event) for event in self.events]

    async def test_addedUser(self) -> None:
        """
        A user added with C{htpasswd -B} can log in at once.
        """
        self.assertIsNone(await self.login(self.checker, b"bob", b"bob-secret"))
        output, code = await htpasswd("-bB", self.path, "bob", "bob-secret")
        self.assertEqual(code, 0, output)
        self.assertEqual(await self.login(self.checker, b"bob", b"bob-secret"), "bob")
        self.assertEqual(await self.login(self.checker, b"alice", b"alice-secret"), "alice")
        self.assertEqual(self.logged(), [f"Reloaded {self.path}: 2 users"])

    async def test_changedPassword(self) -> None:
        """
        A password changed with C{socksgate passwd} takes effect at once.
        """
        out, err, code = await socksgatePasswd(self.path, "alice", b"new-secret\n")
        self.assertEqual(code, 0, err)
        self.assertEqual(await self.login(self.checker, b"alice", b"new-secret"), "alice")
        self.assertIsNone(await self.login(self.checker, b"alice", b"alice-secret"))

    async def test_brokenKeepsUsers(self) -> None:
        """
        When a user with an MD5 hash is added, the previous users stay in
        force and the problem is logged once, naming the line, without the
        password; when the file is fixed, it is loaded.
        """
        output, code = await htpasswd("-bm", self.path, "carol", "carol-secret")
        self.assertEqual(code, 0, output)
        for _ in range(3):
            self.assertEqual(await self.login(self.checker, b"alice", b"alice-secret"), "alice")
            self.assertIsNone(await self.login(self.checker, b"carol", b"carol-secret"))
        self.assertEqual(
            self.logged(),
            [
                f"{self.path} was not reloaded; the previous 1 users stay in force: {self.path}:2:"
                " user 'carol' has an MD5 ($apr1$) hash: only bcrypt hashes are accepted"
                " (write them with htpasswd -B or socksgate passwd)"
            ],
        )
        self.assertEqual(self.events[0]["log_level"].name, "error")
        self.assertNotIn("carol-secret", repr(self.events))
        output, code = await htpasswd("-bB", self.path, "carol", "carol-secret")
        self.assertEqual(code, 0, output)
        self.assertEqual(await self.login(self.checker, b"carol", b"carol-secret"), "carol")
        self.assertEqual(self.logged()[1:], [f"Reloaded {self.path}: 2 users"])

    async def test_removedKeepsUsers(self) -> None:
        """
        When the file disappears, the previous users stay, and the problem
        is logged once.
        """
        os.unlink(self.path)
        for _ in range(2):
            self.assertEqual(await self.login(self.checker, b"alice", b"alice-secret"), "alice")
        self.assertEqual(
            self.logged(),
            [
                f"{self.path} was not reloaded; the previous 1 users stay in force:"
                f" {self.path}: cannot be read: No such file or directory"
            ],
        )

    async def test_fileAccessInThread(self) -> None:
        """
        After the checker is made, the file is looked at and read only in
        the thread pool, never on the reactor thread.
        """
        output, code = await htpasswd("-bB", self.path, "bob", "bob-secret")
        self.assertEqual(code, 0, output)
        calls: list[tuple[str, threading.Thread]] = []
        realStat, realOpen = os.stat, builtins.open

        def stat(path: Any, *arguments: Any, **keywords: Any) -> Any:
            if path == self.path:
                calls.append(("stat", threading.current_thread()))
            return realStat(path, *arguments, **keywords)

        def open(path: Any, *arguments: Any, **keywords: Any) -> Any:
            if path == self.path:
                calls.append(("open", threading.current_thread()))
            return realOpen(path, *arguments, **keywords)

        self.patch(os, "stat", stat)
        self.patch(builtins, "open", open)
        reactorThread = threading.current_thread()
        self.assertEqual(await self.login(self.checker, b"bob", b"bob-secret"), "bob")
        self.assertEqual(await self.checker.reload(), True)
        self.assertEqual([name for name, thread in calls], ["stat", "open", "stat", "open"])
        self.assertNotIn(reactorThread, [thread for name, thread in calls])

    async def test_reload(self) -> None:
        """
        A hash replaced in place, with the same size and modification
        time, is seen at once (the file's change time moved); C{reload}
        reads the file again even when nothing changed.
        """
        before = os.stat(self.path)
        output, code = await htpasswd("-nbB", "alice", "other-secret")
        self.assertEqual(code, 0, output)
        with open(self.path, "r+b") as stream:
            stream.write(output.strip().encode() + b"\n")
        os.utime(self.path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.assertEqual(os.stat(self.path).st_size, before.st_size)
        self.assertEqual(await self.login(self.checker, b"alice", b"other-secret"), "alice")
        self.assertIsNone(await self.login(self.checker, b"alice", b"alice-secret"))
        self.assertEqual(await self.checker.reload(), True)
        self.assertEqual(await self.login(self.checker, b"alice", b"other-secret"), "alice")
        self.assertEqual(self.logged(), [f"Reloaded {self.path}: 1 users"] * 2)

    async def test_reloadBroken(self) -> None:
        """
        C{reload} of a file that does not load answers C{False}, keeps the
        previous users and logs the problem, each time it is asked.
        """
        with open(self.path, "ab") as stream:
            stream.write(b"carol:plain\n")
        self.assertEqual(await self.checker.reload(), False)
        self.assertEqual(await self.checker.reload(), False)
        self.assertEqual(await self.login(self.checker, b"alice", b"alice-secret"), "alice")
        self.assertEqual(len(self.events), 2)
        self.assertIn(f"{self.path}:2: user 'carol' has a plain text password", self.logged()[0])
        self.assertNotIn("plain\n", self.logged()[0])


class PluginTests(TestCase):
    """
    The C{htpasswd:FILE} checker plugin, for C{--auth} and C{[auth]
    checker}.
    """

    timeout = 30

    def test_makeChecker(self) -> None:
        """
        C{strcred.makeChecker("htpasswd:PATH")} gives an L{HtpasswdChecker}
        of that file.
        """
        path = writeFile(self, U_PW + b"\n")
        checker = strcred.makeChecker(f"htpasswd:{path}")
        self.assertIsInstance(checker, HtpasswdChecker)
        self.assertEqual(checker.path, path)

    async def test_makeCheckerLogin(self) -> None:
        """
        The checker made from the description checks passwords.
        """
        path = writeFile(self, U_PW + b"\n")
        checker = strcred.makeChecker(f"htpasswd:{path}")
        self.assertEqual(await checker.requestAvatarId(UsernamePassword(b"u", b"pw")), "u")

    def test_makeCheckerBroken(self) -> None:
        """
        A file that does not load gives its error, naming file and line.
        """
        path = writeFile(self, b"# users\nalice:$apr1$x$y\n")
        error = self.assertRaises(HtpasswdError, strcred.makeChecker, f"htpasswd:{path}")
        self.assertIn(f"{path}:2: user 'alice' has an MD5 ($apr1$) hash", str(error))

    def test_makeCheckerNoFile(self) -> None:
        """
        C{htpasswd} without a file name is an error that says what to give.
        """
        error = self.assertRaises(ValueError, strcred.makeChecker, "htpasswd")
        self.assertIn("requires a file name: htpasswd:FILE", str(error))

    async def test_lazyImport(self) -> None:
        """
        Scanning the plugin does not import the checker module or bcrypt.
        """
        code = (
            "import sys, twisted.plugins.socksgate_plugins as p; "
            "print(p.htpasswdCheckerFactory.authType, "
            "'socksgate.htpasswd' in sys.modules, 'bcrypt' in sys.modules)"
        )
        out, err, status = await getProcessOutputAndValue(sys.executable, ["-c", code], env=os.environ)
        self.assertEqual((out, status), (b"htpasswd False False\n", 0), err)

    async def twistd(self, *arguments: str) -> tuple[str, int]:
        """
        Run C{twistd} with C{arguments}; its output and exit status.
        """
        out, err, status = await getProcessOutputAndValue(
            sys.executable,
            ["-c", "from twisted.scripts.twistd import run; run()", *arguments],
            env=os.environ,
        )
        return (out + err).decode(), status

    async def test_helpAuth(self) -> None:
        """
        C{twistd socksgate --help-auth} lists C{htpasswd}.
        """
        output, status = await self.twistd("socksgate", "--help-auth")
        self.assertEqual(status, 0, output)
        self.assertRegex(
            output, r"\n  htpasswd\s+Location of an htpasswd file with bcrypt hashes \(htpasswd -B\)\.\n"
        )

    async def test_helpAuthType(self) -> None:
        """
        C{twistd socksgate --help-auth-type htpasswd} explains it.
        """
        output, status = await self.twistd("socksgate", "--help-auth-type", "htpasswd")
        self.assertEqual(status, 0, output)
        self.assertIn("Usage: --auth htpasswd[:ArgString]", output)
        self.assertIn("'htpasswd -B' and 'socksgate passwd'", output)

    async def test_twistdBrokenFile(self) -> None:
        """
        C{twistd socksgate --auth htpasswd:FILE} with a file that does not
        load does not start, and says which line is wrong.
        """
        path = writeFile(self, U_PW + b"\nalice:{SHA}x\n")
        output, status = await self.twistd("-n", "--pidfile=", "socksgate", "--auth", f"htpasswd:{path}")
        self.assertNotEqual(status, 0, output)
        self.assertIn(f"{path}:2: user 'alice' has a SHA-1 ({{SHA}}) hash", output)
