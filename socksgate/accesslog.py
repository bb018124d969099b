"""
The session log: every session record (the C{socksgate.session} events of
L{socksgate.session.emitSession}) written as one JSON object a line, to a
file or to standard output.

A file can be rotated by size (as Twisted's L{LogFile}: C{FILE.1},
C{FILE.2}, ...), daily (as Twisted's L{twisted.python.logfile.DailyLogFile}: C{FILE.2026_11_21})
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

import json
import os
import re
import signal
import threading
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger, globalLogPublisher
from twisted.python.logfile import LogFile

from .config import LogConfig
from .logfiles import (
    AppendFile,
    ClockedDailyLogFile,
    ModeLogFile,
    StandardOutput,
    StreamStopped,
    Writable,
    endsInNewline,
    writeWhole,
)
from .privileges import writeAdvice

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
        self._file: Writable | None = None
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._flushCall: Any = None
        self._failing = False
        self._unfinished = b""
        self._previousHandler: Any = None
        self._installedHandler: Any = None
        self._openedAs: int | None = None

    def _open(self) -> Writable:
        if self.path == "-":
            return StandardOutput()
        directory, name = os.path.split(self.path)
        if self.logConfig.rotate == "size":
            return ModeLogFile(
                name,
                directory,
                rotateLength=self.logConfig.rotateSize,
                maxRotatedFiles=self.logConfig.keep or None,
            )
        if self.logConfig.rotate == "daily":
            return ClockedDailyLogFile(name, directory, self._reactor)
        return AppendFile(self.path)

    def privilegedStartService(self) -> None:
        """
        Open the file while the process still has the privileges it started
        with: twistd calls this before it drops to C{--uid}/C{--gid}, so a
        file in a directory only root can write is opened all the same, and
        written through that descriptor afterwards.

        @raise AccessLogError: the file cannot be opened.
        """
        super().privilegedStartService()
        self._openAtStart()

    def _openAtStart(self) -> None:
        if self._file is not None:
            return
        if self.path != "-":
            problem = _pathProblem(self.path, self.logConfig.rotate)
            if problem is not None:
                raise AccessLogError(self.path, problem)
        try:
            self._file = self._open()
        except OSError as error:
            raise AccessLogError(self.path, error.strerror or str(error)) from None
        self._openedAs = os.geteuid()

    def startService(self) -> None:
        """
        Open the file (unless L{privilegedStartService} did), start taking
        session records, and reopen the file on SIGUSR1 (when started in
        the main thread).  A file opened before a drop of privileges that
        the process cannot reopen by its name any more is reported once:
        rotation and SIGUSR1 would fail.

        @raise AccessLogError: the file cannot be opened (no such
            directory, no permission, a directory...); the service does
            not start.
        """
        self._openAtStart()
        if self.path != "-" and self._openedAs != os.geteuid():
            problem = _pathProblem(self.path, self.logConfig.rotate)
            if problem is not None:
                self.log.warn(
                    "the session log {path} stays open, but after the drop of privileges it cannot be "
                    "reopened ({problem}): SIGUSR1 and rotation will fail; {advice}",
                    path=self.path,
                    problem=problem,
                    advice=writeAdvice(os.path.dirname(self.path)),
                )
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
        records go to a new C{FILE}.  A file that cannot be opened again (a
        directory the process may not write after it dropped its
        privileges, say) is reported in one line, and records go on to the
        file already open.
        """
        if not self.running:
            return
        self.flush()
        try:
            reopened = self._open()
        except OSError as error:
            if self._file is None:
                self._failed(0, error)
                return
            advice = writeAdvice(os.path.dirname(self.path)) if isinstance(error, PermissionError) else ""
            self.log.error(
                "cannot reopen the session log {path}: {problem}; records go on to the file "
                "already open until a SIGUSR1 reopens it{advice}",
                path=self.path,
                problem=error.strerror or str(error),
                advice=f"; {advice}" if advice else "",
            )
            return
        self._close()
        self._file = reopened
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
                writeWhole(self._file, unfinished, stream)
            elif self._failing and not stream and not endsInNewline(self.path):
                # Something else (a crash, another program) left part of a
                # record: start on a line of its own.
                self._file.write(b"\n")
            for chunk in self._chunks(lines):
                writeWhole(self._file, b"".join(chunk), stream)
                written += len(chunk)
        except StreamStopped as stopped:
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
