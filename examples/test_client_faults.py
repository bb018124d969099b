"""
An example for docs/testing.md: trial tests of a SOCKS-aware client (here
socksgate's own SOCKS5 endpoint) against a gateway that misbehaves on
purpose.  Run it with C{python -m twisted.trial examples/test_client_faults.py}.
"""

from twisted.internet import reactor
from twisted.internet.defer import TimeoutError
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from socksgate.client import SOCKS5ClientEndpoint
from socksgate.client.errors import ConnectionRefused, MalformedReply
from socksgate.testing import Faults, startGateway


def connectThrough(gateway, host, port):
    """
    Connect to C{host:port} through C{gateway} with the client under test.
    """
    proxy = TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port)
    return SOCKS5ClientEndpoint(proxy, host, port).connect(Factory.forProtocol(Protocol))


class MyClientTests(TestCase):
    """
    How my client copes with a gateway that says no, breaks off, or stalls.
    """

    async def test_refused(self):
        """
        A destination the gateway answers 0x05 for: the client says
        "connection refused", and the gateway saw the name unresolved.
        """
        gateway = startGateway(self, faults=Faults(replies={"db.internal": 0x05}))
        await self.assertFailure(connectThrough(gateway, "db.internal", 5432), ConnectionRefused)
        [client] = gateway.clients
        [request] = client.requests
        self.assertEqual((request.host, request.port), ("db.internal", 5432))

    async def test_cutReply(self):
        """
        A reply cut after 5 bytes: an error, not a hang.
        """
        gateway = startGateway(self, faults=Faults(cutAt=5))
        await self.assertFailure(connectThrough(gateway, "db.internal", 5432), MalformedReply)

    async def test_giveUpOnAStalledGateway(self):
        """
        A gateway that never sends its reply (held from byte 2, the end of
        the method selection, forever): the client's timeout cancels the
        attempt, which closes the connection to the gateway.
        """
        gateway = startGateway(self, faults=Faults(delayAt=2))
        connecting = connectThrough(gateway, "db.internal", 5432)
        connecting.addTimeout(0.2, reactor)
        await self.assertFailure(connecting, TimeoutError)
        await gateway.sessions.whenEmpty()
