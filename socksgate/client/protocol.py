"""
L{SOCKSClientProtocol}: one handshake with a SOCKS server over an open
connection to it, driven by the codec's client role
(L{socksgate.wire.SOCKSClientConnection}), then the connection handed to
the application's protocol.

The protocol knows nothing of endpoints: it is given the request (of any
command) and the credentials, sends the greeting or the SOCKS4 request as
soon as it is connected, and gives each successful reply through
L{SOCKSClientProtocol.nextReply}.  CONNECT waits for one reply, BIND for
two (the listening address, then the peer), UDP ASSOCIATE for one and then
keeps the connection as the association's lifeline.  L{startRelaying} then
connects the application's protocol, with the bytes that came after the
last reply.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IAddress, IHalfCloseableProtocol, IProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from ..wire import (
    NEED_DATA,
    Method,
    RemoteProtocolError,
    ReplyCode,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    SOCKSClientConnection,
    UsernamePasswordReply,
    UsernamePasswordRequest,
)
from .errors import AuthenticationFailed, MalformedReply, NoAcceptableMethods, SOCKSError, replyError

__all__ = ["SOCKSClientProtocol"]

#: A successful reply from the server.
Reply = SOCKS4Reply | SOCKS5Reply


class _ProxiedTransport:
    """
    The transport the application's protocol sees: the connection to the
    proxy, except that C{getPeer()} names the destination.
    """

    def __init__(self, transport: Any, peer: IAddress) -> None:
        self._transport = transport
        self._peer = peer
        directlyProvides(self, providedBy(transport))

    def getPeer(self) -> IAddress:
        """
        The destination the SOCKS server connected to, as requested.
        """
        return self._peer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@implementer(IHalfCloseableProtocol)
class SOCKSClientProtocol(Protocol):
    """
    A SOCKS handshake from the client's side, then the relayed stream.

    @ivar codec: the codec's client role.
    @ivar application: the application's protocol once relaying, else
        L{None}.
    """

    log = Logger()

    def __init__(
        self,
        request: SOCKS4Request | SOCKS5Request,
        credentials: UsernamePasswordRequest | None = None,
    ) -> None:
        """
        @param request: what to ask the server for.
        @param credentials: the RFC 1929 user name and password to offer
            (SOCKS5 only); without them only no-authentication is offered.
        """
        self.codec = SOCKSClientConnection()
        self.application: IProtocol | None = None
        self._request = request
        self._credentials = credentials
        self._replies: list[Reply] = []
        self._waiting: list[Deferred[Reply]] = []
        self._failure: Failure | None = None
        self._abandoned = False
        self._closing: list[Deferred[None]] = []
        self._closed = False

    def nextReply(self) -> Deferred[Reply]:
        """
        Wait for the next successful reply.

        @return: a L{Deferred} that fires with the reply, or fails with a
            L{SOCKSError} (a refusal, or a broken handshake) or with the
            reason the connection closed.  Cancelling it only stops the
            wait; the caller closes the connection.
        """
        if self._replies:
            return succeed(self._replies.pop(0))
        if self._failure is not None:
            return fail(self._failure)
        deferred: Deferred[Reply] = Deferred(self._waiting.remove)
        self._waiting.append(deferred)
        return deferred

    def whenClosed(self) -> Deferred[None]:
        """
        Wait for the connection to the proxy to close.

        @return: a L{Deferred} that fires once it is closed (at once if it
            is, or if it never opened and was abandoned).
        """
        if self._closed or (self._abandoned and self.transport is None):
            return succeed(None)
        deferred: Deferred[None] = Deferred()
        self._closing.append(deferred)
        return deferred

    def abandon(self) -> None:
        """
        Give the handshake up: close the connection now, or as soon as it
        is made (a proxy endpoint may connect after its attempt was
        cancelled).
        """
        self._abandoned = True
        if self.transport is not None:
            transport: Any = self.transport
            getattr(transport, "abortConnection", transport.loseConnection)()

    def connectionMade(self) -> None:
        """
        Send the greeting (SOCKS5) or the request (SOCKS4), unless the
        handshake was abandoned.
        """
        if self._abandoned:
            self.abandon()
            return
        if isinstance(self._request, SOCKS4Request):
            self.transport.write(self.codec.send(self._request))
            return
        methods = (Method.NO_AUTHENTICATION,)
        if self._credentials is not None:
            methods += (Method.USERNAME_PASSWORD,)
        self.transport.write(self.codec.send(SOCKS5Greeting(methods)))

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the handshake, or pass relayed bytes to the application.
        """
        if self.application is not None:
            self.application.dataReceived(data)
            return
        if self._failure is not None:
            return
        try:
            self.codec.receiveData(data)
            while self.application is None and self._failure is None:
                event = self.codec.nextEvent()
                if event is NEED_DATA:
                    break
                self._answer(event)
        except RemoteProtocolError as error:
            self._fail(MalformedReply(string=error.reason))

    def startRelaying(self, application: IProtocol, peer: IAddress) -> None:
        """
        Connect the application's protocol, once the last reply came: it
        gets a transport whose C{getPeer()} is C{peer}, and the bytes that
        arrived after the reply.
        """
        trailing = self.codec.takeTrailingData()
        self.application = application
        application.makeConnection(_ProxiedTransport(self.transport, peer))
        if trailing:
            application.dataReceived(trailing)

    def readConnectionLost(self) -> None:
        """
        The server half-closed: tell a half-closeable application, else
        close.
        """
        if self.application is not None and IHalfCloseableProtocol.providedBy(self.application):
            self.application.readConnectionLost()
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our side is shut for writing: tell a half-closeable application.
        """
        if self.application is not None and IHalfCloseableProtocol.providedBy(self.application):
            self.application.writeConnectionLost()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Tell the application, or fail the handshake that was under way.
        """
        self._closed = True
        closing, self._closing = self._closing, []
        for deferred in closing:
            deferred.callback(None)
        if self.application is not None:
            self.application.connectionLost(reason)
            return
        if self._failure is None:
            why = reason.getErrorMessage() if reason is not None else "closed"
            error = MalformedReply(string=f"the connection closed during the handshake ({why})")
            self._fail(error, closed=True)

    def _answer(self, event: object) -> None:
        """
        Do what the server's message calls for.
        """
        if isinstance(event, SOCKS5MethodSelection):
            if event.method == Method.NO_ACCEPTABLE_METHODS:
                self._fail(NoAcceptableMethods())
            elif event.method == Method.USERNAME_PASSWORD:
                assert self._credentials is not None
                self.transport.write(self.codec.send(self._credentials))
            else:
                self.transport.write(self.codec.send(self._request))
        elif isinstance(event, UsernamePasswordReply):
            if not event.succeeded:
                self._fail(AuthenticationFailed(string=f"status {event.status}"))
            else:
                self.transport.write(self.codec.send(self._request))
        elif isinstance(event, SOCKS5Reply) and event.reply != ReplyCode.SUCCEEDED:
            self._fail(replyError(5, event.reply))
        elif isinstance(event, SOCKS4Reply) and event.code != SOCKS4ReplyCode.GRANTED:
            self._fail(replyError(4, event.code))
        elif isinstance(event, (SOCKS4Reply, SOCKS5Reply)):
            self._deliver(event)

    def _deliver(self, reply: Reply) -> None:
        if self._waiting:
            self._waiting.pop(0).callback(reply)
        else:
            self._replies.append(reply)

    def _fail(self, error: SOCKSError, closed: bool = False) -> None:
        """
        End the handshake with C{error}: every wait fails, the connection
        closes.
        """
        self.log.debug("SOCKS handshake failed: {error}", error=str(error))
        self._failure = Failure(error)
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.errback(self._failure)
        if not closed:
            self.transport.loseConnection()
