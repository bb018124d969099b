"""
The SOCKS server protocol: one for SOCKS4, SOCKS4a and SOCKS5, chosen by
the first byte, driving the sans-I/O codec in L{socksgate.wire}.

It admits the connection (L{SessionTable}), runs the handshake
(L{Handshake}), checks the request's version and command, asks identd for
SOCKS4 when configured, and hands the request to its command (one table,
L{socksgate.server.commands.COMMANDS}) through a narrow handle
(L{ClientConnection}).  Once a command attaches its session (an
L{ISession}), the client connection's events go there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..addresses import IPAddress, formatHostPort, hostAddress
from ..gssauth import GSSAPIServerNegotiation
from ..gssstream import MessageProtection, ProtectionFailed
from ..outbound import refusalForFailure
from ..policy import AccessRequest
from ..relay import Relay
from ..session import SessionRecord, emitSession, newSessionID
from ..splicing import SpliceRelay
from ..vocabulary import Command, Outcome, RequestRefused, Version
from ..wire import (
    NEED_DATA,
    RemoteProtocolError,
    ReplyCode,
    ServerState,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5Greeting,
    SOCKS5Request,
    SOCKSServerConnection,
    UsernamePasswordRequest,
)
from ..wire import Command as CommandCode
from .client import EARLY_DATA_LIMIT, ClientConnection
from .commands import COMMANDS
from .handshake import Handshake

if TYPE_CHECKING:
    from .factory import SOCKSServerFactory

__all__ = ["SOCKSServerProtocol"]

_COMMAND_NAMES = {
    CommandCode.CONNECT: Command.CONNECT,
    CommandCode.BIND: Command.BIND,
    CommandCode.UDP_ASSOCIATE: Command.UDP,
}


def _clientOf(peer: Any) -> str:
    """
    The session log's C{client} for a peer without an IP address: C{unix}
    for a UNIX socket's (C{unix:PATH} when the client bound its socket to a
    path), else the address's type.
    """
    if not hasattr(peer, "name"):
        return type(peer).__name__
    name = peer.name
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    return f"unix:{name}" if name else "unix"


@implementer(IHalfCloseableProtocol)
class SOCKSServerProtocol(Handshake, Protocol):
    """
    One client connection: the handshake, the request, then the session.

    @ivar factory: the L{SOCKSServerFactory} that built it.
    @ivar session: once the request is granted, what serves it (an
        L{ISession}): a L{Relay} for CONNECT and BIND, a UDP association
        for UDP ASSOCIATE.
    @ivar record: the session record, once the connection is admitted.
    @ivar client: the client's IP address, or L{None} (a UNIX socket).
    """

    log = Logger()

    def __init__(self, factory: SOCKSServerFactory) -> None:
        self.factory = factory
        self.codec = SOCKSServerConnection()
        self.session: Any = None
        self.record: SessionRecord | None = None
        self.client: IPAddress | None = None
        self._clientPort = 0
        self._admitted = False
        self._receivedAny = False
        self._clientFinished = False
        self._lost = False
        self._handshakeCall: IDelayedCall | None = None
        self._loginStarted = 0.0
        self._pending: Deferred[Any] | None = None
        self._user: str | None = None
        self._gssapi: GSSAPIServerNegotiation | None = None
        self._protection: MessageProtection | None = None

    def connectionMade(self) -> None:
        """
        Admit the connection, or close it when a session limit is reached.
        """
        factory = self.factory
        peer = self.transport.getPeer()
        self.client = hostAddress(peer)
        self._clientPort = peer.port if self.client is not None else 0
        refusal = factory.sessions.admit(self, self.client, factory.config)
        if refusal:
            self.log.warn("refused connection from {peer}: {why}", peer=str(peer), why=refusal)
            self.transport.loseConnection()
            return
        self._admitted = True
        client = formatHostPort(self.client, self._clientPort) if self.client else _clientOf(peer)
        self.record = SessionRecord(newSessionID(), factory.listener, client, factory.reactor.seconds())
        self._handshakeCall = factory.reactor.callLater(
            factory.config.handshakeTimeout, self._handshakeTimedOut
        )

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the handshake, or the session once it is granted (unsealed
        first when GSS-API protects the connection).
        """
        if self._protection is not None:
            data = self._unseal(data)
            if not data:
                return
        if self.session is not None:
            self.session.fromClient(data)
            return
        if not self._admitted:
            return
        self._receivedAny = True
        self._process(data)

    def _process(self, data: bytes) -> None:
        """
        Feed the codec and act on the messages it has now.
        """
        codec = self.codec
        if codec.state is ServerState.SOCKS5_GSSAPI:
            self._negotiateGSSAPI(data)
            return
        try:
            codec.receiveData(data)
            self._readMessages()
        except RemoteProtocolError as error:
            self.transport.write(error.reply)
            self._refuse(Outcome.ERROR, error.code, error.reason)
            return
        waiting = codec.state in (ServerState.REPLYING, ServerState.SOCKS5_AUTHENTICATING)
        if waiting and codec.bufferedBytes > EARLY_DATA_LIMIT:
            # The client sends ahead while the gateway decides: hold it.
            self.transport.pauseProducing()

    def _unseal(self, data: bytes) -> bytes:
        """
        The plaintext of the client's protected bytes; a broken stream
        closes the connection (and ends the session).
        """
        assert self._protection is not None
        try:
            return self._protection.unseal(data)
        except ProtectionFailed as broken:
            self.log.warn(
                "GSS-API protected stream from {client} broken: {why}",
                client=getattr(self.record, "client", None),
                why=str(broken),
            )
            if self.record is not None and not self.record.message:
                self.record.message = f"GSS-API protection failed: {broken}"
            self._protection = None
            if self.session is not None:
                self.session.abort()
            else:
                self._refuse(Outcome.ERROR, None, f"GSS-API protection failed: {broken}")
            return b""

    def readConnectionLost(self) -> None:
        """
        The client shut down its sending side.
        """
        if self.session is not None:
            self.session.clientFinished()
        elif self.codec.state is ServerState.REPLYING:
            self._clientFinished = True
        elif self._receivedAny:
            self._refuse(Outcome.ERROR, None, "client closed during the handshake")
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our FIN towards the client has gone out; nothing to do.
        """

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        End whatever is under way, and emit the record if not done yet.
        """
        self._lost = True
        self._cancelHandshakeTimer()
        if self.session is not None:
            self.session.clientLost(reason)
        else:
            pending, self._pending = self._pending, None
            if pending is not None:
                pending.cancel()
            if self._receivedAny:
                self.finishSession(Outcome.ERROR, None, "client closed before the reply")
            self.sessionClosed()

    @property
    def clientGone(self) -> bool:
        """
        Whether the client's connection is lost.
        """
        return self._lost

    @property
    def relay(self) -> Relay | SpliceRelay | None:
        """
        The relay of a relayed TCP session (CONNECT, BIND), if any: the
        stream L{Relay} or the zero-copy L{SpliceRelay}.
        """
        return self.session if isinstance(self.session, (Relay, SpliceRelay)) else None

    def abortConnection(self) -> None:
        """
        Drop the client's connection, and the session's if any, at once.
        """
        if self.session is not None:
            self.session.abort()
        else:
            self.transport.abortConnection()

    def stopSession(self, why: str) -> None:
        """
        End the session because the gateway stops: a session is closed as a
        time-out closes it (what is buffered is still delivered, the record
        is written); a request still in its handshake is dropped.
        """
        if self.session is not None:
            self.session.close(why)
        else:
            self.abortConnection()

    def sessionClosed(self) -> None:
        """
        Every connection and socket of the session is closed: leave the
        session table.
        """
        self.factory.sessions.release(self, self.client)

    def _readMessages(self) -> None:
        while True:
            event = self.codec.nextEvent()
            if event is NEED_DATA:
                return
            if isinstance(event, SOCKS5Greeting):
                self._selectMethod(event)
            elif isinstance(event, UsernamePasswordRequest):
                self._authenticate(event)
                return
            elif isinstance(event, (SOCKS4Request, SOCKS5Request)):
                self._startRequest(event)
                return
            if self.codec.state is ServerState.CLOSED:
                return

    def _startRequest(self, request: SOCKS4Request | SOCKS5Request) -> None:
        """
        Check the request's version and command, ask identd when needed,
        and start its command.
        """
        assert self.record is not None
        self._cancelHandshakeTimer()
        config = self.factory.config
        record = self.record
        if isinstance(request, SOCKS5Request):
            version, user = Version.SOCKS5, self._user
        else:
            version = Version.SOCKS4A if request.isSOCKS4a else Version.SOCKS4
            user = request.userid.decode("utf-8", "backslashreplace") or None
        command = _COMMAND_NAMES[request.command]
        record.version, record.command, record.user = version, command, user
        record.destination = formatHostPort(request.host, request.port)
        if version not in config.versions:
            self.refuseRequest(
                RequestRefused(ReplyCode.NOT_ALLOWED, Outcome.DENIED, f"SOCKS{version} is disabled")
            )
            return
        if command not in config.commands:
            self.refuseRequest(
                RequestRefused(ReplyCode.COMMAND_NOT_SUPPORTED, Outcome.DENIED, f"{command} is disabled")
            )
            return
        if command == Command.UDP and self._protection is not None:
            why = "UDP ASSOCIATE under GSS-API protection is not supported"
            self.refuseRequest(RequestRefused(ReplyCode.COMMAND_NOT_SUPPORTED, Outcome.DENIED, why))
            return
        accessRequest = AccessRequest(
            client=self.client,
            clientPort=self._clientPort,
            listener=self.factory.listener,
            version=version,
            command=command,
            destinationName=None,
            destinationAddress=None,
            port=request.port,
            user=user,
            auth=record.auth,
        )
        if version != Version.SOCKS5 and self.factory.auth.ident != "off":
            checked = self._checkIdent(accessRequest).addCallback(self._startCommand, command, request)
        else:
            # Nothing to wait for: start the command now, with no Deferred
            # of our own in front of it.
            try:
                checked = self._startCommand(accessRequest, command, request)
            except Exception:
                checked = fail()
            if not isinstance(checked, Deferred):
                self._started(checked)
                return
        self._pending = checked
        checked.addCallbacks(self._started, self._startFailed)
        checked.addErrback(self._internalError)

    def _startCommand(self, accessRequest: AccessRequest, command: Command, request: Any) -> Any:
        """
        Start the command once the request is checked, unless the client
        left meanwhile (its slot is already returned).
        """
        if self._lost:
            return None
        return COMMANDS[command].start(ClientConnection(self), accessRequest, request)

    def _started(self, result: object) -> None:
        """
        The command's session has started (or ended already): pass on a FIN
        the client sent while its request was being decided.
        """
        self._pending = None
        if self._clientFinished and self.session is not None:
            self.session.clientFinished()

    def _startFailed(self, failure: Failure) -> None:
        self._pending = None
        if self._lost:
            return
        self.session = None
        self.refuseRequest(refusalForFailure(failure))

    def _internalError(self, failure: Failure) -> None:
        self.log.failure(
            "unexpected error in session {session}", failure, session=getattr(self.record, "session", None)
        )
        if not self._lost and self.session is None:
            self.refuseRequest(RequestRefused(ReplyCode.GENERAL_FAILURE, Outcome.ERROR, "internal error"))
        self.transport.loseConnection()

    def refuseRequest(self, refusal: RequestRefused) -> None:
        """
        Answer the request with the refusal's reply, record it and close.
        """
        if refusal.decision is not None:
            assert self.record is not None
            # A denial says why in the rule's words; a failure of a
            # permitted request names the rule but says what failed.
            self.record.rule = refusal.decision.rule
            if refusal.outcome == Outcome.DENIED:
                self.record.message = refusal.decision.message
        if refusal.upstream is not None and self.record is not None:
            self.record.upstream, self.record.server = refusal.upstream, refusal.server
        if self.codec.version == 4 and refusal.socks4 is not None:
            code = refusal.socks4
            self.transport.write(self.codec.send(SOCKS4Reply(SOCKS4ReplyCode(code))))
        else:
            self.transport.write(self.codec.reply(refusal.reply))
            code = int(refusal.reply) if self.codec.version == 5 else SOCKS4ReplyCode.REJECTED
        self._refuse(refusal.outcome, code, refusal.reason)

    def _refuse(self, outcome: str, reply: int | None, message: str) -> None:
        self.finishSession(outcome, reply, message)
        self.transport.loseConnection()

    def finishSession(self, outcome: str, reply: int | None, message: str) -> None:
        """
        Emit the session record, once, with its outcome, reply and message.
        """
        record = self.record
        if record is None or record.outcome is not None:
            return
        record.outcome, record.reply = Outcome(outcome), reply
        if record.version is None and self.codec.version is not None:
            record.version = str(self.codec.version)
        if message and not record.message:
            record.message = message
        emitSession(record, self.factory.reactor.seconds())

    def _handshakeTimedOut(self) -> None:
        self._handshakeCall = None
        seconds = self.factory.config.handshakeTimeout
        self._refuse(Outcome.TIMEOUT, None, f"no complete request within {seconds:g} seconds")

    def _cancelHandshakeTimer(self) -> None:
        if self._handshakeCall is not None:
            self._handshakeCall.cancel()
            self._handshakeCall = None
