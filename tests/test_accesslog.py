"""
The session log file: JSON lines, buffered writes, rotation by size and by
day, reopening on SIGUSR1, a full disk, and all of it in a running twistd.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock, deferLater
from twisted.logger import Logger, globalLogPublisher
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase

from socksgate.accesslog import FLUSH_DELAY, FLUSH_SIZE, AccessLogError, AccessLogService, checkAccessLog
from socksgate.config import LogConfig
from socksgate.session import SessionRecord, emitSession
from socksgate.testing import startEchoServer, startGateway

from .helpers import LoopbackTestCase, collectSessions, connectRaw, listeningPort, socks5Connect, startProcess
from .test_teardown import stopTwice
from .test_twistd import TWISTD


def makeRecord(number: int = 1, **values: Any) -> SessionRecord:
    """
    A session record with fixed values (so that two runs write the same
    bytes), numbered in its C{session} field.
    """
    settings: dict[str, Any] = dict(
        session=f"{number:08x}",
        listener="tcp:1080:interface=127.0.0.1",
        client=f"127.0.0.1:{40000 + number}",
        started=0.0,
        time="2026-11-21T10:00:00.123Z",
        version="5",
        command="connect",
        destination="www.example.com:443",
        remote="93.184.215.14:443",
        outcome="closed",
        reply=0,
        rule=2,
        message="loopback client",
    )
    settings.update(values)
    return SessionRecord(**settings)


def emit(*numbers: int) -> list[dict[str, object]]:
    """
    Emit the records numbered C{numbers}, and return them as dicts.
    """
    records = [makeRecord(number) for number in numbers]
    for record in records:
        emitSession(record, 1.5)
    return [record.asDict() for record in records]


def readLines(path: str) -> list[dict[str, object]]:
    """
    The JSON objects of the file at C{path}, one a line.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    if data:
        assert data.endswith(b"\n"), data
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def collectOwnLog(testCase: Any) -> list[dict[str, Any]]:
    """
    Collect what the access log says in the operational log during the
    test.
    """
    events: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("log_namespace", "").startswith("socksgate.accesslog"):
            events.append(event)

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return events


def startAccessLog(testCase: Any, path: str, clock: Any = None, **settings: Any) -> AccessLogService:
    """
    Start an L{AccessLogService} writing to C{path}, stopped with the test.
    """
    service = AccessLogService(LogConfig(access=path, **settings), clock if clock is not None else Clock())
    service.startService()
    testCase.addCleanup(lambda: service.running and service.stopService())
    return service


