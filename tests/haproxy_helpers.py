"""
Shared pieces of the tests of the C{haproxy:} listener: PROXY protocol
headers written out by hand from HAProxy's "The PROXY protocol" (versions
1 and 2), a gateway built from a configuration as C{twistd socksgate}
builds it, a destination that echoes until the client's FIN, and Debian's
real C{haproxy} program run in the foreground.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
from dataclasses import dataclass
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater

from socksgate.config import parseConfig
from socksgate.service import GatewayService, buildService

from .helpers import HalfCloseEcho, RawClient, startProcess

#: The listener of the gateways these tests start.
PROXIED_LISTENER = "haproxy:tcp:0:interface=127.0.0.1"

#: The v2 signature: \\r\\n\\r\\n\\0\\r\\nQUIT\\n (section 2.2).
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1Header(source: str, sourcePort: int, destination: str = "127.0.0.1", port: int = 1080) -> bytes:
    """
    A v1 header, C{PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n} (section 2.1).
    """
    family = "TCP6" if ":" in source else "TCP4"
    return f"PROXY {family} {source} {destination} {sourcePort} {port}\r\n".encode("ascii")


def v2Header(
    source: str, sourcePort: int, destination: str = "127.0.0.1", port: int = 1080, tlvs: bytes = b""
) -> bytes:
    """
    A v2 header with the PROXY command over TCP (section 2.2): version 2
    and command 1 (C{0x21}), family and protocol (C{0x11} TCP over IPv4,
    C{0x21} TCP over IPv6), the length of what follows, the addresses and
    ports in network byte order, then any TLVs.
    """
    if ":" in source:
        familyProtocol, family = 0x21, socket.AF_INET6
    else:
        familyProtocol, family = 0x11, socket.AF_INET
    addresses = (
        socket.inet_pton(family, source)
        + socket.inet_pton(family, destination)
        + struct.pack("!HH", sourcePort, port)
    )
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x21, familyProtocol]) + struct.pack("!H", len(body)) + body


#: A v2 header with the LOCAL command (a health check): no addresses.
V2_LOCAL = V2_SIGNATURE + b"\x20\x00\x00\x00"

#: A v1 header for a connection whose family the proxy does not know.
V1_UNKNOWN = b"PROXY UNKNOWN\r\n"


@dataclass
class ProxiedGateway:
    """
    A gateway listening behind the PROXY protocol on loopback.

    @ivar service: its L{GatewayService}.
    @ivar port: the port of its C{haproxy:} listener.
    """

    service: GatewayService
    port: int


async def startProxiedGateway(
    testCase: Any, toml: str = "", listener: str = PROXIED_LISTENER, policy: Any = None
) -> ProxiedGateway:
    """
    Build the gateway of the configuration C{toml} with the one listener
    C{listener}, through L{buildService} as C{twistd socksgate} does, and
    start it; stop it, with every session dropped, when the test cleans up.

    @param policy: an access policy instead of the configuration's.
    """
    config = parseConfig(toml, "gateway.toml").withListen((listener,))
    service = buildService(config, reactor, policy=policy)
    service.startService()

    async def stop() -> None:
        for protocol in list(service.sessions.open):
            protocol.abortConnection()
        await service.sessions.whenEmpty()
        await service.stopService()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    [listening] = [child for child in service if isinstance(child, StreamServerEndpointService)]
    port = await listening._waitingForPort
    return ProxiedGateway(service, port.getHost().port)


def startHalfCloseEcho(testCase: Any) -> tuple[int, list[HalfCloseEcho]]:
    """
    Listen on a loopback port with a L{HalfCloseEcho} for each connection,
    stopped (connections aborted) when the test cleans up.

    @return: the port, and the protocols of its connections so far.
    """
    connections: list[HalfCloseEcho] = []

    def build() -> HalfCloseEcho:
        protocol = HalfCloseEcho()
        connections.append(protocol)
        return protocol

    factory = Factory.forProtocol(build)
    factory.noisy = False
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")

    async def stop() -> None:
        await listening.stopListening()
        for protocol in connections:
            if protocol.transport.connected:
                protocol.transport.abortConnection()
        await DeferredList([protocol.closed for protocol in connections])

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    return listening.getHost().port, connections


async def waitForRecords(records: list[dict], count: int) -> list[dict]:
    """
    Wait (at most five seconds, in 100 steps) until C{count} session
    records have been collected.
    """
    for _ in range(100):
        if len(records) >= count:
            break
        await deferLater(reactor, 0.05, lambda: None)
    return records


async def startHAProxy(testCase: Any, configuration: str, port: int, host: str = "127.0.0.1") -> None:
    """
    Run C{haproxy} in the foreground (C{-db}) with the configuration
    C{configuration}, killed at clean-up, and wait (at most ten seconds, in
    200 steps) until it takes connections on C{host:port}, a frontend the
    configuration binds.
    """
    program = shutil.which("haproxy") or "/usr/sbin/haproxy"
    path = os.path.abspath(testCase.mktemp())
    with open(path, "w") as stream:
        stream.write(configuration)
    transport, process = await startProcess(testCase, [program, "-db", "-f", path], b"")

    async def stop() -> None:
        if not process.ended.called:
            transport.signalProcess("KILL")
        await process.ended

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    for _ in range(200):
        try:
            probe = await connectProtocol(TCP4ClientEndpoint(reactor, host, port), RawClient())
        except ConnectError:
            await deferLater(reactor, 0.05, lambda: None)
            continue
        probe.transport.loseConnection()
        await probe.closed
        return
    testCase.fail(f"haproxy did not start listening: {process.output!r}")
