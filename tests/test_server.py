"""
The server protocol with test transports and a fake clock: policy
decisions, time-outs, limits and malformed input, where no timing and no
network is involved.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import ServerConfig
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision
from socksgate.server import EARLY_DATA_LIMIT, SOCKSServerFactory, SOCKSServerProtocol
from socksgate.testing import StaticResolver

from .helpers import collectSessions, socks4aConnect, socks4Connect, socks5Connect

LOCALHOST = b"\x7f\x00\x00\x01"


class RecordingPolicy:
    """
    A policy that answers with the decisions or Deferreds it is given, in
    order, and remembers the requests.
    """

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.requests: list[AccessRequest] = []

    def decide(self, request: AccessRequest) -> object:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class ServerTestCase(SynchronousTestCase):
    """
    Builds protocols connected to string transports.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.resolver = StaticResolver({"dest.test": ["127.0.0.1", "10.9.9.9"]})
        self.records = collectSessions(self)

    def connect(
        self, peer: str = "127.0.0.1", config: ServerConfig | None = None, policy: object = None
    ) -> tuple[SOCKSServerProtocol, StringTransport]:
        factory = SOCKSServerFactory(
            self.reactor, config, policy, listener="tcp:1080", resolver=self.resolver
        )
        self.factory = factory
        protocol = factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def completeOutgoing(self, index: int = -1) -> StringTransport:
        """
        Complete the gateway's pending outgoing connection attempt.
        """
        host, port, factory, timeout, bindAddress = self.reactor.tcpClients[index]
        destination = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 50123),
            peerAddress=IPv4Address("TCP", host, port),
        )
        factory.buildProtocol(None).makeConnection(destination)
        return destination


class PolicyTests(ServerTestCase):
    """
    The policy is consulted before every CONNECT, and its answer is obeyed.
    """

    def test_nonLoopbackClientDenied(self) -> None:
        """
        By default a client outside loopback gets REP 0x02, and the
        connection closes without any outgoing attempt.
        """
        protocol, transport = self.connect(peer="10.1.2.3")
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        self.assertEqual(transport.value(), b"\x05\x00" + b"\x05\x02\x00\x01" + b"\x00" * 6)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual(self.records[0]["outcome"], "denied")
        self.assertEqual(self.records[0]["reply"], 2)
        self.assertEqual(self.records[0]["client"], "10.1.2.3:40000")

    def test_nonLoopbackSOCKS4Denied(self) -> None:
        """
        A SOCKS4 client outside loopback gets CD 91.
        """
        protocol, transport = self.connect(peer="192.0.2.7")
        protocol.dataReceived(socks4Connect(80))
        self.assertEqual(transport.value(), b"\x00\x5b" + b"\x00" * 6)
        self.assertEqual(self.records[0]["reply"], 91)

    def test_deniedNameIsNotResolved(self) -> None:
        """
        A request the policy refuses before resolution never reaches the
        resolver.
        """
        protocol, transport = self.connect(peer="10.1.2.3")
        protocol.dataReceived(socks4aConnect(80, b"dest.test"))
        self.assertEqual(transport.value()[:2], b"\x00\x5b")
        self.assertEqual(self.resolver.asked, [])

    def test_onlyPermittedAddressesAreTried(self) -> None:
        """
        A name is decided again for each address it resolves to, with both
        in hand, and only permitted addresses are tried.
        """

        class DenyTen:
            requests: list[AccessRequest] = []

            def decide(self, request: AccessRequest) -> Decision:
                self.requests.append(request)
                if str(request.destinationAddress).startswith("10."):
                    return Decision(DENY, 3, "no 10/8")
                return Decision(PERMIT, 1)

        policy = DenyTen()
        protocol, transport = self.connect(policy=policy)
        protocol.dataReceived(socks5Connect(b"dest.test", 80))
        seen = [(r.destinationName, r.destinationAddress) for r in policy.requests]
        self.assertEqual(
            seen,
            [
                ("dest.test", None),
                ("dest.test", ip_address("127.0.0.1")),
                ("dest.test", ip_address("10.9.9.9")),
            ],
        )
        self.assertEqual([client[:2] for client in self.reactor.tcpClients], [("127.0.0.1", 80)])

    def test_noAddressPermitted(self) -> None:
        """
        When the name's every address is denied the reply is 0x02 and the
        record names the rule that denied.
        """
        policy = RecordingPolicy(Decision(PERMIT, 1), Decision(DENY, 7, "internal nets"))
        protocol, transport = self.connect(policy=policy)
        protocol.dataReceived(socks5Connect(b"dest.test", 80))
        self.assertEqual(transport.value()[2:4], b"\x05\x02")
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual((self.records[0]["rule"], self.records[0]["message"]), (7, "internal nets"))

    def test_requestFields(self) -> None:
        """
        The policy sees the client, listener, version, command, destination,
        port and claimed user of the request.
        """
        policy = RecordingPolicy(Decision(DENY))
        protocol, transport = self.connect(policy=policy)
        protocol.dataReceived(socks4Connect(8080, ip=b"\xc0\x00\x02\x01", userid=b"bob"))
        [request] = policy.requests
        self.assertEqual(
            request,
            AccessRequest(
                client=ip_address("127.0.0.1"),
                clientPort=40000,
                listener="tcp:1080",
                version="4",
                command="connect",
                destinationName=None,
                destinationAddress=ip_address("192.0.2.1"),
                port=8080,
                user="bob",
                auth="none",
            ),
        )

    def test_latePolicy(self) -> None:
        """
        A policy that answers with a Deferred holds the reply until it
        fires; a permit then starts the connection.
        """
        answer: Deferred[Decision] = Deferred()
        protocol, transport = self.connect(policy=RecordingPolicy(answer))
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        self.assertEqual(transport.value(), b"\x05\x00")
        self.assertEqual(self.reactor.tcpClients, [])
        answer.callback(Decision(PERMIT))
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 80))

    def test_failingPolicy(self) -> None:
        """
        A policy that fails refuses the request with 0x01, and the failure
        is logged.
        """
        protocol, transport = self.connect(policy=RecordingPolicy(RuntimeError("ldap down")))
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        self.assertEqual(transport.value()[2:4], b"\x05\x01")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.records[0]["outcome"], "error")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_policyAnswersNonsense(self) -> None:
        """
        A policy that answers something other than a Decision refuses the
        request with 0x01 rather than permitting it.
        """
        protocol, transport = self.connect(policy=RecordingPolicy("permit"))
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        self.assertEqual(transport.value()[2:4], b"\x05\x01")
        self.assertEqual(self.reactor.tcpClients, [])


