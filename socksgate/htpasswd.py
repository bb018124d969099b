"""
Users and passwords from an Apache htpasswd file, as a C{twisted.cred}
checker.

Only bcrypt hashes are accepted: the C{$2y$} lines that C{htpasswd -B} and
C{socksgate passwd} write (and C{$2b$}, C{$2a$}).  A file with any other kind
of line (MD5 C{$apr1$}, C{{SHA}}, crypt, plain text) is refused as a whole,
with its line named, so that a weak hash never goes unnoticed.

The file is read as Apache reads it: each line is stripped of surrounding
white space; empty lines and lines starting with C{#} are skipped; the user
name runs up to the first C{:}, the hash up to the next one (anything
after it is ignored).  Unlike Apache, a user defined twice is an error.

The file is read when the checker is made (at startup).  Afterwards, every
file access and every bcrypt computation happens in the reactor's thread
pool: before each check the file is re-read if it changed (its inode, size
or modification time), so users added or changed take effect without a
restart; a changed file that does not load leaves the previous users in
force and is logged once.

A file that exists but that the process may not read (an htpasswd file
that only root may read, after twistd dropped to C{--uid}) is the
exception: the gateway cannot see which users it lists any more, so it
refuses every user of the file (fail closed) until the file can be read
again, and says once what to change.  A change of owner or mode is seen
as a change of the file.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from .privileges import readAdvice
from .threads import runningPool

__all__ = ["HtpasswdChecker", "HtpasswdError", "HtpasswdUnreadable", "parseHtpasswd"]

# The bcrypt hashes that htpasswd -B (and other correct implementations)
# write: a prefix, a two-digit cost from 04 to 31, then 22 characters of salt
# and 31 of digest in bcrypt's base64 alphabet.
_BCRYPT = re.compile(rb"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_DES_CRYPT = re.compile(rb"[./A-Za-z0-9]{13}")
_CRYPT_ID = re.compile(rb"\$([A-Za-z0-9]{1,8})\$")

_KINDS = [
    (b"$apr1$", "an MD5 ($apr1$) hash"),
    (b"{SHA}", "a SHA-1 ({SHA}) hash"),
    (b"$1$", "an MD5-crypt ($1$) hash"),
    (b"$5$", "a SHA-256 crypt ($5$) hash"),
    (b"$6$", "a SHA-512 crypt ($6$) hash"),
]

# A bcrypt hash of a random password nobody knows.  An unknown user's
# password is checked against it, at the cost of the file's hashes, so that
# refusing an unknown user takes as long as refusing a wrong password.
_DUMMY = b"$2b$04$KebxhztQSQ7QS3Ifm1SVbO8CGJQmNfAI66nB2Eh5cJEyz5uAAbJ9q"

# bcrypt uses the first 72 bytes of a password; Apache ignores the rest, and
# the bcrypt package refuses longer ones.
_BCRYPT_MAX_PASSWORD = 72

_DEFAULT_COST = 12

#: Threads that check bcrypt hashes (a process's checkers share none: each
#: C{htpasswd:} checker has its pool).  bcrypt releases the GIL, so a few
#: threads use the cores; more checks wait in the queue.
BCRYPT_THREADS = 4

_Stamp = tuple[int, int, int, int, int]


class HtpasswdError(ValueError):
    """
    An htpasswd file that cannot be used: unreadable, malformed, or with a
    hash that is not bcrypt.

    @ivar path: the file.
    @ivar line: the number of the line at fault (from 1), or C{None} when
        the problem is the whole file.
    @ivar problem: what is wrong.  It never quotes a hash or a password.
    """

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        super().__init__(path, line, problem)
        self.path = path
        self.line = line
        self.problem = problem

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.problem}"
        return f"{self.path}:{self.line}: {self.problem}"


class HtpasswdUnreadable(HtpasswdError):
    """
    An htpasswd file that exists but that this process may not read.
    """


def _describeHash(hashed: bytes) -> str | None:
    """
    Say what kind of hash C{hashed} is, when it is not a usable bcrypt hash.

    @return: C{None} for a bcrypt hash; otherwise the kind, such as C{"an
        MD5 ($apr1$) hash"}, which never quotes the hash itself.
    """
    if _BCRYPT.fullmatch(hashed):
        return None
    if hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
        return "a malformed bcrypt hash"
    for prefix, kind in _KINDS:
        if hashed.startswith(prefix):
            return kind
    identifier = _CRYPT_ID.match(hashed)
    if identifier is not None:
        return f"an unsupported crypt (${identifier.group(1).decode('ascii')}$) hash"
    if _DES_CRYPT.fullmatch(hashed):
        return "a DES crypt hash (htpasswd -d) or a plain text password"
    return "a plain text password (htpasswd -p) or a hash of an unknown kind"


def parseHtpasswd(data: bytes, path: str) -> dict[str, bytes]:
    """
    Parse the content of an htpasswd file whose hashes are all bcrypt.

    @param data: the file's content.
    @param path: the file's name, for error messages.
    @return: each user's bcrypt hash, by user name.
    @raise HtpasswdError: for the first line that is malformed, defines a
        user again, or has a hash that is not bcrypt.
    """
    users: dict[str, bytes] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        name, colon, rest = line.partition(b":")
        if not colon:
            raise HtpasswdError(path, number, "not a 'user:hash' line (no ':')")
        if not name:
            raise HtpasswdError(path, number, "empty user name")
        try:
            user = name.decode("utf-8")
        except UnicodeDecodeError:
            raise HtpasswdError(path, number, "the user name is not UTF-8") from None
        if user in users:
            raise HtpasswdError(path, number, f"user {user!r} is already defined on line {lines[user]}")
        hashed = rest.split(b":", 1)[0]
        if not hashed:
            raise HtpasswdError(path, number, f"user {user!r} has no password hash")
        kind = _describeHash(hashed)
        if kind is not None:
            raise HtpasswdError(
                path,
                number,
                f"user {user!r} has {kind}: only bcrypt hashes are accepted"
                " (write them with htpasswd -B or socksgate passwd)",
            )
        users[user] = hashed
        lines[user] = number
    return users


def _stampOf(status: os.stat_result) -> _Stamp:
    """
    What tells one version of a file from another without reading it
    (C{st_ctime} changes with its owner and mode too).
    """
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _load(path: str) -> tuple[_Stamp, dict[str, bytes]]:
    """
    Read and parse an htpasswd file.  This blocks: call it at startup or in
    a thread.

    @return: the version of the file that was read, and its users.
    @raise HtpasswdError: when the file cannot be read or parsed.
    """
    try:
        with open(path, "rb") as stream:
            stamp = _stampOf(os.fstat(stream.fileno()))
            data = stream.read()
    except PermissionError as error:
        problem = f"cannot be read: {error.strerror or error}; {readAdvice(path)}"
        raise HtpasswdUnreadable(path, None, problem) from None
    except OSError as error:
        raise HtpasswdError(path, None, f"cannot be read: {error.strerror or error}") from None
    return stamp, parseHtpasswd(data, path)


def _dummyFor(users: dict[str, bytes]) -> bytes:
    """
    A hash nobody's password matches, at the cost most of C{users}' hashes
    have (the highest of those, on a tie).
    """
    costs = Counter(int(hashed[4:6]) for hashed in users.values())
    cost = max(costs, key=lambda each: (costs[each], each)) if costs else _DEFAULT_COST
    return b"%s%02d%s" % (_DUMMY[:4], cost, _DUMMY[6:])


def _asBytes(value: object) -> bytes:
    """
    A password as bytes: a C{str} in UTF-8.
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return b""


def _asText(value: object) -> str | None:
    """
    A user name as C{str}, or C{None} when it cannot be one (bytes that are
    not UTF-8).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


@dataclass(frozen=True)
class _Reload:
    """
    What a re-read of the file did, for the reactor thread to log.

    @ivar users: how many users are in force afterwards.
    @ivar error: why the file was not loaded, or C{None} when it was.
    @ivar closed: whether every user is refused because the file cannot
        be read.
    """

    users: int
    error: HtpasswdError | None
    closed: bool = False


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """
    A checker of user names and passwords against an htpasswd file of
    bcrypt hashes.

    @ivar path: the htpasswd file.
    """

    log = Logger()
    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, path: str | os.PathLike[str], reactor: Any = None) -> None:
        """
        Read the file.  This blocks, as it should at startup, before the
        reactor runs.

        @param path: the htpasswd file.
        @param reactor: the reactor whose thread pool reads the file and
            checks passwords afterwards; the global reactor by default.
        @raise HtpasswdError: when the file cannot be read, is malformed or
            has a hash that is not bcrypt.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.path = os.fspath(path)
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self._lock = threading.Lock()
        self._stamp, self._users = _load(self.path)
        self._dummy = _dummyFor(self._users)
        # The version of the file last found broken, and its problem: it
        # is reported once, and not read again until it changes.
        self._brokenStamp: _Stamp | None = None
        self._brokenProblem: str | None = None

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:
        """
        Check a user name and password, re-reading the file first if it
        changed; all of it in a pool of L{BCRYPT_THREADS} threads of its
        own (checks beyond those wait their turn), apart from name lookups
        and the reactor's pool.

        @return: a L{Deferred} that fires with the user name (a C{str}), or
            fails with L{UnauthorizedLogin} for an unknown user or a wrong
            password.
        """
        self._pool = runningPool(self._pool, self._reactor, "socksgate-bcrypt", BCRYPT_THREADS)
        checking = deferToThreadPool(
            self._reactor,
            self._pool,
            self._verify,
            credentials.username,
            credentials.password,
        )
        return checking.addCallback(self._verified)

    def reload(self) -> Deferred[bool]:
        """
        Re-read the file now (in the reactor's thread pool), whether or not
        it looks changed: for SIGHUP.  A file that does not load leaves the
        previous users in force, and the problem is logged.

        @return: a L{Deferred} that fires with C{True} when the file was
            loaded, C{False} when the previous users stay.
        """
        reading = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._refresh, True)
        return reading.addCallback(self._reloaded)

    def _reloaded(self, outcome: _Reload) -> bool:
        """
        Back on the reactor thread: log a forced re-read, and say whether
        the file was loaded.
        """
        self._logReload(outcome)
        return outcome.error is None

    def _refresh(self, force: bool) -> _Reload | None:
        """
        Re-read the file if it changed since it was last read (or if
        C{force}).  This blocks: it runs in a thread.

        @return: what happened, when there is something to log: C{None}
            when the file is unchanged, or broken in the same way as when
            it was last reported.
        """
        with self._lock:
            stamp: _Stamp | None = None
            try:
                try:
                    stamp = _stampOf(os.stat(self.path))
                except PermissionError as error:
                    problem = f"cannot be read: {error.strerror or error}; {readAdvice(self.path)}"
                    raise HtpasswdUnreadable(self.path, None, problem) from None
                except OSError as error:
                    raise HtpasswdError(
                        self.path, None, f"cannot be read: {error.strerror or error}"
                    ) from None
                if not force and stamp in (self._stamp, self._brokenStamp):
                    return None
                loaded, users = _load(self.path)
            except HtpasswdError as error:
                problem = str(error)
                if not force and (stamp, problem) == (self._brokenStamp, self._brokenProblem):
                    return None
                self._brokenStamp, self._brokenProblem = stamp, problem
                if isinstance(error, HtpasswdUnreadable):
                    # Fail closed: a user removed from a file the gateway
                    # cannot read must not go on logging in.
                    self._users = {}
                    return _Reload(0, error, closed=True)
                return _Reload(len(self._users), error)
            self._stamp, self._users, self._dummy = loaded, users, _dummyFor(users)
            self._brokenStamp = self._brokenProblem = None
            return _Reload(len(users), None)

    def _verify(self, username: object, password: object) -> tuple[str | None, _Reload | None]:
        """
        Re-read the file if it changed, then check the password.  This
        blocks: it runs in a thread.

        Exactly one bcrypt check is made whatever the outcome, against a
        dummy hash for an unknown user, so that the time taken does not
        tell which user names exist.

        @return: the user name, or C{None} when refused; and what a re-read
            of the file did, if anything.
        """
        outcome = self._refresh(False)
        users, dummy = self._users, self._dummy
        user = _asText(username)
        hashed = users.get(user) if user is not None else None
        secret = _asBytes(password)[:_BCRYPT_MAX_PASSWORD]
        matched = bcrypt.checkpw(secret, hashed if hashed is not None else dummy)
        return (user if hashed is not None and matched else None), outcome

    def _verified(self, result: tuple[str | None, _Reload | None]) -> str:
        """
        Back on the reactor thread: log what a re-read did, and answer.
        """
        user, outcome = result
        self._logReload(outcome)
        if user is None:
            raise UnauthorizedLogin()
        return user

    def _logReload(self, outcome: _Reload | None) -> None:
        """
        Log a re-read of the file (on the reactor thread).
        """
        if outcome is None:
            return
        if outcome.error is None:
            self.log.info("Reloaded {path}: {users} users", path=self.path, users=outcome.users)
        elif outcome.closed:
            self.log.error(
                "{path} was not reloaded, and every user is refused until it can be read: {problem}",
                path=self.path,
                problem=str(outcome.error),
            )
        else:
            self.log.error(
                "{path} was not reloaded; the previous {users} users stay in force: {problem}",
                path=self.path,
                users=outcome.users,
                problem=str(outcome.error),
            )
