"""
UDP ASSOCIATE through a SOCKS5 server (RFC 1928, section 7), for a
L{DatagramProtocol}.

L{SOCKS5UDPClient.associate} opens a UDP socket, asks the server for an
association over a TCP control connection, and once the server's reply
names its relay, connects the application's protocol to a
L{SOCKSUDPAssociation}: C{transport.write(payload, (host, port))} sends
a datagram through the relay (a name is sent unresolved), and the
protocol's C{datagramReceived(payload, (host, port))} gets each datagram
the relay passes back, with the source its header names.

The association lives as long as the control connection: when the server
closes it, the socket is closed and the protocol stopped; when the
application ends the association (C{transport.loseConnection()}), the
control connection is closed.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IAddress, IListeningPort, IStreamClientEndpoint
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..wire import Command, MalformedMessage, UDPDatagram, parseUDPDatagram
from ._attempts import Attempt, runCancellable
from .bind import announcedAddress
from .endpoints import SOCKS5ClientEndpoint, destinationHost
from .protocol import SOCKSClientProtocol

__all__ = ["SOCKS5UDPClient", "SOCKSUDPAssociation"]


class _SOCKS5AssociateRequest(SOCKS5ClientEndpoint):
    _command = Command.UDP_ASSOCIATE


class _FromRelay(DatagramProtocol):
    """
    The local socket's protocol: datagrams from the relay, their headers
    taken off.
    """

    log = Logger()
    noisy = False

    def __init__(self) -> None:
        self.association: SOCKSUDPAssociation | None = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Pass a datagram from the relay on without its header; drop one from
        anywhere else, a fragment (FRAG not 0: fragments are not
        reassembled) and one whose header is malformed.
        """
        association = self.association
        if association is None or association.application is None:
            return
        if (ip_address(addr[0]), addr[1]) != association.relay:
            self.log.debug("dropped a datagram from {source}, not the relay", source=f"{addr[0]}:{addr[1]}")
            return
        try:
            parsed = parseUDPDatagram(datagram)
        except MalformedMessage as error:
            self.log.debug("dropped a datagram from the relay: {reason}", reason=error.reason)
            return
        if parsed.fragment:
            self.log.debug("dropped a fragment ({fragment}) from the relay", fragment=parsed.fragment)
            return
        association.application.datagramReceived(parsed.data, (str(parsed.host), parsed.port))


