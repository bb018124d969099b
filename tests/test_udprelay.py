"""
UDP ASSOCIATE (RFC 1928, section 7) over real loopback sockets: the
control connection and the UDP header written out by hand, a UDP echo
server as the destination.

Where a test shows that something is I{not} relayed, it sends the datagram
that must be dropped, then one that must pass on the same path, and checks
that only the second arrives: the relay reads its socket in order, so the
first would have arrived first.
"""

from __future__ import annotations

import os
import socket
from ipaddress import IPv4Address
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    connectProtocol,
)
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from zope.interface import implementer

from socksgate.config import ServerConfig, parseConfig
from socksgate.server import MAX_ASSOCIATIONS_PER_CLIENT, SOCKSServerFactory
from socksgate.testing import RunningGateway, StaticResolver, startGateway
from socksgate.udprelay import DECISION_CACHE_SECONDS, QUEUED_PER_DESTINATION

from .helpers import LoopbackTestCase, RawClient, collectSessions

V4_LOOPBACK = b"\x7f\x00\x00\x01"
V6_LOOPBACK = b"\x00" * 15 + b"\x01"
NO_ADDRESS = b"\x01" + b"\x00" * 4


def udpHeader(atyp: int, address: bytes, port: int, frag: int = 0) -> bytes:
    """
    The SOCKS UDP request header, field by field: RSV, FRAG, ATYP,
    DST.ADDR, DST.PORT.
    """
    return b"\x00\x00" + bytes([frag, atyp]) + address + port.to_bytes(2, "big")


def toIPv4(port: int, address: bytes = V4_LOOPBACK) -> bytes:
    """
    The header of a datagram for an IPv4 destination.
    """
    return udpHeader(1, address, port)


def toIPv6(port: int, address: bytes = V6_LOOPBACK) -> bytes:
    """
    The header of a datagram for an IPv6 destination.
    """
    return udpHeader(4, address, port)


def toName(name: bytes, port: int) -> bytes:
    """
    The header of a datagram for a named destination.
    """
    return udpHeader(3, bytes([len(name)]) + name, port)


def associateRequest(address: bytes = NO_ADDRESS, port: int = 0) -> bytes:
    """
    A SOCKS5 greeting offering no authentication, then UDP ASSOCIATE with
    ATYP and DST.ADDR in C{address} and DST.PORT C{port}.
    """
    return b"\x05\x01\x00" + b"\x05\x03\x00" + address + port.to_bytes(2, "big")


