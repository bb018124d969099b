"""
A fleet: Debian's real HAProxy (C{balance roundrobin}, C{send-proxy-v2})
in front of two C{twistd socksgate} processes, each with its own
configuration, its own C{haproxy:} listener on an address of its own and
its own session log; clients on loopback addresses of their own.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol

from socksgate.testing import startEchoServer

from .haproxy_helpers import startHAProxy
from .helpers import (
    CollectingProcess,
    LoopbackTestCase,
    RawClient,
    freePort,
    listeningPort,
    socks5Connect,
    startProcess,
)
from .test_bind import socks5Bind
from .test_stats import runStats
from .test_twistd import TWISTD

#: Where HAProxy takes clients: the fleet's one address.
FRONTEND_HOST = "127.0.0.1"

#: The two gateways' own addresses; each one's C{advertise}.
GATEWAY_HOSTS = ("127.0.0.2", "127.0.0.3")

#: A client the gateways' rules permit, and one they deny.
PERMITTED_CLIENT = "127.0.0.5"
DENIED_CLIENT = "127.0.0.6"

#: Each gateway's configuration: its own address announced for BIND and
#: UDP ASSOCIATE, and rules on the client's real address (HAProxy's
#: connections come from 127.0.0.1, which no rule permits).
GATEWAY_CONFIG = """\
[server]
advertise = "{host}"

[[rule]]
action = "deny"
clients = ["{denied}"]
message = "not this client"

[[rule]]
action = "permit"
clients = ["{permitted}"]
"""

HAPROXY_CONFIG = """\
global
    maxconn 100
    nbthread 1

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen socks
    bind {frontend}:{port}
    balance roundrobin
    server gateway1 {host1}:{port1} send-proxy-v2
    server gateway2 {host2}:{port2} send-proxy-v2
