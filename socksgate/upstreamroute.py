"""
L{UpstreamRoute}: a permitted CONNECT carried through an C{[[upstream]]}
SOCKS server, with the client endpoints of L{socksgate.client}; and the
first step of a BIND (L{UpstreamRoute.bind}) and of a UDP ASSOCIATE
(L{UpstreamRoute.associate}) through one.

The servers that are up are tried in order, each bounded by the connect
timeout.  A server that fails (its connection refused or timed out, TLS
refused, its reply malformed or missing) is marked down
(L{socksgate.upstreams.UpstreamTable.failed}) and the next is tried; a
server's refusal of the request (a SOCKS reply other than success, its
credentials refused) is the upstream's decision and is passed on to the
client.  When no server is left, the client gets 0x01 (SOCKS4: CD 91).

The destination is sent as the address the gateway resolved and the
policy permitted (C{socks5://}, C{socks4://}), or as the name, in its
normal form, unresolved (C{socks5h://}, C{socks4a://}: the gateway still
resolved it and decided every address, so a name is only ever sent when
the policy permits the name and the addresses it has here).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python.failure import Failure
from zope.interface import implementer

from .addresses import LOOPBACK_HOSTS, UNSPECIFIED_HOSTS
from .client.bind import SOCKS4BindEndpoint, SOCKS5BindEndpoint, SOCKSBoundPort
from .client.errors import AuthenticationFailed, NoAcceptableMethods, SOCKSError
from .client.udp import SOCKS5UDPClient, SOCKSUDPAssociation
from .client.urls import endpointFor
from .interfaces import IRoute
from .policy import AccessRequest, IPAddress
from .relay import DestinationProtocol
from .upstreams import UpstreamConfig, UpstreamServer, UpstreamTable
from .vocabulary import Outcome, RequestRefused
from .wire import ReplyCode

__all__ = ["UpstreamRoute", "upstreamRefusal"]

_T = TypeVar("_T")


def upstreamRefusal(upstream: str, reply: ReplyCode, outcome: str, reason: str) -> RequestRefused:
    """
    A refusal of a session routed through C{upstream}: the session record
    names the upstream (and no server unless one is set on it).
    """
    refusal = RequestRefused(reply, outcome, reason)
    refusal.upstream = upstream
    return refusal


@implementer(IRoute)
class UpstreamRoute:
    """
    Connect through the servers of one upstream.

    @ivar reactor: the reactor to connect with.
    @ivar upstream: the upstream's configuration.
    @ivar table: the state of every upstream's servers.
    @ivar timeout: the connect timeout of each server's attempt (the TCP
        connection, TLS, the handshake and the server's reply).
    @ivar bindHost: the source address of the connections to the servers.
    """

    def __init__(
        self,
        reactor: Any,
        upstream: UpstreamConfig,
        table: UpstreamTable,
        timeout: float,
        bindHost: IPAddress | None = None,
    ) -> None:
        self.reactor, self.upstream, self.table = reactor, upstream, table
        self.timeout, self.bindHost = timeout, bindHost

    def connect(
        self, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> Deferred[DestinationProtocol]:
        """
        Connect to the destination through the first server that carries
        it.

        @see: L{IRoute.connect}
        """
        return Deferred.fromCoroutine(self._connect(request, addresses, port))

    async def _connect(
        self, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> DestinationProtocol:
        factory = Factory.forProtocol(DestinationProtocol)
        protocol, server = await self._throughServers(
            lambda server: self._endpoint(server, request, addresses, port).connect(factory)
        )
        protocol.upstream, protocol.server = self.upstream.name, server.url
        return protocol

    def bind(
        self, request: AccessRequest, addresses: list[IPAddress], port: int, factory: IProtocolFactory
    ) -> Deferred[tuple[SOCKSBoundPort, UpstreamServer]]:
        """
        Ask the first server that answers to BIND for the expected peer
        (C{addresses}, or the name as for CONNECT; all zeros for any peer)
        and C{port}, with the same failover as L{connect}.

        @param factory: builds the protocol for the peer's connection.
        @return: fires with the server's bound port (its first reply) and
            the server, or fails with a L{RequestRefused}.
        """
        return Deferred.fromCoroutine(
            self._throughServers(
                lambda server: self._bindEndpoint(server, request, addresses, port).listen(factory)
            )
        )

    def associate(self, protocol: DatagramProtocol) -> Deferred[tuple[SOCKSUDPAssociation, UpstreamServer]]:
        """
        Make a UDP association for C{protocol} with the first server that
        answers, with the same failover as L{connect}.

        @return: fires with the association (C{protocol.transport}) and the
            server, or fails with a L{RequestRefused} (0x07 for a SOCKS4
            server, which has no UDP ASSOCIATE).
        """
        return Deferred.fromCoroutine(
            self._throughServers(lambda server: self._udpClient(server).associate(protocol))
        )

    async def _throughServers(
        self, attempt: Callable[[UpstreamServer], Deferred[_T]]
    ) -> tuple[_T, UpstreamServer]:
        """
        C{attempt} each server that is up in turn until one succeeds.

        @raise RequestRefused: a server's refusal, passed on, or 0x01 when
            every server failed or was down.
        """
        upstream = self.upstream
        failures = []
        for server in self.table.serversToTry(upstream):
            try:
                attempting = attempt(server)
            except RequestRefused as refusal:
                refusal.upstream, refusal.server = upstream.name, server.url
                raise
            attempting.addTimeout(self.timeout, self.reactor)
            try:
                result = await attempting
            except Exception:
                failure = Failure()
                refusal = self._passedOn(failure, server)
                if refusal is not None:
                    raise refusal from None
                reason = self._describe(failure, server)
                self.table.failed(upstream, server, reason)
                failures.append(f"{server.url}: {reason}")
                continue
            self.table.carried(upstream, server)
            return result, server
        reason = f"upstream {upstream.name}: every server is down"
        if failures:
            reason += " (" + "; ".join(failures) + ")"
        raise upstreamRefusal(upstream.name, ReplyCode.GENERAL_FAILURE, Outcome.FAILED, reason)

    def _passedOn(self, failure: Failure, server: UpstreamServer) -> RequestRefused | None:
        """
        The refusal that passes a server's answer on to the client, or
        L{None} when the server failed.
        """
        value = failure.value
        if not isinstance(value, SOCKSError):
            return None
        where = f"upstream {self.upstream.name} ({server.url})"
        if isinstance(value, (AuthenticationFailed, NoAcceptableMethods)):
            reply, outcome, reason = (
                ReplyCode.GENERAL_FAILURE,
                Outcome.FAILED,
                f"{where} refused our login: {value}",
            )
        elif value.code is None:
            return None
        elif value.version == 5:
            reply = ReplyCode(value.code)
            outcome = Outcome.TIMEOUT if reply == ReplyCode.TTL_EXPIRED else Outcome.FAILED
            reason = f"{where} answered: {value}"
        else:
            reply, outcome, reason = ReplyCode.GENERAL_FAILURE, Outcome.FAILED, f"{where} answered: {value}"
        refusal = upstreamRefusal(self.upstream.name, reply, outcome, reason)
        refusal.server = server.url
        return refusal

    def _describe(self, failure: Failure, server: UpstreamServer) -> str:
        """
        What went wrong with a server, in a few words.
        """
        if failure.check(DeferredTimeout):
            return f"no reply within {self.timeout:g} seconds"
        text = failure.getErrorMessage() or failure.type.__name__
        if self.upstream.tls:
            if "VerificationError" in text:
                return f"TLS refused: its certificate is not for {server.proxy.host}: {text}"
            if "certificate verify failed" in text:
                return f"TLS refused: its certificate is not signed by a trusted authority: {text}"
            if "SSL" in text:
                return f"TLS refused: {text}"
        return text

    def _proxy(self, server: UpstreamServer) -> Any:
        """
        The endpoint that reaches C{server} (over TLS when the upstream
        says so).
        """
        bindAddress = (str(self.bindHost), 0) if self.bindHost is not None else None
        url = server.proxy
        proxy: Any = HostnameEndpoint(self.reactor, url.host, url.port, self.timeout, bindAddress)
        if self.upstream.tls:
            trustRoot = Certificate.loadPEM(self.upstream.caData) if self.upstream.caData else None
            proxy = wrapClientTLS(optionsForClientTLS(url.host, trustRoot), proxy)
        return proxy

    def _destination(
        self, server: UpstreamServer, request: AccessRequest, addresses: list[IPAddress]
    ) -> str | IPAddress:
        """
        The destination as C{server} is sent it: the name for C{socks5h}
        and C{socks4a}, else the first address (SOCKS4: the first IPv4
        one).

        @raise RequestRefused: with 0x08, the server's version cannot carry
            the destination (SOCKS4 and an IPv6 address).
        """
        url = server.proxy
        host: str | IPAddress = addresses[0]
        if url.scheme in ("socks5h", "socks4a") and request.destinationName is not None:
            host = request.destinationName
        elif not url.scheme.startswith("socks5"):
            host = next((each for each in addresses if isinstance(each, IPv4Address)), host)
        if not url.scheme.startswith("socks5") and isinstance(host, IPv6Address):
            raise RequestRefused(
                ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED,
                Outcome.FAILED,
                f"{server.url} cannot carry an IPv6 address",
            )
        return host

    def _endpoint(
        self, server: UpstreamServer, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> Any:
        """
        The client endpoint that asks C{server} for the destination.

        @raise RequestRefused: see L{_destination}.
        """
        host = self._destination(server, request, addresses)
        version5 = server.proxy.scheme.startswith("socks5")
        password = self.upstream.password if version5 else None
        url = server.proxy.withCredentials(self.upstream.username or None, password)
        return endpointFor(self.reactor, url, str(host), port, proxyEndpoint=self._proxy(server))

    def _udpClient(self, server: UpstreamServer) -> SOCKS5UDPClient:
        """
        The client that asks C{server} for a UDP association, its socket on
        C{bindHost}, else on loopback for a server on loopback, else on the
        unspecified address of the server's family.

        @raise RequestRefused: with 0x07, a SOCKS4 server.
        """
        url = server.proxy
        if not url.scheme.startswith("socks5"):
            raise RequestRefused(
                ReplyCode.COMMAND_NOT_SUPPORTED, Outcome.FAILED, f"{server.url} cannot carry UDP (SOCKS4)"
            )
        try:
            address: IPAddress | None = ip_address(url.host)
        except ValueError:
            address = None
        if self.bindHost is not None:
            interface = str(self.bindHost)
        elif address is None:
            interface = UNSPECIFIED_HOSTS[4]
        else:
            interface = (LOOPBACK_HOSTS if address.is_loopback else UNSPECIFIED_HOSTS)[address.version]
        login = self.upstream.username or None
        password = self.upstream.password if login is not None else None
        return SOCKS5UDPClient(
            self._proxy(server), username=login, password=password, interface=interface, reactor=self.reactor
        )

    def _bindEndpoint(
        self, server: UpstreamServer, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> SOCKS5BindEndpoint | SOCKS4BindEndpoint:
        """
        The BIND endpoint that asks C{server} to listen for the peer.

        @raise RequestRefused: see L{_destination}.
        """
        host, proxy = str(self._destination(server, request, addresses)), self._proxy(server)
        username = self.upstream.username
        if server.proxy.scheme.startswith("socks5"):
            login = username or None
            password = self.upstream.password if login is not None else None
            return SOCKS5BindEndpoint(proxy, host, port, username=login, password=password)
        return SOCKS4BindEndpoint(proxy, host, port, userid=username)
