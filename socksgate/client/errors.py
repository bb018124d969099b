"""
The errors a SOCKS client endpoint fails with: one class for each reply
code a server can refuse a request with, and one for each other way the
handshake can fail.

Every class is a L{twisted.internet.error.ConnectError}, so code that
handles a failed TCP connection handles a failed SOCKS request too.  A
refusal carries the server's code in C{code} (SOCKS5 REP 0x01 to 0x08,
SOCKS4 CD 91 to 93); the other errors have C{code = None}.
"""

from __future__ import annotations

from twisted.internet import error

__all__ = [
    "AddressTypeNotSupported",
    "AuthenticationFailed",
    "CommandNotSupported",
    "ConnectionNotAllowed",
    "ConnectionRefused",
    "GSSAPIAuthenticationFailed",
    "GSSAPIProtectionRefused",
    "GeneralServerFailure",
    "HostUnreachable",
    "IdentdMismatch",
    "IdentdUnreachable",
    "MalformedReply",
    "NetworkUnreachable",
    "NoAcceptableMethods",
    "RequestRejected",
    "SOCKSError",
    "TTLExpired",
    "replyError",
]


class SOCKSError(error.ConnectError):
    """
    The SOCKS server did not carry the connection.

    @cvar code: the reply code that says so, or L{None}.
    @cvar version: the SOCKS version of that code (4 or 5), or L{None}.
    """

    MESSAGE = "The SOCKS server did not carry the connection"
    code: int | None = None
    version: int | None = None


class GeneralServerFailure(SOCKSError):
    """
    SOCKS5 reply 0x01: general SOCKS server failure.
    """

    MESSAGE = "SOCKS server failure (0x01)"
    code, version = 0x01, 5


class ConnectionNotAllowed(SOCKSError):
    """
    SOCKS5 reply 0x02: connection not allowed by ruleset.
    """

    MESSAGE = "Connection not allowed by the SOCKS server's rules (0x02)"
    code, version = 0x02, 5


class NetworkUnreachable(SOCKSError):
    """
    SOCKS5 reply 0x03: network unreachable.
    """

    MESSAGE = "Network unreachable from the SOCKS server (0x03)"
    code, version = 0x03, 5


class HostUnreachable(SOCKSError):
    """
    SOCKS5 reply 0x04: host unreachable (socksgate also says so for a name
    that does not resolve).
    """

    MESSAGE = "Host unreachable from the SOCKS server (0x04)"
    code, version = 0x04, 5


class ConnectionRefused(SOCKSError, error.ConnectionRefusedError):
    """
    SOCKS5 reply 0x05: the destination refused the connection; also a
    L{twisted.internet.error.ConnectionRefusedError}.
    """

    MESSAGE = "Connection refused by the destination (0x05)"
    code, version = 0x05, 5


class TTLExpired(SOCKSError):
    """
    SOCKS5 reply 0x06: TTL expired (socksgate: the connect timed out).
    """

    MESSAGE = "TTL expired, or the SOCKS server's connect timed out (0x06)"
    code, version = 0x06, 5


class CommandNotSupported(SOCKSError):
    """
    SOCKS5 reply 0x07: command not supported.
    """

    MESSAGE = "Command not supported by the SOCKS server (0x07)"
    code, version = 0x07, 5


class AddressTypeNotSupported(SOCKSError):
    """
    SOCKS5 reply 0x08: address type not supported.
    """

    MESSAGE = "Address type not supported by the SOCKS server (0x08)"
    code, version = 0x08, 5


class RequestRejected(SOCKSError):
    """
    SOCKS4 reply 91: request rejected or failed.
    """

    MESSAGE = "SOCKS4 request rejected or failed (91)"
    code, version = 91, 4


class IdentdUnreachable(SOCKSError):
    """
    SOCKS4 reply 92: the server could not reach the client's identd.
    """

    MESSAGE = "SOCKS4 request rejected: the server cannot reach identd (92)"
    code, version = 92, 4


class IdentdMismatch(SOCKSError):
    """
    SOCKS4 reply 93: identd's user differs from the USERID sent.
    """

    MESSAGE = "SOCKS4 request rejected: identd and USERID differ (93)"
    code, version = 93, 4


class NoAcceptableMethods(SOCKSError):
    """
    The SOCKS5 server accepts none of the methods offered (C{05 FF}).
    """

    MESSAGE = "The SOCKS server accepts none of the authentication methods offered"


class AuthenticationFailed(SOCKSError):
    """
    The SOCKS5 server refused the user name and password (RFC 1929).
    """

    MESSAGE = "The SOCKS server refused the user name and password"


class GSSAPIAuthenticationFailed(AuthenticationFailed):
    """
    The GSS-API negotiation (RFC 1961) failed: the server aborted it (a
    ticket it does not take, a principal it refuses), or the client's own
    Kerberos library could not make a token (no ticket, no such service).
    The message says which.
    """

    MESSAGE = "The GSS-API authentication with the SOCKS server failed"


class GSSAPIProtectionRefused(GSSAPIAuthenticationFailed):
    """
    The server agreed to another GSS-API protection level than the one
    asked for (RFC 1961 lets it choose); the client does not take it.

    @ivar asked: the level asked for.
    @ivar agreed: the server's level.
    """

    MESSAGE = "The SOCKS server does not agree to the GSS-API protection asked for"
    asked: object = None
    agreed: object = None


class MalformedReply(SOCKSError):
    """
    The server's answer broke the protocol, or the connection closed
    before the handshake ended.
    """

    MESSAGE = "The SOCKS server's answer is not valid SOCKS"


_BY_CODE: dict[tuple[int, int], type[SOCKSError]] = {
    (cls.version, cls.code): cls
    for cls in (
        GeneralServerFailure,
        ConnectionNotAllowed,
        NetworkUnreachable,
        HostUnreachable,
        ConnectionRefused,
        TTLExpired,
        CommandNotSupported,
        AddressTypeNotSupported,
        RequestRejected,
        IdentdUnreachable,
        IdentdMismatch,
    )
    if cls.version is not None and cls.code is not None
}


def replyError(version: int, code: int) -> SOCKSError:
    """
    The error for a failed reply.

    @param version: 4 or 5.
    @param code: the reply's code (a failure: not 0x00 or 90).
    """
    cls = _BY_CODE.get((version, code))
    if cls is None:
        return MalformedReply(string=f"SOCKS{version} reply code {code}")
    return cls()
