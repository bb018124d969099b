"""
The table from connection failures to SOCKS replies.
"""

from __future__ import annotations

import errno

from twisted.internet import defer, error
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from socksgate.outbound import literalAddress, refusalForFailure
from socksgate.wire import ReplyCode


class RefusalForFailureTests(SynchronousTestCase):
    """
    Every failure to resolve or connect maps to the reply SPEC names.
    """

    def check(self, exception: Exception, reply: int, outcome: str) -> None:
        refusal = refusalForFailure(Failure(exception))
        self.assertEqual((refusal.reply, refusal.outcome), (reply, outcome))

    def test_refused(self) -> None:
        """
        Connection refused: 0x05.
        """
        self.check(error.ConnectionRefusedError(), ReplyCode.CONNECTION_REFUSED, "failed")

    def test_doesNotResolve(self) -> None:
        """
        A name that does not resolve: 0x04.
        """
        self.check(error.DNSLookupError("x"), ReplyCode.HOST_UNREACHABLE, "failed")

    def test_hostUnreachable(self) -> None:
        """
        EHOSTUNREACH: 0x04.
        """
        self.check(error.ConnectError(errno.EHOSTUNREACH, "x"), ReplyCode.HOST_UNREACHABLE, "failed")

    def test_networkUnreachable(self) -> None:
        """
        ENETUNREACH (Twisted's NoRouteError): 0x03.
        """
        self.check(error.NoRouteError(errno.ENETUNREACH, "x"), ReplyCode.NETWORK_UNREACHABLE, "failed")

    def test_timeouts(self) -> None:
        """
        The kernel's time-out and the gateway's own: 0x06, outcome timeout.
        """
        self.check(error.TCPTimedOutError(), ReplyCode.TTL_EXPIRED, "timeout")
        self.check(defer.TimeoutError(), ReplyCode.TTL_EXPIRED, "timeout")

    def test_otherConnectError(self) -> None:
        """
        Any other connect error: 0x01, and it is not logged as a bug.
        """
        self.check(error.ConnectError(errno.EACCES, "x"), ReplyCode.GENERAL_FAILURE, "failed")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_bugIsLogged(self) -> None:
        """
        An exception that is no network error is a bug: 0x01, and logged.
        """
        self.check(AttributeError("oops"), ReplyCode.GENERAL_FAILURE, "failed")
        self.assertEqual(len(self.flushLoggedErrors(AttributeError)), 1)


class LiteralAddressTests(SynchronousTestCase):
    """
    A name that spells an IP address is treated as that address.
    """

    def test_literals(self) -> None:
        """
        IPv4 and IPv6 literals (with or without brackets) are addresses;
        names are not.
        """
        self.assertEqual(str(literalAddress("127.0.0.1")), "127.0.0.1")
        self.assertEqual(str(literalAddress("[::1]")), "::1")
        self.assertIsNone(literalAddress("localhost"))
