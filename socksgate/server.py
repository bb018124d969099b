"""
The SOCKS server: one protocol for SOCKS4, SOCKS4a and SOCKS5, chosen by
the first byte, driving the sans-I/O codec in L{socksgate.wire}.

L{SOCKSServerFactory} serves one listener.  Factories that should share
limits and the list of open sessions (every listener of one gateway) share
a L{SessionTable}.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IHostnameResolver
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .auth import LoginRefused, LoginThrottle, PasswordAuthenticator, SOCKSUser, selectMethod
from .config import AuthConfig, ServerConfig
from .interfaces import IAccessPolicy
from .lookups import LookupLimit, gatewayResolver
from .outbound import RequestRefused, openConnection, refusalForFailure
from .policy import AccessRequest, Decision, IPAddress, LoopbackOnlyPolicy, unmapped
from .relay import DestinationProtocol, Relay
from .session import SessionRecord, emitSession, newSessionID
from .wire import (
    NEED_DATA,
    AuthStatus,
    Command,
    Method,
    RemoteProtocolError,
    ReplyCode,
    ServerState,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Request,
    SOCKSServerConnection,
    UsernamePasswordReply,
    UsernamePasswordRequest,
)

_COMMAND_NAMES = {Command.CONNECT: "connect", Command.BIND: "bind", Command.UDP_ASSOCIATE: "udp"}

#: Bytes a client may send ahead of the reply before the gateway stops
#: reading from it until the destination is connected.
EARLY_DATA_LIMIT = 64 * 1024

#: Commands this version can carry out.
IMPLEMENTED_COMMANDS = frozenset({"connect", "bind", "udp"})


def _bindStarter() -> Any:
    from .bind import startBind

    return startBind


def _udpStarter() -> Any:
    from .udprelay import startAssociation

    return startAssociation


#: How BIND and UDP ASSOCIATE start once the request is checked:
#: C{starter(accessRequest, protocol, request)}, which answers the client
#: itself (with L{SOCKSServerProtocol.refuseRequest} when it fails).
_COMMAND_STARTERS = {"bind": _bindStarter, "udp": _udpStarter}


def formatHostPort(host: object, port: int) -> str:
    """
    C{host:port}, with an IPv6 address in brackets.
    """
    return f"[{host}]:{port}" if isinstance(host, IPv6Address) or ":" in str(host) else f"{host}:{port}"


def _peerAddress(peer: Any) -> tuple[IPAddress | None, int]:
    """
    The IP address and port of a transport address, or C{(None, 0)} for
    one without (a UNIX socket).
    """
    host = getattr(peer, "host", None)
    if not isinstance(host, str):
        return None, 0
    try:
        return unmapped(ip_address(host.split("%")[0])), peer.port
    except ValueError:
        return None, 0


class SessionTable:
    """
    The open client connections of a gateway, with its limits.

    @ivar open: the protocols of the open connections.
    """

    def __init__(self) -> None:
        self.open: set[SOCKSServerProtocol] = set()
        self._perClient: Counter[IPAddress | None] = Counter()
        self._emptyWaiters: list[Deferred[None]] = []

    def whenEmpty(self) -> Deferred[None]:
        """
        A Deferred that fires when no connection is open, client or
        destination.
        """
        if not self.open:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._emptyWaiters.append(waiter)
        return waiter

    def admit(self, protocol: SOCKSServerProtocol, client: IPAddress | None, config: ServerConfig) -> str:
        """
        Add a connection unless a limit is reached.

        @return: an empty string if admitted, else why not.
        """
        if len(self.open) >= config.maxSessions:
            return f"max-sessions ({config.maxSessions}) reached"
        if client is not None and self._perClient[client] >= config.maxSessionsPerClient:
            return f"max-sessions-per-client ({config.maxSessionsPerClient}) reached for {client}"
        self.open.add(protocol)
        self._perClient[client] += 1
        return ""

    def release(self, protocol: SOCKSServerProtocol, client: IPAddress | None) -> None:
        """
        Forget a connection that has ended.
        """
        if protocol in self.open:
            self.open.discard(protocol)
            self._perClient[client] -= 1
            if not self._perClient[client]:
                del self._perClient[client]
        if not self.open:
            waiters, self._emptyWaiters = self._emptyWaiters, []
            for waiter in waiters:
                waiter.callback(None)


@implementer(IHalfCloseableProtocol)
class SOCKSServerProtocol(Protocol):
    """
    One client connection: the handshake, the request, then the relay.

    @ivar factory: the L{SOCKSServerFactory} that built it.
    @ivar session: once the request is granted, what serves it: a L{Relay}
        for CONNECT and BIND, a UDP association for UDP ASSOCIATE.
    @ivar record: the session record, once the connection is admitted.
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

    def connectionMade(self) -> None:
        """
        Admit the connection, or close it when a session limit is reached.
        """
        factory = self.factory
        peer = self.transport.getPeer()
        self.client, self._clientPort = _peerAddress(peer)
        refusal = factory.sessions.admit(self, self.client, factory.config)
        if refusal:
            self.log.warn("refused connection from {peer}: {why}", peer=str(peer), why=refusal)
            self.transport.loseConnection()
            return
        self._admitted = True
        client = formatHostPort(self.client, self._clientPort) if self.client else str(peer)
        self.record = SessionRecord(newSessionID(), factory.listener, client, factory.reactor.seconds())
        self._handshakeCall = factory.reactor.callLater(
            factory.config.handshakeTimeout, self._handshakeTimedOut
        )

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the handshake, or relay once the session is granted.
        """
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
        try:
            codec.receiveData(data)
            self._readMessages()
        except RemoteProtocolError as error:
            self.transport.write(error.reply)
            self._refuse("error", error.code, error.reason)
            return
        waiting = codec.state in (ServerState.REPLYING, ServerState.SOCKS5_AUTHENTICATING)
        if waiting and codec.bufferedBytes > EARLY_DATA_LIMIT:
            # The client sends ahead while the gateway decides: hold it.
            self.transport.pauseProducing()

    def readConnectionLost(self) -> None:
        """
        The client shut down its sending side.
        """
        if self.session is not None:
            self.session.clientFinished()
        elif self.codec.state is ServerState.REPLYING:
            self._clientFinished = True
        elif self._receivedAny:
            self._refuse("error", None, "client closed during the handshake")
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
                self.finishSession("error", None, "client closed before the reply")
            self.sessionClosed()

    @property
    def clientGone(self) -> bool:
        """
        Whether the client's connection is lost.
        """
        return self._lost

    @property
    def relay(self) -> Relay | None:
        """
        The L{Relay} of a relayed TCP session (CONNECT, BIND), if any.
        """
        return self.session if isinstance(self.session, Relay) else None

    def attachSession(self, session: Any) -> None:
        """
        Hand the client connection to C{session} once the request is
        granted: it gets C{fromClient(data)}, C{clientFinished()},
        C{clientLost(reason)} and C{abort()}, as a L{Relay} does, and calls
        L{finishSession} and L{sessionClosed} when it ends.
        """
        self.session = session

    def abortConnection(self) -> None:
        """
        Drop the client's connection, and the destination's if any, at once.
        """
        if self.session is not None:
            self.session.abort()
        else:
            self.transport.abortConnection()

    def stopSession(self, why: str) -> None:
        """
        End the session because the gateway stops: a relay or a UDP
        association is closed as a time-out closes it (what is buffered is
        still delivered, the record is written); anything else is dropped.
        """
        close = getattr(self.session, "close", None)
        if close is not None:
            close(why)
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

    def _selectMethod(self, greeting: SOCKS5Greeting) -> None:
        assert self.record is not None
        self.record.version = "5"
        if "5" not in self.factory.config.versions:
            method, why = Method.NO_ACCEPTABLE_METHODS, "SOCKS5 is disabled"
        else:
            method = selectMethod(self.factory.auth.methods, greeting.methods)
            why = "the client offers no acceptable authentication method"
        self.transport.write(self.codec.send(SOCKS5MethodSelection(method)))
        if method == Method.NO_ACCEPTABLE_METHODS:
            self._refuse("denied", method, why)
        elif method == Method.USERNAME_PASSWORD:
            self.record.auth = "userpass"

    def _authenticate(self, credentials: UsernamePasswordRequest) -> None:
        """
        Check an RFC 1929 user name and password through the login throttle,
        which answers right and wrong passwords alike; the password goes
        nowhere but to the checker.
        """
        assert self.record is not None
        self.record.user = credentials.username.decode("utf-8", "backslashreplace")
        authenticator = self.factory.authenticator
        assert authenticator is not None

        def check() -> Deferred[SOCKSUser]:
            # Its turn has come: the throttle's delay may outlast the
            # handshake time-out, which only bounds the wait for a turn.
            self._cancelHandshakeTimer()
            return authenticator.login(credentials.username, credentials.password)

        self._loginStarted = self.factory.reactor.seconds()
        pending = self.factory.throttle.login(self.client, check)
        self._pending = pending
        pending.addCallbacks(self._loggedIn, self._loginFailed)
        pending.addErrback(self._internalError)

    def _loggedIn(self, user: SOCKSUser) -> None:
        self._pending = None
        if self._lost:
            return
        assert self.record is not None
        self._user = self.record.user = user.name
        self.transport.write(self.codec.send(UsernamePasswordReply(AuthStatus.SUCCESS)))
        self._process(b"")

    def _loginFailed(self, failure: Failure) -> None:
        self._pending = None
        if self._lost:
            return
        assert self.record is not None
        if failure.check(LoginRefused):
            self.log.warn(
                "login as {user!r} from {client} refused unchecked: {why}",
                user=self.record.user,
                client=self.record.client,
                why=str(failure.value),
            )
            self._refuseLogin(f"login refused unchecked: {failure.value}")
            return
        if not failure.check(UnauthorizedLogin):
            self.log.failure("the credentials checker failed", failure)
        self.log.info(
            "failed login as {user!r} from {client}; answered after {delay:g} s",
            user=self.record.user,
            client=self.record.client,
            delay=self.factory.reactor.seconds() - self._loginStarted,
        )
        self._refuseLogin("authentication failed")

    def _refuseLogin(self, why: str) -> None:
        self.transport.write(self.codec.send(UsernamePasswordReply(AuthStatus.FAILURE)))
        self._refuse("denied", AuthStatus.FAILURE, why)

    def _startRequest(self, request: SOCKS4Request | SOCKS5Request) -> None:
        assert self.record is not None
        self._cancelHandshakeTimer()
        config = self.factory.config
        record = self.record
        if isinstance(request, SOCKS5Request):
            version, user = "5", self._user
        else:
            version = "4a" if request.isSOCKS4a else "4"
            user = request.userid.decode("utf-8", "backslashreplace") or None
        command = _COMMAND_NAMES[request.command]
        record.version, record.command, record.user = version, command, user
        record.destination = formatHostPort(request.host, request.port)
        if version not in config.versions:
            self.refuseRequest(RequestRefused(ReplyCode.NOT_ALLOWED, "denied", f"SOCKS{version} is disabled"))
            return
        if command not in config.commands:
            self.refuseRequest(
                RequestRefused(ReplyCode.COMMAND_NOT_SUPPORTED, "denied", f"{command} is disabled")
            )
            return
        if command not in IMPLEMENTED_COMMANDS:
            self.refuseRequest(
                RequestRefused(ReplyCode.COMMAND_NOT_SUPPORTED, "error", f"{command} is not supported")
            )
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
        identNeeded = version != "5" and self.factory.auth.ident != "off"
        if command != "connect":
            checked = self._checkIdent(accessRequest) if identNeeded else succeed(accessRequest)
            checked.addCallback(self._startCommand, command, request)
            self._pending = checked
            checked.addErrback(self._connectFailed)
            checked.addErrback(self._internalError)
            return
        if identNeeded:
            pending: Deferred[Any] = self._checkIdent(accessRequest)
            pending.addCallback(self._openConnection, request.host)
        else:
            pending = self._openConnection(accessRequest, request.host)
        self._pending = pending
        pending.addCallbacks(self._connected, self._connectFailed)
        pending.addErrback(self._internalError)

    def _startCommand(self, accessRequest: AccessRequest, command: str, request: Any) -> Any:
        """
        Start BIND or UDP ASSOCIATE once the request is checked, unless the
        client left meanwhile (its slot is already returned).
        """
        if self._lost:
            return None
        started = _COMMAND_STARTERS[command]()(accessRequest, self, request)
        if self._clientFinished:
            # The client sent its FIN while the request was being checked.
            if isinstance(started, Deferred):
                return started.addCallback(lambda _: self._finishedEarly())
            self._finishedEarly()
        return started

    def _finishedEarly(self) -> None:
        if self.session is not None:
            self.session.clientFinished()

    def _openConnection(self, accessRequest: AccessRequest, host: Any) -> Deferred[Any]:
        factory = self.factory
        return openConnection(
            factory.reactor,
            factory.resolverFor(self.client),
            factory.policy.decide,
            accessRequest,
            host,
            factory.config.connectTimeout,
            factory.bindHost,
        )

    def _checkIdent(self, accessRequest: AccessRequest) -> Deferred[AccessRequest]:
        """
        Ask the client's identd who owns the connection (RFC 1413).  With
        C{ident = "log"} the answer is only recorded; with C{"require"} no
        answer refuses with CD 92 and another user than USERID with CD 93,
        and a match makes the user an C{ident}-verified one.
        """
        from .ident import IdentUnavailable, queryIdent

        factory, record = self.factory, self.record
        assert record is not None
        peer, local = self.transport.getPeer(), self.transport.getHost()
        require = factory.auth.ident == "require"
        claimed = accessRequest.user

        def answered(owner: str) -> AccessRequest:
            record.ident = owner
            if not require:
                return accessRequest
            if owner != claimed:
                raise RequestRefused(
                    ReplyCode.NOT_ALLOWED, "denied", f"identd says {owner!r}, USERID claims {claimed!r}",
                    socks4=SOCKS4ReplyCode.IDENTD_MISMATCH,
                )  # fmt: skip
            record.auth = "ident"
            return replace(accessRequest, auth="ident")

        def unanswered(failure: Failure) -> AccessRequest:
            if not require:
                return accessRequest
            if failure.check(IdentUnavailable):
                raise RequestRefused(
                    ReplyCode.NOT_ALLOWED, "denied", f"no identd answered: {failure.value}",
                    socks4=SOCKS4ReplyCode.IDENTD_UNREACHABLE,
                )  # fmt: skip
            raise RequestRefused(
                ReplyCode.NOT_ALLOWED, "denied", f"identd did not confirm {claimed!r}: {failure.value}",
                socks4=SOCKS4ReplyCode.IDENTD_MISMATCH,
            )  # fmt: skip

        query = queryIdent(
            factory.reactor, peer.host, peer.port, local.port,
            timeout=factory.identTimeout, identPort=factory.identPort, bindHost=local.host,
        )  # fmt: skip
        return query.addCallbacks(answered, unanswered)

    def _connected(self, result: tuple[DestinationProtocol, Decision]) -> None:
        self._pending = None
        destination, decision = result
        if self._lost:
            destination.transport.loseConnection()
            return
        assert self.record is not None
        transport = destination.transport
        local, remote = transport.getHost(), transport.getPeer()
        self._noteDecision(decision)
        self.record.remote = formatHostPort(remote.host, remote.port)
        self.transport.write(self.codec.reply(ReplyCode.SUCCEEDED, ip_address(local.host), local.port))
        self.record.reply = 0 if self.codec.version == 5 else 90
        relay = self.session = Relay(
            self.transport,
            transport,
            self._relayEnded,
            self.factory.reactor,
            self.factory.config.idleTimeout,
            self.sessionClosed,
        )
        destination.relay = relay
        relay.start(self.codec.takeTrailingData(), self._clientFinished)

    def _connectFailed(self, failure: Failure) -> None:
        self._pending = None
        if self._lost:
            return
        refusal = refusalForFailure(failure)
        self.refuseRequest(refusal)

    def _internalError(self, failure: Failure) -> None:
        self.log.failure(
            "unexpected error in session {session}", failure, session=getattr(self.record, "session", None)
        )
        if not self._lost and self.session is None:
            self.refuseRequest(RequestRefused(ReplyCode.GENERAL_FAILURE, "error", "internal error"))
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
            if refusal.outcome == "denied":
                self.record.message = refusal.decision.message
        if self.codec.version == 4 and refusal.socks4 is not None:
            code = refusal.socks4
            self.transport.write(self.codec.send(SOCKS4Reply(SOCKS4ReplyCode(code))))
        else:
            self.transport.write(self.codec.reply(refusal.reply))
            code = int(refusal.reply) if self.codec.version == 5 else SOCKS4ReplyCode.REJECTED
        self._refuse(refusal.outcome, code, refusal.reason)

    def _noteDecision(self, decision: Decision) -> None:
        assert self.record is not None
        self.record.rule = decision.rule
        self.record.message = decision.message

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
        record.outcome, record.reply = outcome, reply
        if record.version is None and self.codec.version is not None:
            record.version = str(self.codec.version)
        if message and not record.message:
            record.message = message
        emitSession(record, self.factory.reactor.seconds())

    def _relayEnded(self, why: str) -> None:
        assert self.record is not None and self.session is not None
        self.record.bytes_out, self.record.bytes_in = self.session.bytesOut, self.session.bytesIn
        self.finishSession("closed", self.record.reply, "")

    def _handshakeTimedOut(self) -> None:
        self._handshakeCall = None
        seconds = self.factory.config.handshakeTimeout
        self._refuse("timeout", None, f"no complete request within {seconds:g} seconds")

    def _cancelHandshakeTimer(self) -> None:
        if self._handshakeCall is not None:
            self._handshakeCall.cancel()
            self._handshakeCall = None


class SOCKSServerFactory(Factory):
    """
    Serves SOCKS4, SOCKS4a and SOCKS5 on one listener.

    @ivar reactor: the reactor for connections and timers.
    @ivar config: the C{[server]} settings.
    @ivar policy: the L{IAccessPolicy} consulted for every request.
    @ivar listener: the description of the endpoint this factory serves,
        given to the policy and the session log.
    @ivar resolver: the L{IHostnameResolver} for destination names (by
        default L{gatewayResolver}'s, in a thread pool of its own).
    @ivar lookups: the L{LookupLimit} on lookups under way per client.
    @ivar sessions: the L{SessionTable}, shared by a gateway's listeners.
    @ivar bindHost: the source address of outgoing connections, or L{None}.
    @ivar auth: the C{[auth]} settings: SOCKS5 methods, checker, ident.
    @ivar throttle: the L{LoginThrottle} every login goes through, shared
        by a gateway's listeners.
    """

    protocol = SOCKSServerProtocol  # type: ignore[assignment]

    #: Where the identd of SOCKS4 clients listens (RFC 1413), and how long
    #: an answer may take.
    identPort = 113
    identTimeout = 5.0

    def __init__(
        self,
        reactor: Any = None,
        config: ServerConfig | None = None,
        policy: IAccessPolicy | None = None,
        listener: str = "",
        resolver: IHostnameResolver | None = None,
        sessions: SessionTable | None = None,
        auth: AuthConfig | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.reactor = reactor
        self.listener = listener
        self.resolver = resolver if resolver is not None else gatewayResolver(reactor)
        self.lookups = LookupLimit(self.resolver)
        self.sessions = sessions if sessions is not None else SessionTable()
        self.throttle = throttle if throttle is not None else LoginThrottle(reactor)
        self.configure(
            config if config is not None else ServerConfig(),
            policy if policy is not None else LoopbackOnlyPolicy(),
            auth,
        )

    def configure(self, config: ServerConfig, policy: IAccessPolicy, auth: AuthConfig | None = None) -> None:
        """
        Use C{config}, C{policy} and C{auth} for requests from now on (a
        reload); sessions already under way keep what they were given.
        """
        self.auth = auth if auth is not None else AuthConfig()
        self.authenticator = PasswordAuthenticator(self.auth.checker) if self.auth.checker else None
        external = ip_address(config.external)
        self.bindHost: IPv4Address | IPv6Address | None = None if external.is_unspecified else external
        self.config = config
        self.policy = policy

    def resolverFor(self, client: IPAddress | None) -> IHostnameResolver:
        """
        The resolver for the requests of C{client}: L{resolver}, with at
        most L{LOOKUPS_PER_CLIENT} lookups under way for that address.
        """
        return self.lookups.forClient(client)

    def buildProtocol(self, addr: Any) -> SOCKSServerProtocol:
        """
        Build the protocol for one client connection.
        """
        return self.protocol(self)
