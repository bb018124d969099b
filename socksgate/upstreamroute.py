"""
L{UpstreamRoute}: a permitted CONNECT carried through an C{[[upstream]]}
SOCKS server, with the client endpoints of L{socksgate.client}.

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

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python.failure import Failure
from zope.interface import implementer

from .client.errors import AuthenticationFailed, NoAcceptableMethods, SOCKSError
from .client.urls import endpointFor
from .interfaces import IRoute
from .policy import AccessRequest, IPAddress
from .relay import DestinationProtocol
from .upstreams import UpstreamConfig, UpstreamServer, UpstreamTable
from .vocabulary import Outcome, RequestRefused
from .wire import ReplyCode

__all__ = ["UpstreamRoute", "upstreamRefusal"]


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
        upstream = self.upstream
        failures = []
        for server in self.table.serversToTry(upstream):
            try:
                endpoint = self._endpoint(server, request, addresses, port)
            except RequestRefused as refusal:
                refusal.upstream, refusal.server = upstream.name, server.url
                raise
            attempt = endpoint.connect(Factory.forProtocol(DestinationProtocol))
            attempt.addTimeout(self.timeout, self.reactor)
            try:
                protocol: DestinationProtocol = await attempt
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
            protocol.upstream, protocol.server = upstream.name, server.url
            return protocol
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

    def _endpoint(
        self, server: UpstreamServer, request: AccessRequest, addresses: list[IPAddress], port: int
    ) -> Any:
        """
        The client endpoint that asks C{server} for the destination.

        @raise RequestRefused: with 0x08, the server's version cannot carry
            the destination (SOCKS4 and an IPv6 address).
        """
        bindAddress = (str(self.bindHost), 0) if self.bindHost is not None else None
        url = server.proxy
        proxy: Any = HostnameEndpoint(self.reactor, url.host, url.port, self.timeout, bindAddress)
        if self.upstream.tls:
            trustRoot = Certificate.loadPEM(self.upstream.caData) if self.upstream.caData else None
            proxy = wrapClientTLS(optionsForClientTLS(url.host, trustRoot), proxy)
        host: str | IPAddress = addresses[0]
        version5 = url.scheme.startswith("socks5")
        if url.scheme in ("socks5h", "socks4a") and request.destinationName is not None:
            host = request.destinationName
        elif not version5:
            host = next((each for each in addresses if isinstance(each, IPv4Address)), host)
        if not version5 and isinstance(host, IPv6Address):
            raise RequestRefused(
                ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED,
                Outcome.FAILED,
                f"{server.url} cannot carry an IPv6 address",
            )
        password = self.upstream.password if version5 else None
        url = url.withCredentials(self.upstream.username or None, password)
        return endpointFor(self.reactor, url, str(host), port, proxyEndpoint=proxy)
