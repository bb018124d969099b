"""
C{socksgate passwd FILE USER}: add a user to an htpasswd file, or change a
user's password, with a bcrypt hash (cost 12, C{$2y$} as Apache's
C{htpasswd -B} writes it).

The password is read from the terminal (twice, and both must match) when
standard input is one, or else as one line of standard input.  Every other
line of the file, comments included, is kept as it is; the user's line is
replaced where it stands, or added at the end.  A missing file is created
(mode 0600).  The file is replaced atomically, keeping its mode and owner,
and a symbolic link is followed: the file it points to is replaced.

Exit status: 0 when the file was written, 1 (with a message on standard
error) when it was not.  The password is never printed.
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from typing import TextIO

import bcrypt

from ..htpasswd import HtpasswdError, parseHtpasswd

COST = 12

# bcrypt uses the first 72 bytes of a password and ignores the rest; SOCKS5
# (RFC 1929) carries user names of at most 255 bytes.
MAX_PASSWORD = 72
MAX_USER = 255

NEW_FILE_MODE = 0o600


class _Refused(Exception):
    """
    Why nothing was written, in words for the administrator.
    """


def checkUser(user: str) -> None:
    """
    Refuse a user name that an htpasswd file or SOCKS5 cannot carry.

    @raise ValueError: saying what is wrong with it.
    """
    if not user:
        raise ValueError("the user name is empty")
    if ":" in user:
        raise ValueError("a user name cannot contain ':'")
    if any(character.isspace() for character in user):
        raise ValueError("a user name cannot contain white space")
    if not user.isprintable():
        raise ValueError("a user name cannot contain control characters")
    if user.startswith("#"):
        raise ValueError("a user name cannot start with '#' (the line would be a comment)")
    if len(user.encode("utf-8")) > MAX_USER:
        raise ValueError(f"a user name has at most {MAX_USER} bytes (SOCKS5 carries no more)")


def checkPassword(password: str) -> None:
    """
    Refuse a password that bcrypt cannot hash whole.  The message never
    quotes the password.

    @raise ValueError: saying what is wrong with it.
    """
    if not password:
        raise ValueError("the password is empty")
    if "\0" in password:
        raise ValueError("the password contains a NUL character")
    size = len(password.encode("utf-8"))
    if size > MAX_PASSWORD:
        raise ValueError(
            f"the password has {size} bytes: bcrypt uses only the first {MAX_PASSWORD}, choose a shorter one"
        )


def hashPassword(password: str, cost: int = COST) -> bytes:
    """
    A bcrypt hash of C{password}, with the C{$2y$} prefix that Apache
    writes (the same algorithm as C{$2b$}).
    """
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(cost))
    return b"$2y$" + hashed[4:]


def readPassword(stdin: TextIO, stderr: TextIO) -> str:
    """
    Read the new password: from the terminal, twice, when C{stdin} is one;
    otherwise one line of C{stdin}, without its line ending.

    @raise _Refused: when there is none, or the two do not match.
    """
    if stdin.isatty():
        try:
            first = getpass.getpass("New password: ", stream=stderr)
            second = getpass.getpass("Re-type new password: ", stream=stderr)
        except EOFError:
            # Ctrl-D at the prompt.
            stderr.write("\n")
            raise _Refused("no password given") from None
        if first != second:
            raise _Refused("the passwords do not match")
        return first
    line = stdin.readline()
    if not line:
        raise _Refused("no password on standard input")
    return line.removesuffix("\n").removesuffix("\r")


def _userOfLine(line: bytes) -> bytes | None:
    """
    The user name a line of an htpasswd file defines, read as Apache reads
    it, or C{None} for a comment or an empty line.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith(b"#"):
        return None
    return stripped.partition(b":")[0]


def updateContent(content: bytes, user: str, hashed: bytes) -> tuple[bytes, bool]:
    """
    Set C{user}'s hash in the content of an htpasswd file, keeping every
    other line as it is.  The user's first line is replaced where it stands
    (keeping its line ending); any further line for the same user is
    removed.

    @return: the new content, and whether the user was already there.
    """
    name = user.encode("utf-8")
    entry = name + b":" + hashed
    lines = content.splitlines(keepends=True)
    result: list[bytes] = []
    found = False
    for line in lines:
        if _userOfLine(line) != name:
            result.append(line)
        elif not found:
            found = True
            body = line.rstrip(b"\r\n")
            result.append(entry + line[len(body) :])
    if not found:
        if result and not result[-1].endswith((b"\n", b"\r")):
            result.append(b"\n")
        result.append(entry + b"\n")
    return b"".join(result), found


def _writeAtomically(path: str, content: bytes) -> None:
    """
    Replace C{path} by a file with C{content}, through a temporary file in
    the same directory, keeping the mode and owner of the file replaced
    (mode 0600 for a new file).

    @raise _Refused: when the file cannot be written, or its owner cannot
        be kept.
    """
    try:
        previous: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        previous = None
    except OSError as error:
        raise _Refused(f"{path}: {error.strerror or error}") from None
    if previous is not None and not stat.S_ISREG(previous.st_mode):
        raise _Refused(f"{path}: not a regular file")
    directory, name = os.path.split(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    except OSError as error:
        raise _Refused(f"{path}: cannot write in its directory: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            if previous is None:
                os.fchmod(stream.fileno(), NEW_FILE_MODE)
            else:
                os.fchmod(stream.fileno(), stat.S_IMODE(previous.st_mode))
                mine = os.fstat(stream.fileno())
                if (mine.st_uid, mine.st_gid) != (previous.st_uid, previous.st_gid):
                    try:
                        os.fchown(stream.fileno(), previous.st_uid, previous.st_gid)
                    except OSError as error:
                        raise _Refused(
                            f"{path}: cannot keep its owner and group"
                            f" ({previous.st_uid}:{previous.st_gid}): {error.strerror or error};"
                            " run this as its owner or as root"
                        ) from None
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _Refused(f"{path}: {error.strerror or error}") from None
        raise
    _syncDirectory(directory or ".")


def _syncDirectory(directory: str) -> None:
    """
    Make a rename in C{directory} durable, where the system allows it.
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def run(path: str, user: str, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """
    Add C{user} to the htpasswd file C{path}, or change their password.

    @return: the exit status: 0 when the file was written, 1 when not.
    """
    try:
        checkUser(user)
    except ValueError as problem:
        stderr.write(f"socksgate passwd: {user!r}: {problem}\n")
        return 1
    target = os.path.realpath(path)
    try:
        try:
            with open(target, "rb") as stream:
                content = stream.read()
        except FileNotFoundError:
            content = b""
        except OSError as error:
            raise _Refused(f"{path}: cannot be read: {error.strerror or error}") from None
        password = readPassword(stdin, stderr)
        try:
            checkPassword(password)
        except ValueError as problem:
            raise _Refused(str(problem)) from None
        updated, existed = updateContent(content, user, hashPassword(password))
        _writeAtomically(target, updated)
    except _Refused as problem:
        stderr.write(f"socksgate passwd: {problem}; {path} was not written\n")
        return 1
    except KeyboardInterrupt:
        # Ctrl-C at the prompt (or while hashing): nothing was written.
        stderr.write(f"\nsocksgate passwd: interrupted; {path} was not written\n")
        return 130
    if existed:
        stdout.write(f"Changed the password of {user} in {path}\n")
    else:
        stdout.write(f"Added {user} to {path}\n")
    try:
        parseHtpasswd(updated, path)
    except HtpasswdError as problem:
        stderr.write(
            f"socksgate passwd: warning: socksgate will refuse this file until this is fixed: {problem}\n"
        )
    return 0
