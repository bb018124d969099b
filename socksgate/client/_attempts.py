"""
Cancellable handshakes: L{runCancellable} runs one attempt (a coroutine
that connects to a proxy and talks to it) behind a L{Deferred} whose
cancellation always fails with L{CancelledError}, even when the proxy
endpoint's own attempt cannot be stopped, and gets rid of a result that
arrives after the cancellation.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["Attempt", "runCancellable"]

T = TypeVar("T")


class Attempt:
    """
    One attempt: whether it was cancelled.

    @ivar cancelled: C{True} once the caller cancelled it.
    """

    cancelled = False


def runCancellable(
    body: Callable[[Attempt], Coroutine[Any, Any, T]], discard: Callable[[T], None]
) -> Deferred[T]:
    """
    Run C{body(attempt)} behind a cancellable L{Deferred}.

    @param body: the attempt; it checks C{attempt.cancelled} after each
        wait that cannot be cancelled.
    @param discard: called with a result that arrives once the caller has
        cancelled, to close what it holds.
    @return: a L{Deferred} with C{body}'s result or failure; once it is
        cancelled it fails with L{CancelledError}.
    """
    attempt = Attempt()
    inner = Deferred.fromCoroutine(body(attempt))

    def cancel(outer: Deferred[T]) -> None:
        attempt.cancelled = True
        inner.cancel()

    outer: Deferred[T] = Deferred(cancel)

    def finished(result: T | Failure) -> None:
        if attempt.cancelled:
            if not isinstance(result, Failure):
                discard(result)
        elif isinstance(result, Failure):
            outer.errback(result)
        else:
            outer.callback(result)

    inner.addBoth(finished)
    return outer
