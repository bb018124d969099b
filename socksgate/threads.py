"""
Thread pools of the gateway's own, so that one kind of blocking work
cannot starve another: bcrypt checks of passwords and name lookups each
have a bounded pool, apart from each other and from the reactor's.
"""

from __future__ import annotations

from typing import Any

from twisted.python.threadpool import ThreadPool

__all__ = ["ownThreadPool"]


def ownThreadPool(reactor: Any, name: str, threads: int) -> ThreadPool:
    """
    A started thread pool of at most C{threads} threads, stopped when
    C{reactor} shuts down.  Work beyond C{threads} waits in its queue.
    """
    pool = ThreadPool(0, threads, name)
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool
