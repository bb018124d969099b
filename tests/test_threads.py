"""
Tests for L{socksgate.threads.ownThreadPool} and L{socksgate.threads.runningPool}.
"""

from __future__ import annotations

import threading

from twisted.internet._resolver import GAIResolver
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.lookups import gatewayResolver
from socksgate.threads import ownThreadPool, runningPool


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


class RunningPoolTests(SynchronousTestCase):
    """
    L{runningPool} keeps a pool while it runs and replaces one the
    reactor's shutdown stopped, so that work given to it is not dropped.
    """

    def test_keptWhileRunning(self) -> None:
        """
        A running pool is returned as it is.
        """
        reactor = MemoryReactorClock()
        pool = ownThreadPool(reactor, "socksgate-test", 1)
        self.addCleanup(pool.stop)
        self.assertIs(runningPool(pool, reactor, "socksgate-test", 1), pool)

    def test_replacedOnceStopped(self) -> None:
        """
        No pool, or one the reactor's shutdown stopped, gives a new started
        pool.
        """
        reactor = MemoryReactorClock()
        first = runningPool(None, reactor, "socksgate-test", 1)
        [(stop, args, kwargs)] = reactor.triggers["during"]["shutdown"]
        stop(*args, **kwargs)
        second = runningPool(first, reactor, "socksgate-test", 1)
        self.addCleanup(second.stop)
        self.assertIsNot(second, first)
        self.assertTrue(second.started)
        self.assertFalse(second.joined)


class ReactorRestartTests(SynchronousTestCase):
    """
    The gateway's name lookups and bcrypt checks survive a reactor that
    shuts down and runs again (trial's parallel workers do so between
    tests; so may an application).
    """

    def test_lookupPool(self) -> None:
        """
        After the reactor's shutdown stopped the lookup pool, the gateway's
        resolver asks a new, running one.
        """
        reactor = MemoryReactorClock()
        reactor.nameResolver = GAIResolver(reactor, lambda: None)
        resolver = gatewayResolver(reactor)
        first = resolver._getThreadPool()
        for stop, args, kwargs in reactor.triggers["during"]["shutdown"]:
            stop(*args, **kwargs)
        second = resolver._getThreadPool()
        self.addCleanup(second.stop)
        self.assertTrue(first.joined)
        self.assertIsNot(second, first)
        self.assertFalse(second.joined)