class UDPPeer(DatagramProtocol):
    """
    A UDP socket of a test: hands out what it receives, in order.

    @ivar everything: every datagram received, with its sender.
    """

    noisy = False

    def __init__(self) -> None:
        self.everything: list[tuple[bytes, tuple[str, int]]] = []
        self._unread: list[tuple[bytes, tuple[str, int]]] = []
        self._waiters: list[Deferred[tuple[bytes, tuple[str, int]]]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Keep the datagram, or give it to whoever waits.
        """
        received = (datagram, (addr[0], addr[1]))
        self.everything.append(received)
        if self._waiters:
            self._waiters.pop(0).callback(received)
        else:
            self._unread.append(received)

    def next(self) -> Deferred[tuple[bytes, tuple[str, int]]]:
        """
        The next datagram and its sender.
        """
        if self._unread:
            return succeed(self._unread.pop(0))
        waiter: Deferred[tuple[bytes, tuple[str, int]]] = Deferred()
        self._waiters.append(waiter)
        return waiter

    async def nextData(self) -> bytes:
        """
        The next datagram, without its sender.
        """
        return (await self.next())[0]

    def send(self, datagram: bytes, address: tuple[str, int]) -> None:
        """
        Send a datagram.
        """
        self.transport.write(datagram, address)

    @property
    def port(self) -> int:
        """
        The port it is bound to.
        """
        return self.transport.getHost().port


class UDPEcho(UDPPeer):
    """
    A UDP echo server: sends every datagram back to its sender.
    """

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Keep the datagram and send it back.
        """
        super().datagramReceived(datagram, addr)
        self.transport.write(datagram, addr)

    @property
    def payloads(self) -> list[bytes]:
        """
        What it has received so far.
        """
        return [datagram for datagram, _ in self.everything]


def openUDP(testCase: Any, peer: UDPPeer, interface: str = "127.0.0.1") -> UDPPeer:
    """
    Bind C{peer} to an ephemeral port of C{interface}, closed with the test.
    """
    port = reactor.listenUDP(0, peer, interface=interface, maxPacketSize=65536)
    testCase.addCleanup(port.stopListening)
    return peer


def portIsFree(host: str, port: int) -> bool:
    """
    Whether a UDP socket can be bound to C{host:port} now.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Association:
    """
    A granted association as the test client sees it.

    @ivar control: the TCP control connection.
    @ivar reply: the reply's bytes.
    @ivar relay: BND.ADDR (as text) and BND.PORT.
    """

    def __init__(self, control: RawClient, reply: bytes, relay: tuple[str, int]) -> None:
        self.control, self.reply, self.relay = control, reply, relay


async def associate(
    gateway: RunningGateway | int,
    address: bytes = NO_ADDRESS,
    port: int = 0,
    endpoint: Any = None,
) -> Association:
    """
    Open a control connection, ask for UDP ASSOCIATE, and read the reply.

    @param endpoint: where to connect; the gateway's IPv4 address by default.
    """
    if endpoint is None:
        assert isinstance(gateway, RunningGateway)
        if ":" in gateway.host:
            endpoint = TCP6ClientEndpoint(reactor, gateway.host, gateway.port)
        else:
            endpoint = TCP4ClientEndpoint(reactor, gateway.host, gateway.port)
    control = await connectProtocol(endpoint, RawClient())
    control.transport.write(associateRequest(address, port))
    assert await control.receive(2) == b"\x05\x00"
    head = await control.receive(4)
    if head[3] == 4:
        rest = await control.receive(18)
        relayHost = socket.inet_ntop(socket.AF_INET6, rest[:16])
    else:
        rest = await control.receive(6)
        relayHost = socket.inet_ntop(socket.AF_INET, rest[:4])
    return Association(control, head + rest, (relayHost, int.from_bytes(rest[-2:], "big")))


class Udp:
    """
    Shared set-up: a gateway, a UDP echo server and a client UDP socket.
    """

    def startAll(self: Any, **gatewayArguments: Any) -> None:
        """
        Start the gateway (with C{gatewayArguments} for L{startGateway}),
        the echo server and the client socket, and collect the records.
        """
        self.records = collectSessions(self)
        self.gateway = startGateway(self, **gatewayArguments)
        self.echo = openUDP(self, UDPEcho())
        self.client = openUDP(self, UDPPeer())


class EchoTests(Udp, LoopbackTestCase):
    """
    Datagrams go out to IPv4, IPv6 and named destinations and their
    answers come back with the header naming the sender.
    """

    async def test_echoIPv4(self) -> None:
        """
        The reply is success with BND.ADDR the address the client reached
        the gateway on and BND.PORT the relay's port; a datagram for an
        IPv4 destination reaches it from the relay, and the answer comes
        back from the relay's address with the header naming the echo
        server.
        """
        self.startAll()
        association = await associate(self.gateway)
        self.assertEqual(association.reply[:8], b"\x05\x00\x00\x01" + V4_LOOPBACK)
        self.assertNotEqual(association.relay[1], 0)
        self.client.send(toIPv4(self.echo.port) + b"ping", association.relay)
        data, sender = await self.client.next()
        self.assertEqual(data, toIPv4(self.echo.port) + b"ping")
        self.assertEqual(sender, association.relay)
        self.assertEqual(self.echo.everything[0][1], association.relay)

    async def test_echoName(self) -> None:
        """
        A named destination is resolved through the gateway's resolver,
        once for several datagrams; the answer's header carries the
        address it came from.
        """
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        self.startAll(resolver=resolver)
        association = await associate(self.gateway)
        for payload in (b"one", b"two", b"three"):
            self.client.send(toName(b"echo.test", self.echo.port) + payload, association.relay)
            self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + payload)
        self.assertEqual(resolver.asked, ["echo.test"])

    async def test_echoIPv6FromIPv4Client(self) -> None:
        """
        A client that reached the gateway over IPv4 can still send to an
        IPv6 destination: the datagram leaves from an IPv6 socket of the
        association, and the answer comes back through the relay port
        with an IPv6 header.
        """
        self.startAll()
        echo6 = openUDP(self, UDPEcho(), "::1")
        association = await associate(self.gateway)
        self.client.send(toIPv6(echo6.port) + b"six", association.relay)
        data, sender = await self.client.next()
        self.assertEqual(data, toIPv6(echo6.port) + b"six")
        self.assertEqual(sender, association.relay)
        self.assertEqual(echo6.everything[0][1][0], "::1")

    async def test_clientOverIPv6(self) -> None:
        """
        A client that reached the gateway on ::1 gets a relay on ::1
        (BND.ADDR with ATYP 4), and reaches IPv6 and IPv4 destinations.
        """
        self.records = collectSessions(self)
        gateway = startGateway(self, interface="::1")
        echo4 = openUDP(self, UDPEcho())
        echo6 = openUDP(self, UDPEcho(), "::1")
        client = openUDP(self, UDPPeer(), "::1")
        association = await associate(gateway)
        self.assertEqual(association.reply[:4], b"\x05\x00\x00\x04")
        self.assertEqual(association.relay[0], "::1")
        client.send(toIPv6(echo6.port) + b"to six", association.relay)
        self.assertEqual(await client.nextData(), toIPv6(echo6.port) + b"to six")
        client.send(toIPv4(echo4.port) + b"to four", association.relay)
        self.assertEqual(await client.nextData(), toIPv4(echo4.port) + b"to four")

    async def test_largestDatagram(self) -> None:
        """
        A datagram as large as UDP over IPv4 allows (65507 bytes with the
        10-byte header) is relayed whole both ways.
        """
        self.startAll()
        association = await associate(self.gateway)
        payload = os.urandom(65507 - 10)
        self.client.send(toIPv4(self.echo.port) + payload, association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + payload)
        self.assertEqual(self.echo.payloads, [payload])

    async def test_controlBytesIgnored(self) -> None:
        """
        Bytes the client sends on the control connection after the reply
        are ignored; the association goes on.
        """
        self.startAll()
        association = await associate(self.gateway)
        association.control.transport.write(b"anything at all")
        self.client.send(toIPv4(self.echo.port) + b"still", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"still")

    async def test_externalAddress(self) -> None:
        """
        With C{external} set, the relay listens there: BND.ADDR is that
        address, and destinations see datagrams come from it.
        """
        self.startAll(config=ServerConfig(external="127.0.0.3"))
        association = await associate(self.gateway)
        self.assertEqual(association.relay[0], "127.0.0.3")
        self.client.send(toIPv4(self.echo.port) + b"x", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"x")
        self.assertEqual(self.echo.everything[0][1], association.relay)

    async def test_externalFamilyOnly(self) -> None:
        """
        With an IPv4 C{external} address, a datagram for an IPv6
        destination is dropped (counted), and IPv4 ones still pass.
        """
        self.startAll(config=ServerConfig(external="127.0.0.1"))
        echo6 = openUDP(self, UDPEcho(), "::1")
        association = await associate(self.gateway)
        self.client.send(toIPv6(echo6.port) + b"six", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"four", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"four")
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(echo6.everything, [])
        self.assertEqual(self.records[0]["datagrams_dropped"], 1)

    async def test_advertise(self) -> None:
        """
        With C{advertise} set, BND.ADDR is that address; BND.PORT is still
        the relay's port.
        """
        self.startAll(config=ServerConfig(advertise="192.0.2.7"))
        association = await associate(self.gateway)
        self.assertEqual(association.relay[0], "192.0.2.7")
        self.client.send(toIPv4(self.echo.port) + b"x", ("127.0.0.1", association.relay[1]))
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"x")


class ClientFilterTests(Udp, LoopbackTestCase):
    """
    Only the client's address and port may use the relay; bad datagrams
    are dropped.
    """

    async def test_otherSourcePort(self) -> None:
        """
        With DST.PORT 0, the first datagram fixes the client's port: a
        datagram from another port of the same address is not relayed.
        """
        self.startAll()
        other = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"first", association.relay)
        await self.client.next()
        other.send(toIPv4(self.echo.port) + b"stranger", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"second", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"second")
        self.assertEqual(self.echo.payloads, [b"first", b"second"])
        self.assertEqual(other.everything, [])

    async def test_declaredPort(self) -> None:
        """
        With DST.ADDR and DST.PORT given, only that address and port may
        send, even before the client's first datagram.
        """
        self.startAll()
        other = openUDP(self, UDPPeer())
        association = await associate(self.gateway, b"\x01" + V4_LOOPBACK, self.client.port)
        other.send(toIPv4(self.echo.port) + b"stranger", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"client", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"client")
        self.assertEqual(self.echo.payloads, [b"client"])

    async def test_otherAddress(self) -> None:
        """
        A datagram from another address (127.0.0.2) is not relayed, and
        does not fix the client's port.
        """
        self.startAll()
        other = openUDP(self, UDPPeer(), "127.0.0.2")
        association = await associate(self.gateway)
        other.send(toIPv4(self.echo.port) + b"stranger", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"client", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"client")
        self.assertEqual(self.echo.payloads, [b"client"])
        self.assertEqual(other.everything, [])

    async def test_fragmentDropped(self) -> None:
        """
        A datagram with FRAG other than 0 is dropped.
        """
        self.startAll()
        association = await associate(self.gateway)
        for frag in (1, 0x81):
            fragment = udpHeader(1, V4_LOOPBACK, self.echo.port, frag=frag) + b"fragment"
            self.client.send(fragment, association.relay)
        self.client.send(toIPv4(self.echo.port) + b"whole", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"whole")
        self.assertEqual(self.echo.payloads, [b"whole"])

    async def test_malformedDropped(self) -> None:
        """
        Datagrams with a truncated header, a non-zero RSV, an unknown ATYP,
        a truncated address or DST.PORT 0 are dropped, and none of them
        fixes the client's port.
        """
        self.startAll()
        other = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        echo = self.echo.port.to_bytes(2, "big")
        for bad in (
            b"\x00\x00\x00",
            b"\x01\x00\x00\x01" + V4_LOOPBACK + echo + b"rsv",
            b"\x00\x00\x00\x09" + V4_LOOPBACK + echo + b"atyp",
            b"\x00\x00\x00\x04" + V4_LOOPBACK,
            b"\x00\x00\x00\x03\x05abc",
            toIPv4(0) + b"port zero",
        ):
            other.send(bad, association.relay)
        self.client.send(toIPv4(self.echo.port) + b"good", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"good")
        self.assertEqual(self.echo.payloads, [b"good"])
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[0]["datagrams_dropped"], 6)

    async def test_thirdPartyAnswer(self) -> None:
        """
        A datagram sent to the relay by anyone but a destination the client
        has sent to (here: another port of the destination's address) is
        not passed to the client.
        """
        self.startAll()
        third = openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"first", association.relay)
        await self.client.next()
        third.send(b"unsolicited", association.relay)
        third.send(toIPv4(self.echo.port) + b"unsolicited", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"second", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"second")
        self.assertEqual(self.echo.payloads, [b"first", b"second"])

    async def test_answerBeforeAsking(self) -> None:
        """
        A destination the client has not sent to yet cannot send to the
        client through the relay, even if it knows the relay's port.
        """
        self.startAll()
        association = await associate(self.gateway)
        self.echo.send(b"hello?", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"now", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"now")
        self.assertEqual(len(self.client.everything), 1)


class PolicyTests(Udp, LoopbackTestCase):
    """
    Every destination is decided by the policy with the command C{udp}.
    """

    rules = """
        [[rule]]
        action = "deny"
        destinations = ["blocked.test", "127.0.0.2"]
        commands = ["udp"]
        message = "not there"

        [[rule]]
        action = "permit"
        clients = ["127.0.0.0/8"]
    """

    async def test_deniedDestinations(self) -> None:
        """
        A datagram to a denied name (refused before any lookup), to a
        denied address, or to a name that resolves only to denied
        addresses goes nowhere and is counted as denied; a permitted one
        passes.
        """
        resolver = StaticResolver({"blocked.test": ["127.0.0.1"], "inner.test": ["127.0.0.2"]})
        self.startAll(policy=parseConfig(self.rules, "udp.toml").policy, resolver=resolver)
        association = await associate(self.gateway)
        self.client.send(toName(b"blocked.test", self.echo.port) + b"by name", association.relay)
        self.client.send(toIPv4(self.echo.port, b"\x7f\x00\x00\x02") + b"by address", association.relay)
        self.client.send(toName(b"inner.test", self.echo.port) + b"resolved", association.relay)
        self.client.send(toName(b"blocked.test", self.echo.port) + b"cached", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"permitted", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"permitted")
        self.assertEqual(self.echo.payloads, [b"permitted"])
        self.assertEqual(resolver.asked, ["inner.test"])
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[0]["datagrams_denied"], 4)
        self.assertEqual(self.records[0]["datagrams_out"], 1)

    async def test_policySeesUDP(self) -> None:
        """
        The policy is asked with command C{udp}, the client's address, and
        each destination and port.
        """
        asked = []

        class Recording:
            def decide(self, request: Any) -> Any:
                """
                Note the request and decide it by the rules.
                """
                asked.append(request)
                return parseConfig(PolicyTests.rules, "udp.toml").policy.decide(request)

        self.startAll(policy=Recording())
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"x", association.relay)
        await self.client.next()
        [request] = [each for each in asked if each.destinationAddress is not None]
        self.assertEqual(request.command, "udp")
        self.assertEqual(request.client, IPv4Address("127.0.0.1"))
        self.assertEqual(
            (request.destinationAddress, request.port), (IPv4Address("127.0.0.1"), self.echo.port)
        )

    async def test_unresolvableName(self) -> None:
        """
        A datagram to a name that does not resolve is dropped (counted as
        dropped, not denied).
        """
        self.startAll(resolver=StaticResolver({}))
        association = await associate(self.gateway)
        self.client.send(toName(b"nowhere.test", self.echo.port) + b"lost", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"found", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"found")
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[0]["datagrams_dropped"], 1)
        self.assertEqual(self.records[0]["datagrams_denied"], 0)


class AssociationPolicyTests(Udp, LoopbackTestCase):
    """
    The policy decides UDP ASSOCIATE when it is requested (client,
    listener, user, command C{udp}), and each datagram's destination with
    the policy in force when it is sent.
    """

    async def refusedAssociation(self) -> bytes:
        """
        Ask for an association that must be refused, and return the whole
        answer once the gateway closes the connection.
        """
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.gateway.port)
        control = await connectProtocol(endpoint, RawClient())
        control.transport.write(associateRequest())
        return await control.receiveAll()

    async def test_clientNetworkNotPermitted(self) -> None:
        """
        A client whose network no rule permits gets 0x02 and no relay
        socket; the record says denied.
        """
        rules = '[[rule]]\naction = "permit"\nclients = ["192.0.2.0/24"]\n'
        self.startAll(policy=parseConfig(rules, "udp.toml").policy)
        self.assertEqual(await self.refusedAssociation(), b"\x05\x00" + b"\x05\x02\x00\x01" + b"\x00" * 6)
        await self.gateway.sessions.whenEmpty()
        [record] = self.records
        self.assertEqual((record["command"], record["outcome"], record["reply"]), ("udp", "denied", 2))

    async def test_noRulePermitsUDP(self) -> None:
        """
        A policy in which no rule permits C{udp} refuses the association
        with 0x02, though the same client may CONNECT.
        """
        rules = '[[rule]]\naction = "permit"\ncommands = ["connect", "bind"]\n'
        self.startAll(policy=parseConfig(rules, "udp.toml").policy)
        self.assertEqual((await self.refusedAssociation())[2:4], b"\x05\x02")

    async def test_denyingRuleFirst(self) -> None:
        """
        A rule that denies C{udp} to any destination for the client, before
        one that permits everything, refuses the association with its
        message.
        """
        rules = (
            '[[rule]]\naction = "deny"\ncommands = ["udp"]\nmessage = "no UDP here"\n'
            '[[rule]]\naction = "permit"\n'
        )
        self.startAll(policy=parseConfig(rules, "udp.toml").policy)
        self.assertEqual((await self.refusedAssociation())[2:4], b"\x05\x02")
        await self.gateway.sessions.whenEmpty()
        self.assertEqual((self.records[0]["rule"], self.records[0]["message"]), (1, "no UDP here"))

    async def test_someDestinationsPermitted(self) -> None:
        """
        A rule that permits C{udp} only to some destinations and ports
        permits the association (the record names it); the datagrams are
        decided one by one.
        """
        self.startAll()
        rules = (
            '[[rule]]\naction = "deny"\ndestinations = ["127.0.0.2"]\ncommands = ["udp"]\n'
            f'[[rule]]\naction = "permit"\ndestinations = ["127.0.0.1"]\nports = ["{self.echo.port}"]\n'
        )
        factory = self.gateway.factory
        factory.configure(factory.config, parseConfig(rules, "udp.toml").policy, factory.auth)
        association = await associate(self.gateway)
        otherPort = self.echo.port + 1 if self.echo.port < 65535 else 1
        self.client.send(toIPv4(otherPort) + b"x", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"permitted", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"permitted")
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual((self.records[0]["rule"], self.records[0]["datagrams_denied"]), (2, 1))

    async def test_reloadAppliesToOpenAssociation(self) -> None:
        """
        After a reload that denies a destination, an open association
        stops relaying to it, to destinations it first uses after the
        reload, and stops passing answers back from destinations the old
        policy let it use.
        """
        self.startAll()
        used, fresh = openUDP(self, UDPPeer()), openUDP(self, UDPPeer())
        association = await associate(self.gateway)
        self.client.send(toIPv4(used.port) + b"before", association.relay)
        payload, relayAddress = await used.next()
        self.assertEqual(payload, b"before")

        factory = self.gateway.factory
        rules = (
            f'[[rule]]\naction = "deny"\ncommands = ["udp"]\nports = ["{used.port}", "{fresh.port}"]\n'
            '[[rule]]\naction = "permit"\n'
        )
        factory.configure(factory.config, parseConfig(rules, "reloaded.toml").policy, factory.auth)
        used.send(b"unasked answer", relayAddress)
        self.client.send(toIPv4(used.port) + b"after", association.relay)
        self.client.send(toIPv4(fresh.port) + b"after", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"still permitted", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"still permitted")
        self.assertEqual([data for data, _ in used.everything], [b"before"])
        self.assertEqual(fresh.everything, [])
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[0]["datagrams_denied"], 2)
        self.assertEqual(self.records[0]["datagrams_in"], 1)


@implementer(IHostnameResolver)
class HeldResolver:
    """
    A resolver that answers only when the test says so.

    @ivar asked: the names asked for.
    @ivar firstQuestion: fires when the first name is asked.
    """

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.asked: list[str] = []
        self.waiting: list[IResolutionReceiver] = []
        self.firstQuestion: Deferred[None] = Deferred()

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IResolutionReceiver:
        """
        Hold the question.
        """
        self.asked.append(hostName)
        resolutionReceiver.resolutionBegan(None)
        self.waiting.append(resolutionReceiver)
        if not self.firstQuestion.called:
            self.firstQuestion.callback(None)
        return resolutionReceiver

    def answer(self) -> None:
        """
        Answer every question held.
        """
        from twisted.internet.address import IPv4Address as Address

        waiting, self.waiting = self.waiting, []
        for receiver in waiting:
            for address in self.addresses:
                receiver.addressResolved(Address("UDP", address, 0))
            receiver.resolutionComplete()


class ResolvingTests(Udp, LoopbackTestCase):
    """
    Datagrams wait, a few at most, while their destination's name resolves.
    """

    async def test_queueWhileResolving(self) -> None:
        """
        While a name resolves, the first datagrams for it wait and are
        sent once it has; the ones beyond the queue's size are dropped.
        """
        resolver = HeldResolver(["127.0.0.1"])
        self.startAll(resolver=resolver)
        association = await associate(self.gateway)
        total = QUEUED_PER_DESTINATION + 2
        for index in range(total):
            self.client.send(toName(b"slow.test", self.echo.port) + b"q%d" % index, association.relay)
        # Once this one is back, the relay has read all those before it.
        self.client.send(toIPv4(self.echo.port) + b"marker", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"marker")
        self.assertEqual(resolver.asked, ["slow.test"])
        resolver.answer()
        for index in range(QUEUED_PER_DESTINATION):
            self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"q%d" % index)
        self.client.send(toName(b"slow.test", self.echo.port) + b"after", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"after")
        expected = [b"marker"] + [b"q%d" % index for index in range(QUEUED_PER_DESTINATION)] + [b"after"]
        self.assertEqual(self.echo.payloads, expected)
        self.assertEqual(resolver.asked, ["slow.test"])
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        self.assertEqual(self.records[0]["datagrams_dropped"], 2)

    async def test_closeWhileResolving(self) -> None:
        """
        An association that ends while a name resolves ends cleanly; the
        late answer sends nothing.
        """
        resolver = HeldResolver(["127.0.0.1"])
        self.startAll(resolver=resolver)
        association = await associate(self.gateway)
        self.client.send(toName(b"slow.test", self.echo.port) + b"late", association.relay)
        await resolver.firstQuestion
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        resolver.answer()
        self.assertEqual(self.echo.everything, [])
        self.assertEqual(self.records[0]["outcome"], "closed")


class ClockedReactor:
    """
    The global reactor for I/O, with a L{Clock} for time, so a test can
    move time on without waiting.
    """

    def __init__(self) -> None:
        self.clock = Clock()

    def seconds(self) -> float:
        """
        The clock's time.
        """
        return self.clock.seconds()

    def callLater(self, delay: float, function: Any, *args: Any, **kwargs: Any) -> Any:
        """
        Schedule on the clock.
        """
        return self.clock.callLater(delay, function, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


class EndTests(Udp, LoopbackTestCase):
    """
    The association ends with its control connection, or when idle, and
    leaves its record.
    """

    async def test_closedControlConnection(self) -> None:
        """
        When the client closes the control connection, the relay's port is
        closed (it can be bound again) and the gateway forgets the session.
        """
        self.startAll()
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"x", association.relay)
        await self.client.next()
        self.assertFalse(portIsFree(*association.relay))
        association.control.transport.loseConnection()
        await association.control.closed
        await self.gateway.sessions.whenEmpty()
        self.assertTrue(portIsFree(*association.relay))
        self.assertEqual(len(self.records), 1)

    async def test_halfClosedControlConnection(self) -> None:
        """
        A FIN on the control connection ends the association too: the
        gateway closes the connection and the relay's port.
        """
        self.startAll()
        association = await associate(self.gateway)
        association.control.transport.loseWriteConnection()
        await association.control.closed
        await self.gateway.sessions.whenEmpty()
        self.assertTrue(portIsFree(*association.relay))
        self.assertEqual(self.records[0]["outcome"], "closed")

    async def test_idleTimeout(self) -> None:
        """
        After C{udp-idle-timeout} seconds without a datagram the gateway
        closes the control connection and the relay's port.
        """
        self.startAll(config=ServerConfig(udpIdleTimeout=0.5))
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"x", association.relay)
        await self.client.next()
        await association.control.closed
        await self.gateway.sessions.whenEmpty()
        self.assertTrue(portIsFree(*association.relay))
        [record] = self.records
        self.assertEqual(record["outcome"], "closed")
        self.assertIn("no datagram for 0.5 seconds", record["message"])

    async def test_datagramsKeepAlive(self) -> None:
        """
        A datagram relayed either way restarts the idle time: the
        association ends only C{udp-idle-timeout} seconds after the last.
        """
        clocked = ClockedReactor()
        self.startAll(config=ServerConfig(udpIdleTimeout=300.0), reactor=clocked)
        association = await associate(self.gateway)
        clocked.clock.advance(200)
        self.client.send(toIPv4(self.echo.port) + b"alive", association.relay)
        await self.client.next()
        clocked.clock.advance(200)
        self.client.send(toIPv4(self.echo.port) + b"still", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"still")
        self.assertEqual(self.records, [])
        clocked.clock.advance(300)
        await association.control.closed
        self.assertEqual(self.records[0]["outcome"], "closed")

    async def test_decisionCacheExpires(self) -> None:
        """
        A name's addresses and decision are reused for a while, then asked
        for again.
        """
        clocked = ClockedReactor()
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        self.startAll(reactor=clocked, resolver=resolver)
        association = await associate(self.gateway)
        for payload in (b"a", b"b"):
            self.client.send(toName(b"echo.test", self.echo.port) + payload, association.relay)
            await self.client.next()
        self.assertEqual(resolver.asked, ["echo.test"])
        clocked.clock.advance(DECISION_CACHE_SECONDS + 1)
        self.client.send(toName(b"echo.test", self.echo.port) + b"c", association.relay)
        await self.client.next()
        self.assertEqual(resolver.asked, ["echo.test", "echo.test"])

    async def test_record(self) -> None:
        """
        The session record of an association: command C{udp}, outcome
        C{closed}, reply 0, the datagrams and payload bytes each way, and
        the datagrams denied and dropped.
        """
        policy = parseConfig(PolicyTests.rules, "udp.toml").policy
        self.startAll(policy=policy)
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"12345", association.relay)
        await self.client.next()
        self.client.send(toIPv4(self.echo.port, b"\x7f\x00\x00\x02") + b"denied", association.relay)
        self.client.send(b"\x00\x00", association.relay)
        self.client.send(toIPv4(self.echo.port) + b"1234567", association.relay)
        await self.client.next()
        association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        [record] = self.records
        expected = {
            "command": "udp",
            "version": "5",
            "outcome": "closed",
            "reply": 0,
            "destination": "0.0.0.0:0",
            "message": "client closed",
            "bytes_out": 12,
            "bytes_in": 12,
            "datagrams_out": 2,
            "datagrams_in": 2,
            "datagrams_denied": 1,
            "datagrams_dropped": 1,
        }
        self.assertEqual({key: record[key] for key in expected}, expected)


class LimitTests(Udp, LoopbackTestCase):
    """
    A client address may hold a bounded number of associations.
    """

    async def test_perClientLimit(self) -> None:
        """
        The association beyond the limit gets REP 0x01 and the record
        outcome C{denied}; another client address is not affected; once
        the client's associations close, it may open new ones.
        """
        self.startAll()
        held = [await associate(self.gateway) for _ in range(MAX_ASSOCIATIONS_PER_CLIENT)]
        refused = await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.gateway.port), RawClient()
        )
        refused.transport.write(associateRequest())
        self.assertEqual(await refused.receiveAll(), b"\x05\x00" + b"\x05\x01\x00\x01" + b"\x00" * 6)
        self.assertEqual(self.records[0]["outcome"], "denied")
        self.assertEqual(self.records[0]["reply"], 1)

        elsewhere = TCP4ClientEndpoint(reactor, "127.0.0.1", self.gateway.port, bindAddress=("127.0.0.2", 0))
        other = await associate(self.gateway, endpoint=elsewhere)
        self.assertEqual(other.reply[:2], b"\x05\x00")

        for association in held + [other]:
            association.control.transport.loseConnection()
        await self.gateway.sessions.whenEmpty()
        again = await associate(self.gateway)
        self.assertEqual(again.reply[:2], b"\x05\x00")
        self.client.send(toIPv4(self.echo.port) + b"again", again.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"again")


class UNIXSocketTests(Udp, LoopbackTestCase):
    """
    A control connection without an IP address (a UNIX socket).
    """

    def startUNIXGateway(self) -> str:
        """
        Start a gateway on a UNIX socket, stopped with the test.

        @return: the socket's path.
        """
        factory = SOCKSServerFactory(reactor, listener="unix")
        path = self.mktemp()
        port = reactor.listenUNIX(path, factory)

        async def stop() -> None:
            await port.stopListening()
            for protocol in list(factory.sessions.open):
                protocol.abortConnection()
            await factory.sessions.whenEmpty()

        self.addCleanup(lambda: Deferred.fromCoroutine(stop()))
        return path

    async def test_noClientAddress(self) -> None:
        """
        Over a UNIX socket with DST.ADDR all zeros, the gateway cannot know
        whom to accept datagrams from: REP 0x01.
        """
        self.startAll()
        path = self.startUNIXGateway()
        control = await connectProtocol(UNIXClientEndpoint(reactor, path), RawClient())
        control.transport.write(associateRequest())
        self.assertEqual(await control.receiveAll(), b"\x05\x00" + b"\x05\x01\x00\x01" + b"\x00" * 6)
        # The record names the client as a UNIX socket's, not a Python repr.
        self.assertEqual(self.records[-1]["client"], "unix")

    async def test_declaredClientAddress(self) -> None:
        """
        Over a UNIX socket with DST.ADDR and DST.PORT given, the relay
        listens on loopback and serves that address and port.
        """
        self.startAll()
        path = self.startUNIXGateway()
        association = await associate(
            0, b"\x01" + V4_LOOPBACK, self.client.port, endpoint=UNIXClientEndpoint(reactor, path)
        )
        self.assertEqual(association.relay[0], "127.0.0.1")
        self.client.send(toIPv4(self.echo.port) + b"unix", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"unix")


class HotPathTests(Udp, LoopbackTestCase):
    """
    The relay's work per datagram: a header seen before is not parsed
    again, and datagrams go out through the socket's own C{sendto}.
    """

    async def test_headerParsedOnce(self) -> None:
        """
        Datagrams with the same header are parsed once; each is relayed
        with its own payload, and another header is parsed in its turn.
        """
        import socksgate.udprelay as udprelay

        parsed = []

        def counting(data: bytes) -> Any:
            parsed.append(data)
            return parse(data)

        parse = udprelay.parseUDPDatagram
        self.patch(udprelay, "parseUDPDatagram", counting)
        self.startAll()
        association = await associate(self.gateway)
        header = toIPv4(self.echo.port)
        for payload in (b"one", b"two", b"three"):
            self.client.send(header + payload, association.relay)
            self.assertEqual(await self.client.nextData(), header + payload)
        other = openUDP(self, UDPEcho())
        self.client.send(toIPv4(other.port) + b"four", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(other.port) + b"four")
        self.assertEqual(parsed, [header + b"one", toIPv4(other.port) + b"four"])

    async def test_sendsWithSocket(self) -> None:
        """
        Once listening, the relay sends with the socket's C{sendto}, not
        with the transport's C{write} (which checks every address again).
        """
        from twisted.internet import udp

        writes = []
        write = udp.Port.write

        def recording(port: Any, datagram: bytes, addr: Any = None) -> Any:
            writes.append(datagram)
            return write(port, datagram, addr)

        self.patch(udp.Port, "write", recording)
        self.startAll()
        association = await associate(self.gateway)
        self.client.send(toIPv4(self.echo.port) + b"ping", association.relay)
        self.assertEqual(await self.client.nextData(), toIPv4(self.echo.port) + b"ping")
        # The test's client and echo server write; the relay does not.
        self.assertEqual(writes, [toIPv4(self.echo.port) + b"ping", b"ping"])
