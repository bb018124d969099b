"""
Thread pools of the gateway's own, so that one kind of blocking work
cannot starve another: bcrypt checks of passwords and name lookups each
have a bounded pool, apart from each other and from the reactor's.
"""

from __future__ import annotations

from typing import Any

from twisted.python.threadpool import ThreadPool

__all__ = ["ownThreadPool", "runningPool"]


def ownThreadPool(reactor: Any, name: str, threads: int) -> ThreadPool:
    """
    A started thread pool of at most C{threads} threads, stopped when
    C{reactor} shuts down.  Work beyond C{threads} waits in its queue.

    A stopped pool drops the work it is given without a word: keep one
    with L{runningPool}, which makes a new one once the old was stopped
    (a reactor that shuts down and runs again, as trial's parallel
    workers do between tests, or an application that restarts it).
    """
    pool = ThreadPool(0, threads, name)
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool


def runningPool(current: ThreadPool | None, reactor: Any, name: str, threads: int) -> ThreadPool:
    """
    C{current} while it runs, else a new L{ownThreadPool}.
    """
    if current is not None and not current.joined:
        return current
    return ownThreadPool(reactor, name, threads)