class _Lifeline(Protocol):
    """
    The control connection once the association is made: its end is the
    association's.
    """

    def __init__(self, association: SOCKSUDPAssociation) -> None:
        self._association = association

    def dataReceived(self, data: bytes) -> None:
        """
        Nothing is expected on the control connection; ignore it.
        """

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        End the association.
        """
        self._association.loseConnection()


class SOCKSUDPAssociation:
    """
    A UDP association: the transport of the application's
    L{DatagramProtocol}.

    @ivar relay: the relay's address and port (an C{ipaddress} address
        and an C{int}), where every datagram goes.
    @ivar application: the protocol, until the association ends.
    @ivar handshake: the control connection's protocol.
    """

    def __init__(
        self, port: IListeningPort, handshake: SOCKSClientProtocol, relay: tuple[Any, int], application: Any
    ) -> None:
        self._port = port
        self.handshake = handshake
        self.relay = relay
        self.application: DatagramProtocol | None = application
        self._closing: list[Deferred[None]] = []
        self._closed = False

    def write(self, datagram: bytes, addr: tuple[str | bytes, int]) -> None:
        """
        Send C{datagram} to C{addr}, a C{(host, port)} where C{host} is an
        address or a name, through the relay.  Once the association has
        ended, nothing is sent.

        @raise ValueError: a name that cannot be sent or a port out of
            range.
        """
        host, port = addr
        if not 0 < port <= 0xFFFF:
            raise ValueError(f"port {port} is not between 1 and 65535")
        encoded = UDPDatagram(destinationHost(host), port, datagram).toBytes()
        if self.application is not None:
            self._port.write(encoded, (str(self.relay[0]), self.relay[1]))  # type: ignore[attr-defined]

    def getHost(self) -> IAddress:
        """
        The local socket's address.
        """
        return self._port.getHost()

    def getRelay(self) -> tuple[str, int]:
        """
        The relay's address and port, as text and number.
        """
        return str(self.relay[0]), self.relay[1]

    def loseConnection(self) -> Deferred[None]:
        """
        End the association: close the control connection and the socket,
        and stop the protocol.

        @return: a L{Deferred} that fires once both are closed.
        """
        if self.application is not None:
            application, self.application = self.application, None
            self.handshake.abandon()
            waits = [self.handshake.whenClosed(), self._port.stopListening() or succeed(None)]
            DeferredList(waits).addCallback(self._ended)
            application.doStop()
        return self.whenClosed()

    stopListening = loseConnection

    def whenClosed(self) -> Deferred[None]:
        """
        Wait for the association to end.

        @return: a L{Deferred} that fires once the control connection and
            the socket are closed.
        """
        if self._closed:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._closing.append(waiting)
        return waiting

    def _ended(self, ignored: object) -> None:
        self._closed = True
        closing, self._closing = self._closing, []
        for waiting in closing:
            waiting.callback(None)


class SOCKS5UDPClient:
    """
    Makes UDP associations through a SOCKS5 server.
    """

    def __init__(
        self,
        proxyEndpoint: IStreamClientEndpoint,
        *,
        username: str | bytes | None = None,
        password: str | bytes | None = None,
        interface: str = "0.0.0.0",
        reactor: Any = None,
    ) -> None:
        """
        @param proxyEndpoint: reaches the SOCKS server (its control
            connection).
        @param username: the RFC 1929 user name, as for
            L{SOCKS5ClientEndpoint}.
        @param password: the RFC 1929 password.
        @param interface: the local address the datagrams are sent from;
            C{"::"} or an IPv6 address for a relay with an IPv6 address.
            The request's DST.ADDR is this address (all zeros if it is
            unspecified: the server takes the control connection's), its
            DST.PORT the socket's port.
        @param reactor: opens the socket; the global reactor by default.
        """
        SOCKS5ClientEndpoint(proxyEndpoint, interface, 0, username=username, password=password)
        self._proxyEndpoint = proxyEndpoint
        self._username = username
        self._password = password
        self._interface = interface
        self._reactor = reactor

    def associate(self, protocol: DatagramProtocol) -> Deferred[SOCKSUDPAssociation]:
        """
        Make an association for C{protocol}.

        @return: a L{Deferred} that fires with the association, which is
            C{protocol.transport} from then on, once the server's reply
            came; or fails with a L{socksgate.client.errors.SOCKSError},
            the proxy endpoint's error, a L{ConnectError} for a relay of
            another address family than the socket, or (cancelled at any
            stage) L{CancelledError}.
        """
        return runCancellable(lambda attempt: self._associate(protocol, attempt), _end)

    async def _associate(self, application: DatagramProtocol, attempt: Attempt) -> SOCKSUDPAssociation:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        fromRelay = _FromRelay()
        port = reactor.listenUDP(0, fromRelay, interface=self._interface)
        try:
            request = _SOCKS5AssociateRequest(
                self._proxyEndpoint,
                self._interface,
                port.getHost().port,
                username=self._username,
                password=self._password,
            )
            handshake = await request._handshake(attempt)
            try:
                reply = await handshake.nextReply()
                announced = announcedAddress(reply, handshake.transport)
                if not isinstance(announced, (IPv4Address, IPv6Address)):
                    raise ConnectError(string=f"the relay is named {announced}, not by an address")
                relay = (ip_address(announced.host), announced.port)
                if relay[0].version != ip_address(port.getHost().host).version:
                    raise ConnectError(
                        string=f"the relay {announced.host} is of another family than {self._interface}"
                    )
            except BaseException:
                handshake.abandon()
                raise
        except BaseException:
            await port.stopListening()
            raise
        association = SOCKSUDPAssociation(port, handshake, relay, application)
        fromRelay.association = association
        handshake.startRelaying(_Lifeline(association), announced)
        application.makeConnection(association)
        return association


def _end(association: SOCKSUDPAssociation) -> None:
    association.loseConnection()
