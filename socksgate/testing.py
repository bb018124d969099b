"""
Helpers for trial tests of SOCKS-aware software: a real gateway on an
ephemeral loopback port, and destination servers to reach through it, all
torn down with the test.

    from twisted.trial.unittest import TestCase
    from socksgate.testing import startGateway, startEchoServer

    class MyClientTests(TestCase):
        async def test_echo(self):
            gateway = startGateway(self)
            echo = startEchoServer(self)
            ...  # connect your client to gateway.port, ask for echo.port

Every helper registers its own clean-up with the test case, so a test
leaves no listening port, connection or timer behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHostnameResolver,
    IListeningPort,
    IPushProducer,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .config import AuthConfig, Config, ServerConfig
from .descriptors import guardAgainstDescriptorReuse
from .interfaces import IAccessPolicy
from .resolver import StaticResolver
from .server import SessionTable, SOCKSServerFactory
from .testing_faults import ClientRecord, Faults, FaultyFactory, ReplyCodePolicy
from .upstreams import UpstreamTable

__all__ = [
    "ClientRecord",
    "DestinationServer",
    "Faults",
    "ReplyCodePolicy",
    "RunningGateway",
    "StaticResolver",
    "startEchoServer",
    "startGateway",
    "startSinkServer",
    "startSourceServer",
]


def _reactorOf(reactor: Any) -> Any:
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        return globalReactor
    return reactor


@dataclass
class RunningGateway:
    """
    A gateway listening on loopback for one test.

    @ivar host: the address it listens on (C{"127.0.0.1"} or C{"::1"}).
    @ivar port: its port number.
    @ivar factory: its L{SOCKSServerFactory}, to inspect open sessions.
    @ivar clients: with L{Faults}, a L{ClientRecord} of what each client
        sent, in the order they connected; else empty.
    """

    host: str
    port: int
    factory: SOCKSServerFactory
    listeningPort: IListeningPort
    clients: list[ClientRecord] = field(default_factory=list)

    @property
    def sessions(self) -> SessionTable:
        """
        The gateway's open sessions.
        """
        return self.factory.sessions

    def url(self, scheme: str = "socks5h") -> str:
        """
        The gateway as a proxy URL, such as C{socks5h://127.0.0.1:40211}.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def startGateway(
    testCase: Any,
    policy: IAccessPolicy | None = None,
    config: Config | ServerConfig | None = None,
    resolver: IHostnameResolver | None = None,
    reactor: Any = None,
    interface: str = "127.0.0.1",
    auth: AuthConfig | None = None,
    faults: Faults | None = None,
) -> RunningGateway:
    """
    Start a gateway on an ephemeral port of C{interface}, stopped and with
    every session dropped when C{testCase} cleans up.

    @param policy: the access policy; by default C{config}'s, and without
        a L{Config}, loopback clients only.
    @param config: the L{Config} that L{socksgate.service.buildService}
        takes (from C{parseConfig} or C{loadConfig}): the gateway uses its
        C{[server]} settings, its C{[auth]} settings, its C{[[upstream]]}s
        and the policy of its rules; its C{listen}, and its C{[log]} (access log, status page),
        are not used.  A L{ServerConfig} (the C{[server]} settings alone)
        is still accepted, for compatibility.
    @param auth: the C{[auth]} settings, for a gateway that asks for
        passwords (C{AuthConfig(("userpass",), makeChecker("memory:u:p"))});
        they win over C{config}'s.
    @param resolver: the resolver for destination names, so a test decides
        what resolves and to what (a L{StaticResolver}, say); the reactor's
        by default.
    @param faults: what the gateway gets wrong (see L{Faults}), and a
        record of its clients in L{RunningGateway.clients}.
    """
    reactor = _reactorOf(reactor)
    guardAgainstDescriptorReuse(reactor)
    server: ServerConfig | None = config.server if isinstance(config, Config) else config
    if isinstance(config, Config):
        policy = policy if policy is not None else config.policy
        auth = auth if auth is not None else config.auth
    upstreams = UpstreamTable(reactor, config.upstreams if isinstance(config, Config) else ())
    if faults is not None:
        policy = ReplyCodePolicy(faults.replies, policy) if faults.replies else policy
        auth = faults.authFor(auth)
    factory = SOCKSServerFactory(
        reactor, server, policy, listener=f"tcp:0:interface={interface}", resolver=resolver, auth=auth,
        upstreams=upstreams,
    )  # fmt: skip
    serving = FaultyFactory(factory, faults) if faults is not None else factory
    listeningPort = reactor.listenTCP(0, serving, interface=interface)

    async def stop() -> None:
        await listeningPort.stopListening()
        for protocol in list(factory.sessions.open):
            protocol.abortConnection()
        await factory.sessions.whenEmpty()
        factory.throttle.stop()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    records = serving.records if isinstance(serving, FaultyFactory) else []
    return RunningGateway(interface, listeningPort.getHost().port, factory, listeningPort, records)


