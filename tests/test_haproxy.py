"""
The C{haproxy:} listener: socksgate's PROXY protocol wrapper, in memory
and over real loopback sockets with hand-written v1 and v2 headers.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from socksgate.haproxy import ProxyHeaderFactory
from socksgate.interfaces import IAccessPolicy
from socksgate.policy import AccessRequest, Decision, LoopbackOnlyPolicy
from socksgate.server import SOCKSServerFactory
from socksgate.service import listenerService

from .haproxy_helpers import (
    PROXIED_LISTENER,
    V1_UNKNOWN,
    V2_LOCAL,
    V2_SIGNATURE,
    startHalfCloseEcho,
    startProxiedGateway,
    v1Header,
    v2Header,
    waitForRecords,
)
from .helpers import LoopbackTestCase, RawClient, collectSessions, connectRaw, socks4Connect, socks5Connect

PROXY_PEER = IPv4Address("TCP", "127.0.0.1", 40100)
LISTENER_HOST = IPv4Address("TCP", "127.0.0.1", 1080)


@implementer(IHalfCloseableProtocol)
class _Recorder(Protocol):
    """
    A wrapped protocol that writes down what happens to it.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.peerAtStart: Any = None

    def connectionMade(self) -> None:
        self.peerAtStart = self.transport.getPeer()
        self.events.append("connectionMade")

    def dataReceived(self, data: bytes) -> None:
        self.events.append(data)

    def readConnectionLost(self) -> None:
        self.events.append("readConnectionLost")

    def writeConnectionLost(self) -> None:
        self.events.append("writeConnectionLost")

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.events.append("connectionLost")


class _RecorderFactory(Factory):
    def __init__(self) -> None:
        self.built: list[_Recorder] = []
        self.addresses: list[Any] = []

    def buildProtocol(self, addr: Any) -> _Recorder:
        self.addresses.append(addr)
        protocol = _Recorder()
        self.built.append(protocol)
        return protocol


@implementer(IAccessPolicy)
class _RecordingPolicy:
    """
    The default policy, writing down every request and decision.
    """

    def __init__(self) -> None:
        self.decisions: list[tuple[AccessRequest, Decision]] = []

    def decide(self, request: AccessRequest) -> Decision:
        decision = LoopbackOnlyPolicy().decide(request)
        self.decisions.append((request, decision))
        return decision


