"""
L{socksgate.latch.AllClosed}: released once, when the last part closes.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.latch import AllClosed


class AllClosedTests(SynchronousTestCase):
    """
    The latch fires once, after every part added is closed, in any order.
    """

    def test_lastPartFires(self) -> None:
        """
        Closing every part, in any order, fires it once; closing again,
        or a part never added, does nothing.
        """
        fired: list[int] = []
        latch = AllClosed(lambda: fired.append(1), "client", "port")
        latch.closed("port")
        latch.closed("nonsense")
        self.assertEqual((fired, latch.fired), ([], False))
        latch.closed("client")
        latch.closed("client")
        self.assertEqual((fired, latch.fired), ([1], True))

    def test_addedLater(self) -> None:
        """
        A part added while others are open is waited for too; one added
        after the latch fired is ignored.
        """
        fired: list[int] = []
        latch = AllClosed(lambda: fired.append(1), "client")
        latch.add("port")
        latch.closed("client")
        self.assertEqual(fired, [])
        latch.closed("port")
        latch.add("late")
        self.assertEqual(fired, [1])
