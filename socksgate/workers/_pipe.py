"""
The pipe from a worker to the parent: every event a worker logs, as one
line of JSON (L{twisted.logger.eventAsJSON}), so that the parent's log
observers (twistd's log, the session log, the status counters) see the
workers' events as their own.

L{EventWriter} is the worker's end: it buffers and writes without
blocking, from the reactor thread, and L{EventWriter.drain} writes what is
left, blocking, once the worker's reactor has stopped.  L{LineSplitter} is
the parent's end: it cuts what arrives into whole lines, and drops a line
longer than L{LONGEST_LINE}.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from twisted.internet import fdesc
from twisted.internet.interfaces import IWriteDescriptor
from twisted.logger import eventAsJSON
from zope.interface import implementer

__all__ = ["BUFFER_LIMIT", "EVENTS_FD", "LONGEST_LINE", "REPORT_NAMESPACE", "EventWriter", "LineSplitter"]

#: The namespace of the open-session reports a worker sends to the parent.
REPORT_NAMESPACE = "socksgate.workers.report"

#: The descriptor of the event pipe in a worker.
EVENTS_FD = 3

#: The longest event line the parent takes (bytes, newline excluded).
LONGEST_LINE = 1024 * 1024

#: Bytes a worker keeps waiting for the pipe; events beyond are dropped
#: (and counted) until the parent has read some.
BUFFER_LIMIT = 16 * 1024 * 1024


@implementer(IWriteDescriptor)
class EventWriter:
    """
    A worker's end of the event pipe: a C{twisted.logger} observer that
    writes each event as one line, without blocking the reactor.

    @ivar dropped: events dropped since the buffer was last full.
    """

    def __init__(self, reactor: Any, fd: int = EVENTS_FD) -> None:
        self._reactor = reactor
        self._fd = fd
        self._buffer = bytearray()
        self._writing = False
        self._closed = False
        self.dropped = 0
        fdesc.setNonBlocking(fd)

    def fileno(self) -> int:
        """
        The pipe's descriptor.
        """
        return self._fd

    def logPrefix(self) -> str:
        """
        The name of this writer in the log.
        """
        return "EventWriter"

    def observe(self, event: dict[str, Any]) -> None:
        """
        A C{twisted.logger} observer: send C{event} to the parent.
        """
        if self._closed:
            return
        line = eventAsJSON(event).encode("utf-8", "backslashreplace") + b"\n"
        if len(self._buffer) + len(line) > BUFFER_LIMIT:
            self.dropped += 1
            return
        self._buffer += line
        if not self._writing:
            self.doWrite()

    def doWrite(self) -> None:
        """
        Write what the pipe takes now; wait for it to take more.
        """
        try:
            written = os.write(self._fd, self._buffer) if self._buffer else 0
        except BlockingIOError:
            written = 0
        except OSError as error:
            if error.errno == errno.EINTR:
                written = 0
            else:
                self._stop()
                return
        del self._buffer[:written]
        if self._buffer and not self._writing:
            self._writing = True
            self._reactor.addWriter(self)
        elif not self._buffer and self._writing:
            self._writing = False
            self._reactor.removeWriter(self)

    def connectionLost(self, reason: Any) -> None:
        """
        The reactor dropped the pipe (at shutdown): keep the buffer for
        L{drain}.
        """
        self._writing = False

    def _stop(self) -> None:
        self._closed = True
        self._buffer.clear()
        if self._writing:
            self._writing = False
            self._reactor.removeWriter(self)

    def drain(self) -> None:
        """
        Write everything still waiting, blocking: for the worker's last
        moment, after its reactor has stopped.
        """
        if self._closed:
            return
        self._closed = True
        fdesc.setBlocking(self._fd)
        try:
            view = memoryview(self._buffer)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            pass
        self._buffer.clear()


class LineSplitter:
    """
    The parent's end of an event pipe: cuts the bytes that arrive into
    whole lines for C{deliver}.  A line longer than L{LONGEST_LINE} is
    dropped whole (C{tooLong} is told), and the lines after it are read
    as usual.
    """

    def __init__(
        self, deliver: Callable[[bytes], None], tooLong: Callable[[], None], longest: int = LONGEST_LINE
    ) -> None:
        self._deliver = deliver
        self._tooLong = tooLong
        self._longest = longest
        self._buffer = b""
        self._skipping = False

    def feed(self, data: bytes) -> None:
        """
        Take C{data}, and deliver each line it completes.
        """
        data = self._buffer + data
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif end - start > self._longest:
                self._tooLong()
            else:
                self._deliver(data[start:end])
            start = end + 1
        self._buffer = data[start:]
        if len(self._buffer) > self._longest:
            if not self._skipping:
                self._tooLong()
            self._skipping = True
            self._buffer = b""