class WrapperTests(SynchronousTestCase):
    """
    L{ProxyHeaderProtocol} over a L{StringTransport}, its clock a
    L{MemoryReactorClock}.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.wrapped = _RecorderFactory()
        self.factory = ProxyHeaderFactory(self.wrapped, self.clock, headerTimeout=10.0)
        self.wrapper = self.factory.buildProtocol(PROXY_PEER)
        self.transport = StringTransport(hostAddress=LISTENER_HOST, peerAddress=PROXY_PEER)
        self.wrapper.makeConnection(self.transport)
        self.warnings: list[LogEvent] = []
        observer = self.warnings.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def feed(self, data: bytes, oneByteAtATime: bool = False) -> None:
        """
        Give the wrapper C{data}, in one piece or byte by byte.
        """
        if oneByteAtATime:
            for index in range(len(data)):
                self.wrapper.dataReceived(data[index : index + 1])
        else:
            self.wrapper.dataReceived(data)

    def assertClosedQuietly(self) -> None:
        """
        The connection was closed, no wrapped protocol was built, and a
        warning (no traceback) says why.
        """
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.wrapped.built, [])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertTrue(
            [event for event in self.warnings if "PROXY listener" in event.get("log_format", "")],
            self.warnings,
        )

    def test_wrappedStartsAfterHeaderV1(self) -> None:
        """
        The wrapped protocol is built and connected only once the whole v1
        header has arrived (here byte by byte), with the header's source as
        its peer from C{connectionMade} on and as the address given to its
        factory; what follows the header is passed on.
        """
        header = v1Header("192.0.2.77", 40000)
        self.feed(header[:-1], oneByteAtATime=True)
        self.assertEqual(self.wrapped.built, [])
        self.feed(header[-1:] + b"\x05\x01\x00")
        [protocol] = self.wrapped.built
        expected = IPv4Address("TCP", "192.0.2.77", 40000)
        self.assertEqual(protocol.peerAtStart, expected)
        self.assertEqual(self.wrapped.addresses, [expected])
        self.assertEqual(protocol.events, ["connectionMade", b"\x05\x01\x00"])
        self.assertEqual(self.wrapper.getPeer(), expected)

    def test_wrappedStartsAfterHeaderV2(self) -> None:
        """
        The same for a v2 header with a TLV, fed byte by byte.
        """
        header = v2Header("192.0.2.77", 40000, tlvs=b"\x04\x00\x02ok")
        self.feed(header, oneByteAtATime=True)
        [protocol] = self.wrapped.built
        self.assertEqual(protocol.peerAtStart, IPv4Address("TCP", "192.0.2.77", 40000))
        self.assertEqual(protocol.events, ["connectionMade"])
        self.feed(b"after")
        self.assertEqual(protocol.events, ["connectionMade", b"after"])

    def test_IPv6(self) -> None:
        """
        A v1 C{TCP6} or v2 IPv6 header's source is the peer.
        """
        for header in [v1Header("2001:db8::77", 5000, "::1"), v2Header("2001:db8::77", 5000, "::1")]:
            self.setUp()
            self.feed(header)
            [protocol] = self.wrapped.built
            self.assertEqual(protocol.peerAtStart, IPv6Address("TCP", "2001:db8::77", 5000))

    def test_hostIsTheListenersOwn(self) -> None:
        """
        C{getHost} is the listener's local address, never the header's
        destination.
        """
        self.feed(v2Header("192.0.2.77", 40000, "198.51.100.9", 443))
        self.assertEqual(self.wrapper.getHost(), LISTENER_HOST)
        self.assertEqual(self.wrapped.built[0].transport.getHost(), LISTENER_HOST)

    def test_localAndUnknownAreTheConnectionsPeer(self) -> None:
        """
        A v2 C{LOCAL} header or a v1 C{UNKNOWN} one (health checks) makes
        the connection's own peer the client.
        """
        for header in [V2_LOCAL, V1_UNKNOWN]:
            self.setUp()
            self.feed(header + b"data")
            [protocol] = self.wrapped.built
            self.assertEqual(protocol.peerAtStart, PROXY_PEER)
            self.assertEqual(protocol.events, ["connectionMade", b"data"])

    def test_malformedHeadersClose(self) -> None:
        """
        Malformed headers, headers of another version, and headers that
        name no TCP client close the connection with a warning, no
        traceback, and no wrapped protocol.
        """
        unixAddresses = b"/tmp/a".ljust(108, b"\x00") * 2
        headers = [
            b"\x05\x01\x00",  # SOCKS without a header
            b"GET / HTTP/1.0\r\n\r\n",
            b"PROXY TCP4 192.0.2.77 127.0.0.1 port 1080\r\n",
            b"PROXY TCP4 example.com 127.0.0.1 1 1080\r\n",
            b"PROXY TCP4 2001:db8::1 127.0.0.1 1 1080\r\n",
            b"PROXY TCP4 192.0.2.77 127.0.0.1 70000 1080\r\n",
            b"PROXY TCP4 192.0.2.77 127.0.0.1 -1 1080\r\n",
            b"PROXY TCP5 192.0.2.77 127.0.0.1 1 1080\r\n",
            b"PROXY TCP4 \xff.0.2.77 127.0.0.1 1 1080\r\n",
            b"PROXY TCP4 192.0.2.77 127.0.0.1 1 1080" + b" " * 80 + b"\r\n",
            b"PROXY " + b"x" * 120,
            V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\x00" * 12,  # version 1 in a v2 signature
            V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # command 2
            V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,  # addresses cut short
            V2_SIGNATURE + b"\x21\x41\x00\x0c" + b"\x00" * 12,  # family 4
            V2_SIGNATURE + b"\x21\x31\x00\xd8" + unixAddresses,  # a UNIX client
            v2Header("192.0.2.77", 40000)[:13] + b"\x12" + v2Header("192.0.2.77", 40000)[14:],  # UDP
        ]
        for header in headers:
            self.setUp()
            self.feed(header)
            self.assertClosedQuietly()
            self.feed(b"more")
            self.assertEqual(self.wrapped.built, [])

    def test_headerTimeout(self) -> None:
        """
        A header not complete within the header timeout closes the
        connection; one complete in time cancels the timer.
        """
        self.feed(v1Header("192.0.2.77", 40000)[:10])
        self.clock.advance(9.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertClosedQuietly()
        self.setUp()
        self.feed(v1Header("192.0.2.77", 40000))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_halfCloseIsPassedOn(self) -> None:
        """
        After the header, the peer's FIN and the end of our sending side
        reach the wrapped protocol as C{readConnectionLost} and
        C{writeConnectionLost}, without closing the connection; then
        C{connectionLost}.
        """
        self.assertTrue(IHalfCloseableProtocol.providedBy(self.wrapper))
        self.feed(v2Header("192.0.2.77", 40000) + b"x")
        [protocol] = self.wrapped.built
        self.wrapper.readConnectionLost()
        self.wrapper.writeConnectionLost()
        self.assertFalse(self.transport.disconnecting)
        self.wrapper.connectionLost(Failure(Exception("gone")))
        self.assertEqual(
            protocol.events,
            ["connectionMade", b"x", "readConnectionLost", "writeConnectionLost", "connectionLost"],
        )

    def test_finBeforeHeaderCloses(self) -> None:
        """
        A FIN before the header is complete closes the connection, and the
        wrapped protocol, never built, hears nothing.
        """
        self.feed(v1Header("192.0.2.77", 40000)[:10])
        self.wrapper.readConnectionLost()
        self.assertTrue(self.transport.disconnecting)
        self.wrapper.connectionLost(Failure(Exception("gone")))
        self.assertEqual(self.wrapped.built, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_producerAndConsumer(self) -> None:
        """
        The wrapper is its wrapped protocol's producer and consumer:
        pausing, resuming and stopping reach the connection, and producers
        are registered on it.
        """
        self.feed(v2Header("192.0.2.77", 40000))
        transport = self.wrapped.built[0].transport
        transport.pauseProducing()
        self.assertEqual(self.transport.producerState, "paused")
        transport.resumeProducing()
        self.assertEqual(self.transport.producerState, "producing")
        producer = object()
        transport.registerProducer(producer, True)
        self.assertIs(self.transport.producer, producer)
        transport.unregisterProducer()
        self.assertIsNone(self.transport.producer)
        transport.stopProducing()
        self.assertEqual(self.transport.producerState, "stopped")


class ListenerSelectionTests(SynchronousTestCase):
    """
    L{listenerService} picks socksgate's wrapper for C{haproxy:}.
    """

    def test_haproxyPrefix(self) -> None:
        """
        C{haproxy:REST} (in any case, as Twisted matches prefixes) listens
        on C{REST} with a L{ProxyHeaderFactory} around the gateway's
        factory; another description gets the gateway's factory itself.
        """
        reactor = MemoryReactorClock()
        for description in [PROXIED_LISTENER, "HAProxy:tcp:0:interface=127.0.0.1"]:
            factory = SOCKSServerFactory(reactor, listener=description)
            service = listenerService(description, factory, reactor)
            assert isinstance(service, StreamServerEndpointService)
            self.assertIsInstance(service.factory, ProxyHeaderFactory)
            self.assertIs(service.factory.wrappedFactory, factory)
            self.assertEqual(service.endpoint._interface, "127.0.0.1")
        factory = SOCKSServerFactory(reactor, listener="tcp:0:interface=127.0.0.1")
        service = listenerService("tcp:0:interface=127.0.0.1", factory, reactor)
        self.assertIs(service.factory, factory)  # type: ignore[attr-defined]


#: Clients from 192.0.2.77 only; the listener must be the haproxy: one.
ONLY_77 = f"""
[[rule]]
action = "permit"
clients = ["192.0.2.77"]
listeners = ["{PROXIED_LISTENER}"]
"""

HEADERS = {"v1": v1Header, "v2": v2Header}


async def _proxied(port: int, header: bytes) -> RawClient:
    client = await connectRaw(port)
    client.transport.write(header)
    return client


class ProxiedClientTests(LoopbackTestCase):
    """
    Behind the PROXY protocol, the policy, the session record and the
    per-client limits see the client the header names.
    """

    async def test_ruleSeesHeadersClient(self) -> None:
        """
        A rule permitting only 192.0.2.77 lets a v1 or v2 header naming it
        through to the destination, and refuses one naming 192.0.2.78; the
        records name the header's client and port.
        """
        records = collectSessions(self)
        gateway = await startProxiedGateway(self, ONLY_77)
        echoPort, _ = startHalfCloseEcho(self)
        request = socks5Connect(b"\x7f\x00\x00\x01", echoPort, atyp=1)
        for count, (version, header) in enumerate(sorted(HEADERS.items())):
            client = await _proxied(gateway.port, header("192.0.2.77", 40077) + request)
            self.assertEqual(await client.receive(2), b"\x05\x00")
            self.assertEqual((await client.receive(10))[:2], b"\x05\x00", version)
            client.transport.loseConnection()
            await client.closed
            await waitForRecords(records, 2 * count + 1)
            client = await _proxied(gateway.port, header("192.0.2.78", 40078) + request)
            await client.receive(2)
            self.assertEqual((await client.receive(10))[:2], b"\x05\x02", version)
            await client.closed
            await waitForRecords(records, 2 * count + 2)
        self.assertEqual(
            [(record["client"], record["outcome"], record["listener"]) for record in records],
            [
                ("192.0.2.77:40077", "closed", PROXIED_LISTENER),
                ("192.0.2.78:40078", "denied", PROXIED_LISTENER),
            ]
            * 2,
        )

    async def test_defaultPolicyRefusesProxiedOutsider(self) -> None:
        """
        With no configuration (loopback clients only), a header naming
        192.0.2.78 is refused for SOCKS5 CONNECT and BIND and for SOCKS4
        CONNECT: the proxy's own loopback address does not make the
        gateway an open proxy.
        """
        records = collectSessions(self)
        gateway = await startProxiedGateway(self)
        target = b"\x7f\x00\x00\x01" + (9).to_bytes(2, "big")
        requests = [
            (b"\x05\x01\x00\x05\x01\x00\x01" + target, 2, 10, b"\x05\x02"),
            (b"\x05\x01\x00\x05\x02\x00\x01" + target, 2, 10, b"\x05\x02"),
            (socks4Connect(9), 0, 8, b"\x00\x5b"),
        ]
        for request, skip, size, expected in requests:
            client = await _proxied(gateway.port, v2Header("192.0.2.78", 40078) + request)
            await client.receive(skip)
            self.assertEqual((await client.receive(size))[:2], expected, request)
            await client.closed
        await waitForRecords(records, 3)
        self.assertEqual(
            [(record["client"], record["command"], record["outcome"]) for record in records],
            [
                ("192.0.2.78:40078", "connect", "denied"),
                ("192.0.2.78:40078", "bind", "denied"),
                ("192.0.2.78:40078", "connect", "denied"),
            ],
        )

    async def test_udpDecidedForHeadersClient(self) -> None:
        """
        A UDP ASSOCIATE behind a header naming 192.0.2.78 is decided for
        192.0.2.78, and the default policy refuses it with 0x02: no relay
        socket is opened.
        """
        policy = _RecordingPolicy()
        gateway = await startProxiedGateway(self, policy=policy)
        declared = b"\x7f\x00\x00\x01" + (40000).to_bytes(2, "big")
        request = b"\x05\x01\x00\x05\x03\x00\x01" + declared
        client = await _proxied(gateway.port, v2Header("192.0.2.78", 40078) + request)
        await client.receive(2)
        reply = await client.receive(10)
        self.assertEqual(reply[:2], b"\x05\x02")
        self.assertEqual(
            {
                (str(request.client), request.command, decision.permitted)
                for request, decision in policy.decisions
            },
            {("192.0.2.78", "udp", False)},
        )
        client.transport.loseConnection()
        await client.closed

    async def test_perClientLimitCountsHeadersClient(self) -> None:
        """
        With C{max-sessions-per-client = 1}, a second connection whose
        header names the same client is refused, and one naming another
        client is admitted, though all come from the same proxy address.
        """
        toml = '[server]\nmax-sessions-per-client = 1\n[[rule]]\naction = "permit"\n'
        gateway = await startProxiedGateway(self, toml)
        first = await _proxied(gateway.port, v1Header("192.0.2.77", 1) + b"\x05\x01\x00")
        self.assertEqual(await first.receive(2), b"\x05\x00")
        second = await _proxied(gateway.port, v1Header("192.0.2.77", 2) + b"\x05\x01\x00")
        self.assertEqual(await second.receiveAll(), b"")
        other = await _proxied(gateway.port, v1Header("192.0.2.79", 3) + b"\x05\x01\x00")
        self.assertEqual(await other.receive(2), b"\x05\x00")
        for client in [first, other]:
            client.transport.loseConnection()
            await client.closed

    async def test_halfClosedEchoComesBackWhole(self) -> None:
        """
        A client that sends 8 MiB after a v2 header and its request, then
        its FIN, gets every byte back from a destination that echoes until
        that FIN; the record says so.
        """
        records = collectSessions(self)
        gateway = await startProxiedGateway(self)
        echoPort, echoes = startHalfCloseEcho(self)
        payload = os.urandom(8 * 1024 * 1024)
        request = socks5Connect(b"\x7f\x00\x00\x01", echoPort, atyp=1)
        client = await _proxied(gateway.port, v2Header("127.0.0.9", 40009) + request)
        self.assertEqual(await client.receive(2), b"\x05\x00")
        self.assertEqual((await client.receive(10))[:2], b"\x05\x00")
        client.transport.write(payload)
        client.transport.loseWriteConnection()
        echoed = await client.receiveAll()
        self.assertEqual(len(echoed), len(payload))
        self.assertTrue(echoed == payload, "the echo differs")
        await client.closed
        [record] = await waitForRecords(records, 1)
        self.assertEqual(
            (record["client"], record["outcome"], record["bytes_out"], record["bytes_in"]),
            ("127.0.0.9:40009", "closed", len(payload), len(payload)),
        )
        self.assertEqual(echoes[0].received, len(payload))

    async def test_malformedHeaderOverTheWire(self) -> None:
        """
        A connection that sends SOCKS with no header, or a broken header,
        is closed with no reply, no session record and no traceback.
        """
        records = collectSessions(self)
        gateway = await startProxiedGateway(self)
        for data in [socks5Connect(b"\x7f\x00\x00\x01", 9, atyp=1), b"PROXY TCP4 a b c d\r\n\x05\x01\x00"]:
            client = await _proxied(gateway.port, data)
            self.assertEqual(await client.receiveAll(), b"")
            await client.closed
        self.assertEqual(records, [])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(gateway.service.sessions.open, set())