class WritingTests(SynchronousTestCase):
    """
    What is written, and when.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = os.path.abspath(self.mktemp())

    def test_jsonLines(self) -> None:
        """
        Each session event becomes one line holding one compact JSON
        object, the record of the event, in the order of its fields.
        """
        startAccessLog(self, self.path, self.clock)
        expected = emit(1, 2, 3)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(self.path), expected)
        with open(self.path, "rb") as stream:
            first = stream.readline()
        self.assertEqual(first, json.dumps(expected[0], separators=(",", ":")).encode() + b"\n")
        self.assertEqual(list(json.loads(first)), list(expected[0]))

    def test_onlySessionEvents(self) -> None:
        """
        Other events, even one with a C{record} key, are not written.
        """
        startAccessLog(self, self.path, self.clock)
        Logger(namespace="socksgate.server").info("not a session {record}", record={"session": "x"})
        Logger(namespace="socksgate.session").info("no record here")
        expected = emit(1)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(self.path), expected)

    def test_everyFieldSurvives(self) -> None:
        """
        Every field of a record, BIND's, UDP's and a rate limit's included, reads back from
        the line as it was; text is written as UTF-8, and a lone surrogate
        (from bytes that were not UTF-8) as its JSON escape.
        """
        startAccessLog(self, self.path, self.clock)
        record = makeRecord(
            7,
            auth="userpass",
            user="jos\u00e9",
            ident="bob\udcff",
            message='quote " backslash \\ newline \n tab \t',
            bytes_out=5120,
            bytes_in=880311,
            bind="127.0.0.1:40100",
            peer="127.0.0.1:40101",
            datagrams_out=3,
            datagrams_in=4,
            datagrams_denied=1,
            datagrams_dropped=2,
            limit="client",
        )
        emitSession(record, 12.034)
        self.clock.advance(FLUSH_DELAY)
        [line] = readLines(self.path)
        self.assertEqual(line, record.asDict())
        self.assertEqual(set(line), {field.name for field in fields(SessionRecord)} - {"started"})
        self.assertEqual(line["duration"], 12.034)
        with open(self.path, "rb") as stream:
            raw = stream.read()
        self.assertIn("jos\u00e9".encode(), raw)
        self.assertIn(b"bob\\udcff", raw)
        self.assertEqual(raw.count(b"\n"), 1)

    def test_buffered(self) -> None:
        """
        Records wait in a buffer, with one timer for all of them, and are
        written together L{FLUSH_DELAY} seconds after the first of them.
        """
        startAccessLog(self, self.path, self.clock)
        expected = emit(1, 2)
        self.assertEqual(readLines(self.path), [])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(FLUSH_DELAY / 2)
        self.assertEqual(readLines(self.path), [])
        self.clock.advance(FLUSH_DELAY / 2)
        self.assertEqual(readLines(self.path), expected)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_largeBufferWrittenAtOnce(self) -> None:
        """
        When L{FLUSH_SIZE} bytes are waiting they are written without
        waiting for the timer.
        """
        startAccessLog(self, self.path, self.clock)
        count = 0
        while not os.path.getsize(self.path):
            count += 1
            emit(count)
            self.assertLess(count, FLUSH_SIZE)
        self.assertEqual(len(readLines(self.path)), count)
        self.assertGreaterEqual(os.path.getsize(self.path), FLUSH_SIZE)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWritesAndCloses(self) -> None:
        """
        Stopping writes the records waiting, cancels the timer, and takes
        no more records.
        """
        service = startAccessLog(self, self.path, self.clock)
        expected = emit(1)
        service.stopService()
        self.assertEqual(readLines(self.path), expected)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        emit(2)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(self.path), expected)

    def test_appends(self) -> None:
        """
        An existing file is appended to, not truncated.
        """
        with open(self.path, "w") as stream:
            stream.write('{"session":"old"}\n')
        startAccessLog(self, self.path, self.clock)
        expected = emit(1)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(self.path), [{"session": "old"}] + expected)

    def test_relativePath(self) -> None:
        """
        A relative path is taken from the directory the service was made
        in, so that twistd's later change of directory does not move it.
        """
        service = AccessLogService(LogConfig(access="relative.log"), self.clock)
        self.assertEqual(service.path, os.path.abspath("relative.log"))


class PrivilegedStartTests(SynchronousTestCase):
    """
    The file is opened by C{privilegedStartService}, which twistd calls
    before it drops to C{--uid}/C{--gid}.
    """

    def test_openedBeforeStart(self) -> None:
        """
        C{privilegedStartService} opens (creates) the file, and
        C{startService} writes to that descriptor without opening the file
        by its name again: the directory may have become read-only for the
        process in between.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        service = AccessLogService(LogConfig(access=path), Clock())
        service.privilegedStartService()
        self.addCleanup(lambda: service.running and service.stopService())
        self.assertTrue(os.path.isfile(path))
        os.rename(directory, directory + ".moved")
        service.startService()
        records = emit(1)
        service.flush()
        self.assertEqual(readLines(os.path.join(directory + ".moved", "access.log")), records)
        self.assertFalse(os.path.exists(directory))


class BadPathTests(SynchronousTestCase):
    """
    A session log that cannot be opened stops the service from starting,
    with a message that names the file.
    """

    def assertRefused(self, path: str, problem: str, **settings: Any) -> None:
        """
        Both L{checkAccessLog} and L{AccessLogService.startService} refuse
        C{path} with C{problem}, and the service takes no records.
        """
        config = LogConfig(access=path, **settings)
        error = self.assertRaises(AccessLogError, checkAccessLog, config)
        self.assertEqual(str(error), f"cannot open the session log {path}: {problem}")
        self.assertIsInstance(error, ValueError)
        service = AccessLogService(config, Clock())
        error = self.assertRaises(AccessLogError, service.startService)
        self.assertEqual((error.path, error.problem), (path, problem))
        self.assertFalse(service.running)
        emit(1)
        self.assertFalse(os.path.isfile(path))

    def test_missingDirectory(self) -> None:
        """
        A file in a directory that does not exist is refused.
        """
        directory = os.path.abspath(self.mktemp())
        self.assertRefused(os.path.join(directory, "access.log"), f"there is no directory {directory}")

    def test_directory(self) -> None:
        """
        A directory is refused.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.assertRefused(directory, "it is a directory")

    def test_noPermission(self) -> None:
        """
        A directory the process may not write is refused.  (An immutable
        directory, which even root may not write: CI runs as root.)
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory, 0o500)
        self.addCleanup(os.chmod, directory, 0o700)
        if os.getuid() == 0:
            subprocess.run(["chattr", "+i", directory], check=True)
            self.addCleanup(subprocess.run, ["chattr", "-i", directory], check=True)
        self.assertRefused(
            os.path.join(directory, "access.log"), f"no permission to create files in {directory}"
        )

    def test_standardOutputAndNone(self) -> None:
        """
        Standard output and no log at all need no check.
        """
        checkAccessLog(LogConfig(access="-"))
        checkAccessLog(LogConfig(access=""))


