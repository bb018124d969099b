"""
The PROXY protocol (HAProxy's, versions 1 and 2) in front of a listener:
the client a connection serves is the one the header names.

Twisted's own C{haproxy:} wrapper starts the wrapped protocol as soon as
the TCP connection is accepted, before the header has arrived, so a
protocol that looks at its client in C{connectionMade} (the gateway does:
limits, session record, policy) sees the proxy; and it does not pass
half-close on, so a client's FIN closes the whole connection.  This wrapper
drives Twisted's header parsers (L{V1Parser}, L{V2Parser}) and:

  - builds and connects the wrapped protocol only once the header is
    parsed, with C{getPeer} giving the header's source;
  - takes the connection's own peer as the client when the header says
    C{LOCAL} (v2) or C{UNKNOWN} (v1, or v2's unspecified family): health
    checks;
  - closes, logging why, a connection whose header is malformed, names no
    TCP client (a UNIX or UDP source), or is not complete within the
    header timeout;
  - passes the bytes that came after the header on, and half-close both
    ways (L{IHalfCloseableProtocol});
  - keeps C{getHost} the listener's own local address: the header's
    destination is where the client reached the proxy, not an address of
    this host.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall, IHalfCloseableProtocol, IProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from .addresses import withoutScope

__all__ = ["HEADER_PREFIX", "ProxyHeaderFactory", "ProxyHeaderProtocol"]

#: The endpoint description prefix that puts a listener behind a proxy.
HEADER_PREFIX = "haproxy"

_V1_SIGNATURE = V1Parser.PROXYSTR + b" "
_V2_SIGNATURE = V2Parser.PREFIX
#: Bytes that tell a v2 header from anything else: the signature, the
#: version and command, the family, and the length.
_V2_FIXED = len(_V2_SIGNATURE) + 4
#: A v1 header's longest line, CRLF included (the PROXY protocol, 2.1).
_V1_LONGEST = 107

#: What Twisted's parsers raise for bad input besides their own errors
#: (a v1 port that is not a number, bytes that are not ASCII).
_PARSE_ERRORS = (InvalidProxyHeader, ValueError, KeyError, TypeError)


class _V1Parser(V1Parser):
    """
    Twisted's v1 parser, taking the shortest C{UNKNOWN} line too.
    """

    @classmethod
    def parse(cls, line: bytes) -> Any:
        """
        Parse a v1 header line.  Twisted's parser wants something after
        C{UNKNOWN}; the PROXY protocol (2.1) allows C{PROXY UNKNOWN} alone,
        and HAProxy sends it for its health checks.
        """
        if line == cls.PROXYSTR + b" " + cls.UNKNOWN_PROTO:
            return ProxyInfo(line, None, None)
        return super().parse(line)


class _Rejected(Exception):
    """
    A header that parses but cannot be served; the message says why.
    """


def _parserFor(buffered: bytes) -> V1Parser | V2Parser | None:
    """
    The parser for the header that C{buffered} begins, or L{None} when
    more bytes are needed to tell.

    @raise _Rejected: when the bytes begin no PROXY header.
    """
    if _V2_SIGNATURE.startswith(buffered[: len(_V2_SIGNATURE)]):
        if len(buffered) < _V2_FIXED:
            return None
        if buffered[12] & 0xF0 != 0x20:
            raise _Rejected("unsupported PROXY protocol version")
        return V2Parser()
    if _V1_SIGNATURE.startswith(buffered[: len(_V1_SIGNATURE)]):
        return None if len(buffered) < len(_V1_SIGNATURE) else _V1Parser()
    raise _Rejected("no PROXY header")


def _clientOf(source: IAddress | None) -> IAddress | None:
    """
    Check the source a parsed header names.

    @return: C{source}, its address in the usual spelling (Twisted's v2
        parser writes IPv6 addresses out in full), or L{None} when the header names none (C{LOCAL},
        C{UNKNOWN}): the connection's own peer is the client.
    @raise _Rejected: when the source is no TCP client address.
    """
    if source is None:
        return None
    if not isinstance(source, (IPv4Address, IPv6Address)) or source.type != "TCP":
        raise _Rejected(f"the PROXY header names no TCP client ({source})")
    try:
        parsed = ip_address(withoutScope(source.host))
    except ValueError:
        raise _Rejected(f"the PROXY header's source {source.host!r} is not an IP address") from None
    if parsed.version != (4 if isinstance(source, IPv4Address) else 6):
        raise _Rejected(f"the PROXY header's source {source.host!r} is not of its family")
    if not 0 <= source.port <= 65535:
        raise _Rejected(f"the PROXY header's source port {source.port} is out of range")
    return type(source)("TCP", str(parsed), source.port)


@implementer(IHalfCloseableProtocol)
class ProxyHeaderProtocol(ProtocolWrapper):
    """
    One connection from a proxy: the PROXY header, then the wrapped
    protocol, to which this is the transport.

    @ivar proxyInfo: the parsed header, once it has arrived.
    @ivar wrappedProtocol: the wrapped protocol, once the header is parsed;
        L{None} before.
    """

    log = Logger()

    def __init__(self, factory: ProxyHeaderFactory) -> None:
        super().__init__(factory, None)  # type: ignore[arg-type]
        self.wrappedProtocol: IProtocol | None = None  # type: ignore[assignment]
        self.proxyInfo: Any = None
        self._parser: V1Parser | V2Parser | None = None
        self._buffered = b""
        self._client: IAddress | None = None
        self._rejected = False
        self._headerCall: IDelayedCall | None = None

    def logPrefix(self) -> str:
        """
        The wrapped protocol's log prefix, marked as behind a proxy.
        """
        wrapped = self.wrappedProtocol
        name = type(wrapped).__name__ if wrapped is not None else "connection"
        return f"{name} (PROXY)"

    def makeConnection(self, transport: Any) -> None:
        """
        Take the connection; the wrapped protocol waits for the header.
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)

    def connectionMade(self) -> None:
        """
        Start the header timer.
        """
        factory = self.factory
        self._headerCall = factory.reactor.callLater(factory.headerTimeout, self._headerTimedOut)

    def dataReceived(self, data: bytes) -> None:
        """
        Parse the header, then pass everything on to the wrapped protocol.
        """
        if self.wrappedProtocol is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._rejected:
            return
        try:
            info, remaining = self._feed(data)
            if info is None:
                return
            client = _clientOf(info.source)
        except _Rejected as rejection:
            self._reject(str(rejection))
            return
        except _PARSE_ERRORS:
            self._reject("malformed PROXY header")
            return
        self._start(info, client, remaining)

    def _feed(self, data: bytes) -> tuple[Any, bytes]:
        parser = self._parser
        if parser is None:
            self._buffered += data
            parser = self._parser = _parserFor(self._buffered)
            if parser is None:
                return None, b""
            data, self._buffered = self._buffered, b""
        info, remaining = parser.feed(data)
        if info is not None and isinstance(parser, V1Parser) and len(info.header) + 2 > _V1_LONGEST:
            raise _Rejected(f"PROXY v1 header longer than {_V1_LONGEST} bytes")
        return info, remaining or b""

    def _start(self, info: Any, client: IAddress | None, remaining: bytes) -> None:
        """
        The header is in: build and connect the wrapped protocol with its
        client known, and give it what followed the header.
        """
        self._cancelHeaderTimer()
        self.proxyInfo = info
        self._client = client
        protocol = self.factory.wrappedFactory.buildProtocol(self.getPeer())
        if protocol is None:
            self.transport.loseConnection()
            return
        self.wrappedProtocol = protocol
        protocol.makeConnection(self)
        if remaining:
            protocol.dataReceived(remaining)

    def _reject(self, problem: str) -> None:
        self._rejected = True
        self._cancelHeaderTimer()
        self.log.warn(
            "closed a connection from {peer} on a PROXY listener: {problem}",
            peer=str(self.transport.getPeer()),
            problem=problem,
        )
        self.transport.loseConnection()

    def _headerTimedOut(self) -> None:
        self._headerCall = None
        self._reject(f"no complete PROXY header within {self.factory.headerTimeout:g} seconds")

    def _cancelHeaderTimer(self) -> None:
        if self._headerCall is not None:
            self._headerCall.cancel()
            self._headerCall = None

    def getPeer(self) -> IAddress:
        """
        The client: the header's source, or the connection's own peer
        before the header and when the header names none.
        """
        if self._client is not None:
            return self._client
        return self.transport.getPeer()

    def getHost(self) -> IAddress:
        """
        The listener's own local address (never the header's destination).
        """
        return self.transport.getHost()

    def pauseProducing(self) -> None:
        """
        Stop reading from the connection.
        """
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """
        Read from the connection again.
        """
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """
        Stop reading from the connection for good.
        """
        self.transport.stopProducing()

    def loseWriteConnection(self) -> None:
        """
        Send our FIN once what is buffered has gone out.
        """
        self.transport.loseWriteConnection()

    def abortConnection(self) -> None:
        """
        Close the connection at once, discarding what is buffered.
        """
        self.transport.abortConnection()

    def readConnectionLost(self) -> None:
        """
        The peer sent its FIN: pass it on to a wrapped protocol that takes
        half-close, else close; before the header, close.
        """
        wrapped = self.wrappedProtocol
        if wrapped is not None and IHalfCloseableProtocol.providedBy(wrapped):
            wrapped.readConnectionLost()
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our FIN has gone out: tell a wrapped protocol that takes half-close.
        """
        wrapped = self.wrappedProtocol
        if wrapped is not None and IHalfCloseableProtocol.providedBy(wrapped):
            wrapped.writeConnectionLost()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        The connection is gone: tell the wrapped protocol, if it was ever
        connected.
        """
        self.connected = 0
        self._cancelHeaderTimer()
        self.factory.unregisterProtocol(self)
        wrapped, self.wrappedProtocol = self.wrappedProtocol, None
        if wrapped is not None:
            wrapped.connectionLost(reason)


class ProxyHeaderFactory(WrappingFactory):
    """
    Puts a factory's connections behind the PROXY protocol.

    @ivar wrappedFactory: the factory whose protocols serve the clients.
    @ivar reactor: the reactor for the header timer.
    @ivar headerTimeout: seconds from accept to a complete header.
    """

    protocol = ProxyHeaderProtocol  # type: ignore[assignment]

    def __init__(self, wrappedFactory: Any, reactor: Any, headerTimeout: float = 10.0) -> None:
        super().__init__(wrappedFactory)
        self.reactor = reactor
        self.headerTimeout = headerTimeout

    def buildProtocol(self, addr: IAddress | None) -> ProxyHeaderProtocol:
        """
        The wrapper for one connection; its wrapped protocol is built once
        the header is parsed.
        """
        return self.protocol(self)  # type: ignore[call-arg]
