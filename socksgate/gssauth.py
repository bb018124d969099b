"""
The server's side of the SOCKS5 GSS-API method (RFC 1961): the acceptor
credentials read from the keytab at start, and the negotiation of one
client's security context and protection level.

It calls the C{gssapi} package (python-gssapi, the optional extra
C{socksgate[gssapi]}); the framing is the codec's
(L{socksgate.wire.GSSAPIServerConnection}).  The acceptor's calls are
local work on the reactor thread: checking a Kerberos AP-REQ against the
keytab took about 0.5 ms, wrapping or unwrapping a token about 40 us, on
the development machine (the acceptor never talks to the KDC).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .wire import (
    GSSAPIServerConnection,
    GSSAPIState,
    ProtectionLevel,
    RemoteProtocolError,
)

__all__ = [
    "LEVEL_NAMES",
    "GSSAPIAcceptor",
    "GSSAPINegotiationFailed",
    "GSSAPIServerNegotiation",
    "GSSAPIUnavailable",
    "NegotiatedContext",
    "agreeLevel",
    "describeGSSError",
    "gssapiAvailable",
    "importGSSAPI",
    "loadAcceptor",
    "serviceName",
]

#: The names of C{[auth] gssapi-protection} and the levels they stand for.
LEVEL_NAMES = {
    "none": ProtectionLevel.NONE,
    "integrity": ProtectionLevel.INTEGRITY,
    "confidentiality": ProtectionLevel.CONFIDENTIALITY,
}


class GSSAPIUnavailable(Exception):
    """
    GSS-API was asked for, and the C{gssapi} package is not installed.
    """


class GSSAPINegotiationFailed(Exception):
    """
    A client's GSS-API negotiation failed.

    @ivar reason: what failed, for the log (GSS-API's own messages; never
        a token).
    @ivar reply: the bytes to send before closing: the abort message, or
        nothing when the client aborted.
    """

    def __init__(self, reason: str, reply: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def gssapiAvailable() -> bool:
    """
    Whether the C{gssapi} package can be imported.
    """
    return importlib.util.find_spec("gssapi") is not None


def importGSSAPI() -> Any:
    """
    The C{gssapi} package, imported when GSS-API is used (it is an
    optional dependency, not an import cycle).

    @raise GSSAPIUnavailable: it is not installed.
    """
    try:
        import gssapi
    except ImportError as error:
        raise GSSAPIUnavailable(
            f"the gssapi package is not installed ({error}): pip install 'socksgate[gssapi]'"
        ) from None
    return gssapi


def describeGSSError(error: Exception) -> str:
    """
    A GSS-API error in words, on one line (its major and minor messages;
    never a token).
    """
    describe = getattr(error, "gen_message", None)
    return " ".join(describe().split()) if callable(describe) else str(error)


def serviceName(service: str) -> Any:
    """
    The acceptor's name for C{[auth] gssapi-service}: a name with a C{/}
    (C{rcmd/gw.example.com@EXAMPLE.COM}) is a Kerberos principal; any
    other is a host-based service, C{SERVICE} or C{SERVICE@HOST}.  A bare
    C{SERVICE} (the default C{rcmd}) accepts C{SERVICE/any-host} that the
    keytab holds (MIT Kerberos' rule for a host-based acceptor name
    without a host, what Dante's C{gssapi.servicename} does too).
    """
    gssapi = importGSSAPI()
    if "/" in service:
        return gssapi.Name(service, gssapi.NameType.kerberos_principal)
    return gssapi.Name(service, gssapi.NameType.hostbased_service)


@dataclass(frozen=True)
class GSSAPIAcceptor:
    """
    What the gateway accepts GSS-API clients with.

    @ivar credentials: the acceptor credentials (C{gssapi.Credentials}).
    @ivar levels: the protection levels the gateway agrees to.
    @ivar service: the C{gssapi-service} they were acquired for.
    @ivar keytab: the keytab they come from (C{""}: the library's default).
    """

    credentials: Any
    levels: frozenset[ProtectionLevel]
    service: str = "rcmd"
    keytab: str = ""

    def newContext(self) -> Any:
        """
        A security context to accept one client with.
        """
        return importGSSAPI().SecurityContext(creds=self.credentials, usage="accept")


def loadAcceptor(keytab: str, service: str, levels: Iterable[str]) -> GSSAPIAcceptor:
    """
    Acquire the acceptor credentials: the keytab must hold a key for the
    service, so a wrong keytab or service name fails here, at start.

    @param keytab: the keytab's path; C{""} for the Kerberos library's
        default (C{KRB5_KTNAME}, else its configured default).
    @param service: C{[auth] gssapi-service} (see L{serviceName}).
    @param levels: names from L{LEVEL_NAMES}.
    @raise GSSAPIUnavailable: the C{gssapi} package is not installed.
    @raise ValueError: no credentials for that service in that keytab.
    """
    gssapi = importGSSAPI()
    store = {b"keytab": keytab.encode()} if keytab else None
    try:
        credentials = gssapi.Credentials(name=serviceName(service), usage="accept", store=store)
    except gssapi.exceptions.GSSError as error:
        where = repr(keytab) if keytab else "the default keytab"
        raise ValueError(f"no key for {service!r} in {where}: {describeGSSError(error)}") from None
    return GSSAPIAcceptor(credentials, frozenset(LEVEL_NAMES[name] for name in levels), service, keytab)


@dataclass(frozen=True)
class NegotiatedContext:
    """
    A client's GSS-API negotiation that succeeded.

    @ivar principal: the client's principal (C{alice@EXAMPLE.TEST}).
    @ivar level: the protection level agreed.
    @ivar context: the established security context.
    @ivar trailing: bytes that came after the negotiation (the start of
        the SOCKS request, protected or not).
    @ivar nec: whether the client used the NEC exchange (a bare level
        octet, not wrapped).
    @ivar requested: the level the client asked for (see L{agreeLevel}).
    """

    principal: str
    level: ProtectionLevel
    context: Any
    trailing: bytes
    nec: bool
    requested: ProtectionLevel | None = None


class GSSAPIServerNegotiation:
    """
    One client's RFC 1961 sections 3 and 4: context tokens are accepted
    until the context is complete, then the client's level message is
    answered with the level the gateway agrees to.

    The answer is L{agreeLevel}'s: the client's level if the gateway
    accepts it, else the strongest level the gateway accepts.

    A one-octet level message is the NEC exchange (curl's
    C{--socks5-gssapi-nec}): a wrapped token is never one octet long, so it
    is told apart without configuration, and answered the same way.
    """

    def __init__(self, acceptor: GSSAPIAcceptor) -> None:
        self._acceptor = acceptor
        self._codec = GSSAPIServerConnection()
        self._context = acceptor.newContext()

    def receiveData(self, data: bytes) -> tuple[bytes, NegotiatedContext | None]:
        """
        Take bytes from the client.

        @return: the bytes to send to the client, and the result once the
            negotiation has succeeded (else L{None}).
        @raise GSSAPINegotiationFailed: send its reply and close.
        """
        gssapi = importGSSAPI()
        codec = self._codec
        out = []
        try:
            codec.receiveData(data)
            while True:
                message = codec.nextEvent()
                if message is None:
                    return b"".join(out), None
                if codec.state is GSSAPIState.CONTEXT:
                    token = self._context.step(message.token)
                    if token:
                        out.append(codec.sendToken(token))
                    if self._context.complete:
                        codec.contextEstablished()
                else:
                    out.append(self._agree(message.token, codec))
                    done = NegotiatedContext(
                        str(self._context.initiator_name),
                        self._level,
                        self._context,
                        codec.takeTrailingData(),
                        self._nec,
                        self._requested,
                    )
                    return b"".join(out), done
        except RemoteProtocolError as error:
            raise GSSAPINegotiationFailed(error.reason, b"".join(out) + error.reply) from None
        except gssapi.exceptions.GSSError as error:
            raise GSSAPINegotiationFailed(describeGSSError(error), b"".join(out) + codec.abort()) from None
        except _Refused as refused:
            raise GSSAPINegotiationFailed(str(refused), b"".join(out) + codec.abort()) from None

    def _agree(self, token: bytes, codec: GSSAPIServerConnection) -> bytes:
        """
        Read the client's level and answer with the one the gateway agrees
        to (L{agreeLevel}), in the form the client used.
        """
        self._nec = len(token) == 1
        if self._nec:
            level = token
        else:
            unwrapped = self._context.unwrap(token)
            level = unwrapped.message
        if len(level) != 1:
            raise _Refused(f"a protection-level message of {len(level)} octets")
        try:
            self._requested = ProtectionLevel(level[0])
        except ValueError:
            raise _Refused(f"unknown protection level {level[0]}") from None
        self._level = agreeLevel(self._requested, self._acceptor.levels)
        answer = bytes([self._level])
        if not self._nec:
            answer = self._context.wrap(answer, False).message
        return codec.sendProtection(answer)


def agreeLevel(requested: ProtectionLevel, accepted: Iterable[ProtectionLevel]) -> ProtectionLevel:
    """
    The level the gateway answers a client's level message with (RFC 1961
    section 4: the server "returns the security context protection level
    which it agrees to - which may or may not take the client's request
    into account").

    @param requested: the client's level.
    @param accepted: C{[auth] gssapi-protection}, never empty.
    @return: C{requested} if it is accepted, else the strongest accepted
        level (confidentiality, then integrity, then none).  Level 3
        (selective) is never accepted.  curl 8 asks for confidentiality
        and can relay only at none, so a gateway for curl accepts only
        C{none}.
    """
    levels = set(accepted) - {ProtectionLevel.SELECTIVE}
    if requested in levels:
        return requested
    return max(levels)


class _Refused(Exception):
    """
    The negotiation is refused for the reason given.
    """