class RotationTests(SynchronousTestCase):
    """
    Rotation is Twisted's: by size as L{LogFile}, daily as L{DailyLogFile}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "access.log")

    def listing(self, directory: str) -> dict[str, bytes]:
        """
        The files of C{directory} and their contents.
        """
        contents = {}
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), "rb") as stream:
                contents[name] = stream.read()
        return contents

    def rotateBySize(self, count: int, batched: bool, rotateSize: int, keep: int) -> dict[str, bytes]:
        """
        Write C{count} records with size rotation, all in one write of the
        buffer or each alone, and return the directory's files.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        service = startAccessLog(self, path, self.clock, rotate="size", rotateSize=rotateSize, keep=keep)
        for number in range(1, count + 1):
            emit(number)
            if not batched:
                service.flush()
        service.stopService()
        return self.listing(directory)

    def rotatedByLogFile(self, count: int, rotateSize: int, keep: int) -> dict[str, bytes]:
        """
        What Twisted's L{LogFile} makes of the same records, written one by
        one.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        logFile = LogFile("access.log", directory, rotateLength=rotateSize, maxRotatedFiles=keep or None)
        for number in range(1, count + 1):
            record = makeRecord(number, duration=1.5)
            logFile.write(json.dumps(record.asDict(), separators=(",", ":")) + "\n")
        logFile.close()
        return self.listing(directory)

    def test_bySize(self) -> None:
        """
        With C{rotate = "size"} the file is renamed C{.1} (and C{.1} to
        C{.2}...) once it has reached C{rotate-size} bytes, and C{keep}
        rotated files are kept: exactly the files L{LogFile} makes.
        """
        files = self.rotateBySize(10, batched=False, rotateSize=700, keep=2)
        self.assertEqual(sorted(files), ["access.log", "access.log.1", "access.log.2"])
        self.assertEqual(files, self.rotatedByLogFile(10, rotateSize=700, keep=2))
        newest = [json.loads(line)["session"] for line in files["access.log"].splitlines()]
        self.assertEqual(newest[-1], f"{10:08x}")
        for name in ("access.log.1", "access.log.2"):
            self.assertGreaterEqual(len(files[name]), 700)
            self.assertLess(len(files[name]) - len(files[name].splitlines(True)[-1]), 700)

    def test_bySizeBatched(self) -> None:
        """
        Records written together in one flush rotate where they would if
        each were written alone.
        """
        self.assertEqual(
            self.rotateBySize(10, batched=True, rotateSize=700, keep=2),
            self.rotateBySize(10, batched=False, rotateSize=700, keep=2),
        )

    def test_keepAll(self) -> None:
        """
        C{keep = 0} keeps every rotated file.
        """
        files = self.rotateBySize(6, batched=True, rotateSize=1, keep=0)
        self.assertEqual(sorted(files), ["access.log"] + [f"access.log.{n}" for n in range(1, 6)])
        self.assertEqual(files, self.rotatedByLogFile(6, rotateSize=1, keep=0))

    def test_daily(self) -> None:
        """
        With C{rotate = "daily"} the first write after midnight (by the
        reactor's clock) renames the file with the date of its records.
        """
        service = startAccessLog(self, self.path, self.clock, rotate="daily")
        self.clock.advance(time.time())
        today = time.localtime(self.clock.seconds())[:3]
        first = emit(1, 2)
        service.flush()
        self.clock.advance(24 * 60 * 60)
        tomorrow = time.localtime(self.clock.seconds())[:3]
        second = emit(3)
        service.flush()
        self.clock.advance(24 * 60 * 60)
        third = emit(4)
        service.flush()
        suffix = "_".join(map(str, today))
        nextSuffix = "_".join(map(str, tomorrow))
        self.assertEqual(
            sorted(os.listdir(self.directory)),
            ["access.log", f"access.log.{suffix}", f"access.log.{nextSuffix}"],
        )
        self.assertEqual(readLines(f"{self.path}.{suffix}"), first)
        self.assertEqual(readLines(f"{self.path}.{nextSuffix}"), second)
        self.assertEqual(readLines(self.path), third)

    def test_notRotated(self) -> None:
        """
        With C{rotate = "none"} the file only grows.
        """
        service = startAccessLog(self, self.path, self.clock, rotateSize=1)
        expected = emit(1, 2, 3)
        service.flush()
        self.assertEqual(os.listdir(self.directory), ["access.log"])
        self.assertEqual(readLines(self.path), expected)


class FailureTests(SynchronousTestCase):
    """
    A full disk costs records, never the gateway, and is reported once.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.messages = collectOwnLog(self)

    def levels(self) -> list[tuple[str, str]]:
        """
        The level and text of the access log's operational messages.
        """
        from twisted.logger import formatEvent

        return [(event["log_level"].name, formatEvent(event)) for event in self.messages]

    def test_fullDisk(self) -> None:
        """
        Writing to C{/dev/full} (every write fails with ENOSPC) is reported
        once, however many records are dropped afterwards.
        """
        service = startAccessLog(self, "/dev/full", self.clock)
        for number in range(5):
            emit(number)
            self.clock.advance(FLUSH_DELAY)
        self.assertEqual(
            self.levels(),
            [
                (
                    "error",
                    "cannot write the session log /dev/full: No space left on device; "
                    "session records are dropped until writing works again",
                )
            ],
        )
        self.assertEqual(service.lost, 5)
        service.stopService()
        self.assertEqual(len(self.messages), 1)

    def test_recovery(self) -> None:
        """
        When writing works again (here the log, a symbolic link to
        C{/dev/full}, is pointed at a file and reopened), a message says
        how many records were lost, and records are written again.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        link = os.path.join(directory, "access.log")
        os.symlink("/dev/full", link)
        service = startAccessLog(self, link, self.clock)
        emit(1, 2)
        self.clock.advance(FLUSH_DELAY)
        emit(3)
        self.clock.advance(FLUSH_DELAY)
        os.remove(link)
        os.symlink(os.path.join(directory, "real.log"), link)
        service.reopen()
        expected = emit(4)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(link), expected)
        self.assertEqual(
            [level for level, text in self.levels()],
            ["error", "info", "info"],
        )
        self.assertEqual(
            self.levels()[-1][1], f"writing the session log {link} again; 3 session records were lost"
        )
        self.assertEqual(service.lost, 0)

    def test_reopenFails(self) -> None:
        """
        A file that cannot be opened again (its directory went away) is
        reported in one line, and records go on to the file already open,
        none lost, until a reopen that works.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        service = startAccessLog(self, path, self.clock)
        first = emit(1)
        self.clock.advance(FLUSH_DELAY)
        os.rename(directory, directory + ".old")
        service.reopen()
        second = emit(2)
        self.clock.advance(FLUSH_DELAY)
        third = emit(3)
        self.clock.advance(FLUSH_DELAY)
        os.makedirs(directory)
        service.reopen()
        last = emit(4)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(readLines(directory + ".old/access.log"), first + second + third)
        self.assertEqual(readLines(path), last)
        levels = self.levels()
        self.assertEqual([level for level, text in levels], ["error", "info"])
        self.assertIn(f"cannot reopen the session log {path}: No such file or directory", levels[0][1])
        self.assertIn("records go on to the file already open", levels[0][1])
        self.assertEqual(levels[1][1], f"reopened the session log {path}")

    def test_partialLineEnded(self) -> None:
        """
        If a failed write left part of a record at the end of the file, the
        first record written afterwards starts on a line of its own.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        link = os.path.join(directory, "link.log")
        os.symlink("/dev/full", link)
        service = startAccessLog(self, link, self.clock)
        emit(1)
        self.clock.advance(FLUSH_DELAY)
        with open(path, "wb") as stream:
            stream.write(b'{"session":"0000')
        os.remove(link)
        os.symlink(path, link)
        service.reopen()
        expected = emit(2)
        self.clock.advance(FLUSH_DELAY)
        with open(path, "rb") as stream:
            lines = stream.read().splitlines()
        self.assertEqual(lines[0], b'{"session":"0000')
        self.assertEqual([json.loads(line) for line in lines[1:]], expected)


#: A child process that writes the session log while the size of files it
#: may write is limited (RLIMIT_FSIZE): a write that crosses the limit is
#: cut short by the kernel, as on a full disk.  Records are 200 bytes; the
#: limit lets three through and stops the fourth half-way; then the limit
#: is lifted (the disk has room again) and two more are written.
FILE_SIZE_LIMITED = """
import resource, signal, sys
from twisted.internet.task import Clock
from socksgate.accesslog import AccessLogService
from socksgate.config import LogConfig
from socksgate.session import SessionRecord, emitSession

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
def emit(number):
    emitSession(SessionRecord(f"{number:08x}", "tcp:1080", "127.0.0.1:1", 0.0, message="x" * 40), 1.0)
service = AccessLogService(LogConfig(access=sys.argv[1], rotate=sys.argv[2]), Clock())
service.startService()
emit(0)
service.flush()
size = len(open(sys.argv[1], "rb").read())
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size * 3 + size // 2, hard))
emit(1); emit(2)
service.flush()
emit(3); emit(4)
service.flush()
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
emit(5); emit(6)
service.flush()
service.stopService()
print(size, service.lost)
"""

#: A child process whose standard output is a non-blocking pipe that holds
#: 4096 bytes: three records of 1500 bytes fill it and stop in the third;
#: once the parent has read the pipe, a fourth record is written.
PIPE_FILLED = """
import fcntl, os, sys
from twisted.internet.task import Clock
from socksgate.accesslog import AccessLogService
from socksgate.config import LogConfig
from socksgate.session import SessionRecord, emitSession

fcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 4096)
fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)
def emit(number):
    emitSession(SessionRecord(f"{number:08x}", "tcp:1080", "127.0.0.1:1", 0.0, message="x" * 1260), 1.0)
