"""
The framing of the SOCKS5 GSS-API method (RFC 1961), for both roles.

Every message is C{VER=1 MTYP LEN(2, network order) TOKEN}: MTYP 1 carries
a context-establishment token (section 3), 2 the protection-level message
(section 4), 3 an encapsulated piece of the relayed stream (section 5).  The
abort message, C{VER=1 MTYP=0xff}, has no length and no token.

The GSS-API calls themselves (making, checking, wrapping tokens) are not
here: this module knows bytes only, and imports nothing but the standard
library.  L{GSSAPIServerConnection} and L{GSSAPIClientConnection} are the
two roles' state machines for sections 3 and 4; L{StreamDecoder} splits the
protected stream of section 5 into its tokens, and L{encapsulate} frames
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, auto

from ._errors import LocalProtocolError, MalformedMessage, RemoteProtocolError

__all__ = [
    "ABORT",
    "GSSAPI_VERSION",
    "MAX_TOKEN_LENGTH",
    "GSSAPIClientConnection",
    "GSSAPIMessage",
    "GSSAPIMessageType",
    "GSSAPIServerConnection",
    "GSSAPIState",
    "ProtectionLevel",
    "StreamDecoder",
    "encapsulate",
    "parseGSSAPIMessage",
]

#: The VER of every RFC 1961 message.
GSSAPI_VERSION = 1

#: The longest token a message can carry (LEN is two octets).
MAX_TOKEN_LENGTH = 0xFFFF


class GSSAPIMessageType(IntEnum):
    """
    RFC 1961 MTYP values.
    """

    AUTHENTICATION = 0x01
    PROTECTION = 0x02
    ENCAPSULATED = 0x03
    ABORT = 0xFF


class ProtectionLevel(IntEnum):
    """
    The per-message protection levels of RFC 1961 section 4, and the
    level 0 that the NEC reference implementation, curl and Dante (as
    C{clear}) use for none.
    """

    NONE = 0x00
    INTEGRITY = 0x01
    CONFIDENTIALITY = 0x02
    SELECTIVE = 0x03


#: The abort message of either side: C{VER=1 MTYP=0xff}, nothing more.
ABORT = bytes([GSSAPI_VERSION, GSSAPIMessageType.ABORT])


@dataclass(frozen=True)
class GSSAPIMessage:
    """
    One RFC 1961 message.

    @ivar type: its L{GSSAPIMessageType}.
    @ivar token: its token (empty for L{GSSAPIMessageType.ABORT}).
    """

    type: GSSAPIMessageType
    token: bytes = b""

    def __repr__(self) -> str:
        return f"GSSAPIMessage({self.type.name}, <{len(self.token)} bytes>)"

    def toBytes(self) -> bytes:
        """
        Encode this message.

        @raise ValueError: the token is longer than L{MAX_TOKEN_LENGTH}.
        """
        if self.type is GSSAPIMessageType.ABORT:
            return ABORT
        if len(self.token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"a token is at most {MAX_TOKEN_LENGTH} bytes, not {len(self.token)}")
        return bytes([GSSAPI_VERSION, self.type]) + len(self.token).to_bytes(2, "big") + self.token


def parseGSSAPIMessage(data: bytes | bytearray) -> tuple[GSSAPIMessage, int] | None:
    """
    Parse one RFC 1961 message from the start of C{data}.

    @return: C{(message, bytesConsumed)}, or L{None} for part of one.
    @raise MalformedMessage: VER is not 1 or MTYP is unknown.
    """
    if len(data) < 2:
        return None
    if data[0] != GSSAPI_VERSION:
        raise MalformedMessage(f"GSS-API message version {data[0]}, not {GSSAPI_VERSION}", None)
    try:
        kind = GSSAPIMessageType(data[1])
    except ValueError:
        raise MalformedMessage(f"unknown GSS-API message type {data[1]:#04x}", None) from None
    if kind is GSSAPIMessageType.ABORT:
        return GSSAPIMessage(kind), 2
    if len(data) < 4:
        return None
    length = int.from_bytes(data[2:4], "big")
    if len(data) < 4 + length:
        return None
    return GSSAPIMessage(kind, bytes(data[4 : 4 + length])), 4 + length


def encapsulate(token: bytes) -> bytes:
    """
    Frame one wrapped token of the protected stream (section 5).
    """
    return GSSAPIMessage(GSSAPIMessageType.ENCAPSULATED, token).toBytes()


class GSSAPIState(Enum):
    """
    Where the GSS-API sub-negotiation stands, on either side.
    """

    CONTEXT = auto()
    PROTECTION = auto()
    ESTABLISHED = auto()
    CLOSED = auto()


class _Negotiation:
    """
    What both roles share: a bounded buffer and the parse of the messages
    the peer may send in each state.
    """

    #: The most bytes held: one whole message of the largest size, and as
    #: much again that arrived with it.
    maxBuffer = 2 * (4 + MAX_TOKEN_LENGTH)

    def __init__(self) -> None:
        self.state = GSSAPIState.CONTEXT
        self._buffer = bytearray()

    def sendToken(self, token: bytes) -> bytes:
        """
        Encode an output token of this side's context (MTYP 1: the
        acceptor's on the server, the initiator's on the client).
        """
        return self._send(GSSAPIMessageType.AUTHENTICATION, token, GSSAPIState.CONTEXT)

    def contextEstablished(self) -> None:
        """
        This side's context is complete: the protection-level messages come
        next.
        """
        if self.state is not GSSAPIState.CONTEXT:
            raise LocalProtocolError(f"no context is being established in state {self.state.name}")
        self.state = GSSAPIState.PROTECTION

    def receiveData(self, data: bytes) -> None:
        """
        Add bytes that arrived from the peer.

        @raise RemoteProtocolError: more than L{maxBuffer} bytes wait.
        """
        if self.state is GSSAPIState.CLOSED:
            return
        self._buffer += data
        if len(self._buffer) > self.maxBuffer and self.state is not GSSAPIState.ESTABLISHED:
            raise self._fail("too much data during the GSS-API negotiation")

    def nextEvent(self) -> GSSAPIMessage | None:
        """
        Take the peer's next message: a context token (MTYP 1) while the
        context is being established, the protection-level message (MTYP
        2) after that.

        @return: the message, or L{None} when more bytes are needed (or
            the negotiation is over).
        @raise RemoteProtocolError: the peer aborted (the error's reply is
            empty) or sent a message that does not fit.
        """
        expected = {
            GSSAPIState.CONTEXT: GSSAPIMessageType.AUTHENTICATION,
            GSSAPIState.PROTECTION: GSSAPIMessageType.PROTECTION,
        }.get(self.state)
        if expected is None:
            return None
        try:
            parsed = parseGSSAPIMessage(self._buffer)
        except MalformedMessage as error:
            raise self._fail(error.reason) from None
        if parsed is None:
            return None
        message, consumed = parsed
        del self._buffer[:consumed]
        if message.type is GSSAPIMessageType.ABORT:
            self.state = GSSAPIState.CLOSED
            self._buffer.clear()
            raise RemoteProtocolError("the peer aborted the GSS-API negotiation")
        if message.type is not expected:
            raise self._fail(f"GSS-API message type {message.type:#04x} where {expected:#04x} belongs")
        return message

    def abort(self) -> bytes:
        """
        Give up: the abort message to send before closing.
        """
        self.state = GSSAPIState.CLOSED
        self._buffer.clear()
        return ABORT

    def takeTrailingData(self) -> bytes:
        """
        The bytes that came after the protection-level message: the SOCKS
        exchange that follows, protected or not.

        @raise LocalProtocolError: the negotiation is not over.
        """
        if self.state is not GSSAPIState.ESTABLISHED:
            raise LocalProtocolError(f"the GSS-API negotiation is {self.state.name}, not ESTABLISHED")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _send(self, kind: GSSAPIMessageType, token: bytes, state: GSSAPIState) -> bytes:
        if self.state is not state:
            raise LocalProtocolError(f"cannot send {kind.name} in state {self.state.name}")
        return GSSAPIMessage(kind, token).toBytes()

    def _fail(self, reason: str) -> RemoteProtocolError:
        return RemoteProtocolError(reason, self.abort(), GSSAPIMessageType.ABORT)


class GSSAPIServerConnection(_Negotiation):
    """
    The server's side of sections 3 and 4: the client's context tokens
    come in (answered with the acceptor's output tokens) until the server
    calls L{contextEstablished}; then the client's protection-level
    message, answered with L{sendProtection}.
    """

    def sendProtection(self, token: bytes) -> bytes:
        """
        Encode the server's protection-level message (MTYP 2: one octet,
        wrapped, or bare in the NEC exchange); the negotiation is over.
        """
        data = self._send(GSSAPIMessageType.PROTECTION, token, GSSAPIState.PROTECTION)
        self.state = GSSAPIState.ESTABLISHED
        return data


class GSSAPIClientConnection(_Negotiation):
    """
    The client's side of sections 3 and 4: it sends its context tokens and
    takes the server's until its initiator completes
    (L{contextEstablished}); then it sends its protection-level message
    and takes the server's answer.
    """

    def sendProtection(self, token: bytes) -> bytes:
        """
        Encode the client's protection-level message (MTYP 2).
        """
        return self._send(GSSAPIMessageType.PROTECTION, token, GSSAPIState.PROTECTION)

    def nextEvent(self) -> GSSAPIMessage | None:
        """
        Take the server's next message; its protection-level message ends
        the negotiation.
        """
        message = super().nextEvent()
        if message is not None and message.type is GSSAPIMessageType.PROTECTION:
            self.state = GSSAPIState.ESTABLISHED
        return message


class StreamDecoder:
    """
    Splits one direction of the protected stream (section 5) into its
    wrapped tokens.  It holds at most one incomplete message.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> bool:
        """
        Whether part of a message waits for the rest (a FIN now truncates it).
        """
        return bool(self._buffer)

    def receiveData(self, data: bytes) -> list[bytes]:
        """
        Add bytes from the peer and take the tokens now complete.

        @raise MalformedMessage: the bytes are not encapsulated data
            messages (an abort message too ends the stream).
        """
        self._buffer += data
        tokens = []
        while True:
            parsed = parseGSSAPIMessage(self._buffer)
            if parsed is None:
                return tokens
            message, consumed = parsed
            if message.type is not GSSAPIMessageType.ENCAPSULATED:
                self._buffer.clear()
                raise MalformedMessage(f"GSS-API message type {message.type:#04x} in the protected stream")
            del self._buffer[:consumed]
            tokens.append(message.token)
