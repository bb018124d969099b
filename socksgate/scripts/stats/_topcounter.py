"""
L{TopCounter}: the heaviest keys of a stream in bounded memory
(Space-Saving).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["TopCounter"]

K = TypeVar("K", bound=Hashable)


class TopCounter(Generic[K]):
    """
    The heaviest keys of a stream, in bounded memory: the Space-Saving
    algorithm (Metwally, Agrawal and El Abbadi, "Efficient computation of
    frequent and top-k elements in data streams", 2005), weighted.

    At most C{capacity} keys are kept.  A new key arriving when the counter
    is full replaces the key with the smallest count, and starts from that
    count (its C{error}, by which its count may be too high).  Hence: while
    no more than C{capacity} distinct keys have been seen, every figure is
    exact; after that, every key whose true weight exceeds
    C{total / capacity} is kept, and no kept count is too high by more than
    that.  A new key of weight 0 is kept only while there is room.

    Beside its ranking weight, each key carries the sessions and bytes
    added since it was last admitted (exact while C{exact}).

    @ivar capacity: the most keys kept.
    @ivar total: the sum of all the weights added.
    @ivar evicted: how many keys were replaced.
    @ivar skipped: how many new keys of weight 0 were not kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.total = 0
        self.evicted = 0
        self.skipped = 0
        # key -> [weight, error, sessions, bytes out, bytes in]
        self._entries: dict[K, list[int]] = {}
        # (weight when pushed, tie-breaker, key), one for each key kept; a
        # weight that grew since is corrected when the entry reaches the top.
        self._heap: list[tuple[int, int, K]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        """
        The number of keys kept (at most C{capacity}).
        """
        return len(self._entries)

    @property
    def exact(self) -> bool:
        """
        Whether every key seen is kept, with exact figures.
        """
        return not (self.evicted or self.skipped)

    @property
    def maxError(self) -> int:
        """
        The most by which any kept weight may be too high: 0 while exact.
        """
        if self.exact:
            return 0
        return min(entry[0] for entry in self._entries.values())

    def add(self, key: K, weight: int = 1, bytesOut: int = 0, bytesIn: int = 0) -> None:
        """
        Count a session of C{key} with this ranking C{weight} and bytes.
        """
        self.total += weight
        entry = self._entries.get(key)
        if entry is not None:
            entry[0] += weight
            entry[2] += 1
            entry[3] += bytesOut
            entry[4] += bytesIn
            return
        heap = self._heap
        if len(self._entries) < self.capacity:
            self._entries[key] = [weight, 0, 1, bytesOut, bytesIn]
            heapq.heappush(heap, (weight, next(self._order), key))
            return
        if weight == 0:
            self.skipped += 1
            return
        entries = self._entries
        while True:
            pushed, order, victim = heap[0]
            current = entries[victim][0]
            if current == pushed:
                break
            heapq.heapreplace(heap, (current, order, victim))
        del entries[victim]
        self.evicted += 1
        entries[key] = [pushed + weight, pushed, 1, bytesOut, bytesIn]
        heapq.heapreplace(heap, (pushed + weight, next(self._order), key))

    def top(self, count: int | None = None) -> list[tuple[K, int, int, int, int, int]]:
        """
        The heaviest keys, heaviest first (ties in the order of the keys'
        text).

        @return: up to C{count} (all when C{None}) tuples of C{(key,
            weight, error, sessions, bytesOut, bytesIn)}.
        """
        ranked = sorted(self._entries.items(), key=lambda item: (-item[1][0], str(item[0])))
        if count is not None:
            ranked = ranked[:count]
        return [(key, *entry) for key, entry in ranked]  # type: ignore[misc]
