"""
BIND through a SOCKS server, as a server endpoint: L{SOCKS5BindEndpoint}
and L{SOCKS4BindEndpoint} ask the server to listen for one connection
from a given host (the data connection of FTP-like protocols).

C{listen(factory)} connects to the proxy, sends the BIND request, and
fires with a L{SOCKSBoundPort} once the server's first reply names the
address and port it listens on (C{getHost()}).  The application tells the
peer that address; when the peer connects, the server's second reply
names it, and the factory's protocol is built for it and connected to the
control connection, which from then on carries the peer's bytes
(L{SOCKSBoundPort.accepted} fires with that protocol).  Each reply can be
a refusal, failing with the error of its code as for CONNECT
(L{socksgate.client.errors}).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import NoProtocol
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ..wire import Command
from ._attempts import Attempt, runCancellable
from .endpoints import SOCKS4aClientEndpoint, SOCKS5ClientEndpoint, peerAddress
from .protocol import Reply, SOCKSClientProtocol

__all__ = ["SOCKS4BindEndpoint", "SOCKS5BindEndpoint", "SOCKSBoundPort", "announcedAddress"]


def announcedAddress(reply: Reply, proxyConnection: Any) -> IAddress:
    """
    The address a reply announces (BND.ADDR:BND.PORT, SOCKS4 DSTIP:DSTPORT)
    for a peer to reach.

    An all-zeros address (the server listens on every address of its host;
    SOCKS4 says the client then uses the server's address) becomes the
    address of the proxy connection's far end, when that is an IP address
    of the same family: the one address of the server the client knows.

    @param proxyConnection: the transport of the connection to the proxy.
    """
    host = reply.host
    if isinstance(host, (IPv4Address, IPv6Address)) and host.is_unspecified:
        far = proxyConnection.getPeer()
        try:
            farHost = ip_address(getattr(far, "host", ""))
        except ValueError:
            farHost = None
        if farHost is not None and farHost.version == host.version:
            host = farHost
    return peerAddress(host, reply.port)


@implementer(IListeningPort)
class SOCKSBoundPort:
    """
    The port a SOCKS server listens on for one BIND: its address, and the
    connection it accepts.

    @ivar handshake: the control connection's protocol.
    """

    def __init__(self, handshake: SOCKSClientProtocol, host: IAddress, factory: IProtocolFactory) -> None:
        """
        @param handshake: the control connection, after the first reply.
        @param host: the address announced.
        @param factory: builds the protocol for the peer's connection.
        """
        self.handshake = handshake
        self._host = host
        self._factory = factory
        self._result: IProtocol | Failure | None = None
        self._waiting: list[Deferred[IProtocol]] = []
        handshake.nextReply().addCallbacks(self._secondReply, self._finish)

    def getHost(self) -> IAddress:
        """
        The address and port the server listens on, for the peer (see
        L{announcedAddress}).
        """
        return self._host

    def startListening(self) -> None:
        """
        Nothing: the server listens from the first reply on.
        """

    def stopListening(self) -> Deferred[None]:
        """
        Give up the BIND if no peer has connected yet: the control
        connection closes and L{accepted} fails with L{CancelledError}.
        Once a peer is connected, nothing (its connection is the
        protocol's to close).

        @return: a L{Deferred} that fires once the control connection is
            closed.
        """
        if self._result is not None:
            return succeed(None)
        self._finish(Failure(CancelledError("the BIND was given up")))
        return self.handshake.whenClosed()

    def accepted(self) -> Deferred[IProtocol]:
        """
        Wait for the peer's connection.

        @return: a L{Deferred} that fires with the factory's protocol,
            built for the peer's address (C{transport.getPeer()} names it),
            once the server's second reply came, or fails with the error
            of a refusal, L{socksgate.client.errors.MalformedReply} if the
            control connection closes first, L{NoProtocol}, or
            L{CancelledError}.  Cancelling it gives the BIND up, as
            L{stopListening} does.
        """
        if isinstance(self._result, Failure):
            return fail(self._result)
        if self._result is not None:
            return succeed(self._result)
        deferred: Deferred[IProtocol] = Deferred(lambda d: self.stopListening())
        self._waiting.append(deferred)
        return deferred

    def _secondReply(self, reply: Reply) -> None:
        if self._result is not None:
            return
        peer = peerAddress(reply.host, reply.port)
        try:
            application = self._factory.buildProtocol(peer)
            if application is None:
                raise NoProtocol()
        except Exception:
            self._finish(Failure())
            return
        # The BIND is over before the application sees its peer: it may
        # stop listening from connectionMade, which must not give it up.
        self._result = application
        self.handshake.startRelaying(application, peer)
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.callback(application)

    def _finish(self, failure: Failure) -> None:
        """
        End the wait with C{failure}: the control connection closes.
        """
        if self._result is not None:
            return
        self._result = failure
        self.handshake.abandon()
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.errback(failure)


class _BindEndpoint:
    """
    What the two BIND endpoints share: the first reply gives the port.
    """

    _request: SOCKS5ClientEndpoint | SOCKS4aClientEndpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[SOCKSBoundPort]:
        """
        Ask the server to listen for the peer.

        @param protocolFactory: builds the protocol for the peer's
            connection, once it comes.
        @return: a L{Deferred} that fires with the L{SOCKSBoundPort} once
            the server's first reply came, or fails with a
            L{socksgate.client.errors.SOCKSError}, the proxy endpoint's
            error, or (cancelled at any stage) L{CancelledError}.
        """
        return runCancellable(
            lambda attempt: self._listen(protocolFactory, attempt), lambda port: port.handshake.abandon()
        )

    async def _listen(self, protocolFactory: IProtocolFactory, attempt: Attempt) -> SOCKSBoundPort:
        handshake = await self._request._handshake(attempt)
        try:
            first = await handshake.nextReply()
        except BaseException:
            handshake.abandon()
            raise
        return SOCKSBoundPort(handshake, announcedAddress(first, handshake.transport), protocolFactory)


class _SOCKS5BindRequest(SOCKS5ClientEndpoint):
    _command = Command.BIND


class _SOCKS4BindRequest(SOCKS4aClientEndpoint):
    _command = Command.BIND


@implementer(IStreamServerEndpoint)
class SOCKS5BindEndpoint(_BindEndpoint):
    """
    SOCKS5 BIND (RFC 1928, section 4): the server listens for a
    connection from C{host}.
    """

    def __init__(
        self,
        proxyEndpoint: Any,
        host: str | bytes = "0.0.0.0",
        port: int = 0,
        *,
        username: str | bytes | None = None,
        password: str | bytes | None = None,
    ) -> None:
        """
        @param proxyEndpoint: an L{twisted.internet.interfaces.IStreamClientEndpoint} that reaches the
            SOCKS server.
        @param host: DST.ADDR, the peer expected to connect: an address, a
            name, or all zeros (C{"0.0.0.0"}, C{"::"}) for any host, where
            the server allows it (socksgate does).
        @param port: DST.PORT, the peer's port; 0 for any.
        @param username: the RFC 1929 user name, as for
            L{SOCKS5ClientEndpoint}.
        @param password: the RFC 1929 password.
        """
        self._request = _SOCKS5BindRequest(proxyEndpoint, host, port, username=username, password=password)


@implementer(IStreamServerEndpoint)
class SOCKS4BindEndpoint(_BindEndpoint):
    """
    SOCKS4 BIND: the server listens for a connection from C{host}, an IPv4
    address (or a name, sent as SOCKS4a does).
    """

    def __init__(
        self, proxyEndpoint: Any, host: str | bytes, port: int = 0, *, userid: str | bytes = ""
    ) -> None:
        """
        @param proxyEndpoint: an L{twisted.internet.interfaces.IStreamClientEndpoint} that reaches the
            SOCKS server.
        @param host: DSTIP, the peer expected to connect (the SOCKS4
            document: the application server of the primary connection).
        @param port: DSTPORT.
        @param userid: the USERID field.
        @raise ValueError: an IPv6 address.
        """
        self._request = _SOCKS4BindRequest(proxyEndpoint, host, port, userid=userid)
