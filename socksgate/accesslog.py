"""
The session log: every session record (the C{socksgate.session} events of
L{socksgate.session.emitSession}) written as one JSON object a line, to a
file or to standard output.

A file can be rotated by size (as Twisted's L{LogFile}: C{FILE.1},
C{FILE.2}, ...), daily (as Twisted's L{DailyLogFile}: C{FILE.2026_11_21})
or not at all; SIGUSR1 reopens it by name after an external tool such as
logrotate moved it.

Records are buffered and written together at most L{FLUSH_DELAY} seconds
after the first of them (or at once when L{FLUSH_SIZE} bytes are waiting,
and when the service stops), so that a busy gateway makes few small writes.
A write that fails (a full disk, say) is reported once in the operational
log; records are dropped until a write succeeds again, and then a second
message says how many were lost.  A failed write leaves no part of a
record behind: a file is cut back to where the write began, and on
standard output the record a write stopped in is finished first when
writing works again.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import threading
import time
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.logger import Logger, globalLogPublisher
from twisted.python.logfile import BaseLogFile, DailyLogFile, LogFile

from .config import LogConfig

__all__ = ["FLUSH_DELAY", "FLUSH_SIZE", "AccessLogError", "AccessLogService", "checkAccessLog"]

#: Seconds between the first buffered record and the write of the buffer.
FLUSH_DELAY = 0.1

#: Buffered bytes that are written at once, without waiting.
FLUSH_SIZE = 64 * 1024

#: The namespace of session events (see L{socksgate.session}).
SESSION_NAMESPACE = "socksgate.session"


#: Code points that display as nothing or change how text around them
#: displays: format characters (Cf: soft hyphen, zero-width space and
#: joiners, bidi controls, BOM), separators other than the space, private
#: use, and the C1 controls.
_INVISIBLE = re.compile(
    "[\u0080-\u009f\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\ufff0-\ufffb\ue000-\uf8ff\U000e0000-\U000e007f]"
)


def _escape(match: re.Match[str]) -> str:
    """
    The JSON escape of one code point (a surrogate pair above U+FFFF).
    """
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


class AccessLogError(ValueError):
    """
    The session log cannot be opened when the service starts.

    @ivar path: the file.
    @ivar problem: what is wrong, in words.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"cannot open the session log {path}: {problem}")


def checkAccessLog(logConfig: LogConfig) -> None:
    """
    Check, without creating anything, that the session log of C{logConfig}
    can be opened (and rotated): for a command line to refuse a bad path
    before it starts anything.

    @raise AccessLogError: its directory does not exist or cannot be
        written, or the file is a directory or cannot be written.
    """
    if logConfig.access in ("", "-"):
        return
    path = os.path.abspath(logConfig.access)
    problem = _pathProblem(path, logConfig.rotate)
    if problem is not None:
        raise AccessLogError(path, problem)


def _pathProblem(path: str, rotate: str) -> str | None:
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return f"there is no directory {directory}"
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "no permission to write it"
    if not os.path.exists(path) and not os.access(directory, os.W_OK | os.X_OK):
        return f"no permission to create files in {directory}"
    if rotate != "none" and not os.access(directory, os.W_OK | os.X_OK):
        return f"rotation needs permission to create files in {directory}"
    return None


