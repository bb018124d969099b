"""
L{socksgate.server.SessionTable}: every limit on a gateway's sessions in
one place.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import ServerConfig
from socksgate.server import MAX_ASSOCIATIONS_PER_CLIENT, SessionTable

A, B = ip_address("192.0.2.1"), ip_address("192.0.2.2")


class SessionTableTests(SynchronousTestCase):
    """
    Admission, release and the Deferred for an empty table.
    """

    def test_limits(self) -> None:
        """
        max-sessions and max-sessions-per-client refuse with a reason; a
        released session frees its place.
        """
        table = SessionTable()
        config = ServerConfig(maxSessions=3, maxSessionsPerClient=2)
        first, second, third, fourth = object(), object(), object(), object()
        self.assertEqual(table.admit(first, A, config), "")
        self.assertEqual(table.admit(second, A, config), "")
        self.assertIn("max-sessions-per-client (2) reached for 192.0.2.1", table.admit(third, A, config))
        self.assertEqual(table.admit(third, B, config), "")
        self.assertIn("max-sessions (3) reached", table.admit(fourth, B, config))
        table.release(first, A)
        self.assertEqual(table.admit(fourth, A, config), "")

    def test_releaseObservers(self) -> None:
        """
        The release observers are called once for each connection released
        (its descriptors are free), not for one the table does not hold.
        """
        table = SessionTable()
        released: list[None] = []
        table.releaseObservers.append(lambda: released.append(None))
        session = object()
        table.admit(session, A, ServerConfig())
        table.release(object(), A)
        self.assertEqual(released, [])
        table.release(session, A)
        self.assertEqual(released, [None])

    def test_unixClientsCountOnlyInAll(self) -> None:
        """
        A client without an address (a UNIX socket) is limited by
        max-sessions only.
        """
        table = SessionTable()
        config = ServerConfig(maxSessions=10, maxSessionsPerClient=1)
        self.assertEqual([table.admit(object(), None, config) for _ in range(3)], ["", "", ""])

    def test_whenEmpty(self) -> None:
        """
        whenEmpty fires at once for an empty table, else when the last
        session is released; releasing an unknown session changes nothing.
        """
        table = SessionTable()
        self.assertIsNone(self.successResultOf(table.whenEmpty()))
        session = object()
        table.admit(session, A, ServerConfig())
        waiting = table.whenEmpty()
        self.assertNoResult(waiting)
        table.release(object(), A)
        self.assertNoResult(waiting)
        table.release(session, A)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(table.open, set())

    def test_associations(self) -> None:
        """
        A client address holds at most MAX_ASSOCIATIONS_PER_CLIENT UDP
        associations; another address is not affected; a release frees one.
        """
        table = SessionTable()
        for _ in range(MAX_ASSOCIATIONS_PER_CLIENT):
            self.assertEqual(table.admitAssociation(A), "")
        self.assertEqual(
            table.admitAssociation(A),
            f"{MAX_ASSOCIATIONS_PER_CLIENT} UDP associations already open for 192.0.2.1",
        )
        self.assertEqual(table.admitAssociation(B), "")
        table.releaseAssociation(A)
        self.assertEqual(table.admitAssociation(A), "")
        for _ in range(MAX_ASSOCIATIONS_PER_CLIENT):
            table.releaseAssociation(A)
        table.releaseAssociation(B)
        self.assertEqual(dict(table.associations), {})
