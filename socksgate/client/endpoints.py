"""
SOCKS client endpoints: L{IStreamClientEndpoint}s that reach a destination
through a SOCKS server, itself reached through any other client endpoint
(TCP, C{wrapClientTLS(...)}, or another SOCKS endpoint, so that chains
nest).

C{connect(factory)} connects to the proxy, runs the handshake, and once the
server's reply says the destination is connected, builds the factory's
protocol for the destination's address and fires with it.  Cancelling the
L{Deferred} at any stage (connecting to the proxy, resolving a SOCKS4 name,
during the greeting, the authentication or the request) closes the
connection to the proxy and fails with L{CancelledError}.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet import address as twistedAddress
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import DNSLookupError, NoProtocol
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IProtocol,
    IProtocolFactory,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from zope.interface import implementer

from ..wire import Command, Host, SOCKS4Request, SOCKS5Request, UsernamePasswordRequest, encodeHostname
from ._attempts import Attempt, runCancellable
from .protocol import SOCKSClientProtocol

__all__ = ["SOCKS4ClientEndpoint", "SOCKS4aClientEndpoint", "SOCKS5ClientEndpoint"]


def _toText(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _toBytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def destinationHost(host: str | bytes) -> Host:
    """
    The destination as the request carries it: an address for an IP
    literal, else the name, unresolved.

    @raise ValueError: the name cannot be sent.
    """
    text = _toText(host)
    try:
        return ip_address(text.strip("[]"))
    except ValueError:
        encodeHostname(text)
        return text


def peerAddress(host: Host, port: int) -> IAddress:
    """
    The address C{transport.getPeer()} gives for a destination: an
    L{twistedAddress.IPv4Address} or L{twistedAddress.IPv6Address} for an
    address, a L{twistedAddress.HostnameAddress} for a name.
    """
    if isinstance(host, IPv4Address):
        return twistedAddress.IPv4Address("TCP", str(host), port)
    if isinstance(host, IPv6Address):
        return twistedAddress.IPv6Address("TCP", str(host), port)
    return twistedAddress.HostnameAddress(host.encode("utf-8"), port)


class _OneProtocol(Factory):
    """
    The factory for the connection to the proxy: it gives the handshake's
    protocol, built beforehand.
    """

    def __init__(self, protocol: SOCKSClientProtocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress) -> SOCKSClientProtocol:
        """
        The handshake's protocol.
        """
        return self._protocol


def _closeProtocol(protocol: IProtocol) -> None:
    """
    Close the connection of a protocol connected after its attempt was
    cancelled.
    """
    if protocol.transport is not None:  # type: ignore[attr-defined]
        protocol.transport.loseConnection()  # type: ignore[attr-defined]


class _SOCKSClientEndpoint:
    """
    What the three endpoints share: connect, hand-shake, hand over.

    @cvar _command: the request's command (BIND and UDP ASSOCIATE reuse
        the handshake).
    """

    _command = Command.CONNECT

    def __init__(self, proxyEndpoint: IStreamClientEndpoint, host: str | bytes, port: int) -> None:
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"port {port} is not between 0 and 65535")
        self._proxyEndpoint = proxyEndpoint
        self._host = destinationHost(host)
        self._port = port

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect to the destination through the SOCKS server.

        @return: a L{Deferred} that fires with C{protocolFactory}'s
            protocol once the server has connected it, or fails with a
            L{socksgate.client.errors.SOCKSError}, the proxy endpoint's own
            error, or L{CancelledError}.
        """
        return runCancellable(lambda attempt: self._connect(protocolFactory, attempt), _closeProtocol)

    async def _handshake(self, attempt: Attempt) -> SOCKSClientProtocol:
        """
        Connect to the proxy and start the handshake of this endpoint's
        request, of C{self._command}.
        """
        request = await self._request()
        handshake = SOCKSClientProtocol(request, self._credentials())
        try:
            await self._proxyEndpoint.connect(_OneProtocol(handshake))
            if attempt.cancelled:
                raise CancelledError()
        except BaseException:
            handshake.abandon()
            raise
        return handshake

    async def _connect(self, protocolFactory: IProtocolFactory, attempt: Attempt) -> IProtocol:
        handshake = await self._handshake(attempt)
        try:
            await handshake.nextReply()
            peer = peerAddress(self._host, self._port)
            application = protocolFactory.buildProtocol(peer)
            if application is None:
                raise NoProtocol()
        except BaseException:
            handshake.abandon()
            raise
        handshake.startRelaying(application, peer)
        return application

    async def _request(self) -> SOCKS4Request | SOCKS5Request:
        raise NotImplementedError()

    def _credentials(self) -> UsernamePasswordRequest | None:
        return None