service = AccessLogService(LogConfig(access="-"), Clock())
service.startService()
emit(1); emit(2); emit(3)
service.flush()
sys.stderr.write(f"lost {service.lost} unfinished {len(service._unfinished)}\\n")
sys.stderr.flush()
sys.stdin.readline()
emit(4)
service.flush()
service.stopService()
sys.stderr.write(f"lost {service.lost}\\n")
"""


#: Under twistd's daemon umask (077), start the session log with the
#: rotation C{sys.argv[2]}, write, rotate or reopen as logrotate would, and
#: print the modes of the files.
_UNDER_DAEMON_UMASK = """
import os, stat, sys
from twisted.internet.task import Clock
from socksgate.accesslog import AccessLogService
from socksgate.config import LogConfig
from socksgate.session import SessionRecord, emitSession
os.umask(0o077)
path, rotate = sys.argv[1], sys.argv[2]
service = AccessLogService(LogConfig(access=path, rotate=rotate, rotateSize=1), Clock())
service.startService()
emitSession(SessionRecord("00000001", "tcp:1080", "127.0.0.1:1", 0.0), 1.0)
service.flush()
os.rename(path, path + ".moved")
service.reopen()
emitSession(SessionRecord("00000002", "tcp:1080", "127.0.0.1:1", 0.0), 1.0)
service.flush()
service.stopService()
directory = os.path.dirname(path)
modes = [(n, stat.S_IMODE(os.stat(os.path.join(directory, n)).st_mode)) for n in os.listdir(directory)]
print(" ".join(f"{name}={mode:o}" for name, mode in sorted(modes)))
"""


class FileModeTests(SynchronousTestCase):
    """
    Files the session log creates are 0640 whatever the umask (twistd
    sets 077 when it daemonizes), also after SIGUSR1's reopen and a
    rotation; a file that exists keeps its mode.
    """

    def modes(self, rotate: str) -> dict[str, str]:
        """
        The modes of the files after L{_UNDER_DAEMON_UMASK} with C{rotate}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        child = subprocess.run(
            [sys.executable, "-c", _UNDER_DAEMON_UMASK, path, rotate], capture_output=True, timeout=60
        )
        self.assertEqual(child.returncode, 0, child.stderr)
        return dict(item.split("=") for item in child.stdout.decode().split())

    def test_plain(self) -> None:
        """
        A plain file, and the one a reopen makes after it was moved.
        """
        self.assertEqual(self.modes("none"), {"access.log": "640", "access.log.moved": "640"})

    def test_rotatedBySize(self) -> None:
        """
        Files a size rotation makes.
        """
        self.assertEqual(set(self.modes("size").values()), {"640"})

    def test_existingFileKeepsItsMode(self) -> None:
        """
        A file that exists is not chmod-ed.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w"):
            pass
        os.chmod(path, 0o600)
        service = startAccessLog(self, path)
        emit(1)
        service.flush()
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)


class InvisibleCharacterTests(SynchronousTestCase):
    """
    Code points that display as nothing are escaped in the file, so a
    look-alike destination cannot pass for the real one; the record reads
    back as it was.
    """

    def test_escaped(self) -> None:
        """
        A soft hyphen, a zero-width space, a right-to-left override and a
        tag character are written as JSON escapes; visible non-ASCII text
        (C{bücher}) is written as UTF-8.
        """
        path = os.path.abspath(self.mktemp())
        service = startAccessLog(self, path)
        destination = "bl\u00adocked\u200b.test\u202e.b\u00fccher\U000e0041:443"
        emitSession(makeRecord(1, destination=destination), 1.5)
        service.flush()
        with open(path, "rb") as stream:
            raw = stream.read()
        written = b'"destination":"bl\\u00adocked\\u200b.test\\u202e.b\xc3\xbccher\\udb40\\udc41:443"'
        self.assertIn(written, raw)
        self.assertEqual(readLines(path)[0]["destination"], destination)


class WholeRecordTests(SynchronousTestCase):
    """
    A write cut short leaves no part of a record in the session log.
    """

    def sizeLimited(self, rotate: str) -> None:
        """
        Run L{FILE_SIZE_LIMITED} with C{rotate}, and check the file holds
        whole records only: the first three and the last two, the two
        refused ones counted as lost.
        """
        path = os.path.abspath(self.mktemp())
        child = subprocess.run(
            [sys.executable, "-c", FILE_SIZE_LIMITED, path, rotate], capture_output=True, timeout=60
        )
        self.assertEqual(child.returncode, 0, child.stderr)
        size, lost = map(int, child.stdout.split())
        with open(path, "rb") as stream:
            data = stream.read()
        self.assertTrue(data.endswith(b"\n"), data[-80:])
        sessions = [json.loads(line)["session"] for line in data.splitlines()]
        self.assertEqual(sessions, [f"{number:08x}" for number in (0, 1, 2, 5, 6)])
        self.assertEqual(len(data), size * 5)

    def test_appendedFile(self) -> None:
        """
        A plain file (C{rotate = "none"}) is cut back after a short write.
        """
        self.sizeLimited("none")

    def test_rotatedFile(self) -> None:
        """
        A file rotated by size (Twisted's L{LogFile}, which would drop the
        rest of a short write silently) is cut back too.
        """
        self.sizeLimited("size")

    def test_standardOutput(self) -> None:
        """
        On standard output, which cannot be cut back, the record a full
        pipe stopped in is finished before the next one is written: every
        line that comes out is a whole record, and none is lost.
        """
        child = subprocess.Popen(
            [sys.executable, "-c", PIPE_FILLED],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(child.kill)
        first = child.stderr.readline()  # type: ignore[union-attr]
        self.assertRegex(first, rb"^lost 0 unfinished [1-9]\d*\n$")
        output = os.read(child.stdout.fileno(), 65536)  # type: ignore[union-attr]
        child.stdin.write(b"go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        output += child.stdout.read()  # type: ignore[union-attr]
        self.assertEqual(child.wait(60), 0)
        self.assertEqual(child.stderr.read(), b"lost 0\n")  # type: ignore[union-attr]
        sessions = [json.loads(line)["session"] for line in output.splitlines()]
        self.assertEqual(sessions, [f"{number:08x}" for number in (1, 2, 3, 4)])


class SignalTests(LoopbackTestCase):
    """
    SIGUSR1 reopens the file, as logrotate expects.
    """

    async def waitFor(self, condition: Callable[[], bool]) -> None:
        """
        Let the reactor run until C{condition} holds (ten seconds at most).
        """
        for _ in range(200):
            if condition():
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail("the condition never held")

    async def test_reopenOnSignal(self) -> None:
        """
        After C{mv FILE FILE.1} and SIGUSR1, new records go to a new
        C{FILE}; the handler SIGUSR1 had before is called too (twistd's
        own log rotation), and is back in place when the service stops.
        """
        calls: list[int] = []

        def previous(signalNumber: int, frame: Any) -> None:
            calls.append(signalNumber)

        self.addCleanup(signal.signal, signal.SIGUSR1, signal.signal(signal.SIGUSR1, previous))
        path = os.path.abspath(self.mktemp())
        service = startAccessLog(self, path, reactor)
        first = emit(1)
        service.flush()
        os.rename(path, path + ".1")
        os.kill(os.getpid(), signal.SIGUSR1)
        await self.waitFor(lambda: os.path.exists(path))
        self.assertEqual(calls, [signal.SIGUSR1])
        second = emit(2)
        service.flush()
        self.assertEqual(readLines(path + ".1"), first)
        self.assertEqual(readLines(path), second)
        service.stopService()
        self.assertIs(signal.getsignal(signal.SIGUSR1), previous)

    async def test_gatewayTraffic(self) -> None:
        """
        Real requests through a gateway are written as they were emitted,
        one line each, when their sessions end.
        """
        path = os.path.abspath(self.mktemp())
        service = startAccessLog(self, path, reactor)
        echo = startEchoServer(self)
        gateway = startGateway(self)
        records = collectSessions(self)
        for payload in (b"one", b"three"):
            client = await connectRaw(gateway.port)
            client.transport.write(socks5Connect(b"localhost", echo.port) + payload)
            await client.receive(12 + len(payload))
            client.transport.loseConnection()
            await client.closed
            await gateway.sessions.whenEmpty()
        malformed = await connectRaw(gateway.port)
        malformed.transport.write(b"\x05\x01\x00\x05\x01\x00\x09")
        await malformed.receiveAll()
        malformed.transport.loseConnection()
        await malformed.closed
        await gateway.sessions.whenEmpty()
        await self.waitFor(lambda: os.path.getsize(path) > 0)
        service.stopService()
        written = readLines(path)
        self.assertEqual(written, [json.loads(json.dumps(record)) for record in records])
        self.assertEqual(
            [(r["outcome"], r["bytes_out"]) for r in written], [("closed", 3), ("closed", 5), ("error", 0)]
        )


class RunningProcessTests(LoopbackTestCase):
    """
    The session log of a running C{twistd socksgate}.
    """

    timeout = 60

    async def waitFor(self, condition: Callable[[], bool], process: Any) -> None:
        """
        Wait until C{condition} holds (ten seconds at most).
        """
        for _ in range(200):
            if condition():
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail(f"the condition never held; twistd said:\n{process.output.decode(errors='replace')}")

    async def request(self, port: int, echoPort: int) -> str:
        """
        One SOCKS5 CONNECT through the gateway at C{port}, to the echo
        server, ended by the client.

        @return: the client's address, as the record gives it.
        """
        client = await connectRaw(port)
        self.addCleanup(lambda: client.closed.called or client.transport.abortConnection())
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echoPort, atyp=1) + b"ping")
        self.assertEqual((await client.receive(16))[12:], b"ping")
        address = f"127.0.0.1:{client.transport.getHost().port}"
        client.transport.loseConnection()
        await client.closed
        return address

    def clients(self, path: str) -> list[str]:
        """
        The clients of the records in the file at C{path} (none if it does
        not exist, or is being rotated away at this moment).
        """
        try:
            with open(path, "rb") as stream:
                complete = stream.read().split(b"\n")[:-1]
        except FileNotFoundError:
            return []
        return [json.loads(line)["client"] for line in complete]

    async def startTwistd(self, *arguments: str) -> tuple[Any, Any, int]:
        """
        Start C{twistd -n socksgate} on an ephemeral loopback port with
        C{arguments}, stopped with the test.
        """
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1", *arguments],
            b"starting on ",
        )

        def kill() -> Any:
            if not process.ended.called:
                transport.signalProcess("KILL")
            return process.ended

        self.addCleanup(kill)
        return transport, process, listeningPort(process.output)

    async def stopTwistd(self, transport: Any, process: Any) -> None:
        """
        Stop twistd with SIGTERM, and check that it stopped cleanly.
        """
        transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        self.assertNotIn(b"Traceback", process.output)

    async def test_gracePeriod(self) -> None:
        """
        After SIGTERM the gateway listens no more, but an open session goes
        on for grace-period seconds: bytes still pass; when it ends by
        itself the process exits at once, its record written.
        """
        echo = startEchoServer(self)
        path = os.path.abspath(self.mktemp())
        config = os.path.abspath(self.mktemp())
        with open(config, "w") as stream:
            stream.write("[server]\ngrace-period = 20\n")
        transport, process, port = await self.startTwistd("-c", config, "--access-log", path)
        client = await connectRaw(port)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"one")
        self.assertEqual((await client.receive(15))[12:], b"one")
        transport.signalProcess(signal.SIGTERM)
        await self.waitFor(lambda: b"stopping: 1 sessions open" in process.output, process)
        with self.assertRaises(ConnectionRefusedError):
            await connectRaw(port)
        client.transport.write(b"two")
        self.assertEqual(await client.receive(3), b"two")
        self.assertFalse(process.ended.called)
        client.transport.loseConnection()
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        [record] = readLines(path)
        self.assertEqual((record["outcome"], record["bytes_out"]), ("closed", 6))

    async def test_sessionsOpenAtSIGTERM(self) -> None:
        """
        Every session open when twistd gets SIGTERM — relayed CONNECTs, a
        BIND waiting for its peer, a UDP association — has its record in
        the session log when the process has stopped, and the stop logs no
        traceback.
        """
        echo = startEchoServer(self)
        path = os.path.abspath(self.mktemp())
        transport, process, port = await self.startTwistd("--access-log", path)
        clients = []
        for number in range(20):
            client = await connectRaw(port)
            self.addCleanup(lambda client=client: client.closed.called or client.transport.abortConnection())
            client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1) + b"%02d" % number)
            self.assertEqual((await client.receive(14))[12:], b"%02d" % number)
            clients.append(client)
        waiting = await connectRaw(port)
        waiting.transport.write(b"\x05\x01\x00" + b"\x05\x02\x00\x01" + b"\x7f\x00\x00\x01" + b"\x00\x00")
        self.assertEqual((await waiting.receive(12))[2:4], b"\x05\x00")
        udp = await connectRaw(port)
        udp.transport.write(b"\x05\x01\x00" + b"\x05\x03\x00\x01" + b"\x00" * 6)
        self.assertEqual((await udp.receive(12))[2:4], b"\x05\x00")
        self.assertEqual(self.clients(path), [])

        await stopTwice(transport, process)
        self.assertNotIn(b"Traceback", process.output)
        self.assertNotIn(b"Unhandled", process.output)
        records = readLines(path)
        self.assertEqual(
            sorted((r["command"], r["outcome"]) for r in records),
            [("bind", "failed")] + [("connect", "closed")] * 20 + [("udp", "closed")],
        )
        self.assertEqual(sorted(r["bytes_out"] for r in records if r["command"] == "connect"), [2] * 20)
        for client in clients + [waiting, udp]:
            await client.closed

    async def test_logrotate(self) -> None:
        """
        twistd writes each session to C{--access-log FILE}; after
        C{mv FILE FILE.1} and SIGUSR1, the next session is in a new FILE
        and not in FILE.1.
        """
        echo = startEchoServer(self)
        path = os.path.abspath(self.mktemp())
        transport, process, port = await self.startTwistd("--access-log", path)
        first = await self.request(port, echo.port)
        await self.waitFor(lambda: self.clients(path) == [first], process)
        [record] = readLines(path)
        self.assertEqual(
            (record["command"], record["outcome"], record["bytes_out"]), ("connect", "closed", 4)
        )
        os.rename(path, path + ".1")
        transport.signalProcess(signal.SIGUSR1)
        await self.waitFor(lambda: b"reopened the session log" in process.output, process)
        second = await self.request(port, echo.port)
        await self.waitFor(lambda: self.clients(path) == [second], process)
        self.assertEqual(self.clients(path + ".1"), [first])
        await self.stopTwistd(transport, process)

    async def test_sizeRotation(self) -> None:
        """
        With C{[log] rotate = "size"} in the configuration file, the
        running process rotates the file by size and keeps C{keep} old
        files.
        """
        echo = startEchoServer(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        configuration = os.path.join(directory, "socksgate.toml")
        with open(configuration, "w") as stream:
            stream.write(f'[log]\naccess = "{path}"\nrotate = "size"\nrotate-size = 100\nkeep = 1\n')
        transport, process, port = await self.startTwistd("-c", configuration)
        clients = []
        for _ in range(3):
            clients.append(await self.request(port, echo.port))
            await self.waitFor(lambda: self.clients(path) == clients[-1:], process)
        self.assertEqual(self.clients(path + ".1"), clients[1:2])
        self.assertEqual(sorted(os.listdir(directory)), ["access.log", "access.log.1", "socksgate.toml"])
        await self.stopTwistd(transport, process)

    async def test_standardOutput(self) -> None:
        """
        C{--access-log -} writes the records to standard output, each on a
        line of its own among twistd's log lines.
        """
        echo = startEchoServer(self)
        transport, process, port = await self.startTwistd("--access-log", "-")
        client = await self.request(port, echo.port)

        def records() -> list[dict[str, Any]]:
            return [json.loads(line) for line in process.output.splitlines() if line.startswith(b"{")]

        await self.waitFor(lambda: len(records()) == 1, process)
        self.assertEqual(records()[0]["client"], client)
        await self.stopTwistd(transport, process)

    async def test_badPathStops(self) -> None:
        """
        A session log in a directory that does not exist stops twistd with
        a message naming the file.
        """
        path = os.path.join(os.path.abspath(self.mktemp()), "access.log")
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1",
                      "--access-log", path],
            b"",
        )  # fmt: skip
        exitCode, _ = await process.ended
        self.assertEqual(exitCode, 1)
        self.assertIn(f"cannot open the session log {path}: there is no directory".encode(), process.output)
