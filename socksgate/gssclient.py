"""
The client's side of the SOCKS5 GSS-API method (RFC 1961): establish a
security context with the gateway's service and agree on a protection
level, over a connection whose method selection chose GSS-API (0x01).

L{GSSAPIClientNegotiator} is written for any SOCKS5 client protocol to
drive (the framing is the codec's L{socksgate.wire.GSSAPIClientConnection}):
it is given a way to write, is fed what the server sends, and fires with a
L{ClientNegotiated}, whose C{protection} (for integrity and
confidentiality) seals the SOCKS request and everything after it.  The
initiator's calls run in a thread pool: its first step asks the KDC for a
service ticket over the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from .gssauth import GSSAPINegotiationFailed, describeGSSError, importGSSAPI, serviceName
from .gssstream import MessageProtection
from .wire import GSSAPIClientConnection, GSSAPIState, ProtectionLevel, RemoteProtocolError

__all__ = ["ClientNegotiated", "GSSAPIClientNegotiator", "ProtectionLevelRefused", "initiatorContext"]


def initiatorContext(service: str, ccache: str = "") -> Any:
    """
    A security context to initiate with, for the gateway's service
    (C{rcmd@gateway.example.com}, as curl's C{--socks5-gssapi-service}
    names it with the proxy's host, or a principal with a C{/}).

    @param ccache: the credential cache of the client's tickets; C{""} for
        the library's default (C{KRB5CCNAME}).
    """
    gssapi = importGSSAPI()
    store = {b"ccache": ccache.encode()} if ccache else None
    credentials = gssapi.Credentials(usage="initiate", store=store)
    flags = gssapi.RequirementFlag
    return gssapi.SecurityContext(
        name=serviceName(service),
        creds=credentials,
        usage="initiate",
        flags=flags.mutual_authentication
        | flags.integrity
        | flags.confidentiality
        | flags.replay_detection
        | flags.out_of_sequence_detection,
    )


class ProtectionLevelRefused(GSSAPINegotiationFailed):
    """
    The server agreed to another protection level than the client asked
    for, and the client does not take it (nothing was written; the caller
    closes the connection).

    @ivar asked: the level asked for.
    @ivar agreed: the server's level (its octets if it is no known level).
    """

    def __init__(self, asked: ProtectionLevel, agreed: ProtectionLevel | bytes) -> None:
        name = agreed.name.lower() if isinstance(agreed, ProtectionLevel) else repr(agreed)
        super().__init__(f"the gateway agreed to protection {name}, not {asked.name.lower()}", b"")
        self.asked = asked
        self.agreed = agreed


@dataclass(frozen=True)
class ClientNegotiated:
    """
    A GSS-API negotiation the client completed.

    @ivar level: the level the server agreed to.
    @ivar protection: the L{MessageProtection} to seal and unseal with,
        or L{None} at level C{NONE}.
    @ivar trailing: bytes the server sent after its level message.
    """

    level: ProtectionLevel
    protection: MessageProtection | None
    trailing: bytes


class GSSAPIClientNegotiator:
    """
    One client's RFC 1961 sections 3 and 4.

    @ivar done: fires with a L{ClientNegotiated}, or fails with
        L{GSSAPINegotiationFailed} (the abort message has been written
        where the client gives up; the caller closes the connection).
    """

    def __init__(
        self,
        reactor: Any,
        context: Any,
        write: Callable[[bytes], None],
        level: ProtectionLevel = ProtectionLevel.CONFIDENTIALITY,
        nec: bool = False,
    ) -> None:
        """
        @param context: an initiating security context (L{initiatorContext}).
        @param write: sends bytes to the server.
        @param level: the protection level to ask for.
        @param nec: send the level as one bare octet (the NEC exchange that
            curl's C{--socks5-gssapi-nec} speaks), not wrapped.
        """
        self._reactor = reactor
        self._context = context
        self._write = write
        self._level = level
        self._nec = nec
        self._codec = GSSAPIClientConnection()
        self._stepping = False
        self.done: Deferred[ClientNegotiated] = Deferred()

    def start(self) -> Deferred[ClientNegotiated]:
        """
        Make the first context token and send it.
        """
        self._step(None)
        return self.done

    def dataReceived(self, data: bytes) -> None:
        """
        Take bytes from the server.
        """
        if self.done.called:
            return
        try:
            self._codec.receiveData(data)
        except RemoteProtocolError as error:
            self._fail(error.reason, error.reply)
            return
        self._next()

    def _next(self) -> None:
        if self._stepping or self.done.called:
            return
        try:
            message = self._codec.nextEvent()
        except RemoteProtocolError as error:
            why = error.reason if error.reply else "the server refused the GSS-API authentication"
            self._fail(why, error.reply)
            return
        if message is None:
            return
        if self._codec.state is GSSAPIState.CONTEXT:
            self._step(message.token)
        else:
            self._agreed(message.token)

    def _step(self, token: bytes | None) -> None:
        self._stepping = True
        pool = self._reactor.getThreadPool()
        stepped = deferToThreadPool(self._reactor, pool, self._context.step, token)
        stepped.addCallbacks(self._stepped, self._stepFailed)

    def _stepped(self, token: bytes | None) -> None:
        self._stepping = False
        if self.done.called:
            return
        if token:
            self._write(self._codec.sendToken(token))
        if self._context.complete:
            self._codec.contextEstablished()
            level = bytes([self._level])
            self._write(
                self._codec.sendProtection(level if self._nec else self._context.wrap(level, False).message)
            )
        self._next()

    def _stepFailed(self, failure: Any) -> None:
        self._stepping = False
        self._fail(describeGSSError(failure.value), self._codec.abort())

    def _agreed(self, token: bytes) -> None:
        try:
            level = token if self._nec else self._context.unwrap(token).message
        except Exception as error:
            self._fail(f"the server's level message failed its check: {error}", self._codec.abort())
            return
        if level != bytes([self._level]):
            self._refused(level)
            return
        protection = None
        if self._level is not ProtectionLevel.NONE:
            protection = MessageProtection(self._context, self._level)
        self.done.callback(ClientNegotiated(self._level, protection, self._codec.takeTrailingData()))

    def _refused(self, level: bytes) -> None:
        """
        The server agreed to another level than the one asked for (RFC 1961
        lets it): the client does not take it, and closes.
        """
        if self.done.called:
            return
        try:
            agreed: ProtectionLevel | bytes = ProtectionLevel(level[0]) if len(level) == 1 else level
        except ValueError:
            agreed = level
        self.done.errback(ProtectionLevelRefused(self._level, agreed))

    def _fail(self, why: str, reply: bytes) -> None:
        if self.done.called:
            return
        if reply:
            self._write(reply)
        self.done.errback(GSSAPINegotiationFailed(why, reply))