"""


@dataclass
class FleetGateway:
    """
    One gateway process of the fleet.

    @ivar host: its own address, where its C{haproxy:} listener is.
    @ivar port: that listener's port.
    @ivar accessLog: the path of its session log.
    """

    host: str
    port: int
    accessLog: str
    transport: Any
    process: CollectingProcess

    async def stop(self) -> None:
        """
        Stop it with SIGTERM and wait for it to end (its records are
        written by then).
        """
        if not self.process.ended.called:
            self.transport.signalProcess(signal.SIGTERM)
        await self.process.ended

    def records(self) -> list[dict[str, Any]]:
        """
        The records in its session log.
        """
        if not os.path.exists(self.accessLog):
            return []
        with open(self.accessLog) as stream:
            return [json.loads(line) for line in stream]


class _UDPClient(DatagramProtocol):
    """
    A UDP ASSOCIATE client's socket: the first datagram it receives.
    """

    def __init__(self) -> None:
        self.received: Deferred[tuple[bytes, Any]] = Deferred()

    def datagramReceived(self, data: bytes, address: Any) -> None:
        if not self.received.called:
            self.received.callback((data, address))


class _UDPEcho(DatagramProtocol):
    """
    A UDP destination that sends every datagram back.
    """

    def datagramReceived(self, data: bytes, address: Any) -> None:
        self.transport.write(data, address)


def _address(reply: bytes) -> tuple[str, int]:
    """
    BND.ADDR and BND.PORT of a SOCKS5 reply for an IPv4 address.
    """
    assert reply[3] == 1, reply
    return ".".join(str(octet) for octet in reply[4:8]), int.from_bytes(reply[8:10], "big")


class FleetTests(LoopbackTestCase):
    """
    SOCKS through HAProxy to one of two gateways.
    """

    timeout = 90

    async def startGateway(self, host: str) -> FleetGateway:
        """
        Start C{twistd -n socksgate} with its own configuration and session
        log, listening behind the PROXY protocol on C{host}, port 0; wait
        (bounded) until it listens.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        configPath = os.path.join(directory, "socksgate.toml")
        with open(configPath, "w") as stream:
            stream.write(GATEWAY_CONFIG.format(host=host, denied=DENIED_CLIENT, permitted=PERMITTED_CLIENT))
        accessLog = os.path.join(directory, "access.log")
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "-c", configPath, "--access-log", accessLog,
                      "--listen", f"haproxy:tcp:0:interface={host}"],
            b"starting on",
        )  # fmt: skip
        gateway = FleetGateway(host, listeningPort(process.output), accessLog, transport, process)
        self.addCleanup(lambda: Deferred.fromCoroutine(gateway.stop()))
        return gateway

    async def startFleet(self) -> tuple[int, list[FleetGateway]]:
        """
        Start both gateways and HAProxy in front of them.

        @return: HAProxy's port on L{FRONTEND_HOST}, and the gateways.
        """
        gateways = [await self.startGateway(host) for host in GATEWAY_HOSTS]
        port = freePort()
        configuration = HAPROXY_CONFIG.format(
            frontend=FRONTEND_HOST, port=port,
            host1=gateways[0].host, port1=gateways[0].port,
            host2=gateways[1].host, port2=gateways[1].port,
        )  # fmt: skip
        await startHAProxy(self, configuration, port, FRONTEND_HOST)
        return port, gateways

    async def connectFrom(self, client: str, port: int) -> RawClient:
        """
        Connect from the loopback address C{client} to HAProxy's C{port}.
        """
        endpoint = TCP4ClientEndpoint(reactor, FRONTEND_HOST, port, bindAddress=(client, 0))
        return await connectProtocol(endpoint, RawClient())

    async def test_rulesAndRecordsPerGateway(self) -> None:
        """
        Sessions from 127.0.0.5 and 127.0.0.6, one after the other, are
        spread over both gateways: each gateway permits 127.0.0.5 (the echo
        comes back) and denies 127.0.0.6 with 0x02 by the client's real
        address, and its log has a record of each session it served that
        names the client's address and port as the client saw them; the two
        logs together have one record per session, and C{socksgate stats}
        over both logs counts every session and denial of the fleet.
        """
        echo = startEchoServer(self)
        port, gateways = await self.startFleet()
        request = socks5Connect(b"\x7f\x00\x00\x01", echo.port, atyp=1)
        made: dict[str, str] = {}
        for client in [PERMITTED_CLIENT, DENIED_CLIENT, DENIED_CLIENT, PERMITTED_CLIENT] * 3:
            connection = await self.connectFrom(client, port)
            made[f"{client}:{connection.transport.getHost().port}"] = client
            connection.transport.write(request + b"ping")
            self.assertEqual(await connection.receive(2), b"\x05\x00")
            reply = await connection.receive(10)
            if client == PERMITTED_CLIENT:
                self.assertEqual(reply[:2], b"\x05\x00")
                self.assertEqual(await connection.receive(4), b"ping")
                connection.transport.loseConnection()
            else:
                self.assertEqual(reply[:2], b"\x05\x02")
            await connection.closed
        for gateway in gateways:
            await gateway.stop()
        served = [gateway.records() for gateway in gateways]
        self.assertEqual([len(records) > 0 for records in served], [True, True], served)
        self.assertEqual(sum(len(records) for records in served), len(made))
        expected = {PERMITTED_CLIENT: ("closed", 0, ""), DENIED_CLIENT: ("denied", 2, "not this client")}
        for records in served:
            outcomes = set()
            for record in records:
                client = made.pop(record["client"])
                outcome = (record["outcome"], record["reply"], record["message"])
                self.assertEqual(outcome, expected[client], record)
                outcomes.add(outcome)
            self.assertEqual(outcomes, set(expected.values()), records)
        self.assertEqual(made, {})
        output, errors, status = runStats([gateway.accessLog for gateway in gateways], asJSON=True)
        summary = json.loads(output)["sessions"]
        self.assertEqual((status, summary["total"], summary["denied"]), (0, 12, 6), errors)

    async def test_bindAnnouncesGatewaysOwnAddress(self) -> None:
        """
        A SOCKS5 BIND through HAProxy is answered with the serving gateway's
        own address (its C{advertise}), not HAProxy's, though the PROXY
        header names HAProxy's address as the destination; the peer that
        connects there is relayed to the client both ways, and that
        gateway's record names the client and the peer.
        """
        port, gateways = await self.startFleet()
        client = await self.connectFrom(PERMITTED_CLIENT, port)
        clientPort = client.transport.getHost().port
        client.transport.write(socks5Bind())
        self.assertEqual(await client.receive(2), b"\x05\x00")
        first = await client.receive(10)
        self.assertEqual(first[:2], b"\x05\x00")
        host, listening = _address(first)
        self.assertIn(host, GATEWAY_HOSTS)
        endpoint = TCP4ClientEndpoint(reactor, host, listening, bindAddress=("127.0.0.1", 0))
        peer = await connectProtocol(endpoint, RawClient())
        peerPort = peer.transport.getHost().port
        second = await client.receive(10)
        self.assertEqual(second[:2], b"\x05\x00")
        self.assertEqual(_address(second), ("127.0.0.1", peerPort))
        peer.transport.write(b"from the peer")
        self.assertEqual(await client.receive(13), b"from the peer")
        client.transport.write(b"from the client")
        self.assertEqual(await peer.receive(15), b"from the client")
        client.transport.loseConnection()
        await peer.closed
        await client.closed
        [serving] = [gateway for gateway in gateways if gateway.host == host]
        await serving.stop()
        [record] = serving.records()
        self.assertEqual(
            (record["command"], record["outcome"], record["client"], record["bind"], record["peer"]),
            ("bind", "closed", f"{PERMITTED_CLIENT}:{clientPort}", f"{host}:{listening}",
             f"127.0.0.1:{peerPort}"),
        )  # fmt: skip

    async def test_udpAnswersOnGatewaysOwnAddress(self) -> None:
        """
        A UDP ASSOCIATE through HAProxy is answered with the serving
        gateway's own address (its C{advertise}); a datagram the client
        sends there from its real address reaches a UDP echo, and the echo
        comes back to the client from that address.
        """
        port, gateways = await self.startFleet()
        echo = reactor.listenUDP(0, _UDPEcho(), interface="127.0.0.1")
        self.addCleanup(echo.stopListening)
        receiver = _UDPClient()
        udp = reactor.listenUDP(0, receiver, interface=PERMITTED_CLIENT)
        self.addCleanup(udp.stopListening)
        control = await self.connectFrom(PERMITTED_CLIENT, port)
        controlPort = control.transport.getHost().port
        declared = b"\x7f\x00\x00\x05" + udp.getHost().port.to_bytes(2, "big")
        control.transport.write(b"\x05\x01\x00\x05\x03\x00\x01" + declared)
        self.assertEqual(await control.receive(2), b"\x05\x00")
        reply = await control.receive(10)
        self.assertEqual(reply[:2], b"\x05\x00")
        relay = _address(reply)
        self.assertIn(relay[0], GATEWAY_HOSTS)
        header = b"\x00\x00\x00\x01\x7f\x00\x00\x01" + echo.getHost().port.to_bytes(2, "big")
        udp.write(header + b"datagram", relay)
        data, source = await receiver.received.addTimeout(10, reactor)
        self.assertEqual((data, source), (header + b"datagram", relay))
        control.transport.loseConnection()
        await control.closed
        [serving] = [gateway for gateway in gateways if gateway.host == relay[0]]
        await serving.stop()
        [record] = serving.records()
        self.assertEqual(
            (record["command"], record["client"], record["datagrams_out"], record["datagrams_in"]),
            ("udp", f"{PERMITTED_CLIENT}:{controlPort}", 1, 1),
        )
