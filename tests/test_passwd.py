"""
C{socksgate passwd FILE USER}, run as a command, with files checked by
Apache's own C{htpasswd -v} (apache2-utils) and by L{HtpasswdChecker}.
"""

from __future__ import annotations

import getpass
import io
import os
import shutil
import stat
import sys

import bcrypt
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from socksgate.htpasswd import parseHtpasswd
from socksgate.scripts.passwd import run, updateContent

from .helpers import CollectingProcess

# Apache's htpasswd, from Debian's apache2-utils: the tests need it.
HTPASSWD = shutil.which("htpasswd") or "/usr/bin/htpasswd"

PASSWD = (
    "import sys; from socksgate.scripts.passwd import run; "
    "sys.exit(run(sys.argv[1], sys.argv[2], sys.stdin, sys.stdout, sys.stderr))"
)


async def socksgatePasswd(path: str, user: str, input: bytes) -> tuple[str, str, int]:
    """
    Run C{socksgate passwd PATH USER} with C{input} on standard input.

    @return: its standard output, standard error and exit status.
    """
    command = CollectingProcess(input)
    reactor.spawnProcess(command, sys.executable, [sys.executable, "-c", PASSWD, path, user], env=os.environ)
    code, _ = await command.ended
    return command.out.decode(), command.err.decode(), code


async def htpasswd(*arguments: str) -> tuple[str, int]:
    """
    Run Apache's C{htpasswd} with C{arguments}.

    @return: its output (standard output and error) and exit status.
    """
    assert os.path.exists(HTPASSWD), "these tests need htpasswd, from Debian's apache2-utils"
    out, err, code = await getProcessOutputAndValue(HTPASSWD, arguments, env=os.environ)
    return (out + err).decode(), code


