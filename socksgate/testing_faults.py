"""
A misbehaving gateway for the tests of SOCKS clients: L{Faults} tells
L{socksgate.testing.startGateway} what to get wrong, and L{ClientRecord}
keeps what each client sent.

The gateway is still socksgate's own server protocol; the faults are put
around it, not in a second SOCKS server:

 - reply codes come from L{ReplyCodePolicy}, an access policy that refuses
   the destinations it is given with the code given (the server sends it,
   as for any refusal);
 - refused logins and the methods offered are the server's C{[auth]}
   settings (a checker that knows only the users given);
 - closing after the greeting, cutting the server's bytes at an offset
   and holding them back for a while are done by a wrapper around the
   connection (L{FaultyConnection}), which also records the client's
   bytes and parses them with the codec into the messages they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.interfaces import IDelayedCall
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from .config import AuthConfig
from .interfaces import IAccessPolicy
from .policy import AccessRequest, Decision, LoopbackOnlyPolicy
from .vocabulary import Outcome, RequestRefused
from .wire import (
    MalformedMessage,
    Method,
    ReplyCode,
    parseSOCKS4Request,
    parseSOCKS5Greeting,
    parseSOCKS5Request,
    parseUsernamePasswordRequest,
)

__all__ = ["ClientRecord", "Faults", "FaultyConnection", "FaultyFactory", "ReplyCodePolicy"]

#: The most bytes of each client a L{ClientRecord} keeps.
MAX_RECORDED = 1 << 20

#: A destination of L{ReplyCodePolicy}: a host (any port), or a host and a port.
Destination = str | tuple[str, int]


@dataclass(frozen=True)
class Faults:
    """
    What a test gateway gets wrong.  Every field is off by default, so
    C{Faults()} is a well-behaved gateway that records its clients.

    @ivar replies: a reply code for each destination: a host name or
        address (any port) or a C{(host, port)}.  SOCKS5 codes 0x01 to 0x08
        (a SOCKS4 client gets 91 for them), or SOCKS4 codes 91 to 93 (a
        SOCKS5 client gets 0x01).  Names are matched as the client sent
        them, and are never resolved.
    @ivar methods: the SOCKS5 methods the gateway accepts (C{"none"},
        C{"userpass"}), in its order of preference, instead of its
        C{[auth]} methods: a client that offers none of them gets C{05 FF}.
    @ivar users: the user names and passwords that log in with
        C{"userpass"} when the gateway has no checker of its own.
    @ivar refuseAuthentication: accept only username/password and refuse
        every login (RFC 1929 status 1).
    @ivar closeAfterGreeting: close a SOCKS5 connection as soon as the
        greeting arrived, without answering it.
    @ivar cutAt: close the connection once the gateway has sent this many
        bytes (its method selection, RFC 1929 status and replies counted
        together); what it would send beyond is not sent.
    @ivar delayAt: hold back the gateway's bytes from this offset on...
    @ivar delay: ...for this many seconds (L{None}: until the connection
        closes), then send them, and anything sent meanwhile.
    """

    replies: Mapping[Destination, int] = field(default_factory=dict)
    methods: tuple[str, ...] | None = None
    users: Mapping[str, str] = field(default_factory=dict)
    refuseAuthentication: bool = False
    closeAfterGreeting: bool = False
    cutAt: int | None = None
    delayAt: int | None = None
    delay: float | None = None

    def authFor(self, auth: AuthConfig | None) -> AuthConfig | None:
        """
        The C{[auth]} settings of a gateway with these faults, from its own.
        """
        if self.refuseAuthentication:
            return AuthConfig(("userpass",), InMemoryUsernamePasswordDatabaseDontUse())
        if self.methods is None:
            return auth
        checker = auth.checker if auth is not None and auth.checker is not None else None
        if checker is None and "userpass" in self.methods:
            checker = InMemoryUsernamePasswordDatabaseDontUse()
            for user, password in self.users.items():
                checker.addUser(user, password)
        return AuthConfig(self.methods, checker)


@implementer(IAccessPolicy)
class ReplyCodePolicy:
    """
    Refuses the destinations it is given with their reply code; asks
    another policy about every other request.
    """

    def __init__(self, replies: Mapping[Destination, int], policy: IAccessPolicy | None = None) -> None:
        """
        @param replies: see L{Faults.replies}.
        @param policy: decides the other requests; loopback clients only
            by default.
        """
        self._replies = {(key, None) if isinstance(key, str) else key: code for key, code in replies.items()}
        self._policy = policy if policy is not None else LoopbackOnlyPolicy()

    def decide(self, request: AccessRequest) -> Decision | Any:
        """
        Raise the refusal of a destination given, else ask the other policy.

        @raise RequestRefused: the destination has a reply code.
        """
        for host in (request.destinationName, request.destinationAddress):
            if host is None:
                continue
            code = self._replies.get((str(host), request.port), self._replies.get((str(host), None)))
            if code is not None:
                raise _refusal(code, f"{host}:{request.port}")
        return self._policy.decide(request)


def _refusal(code: int, destination: str) -> RequestRefused:
    reason = f"socksgate.testing: told to answer {code} for {destination}"
    if code in (91, 92, 93):
        return RequestRefused(ReplyCode.GENERAL_FAILURE, Outcome.FAILED, reason, socks4=code)
    outcome = Outcome.DENIED if code == ReplyCode.NOT_ALLOWED else Outcome.FAILED
    return RequestRefused(ReplyCode(code), outcome, reason)


@dataclass
class ClientRecord:
    """
    What one client sent to a test gateway.

    @ivar data: its bytes, in order (at most L{MAX_RECORDED}).
    @ivar messages: the handshake messages they hold, parsed by the codec:
        L{socksgate.wire.SOCKS5Greeting}, L{socksgate.wire.UsernamePasswordRequest}
        (its password hidden from C{repr}), L{socksgate.wire.SOCKS5Request}
        or L{socksgate.wire.SOCKS4Request}.
    @ivar malformed: why the client's bytes are no message, if they are not.
    @ivar closed: whether the connection has closed.
    """

    data: bytes = b""
    messages: list[Any] = field(default_factory=list)
    malformed: str | None = None
    closed: bool = False

    @property
    def requests(self) -> list[Any]:
        """
        The SOCKS4 and SOCKS5 requests among L{messages}.
        """
        return [message for message in self.messages if hasattr(message, "command")]


class _Reader:
    """
    Parses what a client sent, following the method the gateway selected.
    """

    def __init__(self, record: ClientRecord) -> None:
        self._record = record
        self._offset = 0
        self._parser: Any = None
        self._done = False
        self.selected: int | None = None

    def read(self) -> None:
        record = self._record
        while not self._done and record.malformed is None:
            parser = self._next()
            if parser is None:
                return
            try:
                parsed = parser(record.data[self._offset :])
            except MalformedMessage as error:
                record.malformed = error.reason
                return
            if parsed is None:
                return
            message, consumed = parsed
            self._offset += consumed
            record.messages.append(message)
            self._done = hasattr(message, "command")

    def _next(self) -> Any:
        messages = self._record.messages
        if not messages:
            if not self._record.data:
                return None
            return parseSOCKS4Request if self._record.data[0] == 4 else parseSOCKS5Greeting
        if len(messages) == 1:
            if self.selected == Method.USERNAME_PASSWORD:
                return parseUsernamePasswordRequest
            return parseSOCKS5Request if self.selected == Method.NO_AUTHENTICATION else None
        return parseSOCKS5Request


class FaultyConnection(ProtocolWrapper):
    """
    One client's connection to a test gateway: the server protocol inside,
    the faults and the record around it.
    """

    def __init__(self, factory: FaultyFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)
        self.faults: Faults = factory.faults
        self.record = ClientRecord()
        factory.records.append(self.record)
        self._reader = _Reader(self.record)
        self._sent = 0
        self._held: list[bytes] | None = None
        self._release: IDelayedCall | None = None
        self._closeWhenReleased = False
        self._cut = False

    def dataReceived(self, data: bytes) -> None:
        """
        Record the client's bytes, then give them to the server (unless
        the connection closes after the greeting).
        """
        record = self.record
        record.data += data[: max(0, MAX_RECORDED - len(record.data))]
        self._reader.read()
        if self.faults.closeAfterGreeting and record.messages and record.data[:1] == b"\x05":
            self.transport.loseConnection()
            return
        super().dataReceived(data)

    def write(self, data: bytes) -> None:
        """
        Send the gateway's bytes, as the faults allow.
        """
        if self._cut:
            return
        if self._reader.selected is None and self.record.data[:1] == b"\x05" and len(data) >= 2:
            self._reader.selected = data[1]
            self._reader.read()
        faults = self.faults
        if faults.cutAt is not None and self._sent + len(data) >= faults.cutAt:
            data = data[: faults.cutAt - self._sent]
            self._cut = True
        if self._held is None and faults.delayAt is not None and self._sent + len(data) > faults.delayAt:
            now, data = data[: faults.delayAt - self._sent], data[faults.delayAt - self._sent :]
            self._send(now)
            self._hold()
        if self._held is not None:
            self._held.append(data)
        else:
            self._send(data)
        if self._cut and self._held is None:
            self.transport.loseConnection()

    def writeSequence(self, data: Any) -> None:
        """
        Send each piece as L{write} does.
        """
        for piece in data:
            self.write(piece)

    def loseConnection(self) -> None:
        """
        Close, once the bytes held back are sent.
        """
        if self._held is not None:
            self._closeWhenReleased = True
            return
        super().loseConnection()

    def connectionLost(self, reason: Failure) -> None:
        """
        Forget the bytes held back; tell the server.
        """
        self.record.closed = True
        if self._release is not None and self._release.active():
            self._release.cancel()
        self._held = None
        super().connectionLost(reason)

    def _send(self, data: bytes) -> None:
        if data:
            self._sent += len(data)
            self.transport.write(data)

    def _hold(self) -> None:
        self._held = []
        if self.faults.delay is not None:
            self._release = self.factory.reactor.callLater(self.faults.delay, self._released)

    def _released(self) -> None:
        held, self._held = self._held or [], None
        for piece in held:
            self._send(piece)
        if self._cut or self._closeWhenReleased:
            self.transport.loseConnection()


class FaultyFactory(WrappingFactory):
    """
    Wraps the gateway's factory: each connection is a L{FaultyConnection}.

    @ivar faults: the L{Faults}.
    @ivar records: a L{ClientRecord} for each connection so far.
    """

    protocol = FaultyConnection  # type: ignore[assignment]
    noisy = False

    def __init__(self, wrappedFactory: Any, faults: Faults) -> None:
        super().__init__(wrappedFactory)
        self.faults = faults
        self.records: list[ClientRecord] = []
        self.reactor = wrappedFactory.reactor