@dataclass
class DestinationServer:
    """
    A destination server listening on loopback for one test.

    @ivar host: the address it listens on.
    @ivar port: its port number.
    @ivar connections: the protocols of its connections so far.
    """

    host: str
    port: int
    listeningPort: IListeningPort
    connections: list[Protocol] = field(default_factory=list)

    @property
    def bytesReceived(self) -> int:
        """
        The bytes all its connections have received.
        """
        return sum(getattr(protocol, "received", 0) for protocol in self.connections)


class _TrackedProtocol(Protocol):
    """
    Base of the destination protocols: counts bytes and reports its end.
    """

    received = 0

    def __init__(self) -> None:
        self.closed: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed.callback(None)


@implementer(IHalfCloseableProtocol)
class _Echo(_TrackedProtocol):
    """
    Sends back what it receives; when the client half-closes, sends its
    own FIN once everything is echoed (so a half-closing client gets every
    byte back).
    """

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self.transport.write(data)

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass


class _Sink(_TrackedProtocol):
    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)


@implementer(IPushProducer)
class _Source(_TrackedProtocol):
    """
    Sends C{size} bytes, honouring back-pressure, then closes.

    @ivar sent: bytes written so far.
    @ivar pauses: how many times the transport paused it.
    """

    chunk = b"\x5a" * 65536

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.sent = 0
        self.pauses = 0
        self.paused = False
        self.pausedOnce: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1
        if not self.pausedOnce.called:
            self.pausedOnce.callback(None)

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.sent < self.size:
            piece = self.chunk[: self.size - self.sent]
            self.sent += len(piece)
            self.transport.write(piece)
        if self.sent >= self.size and self.transport.connected:
            self.transport.unregisterProducer()
            self.transport.loseConnection()

    def stopProducing(self) -> None:
        self.paused = True

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)


def _startDestination(testCase: Any, build: Any, reactor: Any, interface: str) -> DestinationServer:
    reactor = _reactorOf(reactor)
    server: DestinationServer

    class _Factory(Factory):
        noisy = False

        def buildProtocol(self, addr: Any) -> Protocol:
            protocol = build()
            protocol.factory = self
            server.connections.append(protocol)
            return protocol

    listeningPort = reactor.listenTCP(0, _Factory(), interface=interface)
    server = DestinationServer(interface, listeningPort.getHost().port, listeningPort)

    async def stop() -> None:
        await listeningPort.stopListening()
        waits = []
        for protocol in server.connections:
            if protocol.transport is not None and protocol.transport.connected:
                protocol.transport.abortConnection()
            waits.append(protocol.closed)
        await DeferredList(waits)

    testCase.addCleanup(lambda: Deferred.fromCoroutine(stop()))
    return server


def startEchoServer(testCase: Any, reactor: Any = None, interface: str = "127.0.0.1") -> DestinationServer:
    """
    Start a server that sends back whatever it receives.  A client that
    half-closes gets every byte back, then the server's FIN.
    """
    return _startDestination(testCase, _Echo, reactor, interface)


def startSinkServer(testCase: Any, reactor: Any = None, interface: str = "127.0.0.1") -> DestinationServer:
    """
    Start a server that reads and counts whatever it receives, and sends
    nothing.
    """
    return _startDestination(testCase, _Sink, reactor, interface)


def startSourceServer(
    testCase: Any, size: int, reactor: Any = None, interface: str = "127.0.0.1"
) -> DestinationServer:
    """
    Start a server that sends C{size} bytes to each connection, as fast as
    the connection takes them (it honours back-pressure), then closes it.
    Each connection's protocol has C{sent}, C{paused} and C{pausedOnce} (a
    Deferred that fires the first time the connection pushes back).
    """
    return _startDestination(testCase, lambda: _Source(size), reactor, interface)
