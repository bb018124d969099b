"""
The files the session log writes: appended files, standard output and
Twisted's rotating log files, written so that a write that fails half-way
(a full disk, a full pipe) leaves no part of a record behind.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any, Protocol

from twisted.python.logfile import BaseLogFile, DailyLogFile, LogFile

__all__ = [
    "LOG_FILE_MODE",
    "AppendFile",
    "ModeLogFile",
    "createWithMode",
    "ClockedDailyLogFile",
    "StandardOutput",
    "StreamStopped",
    "Writable",
    "endsInNewline",
    "writeWhole",
]


class Writable(Protocol):
    """
    What the session log writes to.
    """

    def write(self, data: bytes) -> None:
        """
        Write C{data}.
        """

    def close(self) -> None:
        """
        Close the file.
        """


class PartialWrite(OSError):
    """
    A write failed after C{written} of its bytes went out.
    """

    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.written = written


def writeWhole(target: Any, data: bytes, stream: bool) -> None:
    """
    Write C{data}, records that are whole or none at all.

    A file that a write leaves short (a full disk: part of a record
    written, the rest refused, or silently dropped by Twisted's
    L{LogFile}) is cut back to its size before the write.  A stream
    (standard output) cannot be cut back: L{StreamStopped} says which part
    of the record it stopped in is still to be written, before anything
    else, so that the line is finished and the next record starts on its
    own line.

    @param target: the file (one of this module's, or a L{BaseLogFile}).
    @param stream: whether C{target} is standard output.
    @raise StreamStopped: a stream took part of C{data}.
    @raise OSError: the write failed; nothing of C{data} stays in a file.
    """
    if stream:
        try:
            target.write(data)
        except PartialWrite as error:
            if error.written and data[error.written - 1] != 0x0A:
                end = data.find(b"\n", error.written)
                complete = data.count(b"\n", 0, error.written)
                raise StreamStopped(error, data[error.written : end + 1], complete) from None
            raise
        return
    if isinstance(target, BaseLogFile) and target.shouldRotate():
        # What LogFile.write would do first, done here so that the file
        # measured below is the one written.
        target.flush()
        target.rotate()
    descriptor = _descriptorOf(target)
    status = os.fstat(descriptor) if descriptor is not None else None
    if descriptor is None or status is None or not stat.S_ISREG(status.st_mode):
        target.write(data)
        return
    before = status.st_size
    try:
        target.write(data)
        if os.fstat(descriptor).st_size != before + len(data):
            raise OSError(errno.ENOSPC, "a short write (is the disk full?)")
    except BaseException:
        try:
            os.ftruncate(descriptor, before)
            os.lseek(descriptor, before, os.SEEK_SET)
        except OSError:
            pass
        if isinstance(target, LogFile):
            target.size = before
        raise


class StreamStopped(OSError):
    """
    Standard output took part of a write, and stopped inside a record.

    @ivar unfinished: the rest of that record, to write first next time.
    @ivar complete: the records written whole before it.
    """

    def __init__(self, error: OSError, unfinished: bytes, complete: int) -> None:
        super().__init__(error.errno, error.strerror)
        self.unfinished = unfinished
        self.complete = complete


def _descriptorOf(target: Any) -> int | None:
    """
    The file descriptor of a session log file, if it has one.
    """
    inner = target if hasattr(target, "fileno") else getattr(target, "_file", None)
    try:
        return int(inner.fileno())
    except (AttributeError, OSError, ValueError):
        return None


#: The mode of a session log file the gateway creates (a new file, a
#: rotation, a reopen after logrotate moved it), whatever the umask: the
#: owner writes, its group reads.  A file that exists keeps its mode.
LOG_FILE_MODE = 0o640


def createWithMode(path: str, mode: int = LOG_FILE_MODE) -> None:
    """
    Create the file at C{path} with exactly C{mode} (not less by the
    umask, which twistd sets to 077 when it daemonizes), unless it exists.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)


class ModeLogFile(LogFile):
    """
    Twisted's L{LogFile}, whose new files (at start and at each rotation)
    get L{LOG_FILE_MODE}.
    """

    def _openFile(self) -> None:
        createWithMode(self.path)
        super()._openFile()


class AppendFile:
    """
    A file opened for appending (C{O_APPEND}), unbuffered: each write is
    one system call, and a short write is finished or fails.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        createWithMode(path)
        self._file = open(path, "ab", buffering=0)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = self._file.write(view)
            except OSError as error:
                raise PartialWrite(len(data) - len(view), error) from None
            if written is None:
                # A non-blocking pipe that is full: drop rather than wait.
                error = BlockingIOError(errno.EAGAIN, "standard output is full")
                raise PartialWrite(len(data) - len(view), error)
            view = view[written:]

    def fileno(self) -> int:
        """
        The file descriptor written to.
        """
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


class StandardOutput(AppendFile):
    """
    Standard output (file descriptor 1, whatever C{sys.stdout} has become:
    twistd sends C{sys.stdout} to its own log).
    """

    def __init__(self) -> None:
        self.path = "-"
        self._file = os.fdopen(os.dup(1), "wb", buffering=0)


class ClockedDailyLogFile(DailyLogFile):
    """
    Twisted's L{DailyLogFile}, whose idea of "today" comes from a reactor's
    clock, so that a test with a L{twisted.internet.task.Clock} can move it
    past midnight.
    """

    def __init__(self, name: str, directory: str, clock: Any) -> None:
        self._clock = clock
        super().__init__(name, directory)

    def _openFile(self) -> None:
        createWithMode(self.path)
        super()._openFile()

    def toDate(self, *args: float) -> tuple[int, int, int]:
        """
        The local date of a Unix time, or of the clock's present.
        """
        return tuple(time.localtime(args[0] if args else self._clock.seconds())[:3])  # type: ignore[return-value]


def endsInNewline(path: str) -> bool:
    """
    Whether the file at C{path} is empty or ends with a newline (after a
    failed write, it may end with part of a record).
    """
    try:
        with open(path, "rb") as stream:
            if stream.seek(0, os.SEEK_END) == 0:
                return True
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) == b"\n"
    except OSError:
        return True
