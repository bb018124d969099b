"""
The client side of a SOCKS handshake as a state machine without I/O.

The client writes the messages the server role parses (L{SOCKS5Greeting},
L{UsernamePasswordRequest}, L{SOCKS5Request}, L{SOCKS4Request}) with
L{SOCKSClientConnection.send}, feeds the bytes that come back to
L{SOCKSClientConnection.receiveData} and takes the server's messages with
L{SOCKSClientConnection.nextEvent} until it answers L{NEED_DATA}.  The
first message sent picks SOCKS4 (and 4a) or SOCKS5.

The codec checks the order of the exchange and what the server may say:
a method it was not offered, a reply of the wrong version, or a second
BIND reply to anything but a successful first one is a
L{RemoteProtocolError}.  What to do with a refusal (a failed reply, an
RFC 1929 failure, no acceptable method) is the caller's choice: the message
is returned and the connection is closed.

A method other than no-authentication and RFC 1929 username/password has
its own sub-negotiation (GSSAPI, RFC 1961): give its message parser to the
constructor in C{subnegotiations}; once the server selects that method,
L{SOCKSClientConnection.nextEvent} returns the server's messages of the sub-negotiation as that
parser makes them, L{SOCKSClientConnection.send} writes the client's, and
L{SOCKSClientConnection.finishSubnegotiation} moves on to the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum, auto
from typing import Any, Protocol

from ._constants import Command, Method, ReplyCode, SOCKS4ReplyCode
from ._errors import LocalProtocolError, MalformedMessage, RemoteProtocolError
from ._server import MAX_HANDSHAKE_BUFFER, NEED_DATA, _NeedData
from ._socks4 import SOCKS4Reply, SOCKS4Request, parseSOCKS4Reply
from ._socks5 import (
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    parseSOCKS5MethodSelection,
    parseSOCKS5Reply,
    parseUsernamePasswordReply,
)


class Encodable(Protocol):
    """
    A message that can be sent: every message class has C{toBytes()}.
    """

    def toBytes(self) -> bytes:
        """
        Encode this message.
        """


#: A parser of one kind of message, as every C{parse...} function is.
MessageParser = Callable[[bytes], "tuple[Any, int] | None"]


class ClientState(Enum):
    """
    Where a client-side handshake stands.
    """

    #: Nothing sent yet: a greeting (SOCKS5) or a request (SOCKS4) comes next.
    SENDING_FIRST = auto()
    #: The greeting is sent; the method selection is awaited.
    AWAITING_METHOD = auto()
    #: Username/password selected: the client sends its RFC 1929 request.
    SENDING_USERNAME_PASSWORD = auto()
    #: The RFC 1929 request is sent; the server's status is awaited.
    AWAITING_AUTH_STATUS = auto()
    #: Another method selected: its sub-negotiation runs (see the module).
    SUBNEGOTIATING = auto()
    #: Authenticated (or no authentication): the request comes next.
    SENDING_REQUEST = auto()
    #: The request is sent; the reply is awaited.
    AWAITING_REPLY = auto()
    #: BIND's first reply (the listening address) came; the second, for the
    #: incoming connection, is awaited.
    AWAITING_SECOND_REPLY = auto()
    #: The request succeeded: what follows belongs to the relayed stream
    #: (for UDP ASSOCIATE, the connection only keeps the association).
    RELAYING = auto()
    CLOSED = auto()


_AFTER_METHOD = {
    Method.NO_AUTHENTICATION: ClientState.SENDING_REQUEST,
    Method.USERNAME_PASSWORD: ClientState.SENDING_USERNAME_PASSWORD,
    Method.NO_ACCEPTABLE_METHODS: ClientState.CLOSED,
}


class SOCKSClientConnection:
    """
    One handshake with a SOCKS server, seen from the client.

    @ivar state: the current L{ClientState}.
    @ivar version: 4 or 5 once the first message is sent, else L{None}.
    @ivar request: the request once it is sent.
    @ivar method: the method the server selected (SOCKS5), else L{None}.
    """

    def __init__(self, subnegotiations: Mapping[int, MessageParser] | None = None) -> None:
        """
        @param subnegotiations: the parser of the server's messages for each
            method, other than 0x00 and 0x02, whose sub-negotiation the
            caller runs.
        """
        self.state = ClientState.SENDING_FIRST
        self.version: int | None = None
        self.request: SOCKS4Request | SOCKS5Request | None = None
        self.method: int | None = None
        self._offered: tuple[int, ...] = ()
        self._subnegotiations = dict(subnegotiations or {})
        self._buffer = bytearray()

    def send(self, message: Encodable) -> bytes:
        """
        Encode the client's next message and advance the state.

        @raise LocalProtocolError: the message does not fit the state.
        @raise ValueError: the message cannot be encoded (a name too long).
        """
        state = self.state
        data = message.toBytes()
        if state is ClientState.SENDING_FIRST and isinstance(message, SOCKS5Greeting):
            unknown = [
                m for m in message.methods if m not in _AFTER_METHOD and m not in self._subnegotiations
            ]
            if unknown or Method.NO_ACCEPTABLE_METHODS in message.methods:
                raise LocalProtocolError(f"no sub-negotiation for methods {unknown or [0xFF]}")
            self.version, self._offered = 5, message.methods
            self.state = ClientState.AWAITING_METHOD
        elif state is ClientState.SENDING_FIRST and isinstance(message, SOCKS4Request):
            self.version, self.request = 4, message
            self.state = ClientState.AWAITING_REPLY
        elif state is ClientState.SENDING_USERNAME_PASSWORD and isinstance(message, UsernamePasswordRequest):
            self.state = ClientState.AWAITING_AUTH_STATUS
        elif state is ClientState.SUBNEGOTIATING:
            pass
        elif state is ClientState.SENDING_REQUEST and isinstance(message, SOCKS5Request):
            self.request = message
            self.state = ClientState.AWAITING_REPLY
        else:
            raise LocalProtocolError(f"cannot send {type(message).__name__} in state {state.name}")
        return data

    def finishSubnegotiation(self) -> None:
        """
        End a method's sub-negotiation, successfully: the request comes next.

        @raise LocalProtocolError: no sub-negotiation runs.
        """
        if self.state is not ClientState.SUBNEGOTIATING:
            raise LocalProtocolError(f"not sub-negotiating but {self.state.name}")
        self.state = ClientState.SENDING_REQUEST

    def receiveData(self, data: bytes) -> None:
        """
        Add bytes that arrived from the server.

        @raise RemoteProtocolError: more than L{MAX_HANDSHAKE_BUFFER} bytes
            wait before the handshake is over.
        """
        if self.state is ClientState.CLOSED:
            return
        self._buffer += data
        if len(self._buffer) > MAX_HANDSHAKE_BUFFER and self.state is not ClientState.RELAYING:
            raise self._fail("too much data before the reply")

    def nextEvent(self) -> Any | _NeedData:
        """
        Take the next complete message from the server.

        @return: a L{socksgate.wire._server.ServerMessage} (or a sub-negotiation's message), or
            L{NEED_DATA} when the buffer holds no complete message or the
            client must send first.
        @raise RemoteProtocolError: the server broke the protocol; close.
        """
        parser = self._parser()
        if parser is None:
            return NEED_DATA
        try:
            parsed = parser(self._buffer)
        except MalformedMessage as error:
            raise self._fail(error.reason) from None
        if parsed is None:
            return NEED_DATA
        message, consumed = parsed
        del self._buffer[:consumed]
        self._advance(message)
        return message

    def takeTrailingData(self) -> bytes:
        """
        Take the bytes that arrived after the last reply, once relaying.

        @raise LocalProtocolError: the connection is not relaying.
        """
        if self.state is not ClientState.RELAYING:
            raise LocalProtocolError(f"not relaying but {self.state.name}")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _parser(self) -> MessageParser | None:
        state = self.state
        if state is ClientState.AWAITING_METHOD:
            return parseSOCKS5MethodSelection
        if state is ClientState.AWAITING_AUTH_STATUS:
            return parseUsernamePasswordReply
        if state is ClientState.SUBNEGOTIATING:
            assert self.method is not None
            return self._subnegotiations[self.method]
        if state in (ClientState.AWAITING_REPLY, ClientState.AWAITING_SECOND_REPLY):
            return parseSOCKS4Reply if self.version == 4 else parseSOCKS5Reply
        return None

    def _advance(self, message: Any) -> None:
        """
        Move on after the server's C{message}.
        """
        if isinstance(message, SOCKS5MethodSelection):
            if message.method != Method.NO_ACCEPTABLE_METHODS and message.method not in self._offered:
                raise self._fail(f"server selected method {message.method:#04x}, which was not offered")
            self.method = message.method
            self.state = _AFTER_METHOD.get(message.method, ClientState.SUBNEGOTIATING)
        elif isinstance(message, UsernamePasswordReply):
            self.state = ClientState.SENDING_REQUEST if message.succeeded else ClientState.CLOSED
        elif isinstance(message, (SOCKS4Reply, SOCKS5Reply)):
            self.state = self._afterReply(message)

    def _afterReply(self, message: SOCKS4Reply | SOCKS5Reply) -> ClientState:
        if isinstance(message, SOCKS4Reply):
            succeeded = message.code == SOCKS4ReplyCode.GRANTED
        else:
            succeeded = message.reply == ReplyCode.SUCCEEDED
        if not succeeded:
            return ClientState.CLOSED
        isBind = self.request is not None and self.request.command == Command.BIND
        if isBind and self.state is ClientState.AWAITING_REPLY:
            return ClientState.AWAITING_SECOND_REPLY
        return ClientState.RELAYING

    def _fail(self, reason: str) -> RemoteProtocolError:
        """
        Close the state machine and build the error for C{reason}.
        """
        self.state = ClientState.CLOSED
        self._buffer.clear()
        return RemoteProtocolError(reason)
