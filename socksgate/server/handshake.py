"""
The handshake before a request: SOCKS5 method selection, RFC 1929 logins
through the login throttle, RFC 1961 GSS-API negotiations, and the RFC
1413 ident check of SOCKS4 requests.

L{Handshake} is mixed into the server protocol (as Twisted's
C{TimeoutMixin} is): it uses the protocol's transport, codec, record,
factory and its C{_refuse}, C{_process} and C{_cancelHandshakeTimer}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..auth import LoginRefused, SOCKSUser, selectMethod
from ..gssauth import GSSAPINegotiationFailed, GSSAPIServerNegotiation
from ..gssstream import MessageProtection, ProtectedTransport
from ..ident import IdentUnavailable, queryIdent
from ..policy import AccessRequest
from ..session import SessionRecord
from ..vocabulary import Outcome, RequestRefused, Version
from ..wire import (
    AuthStatus,
    Method,
    ProtectionLevel,
    ReplyCode,
    SOCKS4ReplyCode,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    UsernamePasswordReply,
    UsernamePasswordRequest,
)

__all__ = ["Handshake"]


class Handshake:
    """
    Method selection, login and ident, for L{socksgate.server.SOCKSServerProtocol}.
    """

    log = Logger()

    factory: Any
    transport: Any
    codec: Any
    record: SessionRecord | None
    client: Any
    _lost: bool
    _pending: Deferred[Any] | None
    _user: str | None
    _loginStarted: float
    _gssapi: GSSAPIServerNegotiation | None
    _protection: MessageProtection | None

    def dataReceived(self, data: bytes) -> None:
        raise NotImplementedError

    def _refuse(self, outcome: str, reply: int | None, message: str) -> None:
        raise NotImplementedError

    def _process(self, data: bytes) -> None:
        raise NotImplementedError

    def _cancelHandshakeTimer(self) -> None:
        raise NotImplementedError

    def _internalError(self, failure: Failure) -> None:
        raise NotImplementedError

    def _selectMethod(self, greeting: SOCKS5Greeting) -> None:
        """
        Choose the SOCKS5 method: the first of the server's methods the
        client offers; none refuses.
        """
        assert self.record is not None
        self.record.version = Version.SOCKS5
        if Version.SOCKS5 not in self.factory.config.versions:
            method, why = Method.NO_ACCEPTABLE_METHODS, "SOCKS5 is disabled"
        else:
            method = selectMethod(self.factory.auth.methods, greeting.methods)
            why = "the client offers no acceptable authentication method"
        self.transport.write(self.codec.send(SOCKS5MethodSelection(method)))
        if method == Method.NO_ACCEPTABLE_METHODS:
            self._refuse(Outcome.DENIED, method, why)
        elif method == Method.USERNAME_PASSWORD:
            self.record.auth = "userpass"
        elif method == Method.GSSAPI:
            self.record.auth = "gssapi"
            self._gssapi = GSSAPIServerNegotiation(self.factory.auth.gssapi)
            self._negotiateGSSAPI(self.codec.takeTrailingData())

    def _negotiateGSSAPI(self, data: bytes) -> None:
        """
        Feed the client's bytes to its GSS-API negotiation (RFC 1961).  A
        failure is answered with the abort message and a close; success
        makes the client's principal the user and, for integrity or
        confidentiality, puts a sealing transport under everything that
        follows, the request and the reply included.
        """
        negotiation = self._gssapi
        assert negotiation is not None and self.record is not None
        try:
            answer, done = negotiation.receiveData(data)
        except GSSAPINegotiationFailed as failed:
            self._gssapi = None
            self.log.info(
                "GSS-API negotiation with {client} failed: {why}",
                client=self.record.client,
                why=failed.reason,
            )
            self.transport.write(failed.reply)
            self._refuse(Outcome.DENIED, 0xFF, f"GSS-API negotiation failed: {failed.reason}")
            return
        if answer:
            self.transport.write(answer)
        if done is None:
            return
        self._gssapi = None
        self._user = self.record.user = done.principal
        if done.requested is not done.level:
            self.log.info(
                "GSS-API: {user} asked for protection {requested}; the gateway agreed to {agreed}",
                user=done.principal,
                requested=done.requested.name.lower() if done.requested is not None else None,
                agreed=done.level.name.lower(),
            )
        self.codec.gssapiEstablished()
        if done.level is not ProtectionLevel.NONE:
            self._protection = MessageProtection(done.context, done.level)
            self.transport = ProtectedTransport(self.transport, self._protection)
        if done.trailing:
            self.dataReceived(done.trailing)

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
        self._refuse(Outcome.DENIED, AuthStatus.FAILURE, why)

    def _checkIdent(self, accessRequest: AccessRequest) -> Deferred[AccessRequest]:
        """
        Ask the client's identd who owns the connection (RFC 1413).  With
        C{ident = "log"} the answer is only recorded; with C{"require"} no
        answer refuses with CD 92 and another user than USERID with CD 93,
        and a match makes the user an C{ident}-verified one.
        """
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
                    ReplyCode.NOT_ALLOWED, Outcome.DENIED,
                    f"identd says {owner!r}, USERID claims {claimed!r}",
                    socks4=SOCKS4ReplyCode.IDENTD_MISMATCH,
                )  # fmt: skip
            record.auth = "ident"
            return replace(accessRequest, auth="ident")

        def unanswered(failure: Failure) -> AccessRequest:
            if not require:
                return accessRequest
            if failure.check(IdentUnavailable):
                raise RequestRefused(
                    ReplyCode.NOT_ALLOWED, Outcome.DENIED, f"no identd answered: {failure.value}",
                    socks4=SOCKS4ReplyCode.IDENTD_UNREACHABLE,
                )  # fmt: skip
            raise RequestRefused(
                ReplyCode.NOT_ALLOWED, Outcome.DENIED, f"identd did not confirm {claimed!r}: {failure.value}",
                socks4=SOCKS4ReplyCode.IDENTD_MISMATCH,
            )  # fmt: skip

        query = queryIdent(
            factory.reactor, peer.host, peer.port, local.port,
            timeout=factory.identTimeout, identPort=factory.identPort, bindHost=local.host,
        )  # fmt: skip
        return query.addCallbacks(answered, unanswered)
