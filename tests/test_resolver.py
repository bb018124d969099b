"""
Tests for L{socksgate.resolver.StaticResolver}, the resolver that tests give
a gateway so that they depend on no real DNS.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from socksgate import testing
from socksgate.resolver import StaticResolver


@implementer(IResolutionReceiver)
class _Receiver:
    """
    Records what a resolver tells it, in order.
    """

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def resolutionBegan(self, resolutionInProgress: Any) -> None:
        self.calls.append("began")

    def addressResolved(self, address: Any) -> None:
        self.calls.append(address)

    def resolutionComplete(self) -> None:
        self.calls.append("complete")


class StaticResolverTests(SynchronousTestCase):
    """
    L{StaticResolver} answers from its table, at once.
    """

    def resolve(self, resolver: StaticResolver, name: str, port: int = 0) -> list[Any]:
        """
        Resolve C{name} and return what the receiver was told.
        """
        receiver = _Receiver()
        self.assertIs(resolver.resolveHostName(receiver, name, port), receiver)
        return receiver.calls

    def test_interface(self) -> None:
        """
        It provides L{IHostnameResolver}.
        """
        self.assertTrue(verifyObject(IHostnameResolver, StaticResolver()))

    def test_tableAddresses(self) -> None:
        """
        A name of the table resolves to its addresses, in order, IPv6 ones
        as L{IPv6Address}, with the port asked for, between C{began} and
        C{complete}.
        """
        resolver = StaticResolver({"api.test": ["::1", "127.0.0.2"]})
        self.assertEqual(
            self.resolve(resolver, "api.test", 443),
            ["began", IPv6Address("TCP", "::1", 443), IPv4Address("TCP", "127.0.0.2", 443), "complete"],
        )

    def test_unknownName(self) -> None:
        """
        Another name resolves to nothing (a name that does not resolve), or
        to C{default} when one is given.
        """
        self.assertEqual(
            self.resolve(StaticResolver({"a.test": ["127.0.0.1"]}), "b.test"), ["began", "complete"]
        )
        resolver = StaticResolver(default=["127.0.0.3"])
        self.assertEqual(self.resolve(resolver, "any.test", 80)[1], IPv4Address("TCP", "127.0.0.3", 80))

    def test_asked(self) -> None:
        """
        C{asked} lists the names asked for, in order, repeats included.
        """
        resolver = StaticResolver()
        for name in ("one.test", "two.test", "one.test"):
            self.resolve(resolver, name)
        self.assertEqual(resolver.asked, ["one.test", "two.test", "one.test"])

    def test_badAddress(self) -> None:
        """
        A table address that is not an IP address is refused when the
        resolver is made.
        """
        self.assertRaises(ValueError, StaticResolver, {"a.test": ["not-an-address"]})

    def test_exported(self) -> None:
        """
        C{socksgate.testing} offers the same resolver.
        """
        self.assertIs(testing.StaticResolver, StaticResolver)