class ConnectTests(ServerTestCase):
    """
    The outgoing connection: success, time-out, the client giving up.
    """

    def test_success(self) -> None:
        """
        Once connected, the reply carries the outgoing connection's local
        address and the relay passes bytes, including early ones.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1) + b"early")
        destination = self.completeOutgoing()
        self.assertEqual(transport.value()[2:], b"\x05\x00\x00\x01" + LOCALHOST + (50123).to_bytes(2, "big"))
        self.assertEqual(destination.value(), b"early")
        protocol.dataReceived(b"more")
        self.assertEqual(destination.value(), b"earlymore")

    def test_earlyDataPausesClient(self) -> None:
        """
        A client that sends more than EARLY_DATA_LIMIT bytes while the
        gateway connects is no longer read until the relay starts; what it
        sent is then relayed in full.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1) + b"a" * 1000)
        self.assertEqual(transport.producerState, "producing")
        protocol.dataReceived(b"b" * EARLY_DATA_LIMIT)
        self.assertEqual(transport.producerState, "paused")
        destination = self.completeOutgoing()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(destination.value(), b"a" * 1000 + b"b" * EARLY_DATA_LIMIT)

    def test_connectTimeout(self) -> None:
        """
        The connection attempt is made with connect-timeout, and its
        time-out is answered with REP 0x06.
        """
        protocol, transport = self.connect(config=ServerConfig(connectTimeout=5.0))
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        host, port, factory, timeout, bindAddress = self.reactor.tcpClients[0]
        self.assertEqual(timeout, 5.0)
        self.assertEqual(transport.value(), b"\x05\x00")
        factory.clientConnectionFailed(self.reactor.connectors[0], Failure(error.TimeoutError()))
        self.assertEqual(transport.value()[2:4], b"\x05\x06")
        self.assertEqual(self.records[0]["outcome"], "timeout")

    def test_connectTimeoutForName(self) -> None:
        """
        For a name, whose addresses are tried in turn, connect-timeout also
        bounds the whole attempt: 0x06 when it passes, and the attempts
        are abandoned.
        """
        self.resolver = StaticResolver({"dest.test": ["127.0.0.1", "127.0.0.2"]})
        protocol, transport = self.connect(config=ServerConfig(connectTimeout=5.0))
        protocol.dataReceived(socks5Connect(b"dest.test", 80))
        self.reactor.advance(4.9)
        self.assertEqual(transport.value(), b"\x05\x00")
        self.reactor.advance(0.2)
        self.assertEqual(transport.value()[2:4], b"\x05\x06")
        self.assertTrue(all(connector.stoppedConnecting for connector in self.reactor.connectors))

    def test_clientGivesUp(self) -> None:
        """
        A client that disconnects while the gateway connects cancels the
        attempt, and the session is recorded.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        protocol.connectionLost(None)
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(len(self.records), 1)
        self.assertEqual(self.factory.sessions.open, set())

    def test_idleTimeout(self) -> None:
        """
        With idle-timeout, a relayed session without traffic for that long
        is closed; traffic postpones it.
        """
        protocol, transport = self.connect(config=ServerConfig(idleTimeout=60.0))
        protocol.dataReceived(socks5Connect(LOCALHOST, 80, atyp=1))
        destination = self.completeOutgoing()
        self.reactor.advance(50)
        protocol.dataReceived(b"keepalive")
        self.reactor.advance(50)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(11)
        self.assertTrue(transport.disconnecting)
        self.assertTrue(destination.disconnecting)


class HandshakeTests(ServerTestCase):
    """
    Time-outs, limits and malformed input during the handshake.
    """

    def test_silentClientDropped(self) -> None:
        """
        A client that sends nothing is dropped after handshake-timeout.
        """
        protocol, transport = self.connect(config=ServerConfig(handshakeTimeout=3.0))
        self.reactor.advance(2.9)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(0.2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.records[0]["outcome"], "timeout")

    def test_slowClientDropped(self) -> None:
        """
        A client that sends part of a request and stops is dropped after
        handshake-timeout, counted from the accept.
        """
        protocol, transport = self.connect(config=ServerConfig(handshakeTimeout=3.0))
        protocol.dataReceived(b"\x05\x01\x00\x05")
        self.reactor.advance(3.1)
        self.assertTrue(transport.disconnecting)

    def test_finWithoutRequest(self) -> None:
        """
        A client that connects and closes without sending a byte is no
        request: the connection closes and no session is recorded.  One
        that closes in the middle of a request is recorded as an error.
        """
        protocol, transport = self.connect()
        protocol.readConnectionLost()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.records, [])
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x02")
        protocol.readConnectionLost()
        self.assertTrue(transport.disconnecting)
        self.assertEqual([record["outcome"] for record in self.records], ["error"])

    def test_unknownVersion(self) -> None:
        """
        A first byte other than 4 or 5 closes the connection without reply.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.records[0]["outcome"], "error")

    def test_longSOCKS4aName(self) -> None:
        """
        A SOCKS4a host name of 10,000 bytes without NUL gets CD 91 and no
        lookup, not a growing buffer.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00" + b"a" * 10000)
        self.assertEqual(transport.value(), b"\x00\x5b" + b"\x00" * 6)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.resolver.asked, [])

    def test_unknownAddressType(self) -> None:
        """
        An unknown ATYP gets REP 0x08.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x00\x05\x01\x00\x09")
        self.assertEqual(transport.value()[2:4], b"\x05\x08")

    def test_noAcceptableMethod(self) -> None:
        """
        A greeting that offers only username/password, when none is
        configured, gets method 0xFF.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x05\x01\x02")
        self.assertEqual(transport.value(), b"\x05\xff")
        self.assertTrue(transport.disconnecting)

    def test_maxSessions(self) -> None:
        """
        Past max-sessions a new connection is closed at once; after one
        ends, the next is admitted.
        """
        config = ServerConfig(maxSessions=1)
        factory = SOCKSServerFactory(self.reactor, config, resolver=self.resolver)
        first, second, third = (factory.buildProtocol(None) for _ in range(3))
        firstTransport, secondTransport, thirdTransport = (
            StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port)) for port in (1, 2, 3)
        )
        first.makeConnection(firstTransport)
        second.makeConnection(secondTransport)
        self.assertTrue(secondTransport.disconnecting)
        self.assertFalse(firstTransport.disconnecting)
        first.connectionLost(None)
        second.connectionLost(None)
        third.makeConnection(thirdTransport)
        self.assertFalse(thirdTransport.disconnecting)

    def test_maxSessionsPerClient(self) -> None:
        """
        Past max-sessions-per-client, one address's further connections
        are closed, while other addresses are still admitted.
        """
        factory = SOCKSServerFactory(self.reactor, ServerConfig(maxSessionsPerClient=1))
        transports = []
        for host in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
            transport = StringTransport(peerAddress=IPv4Address("TCP", host, 1))
            factory.buildProtocol(None).makeConnection(transport)
            transports.append(transport.disconnecting)
        self.assertEqual(transports, [False, True, False])
