"""
The parts of C{--workers N} that need no process: the restart back-off,
the parent's line framing, the option's values and the status snapshot's
workers.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from socksgate.status import Snapshot, WorkerState
from socksgate.tap import Options, workerCount
from socksgate.workers import RestartDelay
from socksgate.workers._pipe import LineSplitter


class RestartDelayTests(SynchronousTestCase):
    """
    L{RestartDelay}.
    """

    def test_doublesForACrashLoop(self) -> None:
        """
        Workers that die at once wait twice as long each time, up to the
        longest delay.
        """
        delay = RestartDelay(first=0.5, longest=4.0, stable=10.0)
        self.assertEqual([delay.next(0.1) for _ in range(6)], [0.5, 1.0, 2.0, 4.0, 4.0, 4.0])

    def test_stableWorkerResets(self) -> None:
        """
        After a worker that ran longer than the stable time, the wait is
        the first one again.
        """
        delay = RestartDelay(first=0.5, longest=30.0, stable=10.0)
        delay.next(0.1)
        delay.next(0.1)
        self.assertEqual(delay.next(60.0), 0.5)
        self.assertEqual(delay.next(1.0), 1.0)


class LineSplitterTests(SynchronousTestCase):
    """
    L{LineSplitter}, the parent's end of the event pipe.
    """

    def setUp(self) -> None:
        self.lines: list[bytes] = []
        self.tooLong = 0
        self.splitter = LineSplitter(self.lines.append, self._tooLong, longest=8)

    def _tooLong(self) -> None:
        self.tooLong += 1

    def test_wholeLinesAcrossChunks(self) -> None:
        """
        Lines are delivered whole, however the bytes arrive.
        """
        for chunk in (b"ab", b"c\nde", b"f\n\ngh"):
            self.splitter.feed(chunk)
        self.assertEqual(self.lines, [b"abc", b"def", b""])

    def test_tooLongDropped(self) -> None:
        """
        A line longer than the limit is dropped whole, even when it arrives
        in pieces, and the next line is read as usual.
        """
        self.splitter.feed(b"0123456789")
        self.splitter.feed(b"abcdefghij")
        self.splitter.feed(b"end\nok\n0123456789\nfine\n")
        self.assertEqual(self.lines, [b"ok", b"fine"])
        self.assertEqual(self.tooLong, 2)


class WorkersOptionTests(SynchronousTestCase):
    """
    C{--workers} on the command line.
    """

    def test_auto(self) -> None:
        """
        C{auto} is one worker per core.
        """
        self.assertEqual(workerCount("auto"), os.cpu_count() or 1)
        self.assertEqual(workerCount("3"), 3)

    def test_refused(self) -> None:
        """
        0, a negative number and words are usage errors that say what to
        give.
        """
        for value in ("0", "-2", "many"):
            options = Options()
            error = self.assertRaises(SystemExit, options.parseOptions, ["--workers", value])
            self.assertIn(f"twistd socksgate: --workers {value}: give", str(error))

    def test_unshareableListener(self) -> None:
        """
        A listener whose socket workers cannot share (ssl:) is refused with
        several workers (here as soon as it cannot be built: it needs
        pyOpenSSL and a key), and shareable ones are accepted.
        """
        listen = ["--listen", "ssl:0:privateKey=key.pem"]
        error = self.assertRaises(SystemExit, Options().parseOptions, [*listen, "--workers", "2"])
        self.assertIn("ssl:0:privateKey=key.pem", str(error))
        options = Options()
        options.parseOptions(["--listen", "unix:/tmp/s", "--listen", "haproxy:tcp:0", "--workers", "2"])
        self.assertEqual(options["workers"], 2)
        self.assertEqual(options["arguments"][-2:], ["--workers", "2"])


class SnapshotWorkersTests(SynchronousTestCase):
    """
    The workers in C{/status.json}.
    """

    def snapshot(self, workers: tuple[WorkerState, ...]) -> Snapshot:
        """
        An empty snapshot with C{workers}.
        """
        return Snapshot(0.0, 1.0, ("tcp:1080",), {}, 0, 0, 0, (), (), 0, workers)

    def test_workersListed(self) -> None:
        """
        With several workers, C{/status.json} lists each with its counts.
        """
        state = self.snapshot((WorkerState(1, 10, 0, 5, 1), WorkerState(2, None, 3, 7, 0))).asJSON()
        self.assertEqual(
            state["workers"],
            [
                {"worker": 1, "pid": 10, "restarts": 0, "finished": 5, "denials": 1},
                {"worker": 2, "pid": None, "restarts": 3, "finished": 7, "denials": 0},
            ],
        )

    def test_oneProcess(self) -> None:
        """
        One process: no C{workers} key, as before.
        """
        self.assertNotIn("workers", self.snapshot(()).asJSON())
