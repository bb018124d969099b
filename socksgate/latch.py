"""
A latch that fires once every part of something is closed: a session is
released (it leaves the session table) only when its connections and
sockets are all closed, whichever closes last.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["AllClosed"]


class AllClosed:
    """
    Calls C{onAllClosed} once, when every part added has been closed.

    Parts are named; a part may be added while others are open (a socket
    opened later), and closing a part twice, or one never added, does
    nothing.  Once fired, the latch stays fired.
    """

    def __init__(self, onAllClosed: Callable[[], None], *parts: str) -> None:
        self._onAllClosed: Callable[[], None] | None = onAllClosed
        self._open = set(parts)

    @property
    def fired(self) -> bool:
        """
        Whether every part has been closed and C{onAllClosed} called.
        """
        return self._onAllClosed is None

    def add(self, part: str) -> None:
        """
        Wait for C{part} too (unless the latch has fired already).
        """
        if not self.fired:
            self._open.add(part)

    def closed(self, part: str) -> None:
        """
        C{part} is closed; fire if it was the last one open.
        """
        self._open.discard(part)
        if not self._open and self._onAllClosed is not None:
            onAllClosed, self._onAllClosed = self._onAllClosed, None
            onAllClosed()
