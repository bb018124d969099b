"""
Tests for L{socksgate.threads.ownThreadPool}.
"""

from __future__ import annotations

import threading

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.threads import ownThreadPool


class OwnThreadPoolTests(SynchronousTestCase):
    """
    L{ownThreadPool} makes a bounded, started pool that stops with the
    reactor.
    """

    def test_startedAndBounded(self) -> None:
        """
        The pool is started, named, starts no thread before it has work,
        and has at most C{threads} threads.
        """
        reactor = MemoryReactorClock()
        pool = ownThreadPool(reactor, "socksgate-test", 3)
        self.addCleanup(pool.stop)
        self.assertTrue(pool.started)
        self.assertEqual((pool.name, pool.min, pool.max), ("socksgate-test", 0, 3))

    def test_stopsWithReactor(self) -> None:
        """
        The pool's C{stop} is a trigger during the reactor's shutdown;
        running it stops the pool.
        """
        reactor = MemoryReactorClock()
        pool = ownThreadPool(reactor, "socksgate-test", 1)
        [(stop, args, kwargs)] = reactor.triggers["during"]["shutdown"]
        self.assertEqual(stop, pool.stop)
        stop(*args, **kwargs)
        self.assertTrue(pool.joined)

    def test_workBeyondThreadsWaits(self) -> None:
        """
        With every thread busy, further work waits in the queue rather
        than getting another thread.
        """
        reactor = MemoryReactorClock()
        pool = ownThreadPool(reactor, "socksgate-test", 2)
        release = threading.Event()
        started = threading.Semaphore(0)
        self.addCleanup(pool.stop)
        self.addCleanup(release.set)

        def work() -> None:
            started.release()
            release.wait(30)

        for _ in range(3):
            pool.callInThread(work)
        for _ in range(2):
            self.assertTrue(started.acquire(timeout=30))
        self.assertEqual((len(pool.working), pool.q.qsize()), (2, 1))
