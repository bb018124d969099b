"""
GSS-API authentication (RFC 1961) for the SOCKS5 client endpoint.

L{GSSAPIClientOptions} is what an application gives
C{SOCKS5ClientEndpoint(..., gssapi=...)}; L{GSSAPIClientAuth} runs one
connection's negotiation for L{socksgate.client.protocol.SOCKSClientProtocol}
with L{socksgate.gssclient.GSSAPIClientNegotiator}, and then, at integrity
or confidentiality, seals what the client sends (the request first) and
unseals what the server sends (the reply first), so that the
application's protocol reads and writes plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred

from ..gssauth import LEVEL_NAMES, GSSAPINegotiationFailed, describeGSSError, importGSSAPI
from ..gssclient import GSSAPIClientNegotiator, ProtectionLevelRefused, initiatorContext
from ..gssstream import MessageProtection, ProtectedTransport
from ..wire import Method, ProtectionLevel
from .errors import GSSAPIAuthenticationFailed, GSSAPIProtectionRefused

__all__ = ["GSSAPIClientAuth", "GSSAPIClientOptions"]


@dataclass(frozen=True)
class GSSAPIClientOptions:
    """
    How the client authenticates with GSS-API.

    @ivar service: the gateway's service: C{SERVICE@HOST}
        (C{rcmd@gw.example.com}, as curl's C{--socks5-gssapi-service} with
        the proxy's host name), or a Kerberos principal with a C{/}
        (C{rcmd/gw.example.com@EXAMPLE.COM}).
    @ivar protection: the level to ask for, C{"none"}, C{"integrity"} or
        C{"confidentiality"}; a gateway that agrees to another is refused
        (L{GSSAPIProtectionRefused}).
    @ivar ccache: the credential cache of the client's tickets; C{""} for
        the Kerberos library's default (C{KRB5CCNAME}).
    @ivar nec: send the level as one bare octet (the NEC exchange), not
        wrapped.
    """

    service: str
    protection: str = "confidentiality"
    ccache: str = ""
    nec: bool = False

    def __post_init__(self) -> None:
        """
        @raise ValueError: an unknown level or an empty service.
        @raise socksgate.gssauth.GSSAPIUnavailable: the C{gssapi} package is
            not installed.
        """
        if self.protection not in LEVEL_NAMES:
            raise ValueError(f"GSS-API protection {self.protection!r} is not one of {', '.join(LEVEL_NAMES)}")
        if not self.service:
            raise ValueError("a GSS-API service name is needed (rcmd@gw.example.com)")
        importGSSAPI()

    @property
    def level(self) -> ProtectionLevel:
        """
        The L{ProtectionLevel} of C{protection}.
        """
        return LEVEL_NAMES[self.protection]


def _everything(data: bytes | bytearray) -> tuple[bytes, int] | None:
    """
    The codec's parser for the GSS-API sub-negotiation: every byte goes to
    the negotiator, which frames (and bounds) them itself.
    """
    return (bytes(data), len(data)) if data else None


#: The codec's C{subnegotiations} for GSS-API.
SUBNEGOTIATIONS = {Method.GSSAPI: _everything}


class GSSAPIClientAuth:
    """
    One connection's GSS-API negotiation and, after it, its protection.

    @ivar protection: the L{MessageProtection} once integrity or
        confidentiality is agreed, else L{None}.
    """

    def __init__(self, options: GSSAPIClientOptions, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._options = options
        self._reactor = reactor
        self._negotiator: GSSAPIClientNegotiator | None = None
        self.protection: MessageProtection | None = None

    def start(self, write: Any) -> Deferred[bytes]:
        """
        Start the negotiation, once the server selected GSS-API.

        @param write: sends bytes to the server.
        @return: fires with the plaintext of the bytes the server sent after
            its level message, or fails with L{GSSAPIAuthenticationFailed}
            or L{GSSAPIProtectionRefused} (the caller closes).
        """
        options = self._options
        gssapi = importGSSAPI()
        try:
            context = initiatorContext(options.service, options.ccache)
        except gssapi.exceptions.GSSError as error:
            failed: Deferred[bytes] = Deferred()
            failed.errback(GSSAPIAuthenticationFailed(string=describeGSSError(error)))
            return failed
        self._negotiator = GSSAPIClientNegotiator(self._reactor, context, write, options.level, options.nec)
        return self._negotiator.start().addCallbacks(self._negotiated, self._failed)

    def dataReceived(self, data: bytes) -> None:
        """
        Bytes from the server during the negotiation.
        """
        if self._negotiator is not None:
            self._negotiator.dataReceived(data)

    def seal(self, data: bytes) -> bytes:
        """
        What to send for C{data}: sealed once protected.
        """
        return self.protection.seal(data) if self.protection is not None else data

    def unseal(self, data: bytes) -> bytes:
        """
        The plaintext of bytes from the server.

        @raise socksgate.gssstream.ProtectionFailed: the stream is broken.
        """
        return self.protection.unseal(data) if self.protection is not None else data

    def wrapTransport(self, transport: Any) -> Any:
        """
        The transport the application writes plaintext to.
        """
        return ProtectedTransport(transport, self.protection) if self.protection is not None else transport

    def _negotiated(self, result: Any) -> bytes:
        self.protection = result.protection
        return self.unseal(result.trailing)

    def _failed(self, failure: Any) -> None:
        error = failure.value
        if isinstance(error, ProtectionLevelRefused):
            refused = GSSAPIProtectionRefused(string=error.reason)
            refused.asked, refused.agreed = error.asked, error.agreed
            raise refused
        if isinstance(error, GSSAPINegotiationFailed):
            raise GSSAPIAuthenticationFailed(string=error.reason)
        failure.raiseException()