class _Writable(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _PartialWrite(OSError):
    """
    A write failed after C{written} of its bytes went out.
    """

    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.written = written


def _writeWhole(target: Any, data: bytes, stream: bool) -> None:
    """
    Write C{data}, records that are whole or none at all.

    A file that a write leaves short (a full disk: part of a record
    written, the rest refused, or silently dropped by Twisted's
    L{LogFile}) is cut back to its size before the write.  A stream
    (standard output) cannot be cut back: L{_StreamStopped} says which part
    of the record it stopped in is still to be written, before anything
    else, so that the line is finished and the next record starts on its
    own line.

    @param target: the file (one of this module's, or a L{BaseLogFile}).
    @param stream: whether C{target} is standard output.
    @raise _StreamStopped: a stream took part of C{data}.
    @raise OSError: the write failed; nothing of C{data} stays in a file.
    """
    if stream:
        try:
            target.write(data)
        except _PartialWrite as error:
            if error.written and data[error.written - 1] != 0x0A:
                end = data.find(b"\n", error.written)
                complete = data.count(b"\n", 0, error.written)
                raise _StreamStopped(error, data[error.written : end + 1], complete) from None
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


class _StreamStopped(OSError):
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


class _AppendFile:
    """
    A file opened for appending (C{O_APPEND}), unbuffered: each write is
    one system call, and a short write is finished or fails.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "ab", buffering=0)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = self._file.write(view)
            except OSError as error:
                raise _PartialWrite(len(data) - len(view), error) from None
            if written is None:
                # A non-blocking pipe that is full: drop rather than wait.
                error = BlockingIOError(errno.EAGAIN, "standard output is full")
                raise _PartialWrite(len(data) - len(view), error)
            view = view[written:]

    def fileno(self) -> int:
        """
        The file descriptor written to.
        """
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


class _StandardOutput(_AppendFile):
    """
    Standard output (file descriptor 1, whatever C{sys.stdout} has become:
    twistd sends C{sys.stdout} to its own log).
    """

    def __init__(self) -> None:
        self.path = "-"
        self._file = os.fdopen(os.dup(1), "wb", buffering=0)


class _DailyLogFile(DailyLogFile):
    """
    Twisted's L{DailyLogFile}, whose idea of "today" comes from a reactor's
    clock, so that a test with a L{twisted.internet.task.Clock} can move it
    past midnight.
    """

    def __init__(self, name: str, directory: str, clock: Any) -> None:
        self._clock = clock
        super().__init__(name, directory)

    def toDate(self, *args: float) -> tuple[int, int, int]:
        """
        The local date of a Unix time, or of the clock's present.
        """
        return tuple(time.localtime(args[0] if args else self._clock.seconds())[:3])  # type: ignore[return-value]


def _endsInNewline(path: str) -> bool:
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


class AccessLogService(Service):
    """
    Writes the session records of the whole process to the file of
    C{[log] access} (or C{--access-log}) while it runs.

    It watches L{twisted.logger.globalLogPublisher} for events in the
    C{socksgate.session} namespace, which are emitted in the reactor
    thread; it does its writing there too, in small buffered appends.

    @ivar path: the absolute path of the file, or C{"-"} for standard
        output.
    @ivar lost: records dropped since writing last failed.
    """

    log = Logger()

    #: Seconds a record may wait in the buffer before it is written.
    flushDelay = FLUSH_DELAY

    def __init__(self, logConfig: LogConfig, reactor: Any) -> None:
        """
        @param logConfig: the C{[log]} settings; C{access} names the file,
            relative to the directory the process started in.
        @param reactor: the reactor, for the flush timer, for the date of
            daily rotation, and to reopen the file from a signal.
        """
        self.logConfig = logConfig
        self.path = "-" if logConfig.access == "-" else os.path.abspath(logConfig.access)
        self.lost = 0
        self._reactor = reactor
        self._file: _Writable | None = None
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._flushCall: Any = None
        self._failing = False
        self._unfinished = b""
        self._previousHandler: Any = None
        self._installedHandler: Any = None

    def _open(self) -> _Writable:
        if self.path == "-":
            return _StandardOutput()
        directory, name = os.path.split(self.path)
        if self.logConfig.rotate == "size":
            return LogFile(
                name,
                directory,
                rotateLength=self.logConfig.rotateSize,
                maxRotatedFiles=self.logConfig.keep or None,
            )
        if self.logConfig.rotate == "daily":
            return _DailyLogFile(name, directory, self._reactor)
        return _AppendFile(self.path)

    def startService(self) -> None:
        """
        Open the file, start taking session records, and reopen the file
        on SIGUSR1 (when started in the main thread).

        @raise AccessLogError: the file cannot be opened (no such
            directory, no permission, a directory...); the service does
            not start.
        """
        if self.path != "-":
            problem = _pathProblem(self.path, self.logConfig.rotate)
            if problem is not None:
                raise AccessLogError(self.path, problem)
        try:
            self._file = self._open()
        except OSError as error:
            raise AccessLogError(self.path, error.strerror or str(error)) from None
        super().startService()
        globalLogPublisher.addObserver(self._observe)
        if threading.current_thread() is threading.main_thread():
            self._installedHandler = self._userSignal
            self._previousHandler = signal.signal(signal.SIGUSR1, self._installedHandler)

    def stopService(self) -> None:
        """
        Stop taking records, write the ones waiting, close the file, and
        leave SIGUSR1 as it was.
        """
        if self._installedHandler is not None:
            if signal.getsignal(signal.SIGUSR1) == self._installedHandler:
                signal.signal(signal.SIGUSR1, self._previousHandler)
            self._installedHandler = self._previousHandler = None
        globalLogPublisher.removeObserver(self._observe)
        self.flush()
        self._close()
        super().stopService()

    def _userSignal(self, signalNumber: int, frame: Any) -> None:
        self._reactor.callFromThread(self.reopen)
        if callable(self._previousHandler):
            # twistd rotates its own --logfile on SIGUSR1: keep that working.
            self._previousHandler(signalNumber, frame)

    def reopen(self) -> None:
        """
        Write the records waiting (to the file as it was), then close the
        file and open it again by its name: after C{mv FILE FILE.1}, new
        records go to a new C{FILE}.  A file that cannot be opened again is
        reported as a failed write would be, and opening is tried again at
        the next write.
        """
        if not self.running:
            return
        self.flush()
        self._close()
        try:
            self._file = self._open()
        except OSError as error:
            self._failed(0, error)
        else:
            self.log.info("reopened the session log {path}", path=self.path)

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _observe(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") != SESSION_NAMESPACE or "record" not in event:
            return
        text = json.dumps(event["record"], separators=(",", ":"), ensure_ascii=False, default=str)
        if not text.isascii():
            # Code points that show nothing (a soft hyphen, a zero-width
            # space, a bidi override) are written as JSON escapes, so that
            # a look-alike name cannot pass for the real one in the log.
            text = _INVISIBLE.sub(_escape, text)
        # A lone surrogate (from bytes that were not UTF-8) is written as
        # its JSON escape, which reads back as the same string.
        line = text.encode("utf-8", "backslashreplace") + b"\n"
        self._pending.append(line)
        self._pendingSize += len(line)
        if self._pendingSize >= FLUSH_SIZE:
            self.flush()
        elif self._flushCall is None:
            self._flushCall = self._reactor.callLater(self.flushDelay, self.flush)

    def flush(self) -> None:
        """
        Write the records waiting in the buffer now.
        """
        if self._flushCall is not None:
            if self._flushCall.active():
                self._flushCall.cancel()
            self._flushCall = None
        lines, self._pending, self._pendingSize = self._pending, [], 0
        if not lines:
            return
        written = 0
        stream = self.path == "-"
        try:
            if self._file is None:
                self._file = self._open()
            if self._unfinished:
                unfinished, self._unfinished = self._unfinished, b""
                _writeWhole(self._file, unfinished, stream)
            elif self._failing and not stream and not _endsInNewline(self.path):
                # Something else (a crash, another program) left part of a
                # record: start on a line of its own.
                self._file.write(b"\n")
            for chunk in self._chunks(lines):
                _writeWhole(self._file, b"".join(chunk), stream)
                written += len(chunk)
        except _StreamStopped as stopped:
            self._unfinished = stopped.unfinished
            self._failed(len(lines) - written - stopped.complete - 1, stopped)
            return
        except (OSError, ValueError) as error:
            # ValueError: the file object was closed under us (a rotation
            # that could not open the new file).
            if isinstance(error, ValueError):
                self._close()
            self._failed(len(lines) - written, error)
            return
        if self._failing:
            self._failing = False
            self.log.info(
                "writing the session log {path} again; {lost} session records were lost",
                path=self.path,
                lost=self.lost,
            )
            self.lost = 0

    def _chunks(self, lines: list[bytes]) -> list[list[bytes]]:
        """
        Group C{lines} into writes.  A L{LogFile} decides whether to rotate
        before each write, once its size has reached its limit: a write
        ends at the record that reaches the limit, so that files rotate
        where they would with a write for each record.
        """
        logFile = self._file
        if not isinstance(logFile, LogFile) or not logFile.rotateLength:
            return [lines]
        chunks: list[list[bytes]] = [[]]
        size = logFile.size
        for line in lines:
            if size >= logFile.rotateLength:
                chunks.append([])
                size = 0
            chunks[-1].append(line)
            size += len(line)
        return [chunk for chunk in chunks if chunk]

    def _failed(self, dropped: int, error: Exception) -> None:
        self.lost += dropped
        if self._failing:
            return
        self._failing = True
        self.log.error(
            "cannot write the session log {path}: {problem}; "
            "session records are dropped until writing works again",
            path=self.path,
            problem=getattr(error, "strerror", None) or str(error),
        )
