"""
The commands (CONNECT, BIND, UDP ASSOCIATE) on their own: each is given a
stand-in for the client connection (an L{IClientConnection} over a
L{StringTransport}) and a gateway on a L{MemoryReactorClock}, so what it
asks of the reactor and what it answers the client can be checked without
sockets.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import Any

from twisted.internet import address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from socksgate.config import ServerConfig, parseConfig
from socksgate.interfaces import IClientConnection, ICommand, ISession
from socksgate.policy import AccessRequest
from socksgate.relay import Relay
from socksgate.server import COMMANDS, ClientConnection, SOCKSServerFactory
from socksgate.server.commands.bind import BindSession
from socksgate.session import SessionRecord
from socksgate.testing import StaticResolver
from socksgate.udprelay import UDPAssociation
from socksgate.vocabulary import Command, Outcome, RequestRefused
from socksgate.wire import Command as CommandCode
from socksgate.wire import ReplyCode, SOCKS5Request

LOCAL = address.IPv4Address("TCP", "127.0.0.1", 1080)


class LenientTransport(StringTransport):
    """
    A L{StringTransport} that, like a TCP transport, may be paused or
    resumed after C{loseConnection}.
    """

    def pauseProducing(self) -> None:
        if not self.disconnecting:
            super().pauseProducing()

    def resumeProducing(self) -> None:
        if not self.disconnecting:
            super().resumeProducing()


class FakeUDPPort:
    """
    What L{UDPMemoryReactor.listenUDP} returns.
    """

    def __init__(self, protocol: Any, interface: str) -> None:
        self.protocol, self.interface, self.listening = protocol, interface, True
        protocol.makeConnection(self)

    def getHost(self) -> address.IPv4Address:
        return address.IPv4Address("UDP", self.interface, 40001)

    def write(self, datagram: bytes, addr: Any) -> None:
        pass

    def stopListening(self) -> None:
        self.listening = False


class UDPMemoryReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that also opens (pretend) UDP sockets.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udpPorts: list[FakeUDPPort] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUDPPort:
        udpPort = FakeUDPPort(protocol, interface)
        self.udpPorts.append(udpPort)
        return udpPort


PEER = address.IPv4Address("TCP", "127.0.0.1", 40000)


@implementer(IClientConnection)
class FakeClient:
    """
    An L{IClientConnection} that records what a command does with it.
    """

    def __init__(self, gateway: SOCKSServerFactory) -> None:
        self.transport = StringTransport(hostAddress=LOCAL, peerAddress=PEER)
        self.record = SessionRecord("00000001", "tcp:1080", "127.0.0.1:40000", 0.0)
        self.client = ip_address("127.0.0.1")
        self.version = 5
        self.gateway = gateway
        self.gone = False
        self.replies: list[tuple[int, Any, int]] = []
        self.refusals: list[RequestRefused] = []
        self.session: Any = None
        self.finished: list[tuple[str, int | None, str]] = []
        self.releases = 0

    def reply(self, code: ReplyCode, address: Any = IPv4Address(0), port: int = 0) -> int:
        self.replies.append((code, address, port))
        return int(code)

    def refuse(self, refusal: RequestRefused) -> None:
        self.refusals.append(refusal)

    def attach(self, session: Any) -> None:
        self.session = session

    def takeEarlyData(self) -> bytes:
        return b"early"

    def finish(self, outcome: str, reply: int | None, message: str) -> None:
        self.finished.append((outcome, reply, message))

    def relayEnded(self, relay: Any, why: str) -> None:
        self.record.bytes_out, self.record.bytes_in = relay.bytesOut, relay.bytesIn
        self.finish(Outcome.CLOSED, self.record.reply, why)

    def released(self) -> None:
        self.releases += 1


def gatewayWith(rules: str = "", **server: Any) -> tuple[UDPMemoryReactor, SOCKSServerFactory]:
    """
    A gateway on a memory reactor, deciding by C{rules} (permit everything
    when empty).
    """
    reactor = UDPMemoryReactor()
    policy = parseConfig(rules or '[[rule]]\naction = "permit"\n', "commands.toml").policy
    factory = SOCKSServerFactory(
        reactor, ServerConfig(**server), policy, "tcp:1080", StaticResolver({"echo.test": ["127.0.0.1"]})
    )
    return reactor, factory


def accessRequest(command: Command, port: int = 80) -> AccessRequest:
    """
    A checked request from 127.0.0.1, without a destination.
    """
    return AccessRequest(
        client=ip_address("127.0.0.1"),
        clientPort=40000,
        listener="tcp:1080",
        version="5",
        command=command,
        destinationName=None,
        destinationAddress=None,
        port=port,
    )


def socks5(command: CommandCode, host: Any, port: int) -> SOCKS5Request:
    """
    A decoded SOCKS5 request.
    """
    return SOCKS5Request(command, host, port)


class InterfaceTests(SynchronousTestCase):
    """
    The commands and sessions provide the interfaces the server relies on.
    """

    def test_provided(self) -> None:
        """
        Every command in the table is an L{ICommand}; the client handle is
        an L{IClientConnection}; relays, BIND sessions and UDP associations
        are L{ISession}s.
        """
        self.assertEqual(set(COMMANDS), set(Command))
        for command in COMMANDS.values():
            verifyObject(ICommand, command)
        reactor, gateway = gatewayWith()
        protocol = gateway.buildProtocol(PEER)
        protocol.makeConnection(StringTransport(hostAddress=LOCAL, peerAddress=PEER))
        verifyObject(IClientConnection, ClientConnection(protocol))
        client = FakeClient(gateway)
        verifyObject(ISession, Relay(client.transport, StringTransport(), lambda why: None, reactor))
        verifyObject(ISession, BindSession(client, accessRequest(Command.BIND), None))
        association = UDPAssociation(
            client, accessRequest(Command.UDP), client.client, 0, lambda: gateway.policy,
            gateway.resolver, reactor, 0, 1,
        )  # fmt: skip
        verifyObject(ISession, association)


class ConnectTests(SynchronousTestCase):
    """
    CONNECT: decide, connect, answer, relay.
    """

    def test_connected(self) -> None:
        """
        A permitted address is connected to; once connected, the client
        gets 0x00 with the outgoing connection's local address, the record
        names the rule and the remote, and a relay (fed the early bytes)
        becomes the session.
        """
        reactor, gateway = gatewayWith()
        client = FakeClient(gateway)
        started = COMMANDS[Command.CONNECT].start(
            client, accessRequest(Command.CONNECT), socks5(CommandCode.CONNECT, ip_address("127.0.0.1"), 80)
        )
        [(host, port, factory, timeout, bindAddress)] = reactor.tcpClients
        self.assertEqual((host, port, timeout), ("127.0.0.1", 80, 30.0))
        self.assertNoResult(started)
        destination = factory.buildProtocol(None)
        outgoing = StringTransport(
            hostAddress=address.IPv4Address("TCP", "127.0.0.1", 50000),
            peerAddress=address.IPv4Address("TCP", "127.0.0.1", 80),
        )
        destination.makeConnection(outgoing)
        self.successResultOf(started)
        self.assertEqual(client.replies, [(ReplyCode.SUCCEEDED, ip_address("127.0.0.1"), 50000)])
        self.assertEqual(
            (client.record.rule, client.record.remote, client.record.reply), (1, "127.0.0.1:80", 0)
        )
        self.assertIsInstance(client.session, Relay)
        self.assertEqual(outgoing.value(), b"early")

    def test_clientGoneMeanwhile(self) -> None:
        """
        A client that left while its destination was being connected gets
        nothing; the new connection is closed.
        """
        reactor, gateway = gatewayWith()
        client = FakeClient(gateway)
        started = COMMANDS[Command.CONNECT].start(
            client, accessRequest(Command.CONNECT), socks5(CommandCode.CONNECT, ip_address("127.0.0.1"), 80)
        )
        client.gone = True
        destination = reactor.tcpClients[0][2].buildProtocol(None)
        outgoing = LenientTransport(hostAddress=LOCAL, peerAddress=PEER)
        destination.makeConnection(outgoing)
        self.successResultOf(started)
        self.assertEqual((client.replies, client.session, outgoing.disconnecting), ([], None, True))

    def test_denied(self) -> None:
        """
        A denied destination fails the start with 0x02 and the rule's
        decision; nothing is connected.
        """
        reactor, gateway = gatewayWith('[[rule]]\naction = "deny"\nmessage = "no"\n')
        client = FakeClient(gateway)
        started = COMMANDS[Command.CONNECT].start(
            client, accessRequest(Command.CONNECT), socks5(CommandCode.CONNECT, "echo.test", 80)
        )
        refusal = self.failureResultOf(started, RequestRefused).value
        self.assertEqual((refusal.reply, refusal.outcome, refusal.decision.rule), (0x02, Outcome.DENIED, 1))
        self.assertEqual(reactor.tcpClients, [])


class BindTests(SynchronousTestCase):
    """
    BIND: listen, answer twice, relay; or time out.
    """

    def start(self, **server: Any) -> tuple[UDPMemoryReactor, FakeClient]:
        """
        Start a BIND for peer 127.0.0.1, any port.
        """
        reactor, gateway = gatewayWith(**server)
        client = FakeClient(gateway)
        started = COMMANDS[Command.BIND].start(
            client, accessRequest(Command.BIND, 0), socks5(CommandCode.BIND, ip_address("127.0.0.1"), 0)
        )
        self.assertIsNone(started)
        return reactor, client

    def test_listensAndAccepts(self) -> None:
        """
        The gateway listens on the address the client reached it on and
        answers with it; the expected peer gets the second reply, with its
        address, and a relay becomes the session; the port is closed.
        """
        reactor, client = self.start()
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual(interface, "127.0.0.1")
        self.assertIsInstance(client.session, BindSession)
        [(code, announced, _)] = client.replies
        self.assertEqual((code, announced), (ReplyCode.SUCCEEDED, ip_address("127.0.0.1")))
        peer = factory.buildProtocol(None)
        peer.makeConnection(StringTransport(peerAddress=address.IPv4Address("TCP", "127.0.0.1", 5555)))
        self.assertEqual(client.replies[1], (ReplyCode.SUCCEEDED, ip_address("127.0.0.1"), 5555))
        self.assertEqual((client.record.peer, client.record.reply), ("127.0.0.1:5555", 0))
        self.assertIsInstance(client.session, Relay)

    def test_wrongPeerRefused(self) -> None:
        """
        A connection from another host is closed and the wait goes on.
        """
        reactor, client = self.start()
        factory = reactor.tcpServers[0][1]
        stranger = LenientTransport(peerAddress=address.IPv4Address("TCP", "127.0.0.2", 5555))
        factory.buildProtocol(None).makeConnection(stranger)
        self.assertEqual(len(client.replies), 1)
        self.assertIsInstance(client.session, BindSession)

    def test_timeout(self) -> None:
        """
        No peer within bind-timeout: the client is refused with 0x06.
        """
        reactor, client = self.start(bindTimeout=5.0)
        reactor.advance(5.0)
        [refusal] = client.refusals
        self.assertEqual((refusal.reply, refusal.outcome), (ReplyCode.TTL_EXPIRED, Outcome.TIMEOUT))


class UDPAssociateTests(SynchronousTestCase):
    """
    UDP ASSOCIATE: decided when requested, then a socket of its own.
    """

    def test_permitted(self) -> None:
        """
        A permitted association opens a UDP socket on the address the
        client reached, answers with it, counts for the client and becomes
        the session.
        """
        reactor, gateway = gatewayWith()
        client = FakeClient(gateway)
        started = COMMANDS[Command.UDP].start(
            client, accessRequest(Command.UDP), socks5(CommandCode.UDP_ASSOCIATE, IPv4Address(0), 0)
        )
        self.successResultOf(started)
        [udpPort] = reactor.udpPorts
        self.assertEqual(udpPort.interface, "127.0.0.1")
        self.assertEqual(client.replies, [(ReplyCode.SUCCEEDED, ip_address("127.0.0.1"), 40001)])
        self.assertIsInstance(client.session, UDPAssociation)
        self.assertEqual(dict(gateway.sessions.associations), {ip_address("127.0.0.1"): 1})

    def test_denied(self) -> None:
        """
        A client no rule permits UDP is refused with 0x02 before any socket
        is opened.
        """
        reactor, gateway = gatewayWith('[[rule]]\naction = "permit"\ncommands = ["connect"]\n')
        client = FakeClient(gateway)
        started = COMMANDS[Command.UDP].start(
            client, accessRequest(Command.UDP), socks5(CommandCode.UDP_ASSOCIATE, IPv4Address(0), 0)
        )
        refusal = self.failureResultOf(started, RequestRefused).value
        self.assertEqual(refusal.reply, ReplyCode.NOT_ALLOWED)
        self.assertEqual((reactor.udpPorts, client.session), ([], None))
