"""
L{socksgate.addresses}: helpers for IP addresses written once.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.addresses import formatHostPort


class _CountingHost:
    """
    A host whose text says how often it was asked for.
    """

    calls = 0

    def __str__(self) -> str:
        self.calls += 1
        return "192.0.2.1"


class FormatHostPortTests(SynchronousTestCase):
    """
    L{formatHostPort} writes C{host:port} as the session record does.
    """

    def test_ipv4(self) -> None:
        """
        An IPv4 address, as an address or as text, is written as it is.
        """
        self.assertEqual(formatHostPort(ip_address("127.0.0.1"), 80), "127.0.0.1:80")
        self.assertEqual(formatHostPort("127.0.0.1", 80), "127.0.0.1:80")

    def test_ipv6(self) -> None:
        """
        An IPv6 address, as an address or as text, is put in brackets.
        """
        self.assertEqual(formatHostPort(ip_address("::1"), 443), "[::1]:443")
        self.assertEqual(formatHostPort("::1", 443), "[::1]:443")

    def test_name(self) -> None:
        """
        A host name is written as it is.
        """
        self.assertEqual(formatHostPort("example.com", 8080), "example.com:8080")

    def test_textOnce(self) -> None:
        """
        The host is turned into text once per call (an address's text is
        computed anew each time, on every session's path).
        """
        host = _CountingHost()
        self.assertEqual(formatHostPort(host, 1), "192.0.2.1:1")
        self.assertEqual(host.calls, 1)
