"""
The SOCKS wire codec: messages of SOCKS4, SOCKS4a, SOCKS5, RFC 1929 and the
SOCKS5 UDP header, their parsers, the server-side and client-side
handshake state machines, and the framing of RFC 1961 (GSS-API) for both
roles.  It does no I/O and imports nothing but the standard library.

Every C{parse...} function takes the bytes received so far and returns
C{(message, bytesConsumed)}, or L{None} when the bytes hold only part of a
message; it raises L{MalformedMessage} when they cannot become one.  Every
message has C{toBytes()}.
"""

from ._addresses import Host, decodeHostname, encodeAddress, encodeHostname, parseAddress
from ._client import ClientState, SOCKSClientConnection
from ._constants import (
    MAX_HOSTNAME_LENGTH,
    MAX_USERID_LENGTH,
    AddressType,
    AuthStatus,
    Command,
    Method,
    ReplyCode,
    SOCKS4ReplyCode,
)
from ._errors import LocalProtocolError, MalformedMessage, RemoteProtocolError, SOCKSProtocolError
from ._gssapi import (
    GSSAPIClientConnection,
    GSSAPIMessage,
    GSSAPIMessageType,
    GSSAPIServerConnection,
    GSSAPIState,
    ProtectionLevel,
    StreamDecoder,
    encapsulate,
    parseGSSAPIMessage,
)
from ._server import MAX_HANDSHAKE_BUFFER, NEED_DATA, ServerState, SOCKSServerConnection
from ._socks4 import SOCKS4Reply, SOCKS4Request, parseSOCKS4Reply, parseSOCKS4Request
from ._socks5 import (
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    parseSOCKS5Greeting,
    parseSOCKS5MethodSelection,
    parseSOCKS5Reply,
    parseSOCKS5Request,
    parseUsernamePasswordReply,
    parseUsernamePasswordRequest,
)
from ._udp import UDPDatagram, parseUDPDatagram

__all__ = [
    "MAX_HANDSHAKE_BUFFER",
    "MAX_HOSTNAME_LENGTH",
    "MAX_USERID_LENGTH",
    "NEED_DATA",
    "AddressType",
    "AuthStatus",
    "ClientState",
    "Command",
    "GSSAPIClientConnection",
    "GSSAPIMessage",
    "GSSAPIMessageType",
    "GSSAPIServerConnection",
    "GSSAPIState",
    "Host",
    "LocalProtocolError",
    "MalformedMessage",
    "Method",
    "ProtectionLevel",
    "RemoteProtocolError",
    "ReplyCode",
    "SOCKS4Reply",
    "SOCKS4ReplyCode",
    "SOCKS4Request",
    "SOCKS5Greeting",
    "SOCKS5MethodSelection",
    "SOCKS5Reply",
    "SOCKS5Request",
    "SOCKSClientConnection",
    "SOCKSProtocolError",
    "SOCKSServerConnection",
    "ServerState",
    "StreamDecoder",
    "UDPDatagram",
    "UsernamePasswordReply",
    "UsernamePasswordRequest",
    "decodeHostname",
    "encodeAddress",
    "encapsulate",
    "encodeHostname",
    "parseAddress",
    "parseGSSAPIMessage",
    "parseSOCKS4Reply",
    "parseSOCKS4Request",
    "parseSOCKS5Greeting",
    "parseSOCKS5MethodSelection",
    "parseSOCKS5Reply",
    "parseSOCKS5Request",
    "parseUDPDatagram",
    "parseUsernamePasswordReply",
    "parseUsernamePasswordRequest",
]
