"""
L{RestartDelay}: how long the parent waits before it starts again a worker
that ended, so that a worker that dies at once does not spin.
"""

from __future__ import annotations

__all__ = ["FIRST_DELAY", "LONGEST_DELAY", "STABLE_AFTER", "RestartDelay"]

#: Seconds before the first restart of a worker that had run well.
FIRST_DELAY = 0.5

#: The longest wait between two restarts of a worker that keeps dying.
LONGEST_DELAY = 30.0

#: A worker that ran at least this many seconds had run well: its next
#: restart waits L{FIRST_DELAY} again.
STABLE_AFTER = 10.0


class RestartDelay:
    """
    The back-off of one worker slot: the wait doubles with each restart of
    a worker that ended within L{STABLE_AFTER} seconds of its start, up to
    L{LONGEST_DELAY}, and falls back to L{FIRST_DELAY} after a worker that
    ran longer.

    @ivar failures: the restarts in a row of workers that did not run
        well.
    """

    def __init__(
        self, first: float = FIRST_DELAY, longest: float = LONGEST_DELAY, stable: float = STABLE_AFTER
    ) -> None:
        self.first = first
        self.longest = longest
        self.stable = stable
        self.failures = 0

    def next(self, ranFor: float) -> float:
        """
        The seconds to wait before starting again a worker that ended after
        running C{ranFor} seconds.
        """
        if ranFor >= self.stable:
            self.failures = 0
        delay = min(self.longest, self.first * 2**self.failures)
        self.failures = min(self.failures + 1, 64)
        return delay