@implementer(IStreamClientEndpoint)
class SOCKS5ClientEndpoint(_SOCKSClientEndpoint):
    """
    CONNECT through a SOCKS5 server, a name sent unresolved (ATYP 3), with
    RFC 1929 username/password when given.
    """

    def __init__(
        self,
        proxyEndpoint: IStreamClientEndpoint,
        host: str | bytes,
        port: int,
        *,
        username: str | bytes | None = None,
        password: str | bytes | None = None,
    ) -> None:
        """
        @param proxyEndpoint: reaches the SOCKS server.
        @param host: the destination: a name (resolved by the server) or an
            IPv4 or IPv6 literal.
        @param port: the destination's port.
        @param username: the RFC 1929 user name; with it, the greeting
            offers username/password as well as no authentication.
        @param password: the RFC 1929 password (empty if not given).
        """
        super().__init__(proxyEndpoint, host, port)
        self._login = None
        if username is not None:
            self._login = UsernamePasswordRequest(_toBytes(username), _toBytes(password or b""))
            self._login.toBytes()
        elif password is not None:
            raise ValueError("a password needs a username")

    async def _request(self) -> SOCKS5Request:
        return SOCKS5Request(self._command, self._host, self._port)

    def _credentials(self) -> UsernamePasswordRequest | None:
        return self._login


@implementer(IStreamClientEndpoint)
class SOCKS4aClientEndpoint(_SOCKSClientEndpoint):
    """
    CONNECT through a SOCKS4a server, a name sent unresolved.
    """

    def __init__(
        self, proxyEndpoint: IStreamClientEndpoint, host: str | bytes, port: int, *, userid: str | bytes = ""
    ) -> None:
        """
        @param proxyEndpoint: reaches the SOCKS server.
        @param host: the destination: a name or an IPv4 literal.
        @param port: the destination's port.
        @param userid: the USERID field.
        @raise ValueError: an IPv6 destination (SOCKS4 has none).
        """
        super().__init__(proxyEndpoint, host, port)
        if isinstance(self._host, IPv6Address):
            raise ValueError("SOCKS4 cannot carry an IPv6 destination")
        self._userid = _toBytes(userid)
        SOCKS4Request(Command.CONNECT, self._host, port, self._userid).toBytes()

    async def _request(self) -> SOCKS4Request:
        assert not isinstance(self._host, IPv6Address)
        return SOCKS4Request(self._command, self._host, self._port, self._userid)


@implementer(IResolutionReceiver)
class _FirstIPv4:
    """
    Collects a resolution's addresses; C{done} fires with the first IPv4
    one.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._addresses: list[IPv4Address] = []
        self.done: Deferred[IPv4Address] = Deferred()

    def resolutionBegan(self, resolutionInProgress: Any) -> None:
        """
        Nothing to do.
        """

    def addressResolved(self, address: IAddress) -> None:
        """
        Keep an IPv4 address.
        """
        if isinstance(address, twistedAddress.IPv4Address):
            self._addresses.append(IPv4Address(address.host))

    def resolutionComplete(self) -> None:
        """
        Fire C{done}.
        """
        if self.done.called:
            return
        if self._addresses:
            self.done.callback(self._addresses[0])
        else:
            self.done.errback(DNSLookupError(f"{self._name} has no IPv4 address"))


@implementer(IStreamClientEndpoint)
class SOCKS4ClientEndpoint(SOCKS4aClientEndpoint):
    """
    CONNECT through a SOCKS4 server: SOCKS4 carries only an IPv4 address,
    so a name is resolved here, without blocking, by the resolver given or
    else the reactor's C{nameResolver}.
    """

    def __init__(
        self,
        proxyEndpoint: IStreamClientEndpoint,
        host: str | bytes,
        port: int,
        *,
        userid: str | bytes = "",
        reactor: Any = None,
        resolver: IHostnameResolver | None = None,
    ) -> None:
        """
        @param reactor: whose C{nameResolver} resolves a name; the global
            reactor by default.
        @param resolver: resolves a name instead of the reactor's.
        """
        super().__init__(proxyEndpoint, host, port, userid=userid)
        self._reactor = reactor
        self._resolver = resolver

    async def _request(self) -> SOCKS4Request:
        host = self._host
        if isinstance(host, str):
            receiver = _FirstIPv4(host)
            self._nameResolver().resolveHostName(receiver, host, self._port, [twistedAddress.IPv4Address])
            host = await receiver.done
        assert isinstance(host, IPv4Address)
        return SOCKS4Request(self._command, host, self._port, self._userid)

    def _nameResolver(self) -> IHostnameResolver:
        if self._resolver is not None:
            return self._resolver
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        return reactor.nameResolver  # type: ignore[no-any-return]