class PasswdCommandTests(TestCase):
    """
    C{socksgate passwd} as a command, reading the password from standard
    input.
    """

    timeout = 60

    def directory(self) -> str:
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    async def passwd(self, path: str, user: str, password: str, code: int = 0) -> tuple[str, str]:
        """
        Run C{socksgate passwd} with C{password} as the line on standard
        input, check its exit status, and that it never prints the password.
        """
        out, err, status = await socksgatePasswd(path, user, password.encode("utf-8") + b"\n")
        self.assertEqual(status, code, (out, err))
        if password:
            self.assertNotIn(password, out + err)
        return out, err

    async def assertVerifies(self, path: str, user: str, password: str, verifies: bool = True) -> None:
        """
        Apache's C{htpasswd -v} says whether C{password} is C{user}'s.
        """
        output, code = await htpasswd("-vb", path, user, password)
        self.assertEqual(code, 0 if verifies else 3, output)

    async def test_create(self) -> None:
        """
        A missing file is created, mode 0600, with one line for the user:
        a C{$2y$} bcrypt hash of cost 12, which Apache's htpasswd and
        socksgate's checker both verify.
        """
        path = os.path.join(self.directory(), "users")
        out, err = await self.passwd(path, "alice", "correct horse")
        self.assertEqual((out, err), (f"Added alice to {path}\n", ""))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, "rb") as stream:
            content = stream.read()
        self.assertRegex(content, rb"\Aalice:\$2y\$12\$[./A-Za-z0-9]{53}\n\Z")
        await self.assertVerifies(path, "alice", "correct horse")
        await self.assertVerifies(path, "alice", "correct horsE", verifies=False)
        self.assertTrue(bcrypt.checkpw(b"correct horse", parseHtpasswd(content, path)["alice"]))

    async def test_updateInPlace(self) -> None:
        """
        Changing a user's password replaces that user's line where it
        stands and keeps every other line, comments and blank lines as they
        are, and the file's mode.
        """
        path = os.path.join(self.directory(), "users")
        await htpasswd("-cbB", path, "alice", "old secret")
        await htpasswd("-bB", path, "bob", "bob's secret")
        with open(path, "rb") as stream:
            written = stream.read().splitlines(keepends=True)
        before = [b"# socksgate users\n", b"\n", written[0], b"  # bob is next\n", written[1], b"# end\n"]
        with open(path, "wb") as stream:
            stream.write(b"".join(before))
        os.chmod(path, 0o640)
        out, err = await self.passwd(path, "alice", "new secret")
        self.assertEqual((out, err), (f"Changed the password of alice in {path}\n", ""))
        with open(path, "rb") as stream:
            after = stream.read().splitlines(keepends=True)
        self.assertEqual(len(after), len(before))
        self.assertEqual(after[:2] + after[3:], before[:2] + before[3:])
        self.assertTrue(after[2].startswith(b"alice:$2y$12$"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        await self.assertVerifies(path, "alice", "new secret")
        await self.assertVerifies(path, "alice", "old secret", verifies=False)
        await self.assertVerifies(path, "bob", "bob's secret")

    async def test_add(self) -> None:
        """
        A new user is added at the end, after a last line that had no line
        ending; the other users keep their passwords.
        """
        path = os.path.join(self.directory(), "users")
        await htpasswd("-cbB", path, "alice", "alice's secret")
        with open(path, "rb") as stream:
            alice = stream.read().rstrip(b"\n")
        with open(path, "wb") as stream:
            stream.write(b"# users\n" + alice)
        out, err = await self.passwd(path, "carol", "carol's secret")
        self.assertEqual(out, f"Added carol to {path}\n")
        with open(path, "rb") as stream:
            lines = stream.read().splitlines(keepends=True)
        self.assertEqual(lines[:2], [b"# users\n", alice + b"\n"])
        self.assertTrue(lines[2].startswith(b"carol:$2y$12$"))
        self.assertEqual(len(lines), 3)
        await self.assertVerifies(path, "carol", "carol's secret")
        await self.assertVerifies(path, "alice", "alice's secret")

    async def test_unicode(self) -> None:
        """
        A user name and a password beyond ASCII are written in UTF-8.
        """
        path = os.path.join(self.directory(), "users")
        await self.passwd(path, "zoë", "pässwörd")
        await self.assertVerifies(path, "zoë", "pässwörd")

    async def test_symbolicLink(self) -> None:
        """
        Through a symbolic link, the file it points to is replaced and the
        link stays.
        """
        directory = self.directory()
        target = os.path.join(directory, "users")
        link = os.path.join(directory, "link")
        await htpasswd("-cbB", target, "alice", "alice's secret")
        os.symlink(target, link)
        await self.passwd(link, "bob", "bob's secret")
        self.assertTrue(os.path.islink(link))
        await self.assertVerifies(target, "bob", "bob's secret")
        await self.assertVerifies(target, "alice", "alice's secret")

    async def test_owner(self) -> None:
        """
        Run by root, the file keeps its owner and group.
        """
        path = os.path.join(self.directory(), "users")
        await htpasswd("-cbB", path, "alice", "alice's secret")
        os.chown(path, 4321, 8765)
        await self.passwd(path, "alice", "another")
        self.assertEqual((os.stat(path).st_uid, os.stat(path).st_gid), (4321, 8765))

    if os.getuid() != 0:
        test_owner.skip = "only root can give a file to another owner"  # type: ignore[attr-defined]

    async def test_warnsOfOtherHashes(self) -> None:
        """
        When another user's hash is not bcrypt, the file is written and a
        warning says that socksgate will refuse it, naming the line.
        """
        path = os.path.join(self.directory(), "users")
        await htpasswd("-cbm", path, "old", "old secret")
        out, err = await self.passwd(path, "alice", "alice's secret")
        self.assertEqual(out, f"Added alice to {path}\n")
        self.assertIn(
            f"warning: socksgate will refuse this file until this is fixed: {path}:1: user 'old'", err
        )
        await self.assertVerifies(path, "alice", "alice's secret")

    async def assertRefused(self, user: str, input: bytes, message: str) -> None:
        """
        Given C{user} and C{input}, the command exits 1 with C{message},
        writes no file, and does not print the password.
        """
        path = os.path.join(self.directory(), "users")
        out, err, code = await socksgatePasswd(path, user, input)
        self.assertEqual((code, out), (1, ""), err)
        self.assertIn(message, err)
        if input.strip():
            self.assertNotIn(input.strip().decode(), err)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(os.listdir(os.path.dirname(path)), [])

    async def test_emptyPassword(self) -> None:
        """
        An empty password is refused.
        """
        await self.assertRefused("alice", b"\n", "the password is empty")

    async def test_noPassword(self) -> None:
        """
        Standard input without a line is refused.
        """
        await self.assertRefused("alice", b"", "no password on standard input")

    async def test_longPassword(self) -> None:
        """
        A password longer than the 72 bytes bcrypt uses is refused, and not
        printed.
        """
        await self.assertRefused("alice", b"x" * 73 + b"\n", "the password has 73 bytes")

    async def test_colonInUser(self) -> None:
        """
        A user name with a colon is refused.
        """
        await self.assertRefused("al:ice", b"secret\n", "a user name cannot contain ':'")

    async def test_spaceInUser(self) -> None:
        """
        A user name with a space or a tab is refused.
        """
        await self.assertRefused("al ice", b"secret\n", "a user name cannot contain white space")
        await self.assertRefused("al\tice", b"secret\n", "a user name cannot contain white space")

    async def test_commentUser(self) -> None:
        """
        A user name that would make its line a comment is refused.
        """
        await self.assertRefused("#alice", b"secret\n", "cannot start with '#'")

    async def test_missingDirectory(self) -> None:
        """
        A file in a directory that does not exist is not written, and the
        message says so.
        """
        path = os.path.join(self.directory(), "nowhere", "users")
        out, err = await self.passwd(path, "alice", "secret", code=1)
        self.assertIn(f"{path} was not written", err)


class _Terminal(io.StringIO):
    """
    Standard input that is a terminal.
    """

    def isatty(self) -> bool:
        return True


class TerminalTests(SynchronousTestCase):
    """
    With a terminal on standard input, the password is asked twice with
    C{getpass}.
    """

    def ask(self, answers: list[str]) -> tuple[str, int, str, str, list[str]]:
        """
        Run the command with C{answers} as what is typed at each prompt.
        """
        prompts: list[str] = []

        def fakeGetpass(prompt: str = "Password: ", stream: object = None) -> str:
            prompts.append(prompt)
            return answers.pop(0)

        self.patch(getpass, "getpass", fakeGetpass)
        path = os.path.abspath(self.mktemp())
        stdout, stderr = io.StringIO(), io.StringIO()
        code = run(path, "alice", _Terminal(), stdout, stderr)
        return path, code, stdout.getvalue(), stderr.getvalue(), prompts

    def test_matching(self) -> None:
        """
        Two matching answers set the password.
        """
        path, code, out, err, prompts = self.ask(["s3cret", "s3cret"])
        self.assertEqual((code, out, err), (0, f"Added alice to {path}\n", ""))
        self.assertEqual(prompts, ["New password: ", "Re-type new password: "])
        with open(path, "rb") as stream:
            self.assertTrue(bcrypt.checkpw(b"s3cret", parseHtpasswd(stream.read(), path)["alice"]))

    def test_mismatch(self) -> None:
        """
        Two different answers write nothing, and say so.
        """
        path, code, out, err, prompts = self.ask(["s3cret", "s3creT"])
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, f"socksgate passwd: the passwords do not match; {path} was not written\n")
        self.assertFalse(os.path.exists(path))


#: Run C{socksgate passwd} in a child whose controlling terminal is a
#: pseudo-terminal; print its output, type C{sys.argv[3]} (escaped) at the
#: first prompt, and report the exit status.
_AT_A_TERMINAL = """
import os, pty, select, sys, time
path, user, keys = sys.argv[1], sys.argv[2], sys.argv[3].encode().decode("unicode_escape").encode()
pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.executable, [sys.executable, "-m", "socksgate.scripts.main", "passwd", path, user])
output, deadline, typed = b"", time.monotonic() + 20, False
while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.1)
    if ready:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    if not typed and b"New password: " in output:
        os.write(master, keys)
        typed = True
finished, status = os.waitpid(pid, 0)
sys.stdout.write(output.decode(errors="replace"))
sys.stdout.write(f"\\nEXIT {os.waitstatus_to_exitcode(status)}\\n")
"""


class RealTerminalTests(TestCase):
    """
    At a real terminal (a pseudo-terminal), Ctrl-D and Ctrl-C at the
    password prompt end the command with a message, not a traceback, and
    leave the file as it was.
    """

    async def atTerminal(self, keys: str) -> tuple[str, int, str]:
        """
        Type C{keys} at the first prompt of C{socksgate passwd}.

        @return: what the terminal showed, the exit status, and the path.
        """
        path = os.path.abspath(self.mktemp())
        command = CollectingProcess()
        arguments = [sys.executable, "-c", _AT_A_TERMINAL, path, "alice", keys]
        reactor.spawnProcess(command, sys.executable, arguments, env=os.environ)
        code, _ = await command.ended
        self.assertEqual(code, 0, command.output)
        shown, _, status = command.out.decode().rpartition("\nEXIT ")
        return shown, int(status), path

    async def test_endOfInput(self) -> None:
        """
        Ctrl-D: status 1, "no password given", nothing written.
        """
        shown, status, path = await self.atTerminal("\\x04")
        self.assertEqual(status, 1, shown)
        self.assertIn(f"socksgate passwd: no password given; {path} was not written", shown)
        self.assertNotIn("Traceback", shown)
        self.assertFalse(os.path.exists(path))

    async def test_interrupt(self) -> None:
        """
        Ctrl-C: status 130, "interrupted", nothing written.
        """
        shown, status, path = await self.atTerminal("\\x03")
        self.assertEqual(status, 130, shown)
        self.assertIn(f"socksgate passwd: interrupted; {path} was not written", shown)
        self.assertNotIn("Traceback", shown)
        self.assertFalse(os.path.exists(path))


class UpdateContentTests(SynchronousTestCase):
    """
    L{updateContent} replaces one user's line and keeps the rest.
    """

    def test_lineEndingKept(self) -> None:
        """
        The replaced line keeps its CRLF ending; other lines are unchanged.
        """
        content, existed = updateContent(b"bob:B\r\nalice:A\r\ncarol:C", "alice", b"NEW")
        self.assertEqual((content, existed), (b"bob:B\r\nalice:NEW\r\ncarol:C", True))

    def test_duplicatesRemoved(self) -> None:
        """
        Further lines for the same user are removed, so that the file
        defines the user once.
        """
        content, existed = updateContent(b"alice:A\nbob:B\n  alice:A2\n", "alice", b"NEW")
        self.assertEqual((content, existed), (b"alice:NEW\nbob:B\n", True))

    def test_commentsNotUsers(self) -> None:
        """
        A comment that looks like the user's line is kept, and the user is
        added.
        """
        content, existed = updateContent(b"#alice:A\n\n", "alice", b"NEW")
        self.assertEqual((content, existed), (b"#alice:A\n\nalice:NEW\n", False))

    def test_prefixNotUser(self) -> None:
        """
        Only the exact user name matches, not one it starts.
        """
        content, existed = updateContent(b"alice2:A\n", "alice", b"NEW")
        self.assertEqual((content, existed), (b"alice2:A\nalice:NEW\n", False))
