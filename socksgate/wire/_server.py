"""
The server side of a SOCKS handshake as a state machine without I/O.

Feed it bytes with L{SOCKSServerConnection.receiveData}, take messages
with L{SOCKSServerConnection.nextEvent} until it answers L{NEED_DATA}, and
turn answers into bytes with L{SOCKSServerConnection.send}.  The first byte
picks SOCKS4 (and 4a) or SOCKS5.  Once a successful reply has been sent for
the request, the connection is relaying: L{SOCKSServerConnection.takeTrailingData}
gives the bytes that arrived after the request, which belong to the
relayed stream.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, auto
from ipaddress import IPv4Address
from typing import Union

from ._addresses import Host
from ._constants import AuthStatus, Command, Method, ReplyCode, SOCKS4ReplyCode
from ._errors import LocalProtocolError, MalformedMessage, RemoteProtocolError
from ._socks4 import SOCKS4Reply, SOCKS4Request, parseSOCKS4Request
from ._socks5 import (
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    parseSOCKS5Greeting,
    parseSOCKS5Request,
    parseUsernamePasswordRequest,
)

#: The most bytes a connection holds before its request is answered.  A
#: request is at most a few hundred bytes; what follows it is early relay
#: data, which a server should stop reading while it connects.
MAX_HANDSHAKE_BUFFER = 256 * 1024


class _NeedData:
    """
    The type of L{NEED_DATA}.
    """

    def __repr__(self) -> str:
        return "NEED_DATA"


#: What L{SOCKSServerConnection.nextEvent} returns when it needs more bytes
#: or waits for the server to send something.
NEED_DATA = _NeedData()

#: A message from the client.
ClientMessage = Union[SOCKS4Request, SOCKS5Greeting, UsernamePasswordRequest, SOCKS5Request]

#: A message from the server.
ServerMessage = Union[SOCKS4Reply, SOCKS5MethodSelection, UsernamePasswordReply, SOCKS5Reply]


class ServerState(Enum):
    """
    Where a server-side handshake stands.
    """

    AWAITING_VERSION = auto()
    SOCKS4_REQUEST = auto()
    SOCKS5_GREETING = auto()
    SOCKS5_SELECTING_METHOD = auto()
    SOCKS5_USERNAME_PASSWORD = auto()
    SOCKS5_AUTHENTICATING = auto()
    SOCKS5_GSSAPI = auto()
    SOCKS5_REQUEST = auto()
    REPLYING = auto()
    BIND_WAITING = auto()
    RELAYING = auto()
    CLOSED = auto()


_Parser = Callable[[bytes], "tuple[ClientMessage, int] | None"]

_PARSERS: dict[ServerState, _Parser] = {
    ServerState.SOCKS4_REQUEST: parseSOCKS4Request,
    ServerState.SOCKS5_GREETING: parseSOCKS5Greeting,
    ServerState.SOCKS5_USERNAME_PASSWORD: parseUsernamePasswordRequest,
    ServerState.SOCKS5_REQUEST: parseSOCKS5Request,
}

_AFTER_MESSAGE = {
    ServerState.SOCKS4_REQUEST: ServerState.REPLYING,
    ServerState.SOCKS5_GREETING: ServerState.SOCKS5_SELECTING_METHOD,
    ServerState.SOCKS5_USERNAME_PASSWORD: ServerState.SOCKS5_AUTHENTICATING,
    ServerState.SOCKS5_REQUEST: ServerState.REPLYING,
}

_AFTER_METHOD = {
    Method.NO_AUTHENTICATION: ServerState.SOCKS5_REQUEST,
    Method.USERNAME_PASSWORD: ServerState.SOCKS5_USERNAME_PASSWORD,
    Method.GSSAPI: ServerState.SOCKS5_GSSAPI,
    Method.NO_ACCEPTABLE_METHODS: ServerState.CLOSED,
}


class SOCKSServerConnection:
    """
    One client's handshake, seen from the server.

    @ivar state: the current L{ServerState}.
    @ivar version: 4 or 5 once the first byte has arrived, else L{None}.
    @ivar request: the client's request once it has arrived.
    """

    def __init__(self) -> None:
        self.state = ServerState.AWAITING_VERSION
        self.version: int | None = None
        self.request: SOCKS4Request | SOCKS5Request | None = None
        self._buffer = bytearray()

    @property
    def bufferedBytes(self) -> int:
        """
        How many received bytes wait in the buffer.
        """
        return len(self._buffer)

    def receiveData(self, data: bytes) -> None:
        """
        Add bytes that arrived from the client.

        @raise RemoteProtocolError: more than L{MAX_HANDSHAKE_BUFFER} bytes
            wait before the request has been answered.
        """
        if self.state is ServerState.CLOSED:
            return
        self._buffer += data
        if len(self._buffer) > MAX_HANDSHAKE_BUFFER and self.state is not ServerState.RELAYING:
            raise self._fail(MalformedMessage("too much data before the reply"))

    def nextEvent(self) -> ClientMessage | _NeedData:
        """
        Take the next complete message from the client.

        @return: a message, or L{NEED_DATA} when the buffer holds no
            complete message or the server must answer first.
        @raise RemoteProtocolError: the client broke the protocol; send
            the error's C{reply} and close.
        """
        if self.state is ServerState.AWAITING_VERSION:
            if not self._buffer:
                return NEED_DATA
            first = self._buffer[0]
            if first == 4:
                self.version, self.state = 4, ServerState.SOCKS4_REQUEST
            elif first == 5:
                self.version, self.state = 5, ServerState.SOCKS5_GREETING
            else:
                raise self._fail(MalformedMessage(f"unknown SOCKS version {first}", None))
        parser = _PARSERS.get(self.state)
        if parser is None:
            return NEED_DATA
        try:
            parsed = parser(self._buffer)
        except MalformedMessage as error:
            raise self._fail(error) from None
        if parsed is None:
            return NEED_DATA
        message, consumed = parsed
        del self._buffer[:consumed]
        if isinstance(message, (SOCKS4Request, SOCKS5Request)):
            self.request = message
        self.state = _AFTER_MESSAGE[self.state]
        return message

    def send(self, message: ServerMessage) -> bytes:
        """
        Encode the server's answer and advance the state.

        @raise LocalProtocolError: the message does not fit the state.
        """
        state = self.state
        if state is ServerState.SOCKS5_SELECTING_METHOD and isinstance(message, SOCKS5MethodSelection):
            nextState = _AFTER_METHOD.get(message.method)
            if nextState is None:
                raise LocalProtocolError(f"method {message.method:#04x} is not supported")
            self.state = nextState
        elif state is ServerState.SOCKS5_AUTHENTICATING and isinstance(message, UsernamePasswordReply):
            self.state = ServerState.SOCKS5_REQUEST if message.succeeded else ServerState.CLOSED
        elif state in (ServerState.REPLYING, ServerState.BIND_WAITING) and isinstance(
            message, SOCKS4Reply if self.version == 4 else SOCKS5Reply
        ):
            self.state = self._afterReply(self._succeeded(message))
        else:
            raise LocalProtocolError(f"cannot send {type(message).__name__} in state {state.name}")
        return message.toBytes()

    def reply(self, code: ReplyCode, host: Host = IPv4Address(0), port: int = 0) -> bytes:
        """
        Answer the request with a SOCKS5 reply code, or its SOCKS4
        equivalent (90 for success, 91 for every failure).

        @param host: BND.ADDR; a SOCKS4 reply carries it only if it is IPv4.
        """
        if self.version == 4:
            address = host if isinstance(host, IPv4Address) else IPv4Address(0)
            cd = SOCKS4ReplyCode.GRANTED if code == ReplyCode.SUCCEEDED else SOCKS4ReplyCode.REJECTED
            return self.send(SOCKS4Reply(cd, address, port))
        return self.send(SOCKS5Reply(code, host, port))

    def gssapiEstablished(self) -> None:
        """
        The RFC 1961 sub-negotiation (driven apart from this machine, see
        L{socksgate.wire.GSSAPIServerConnection}) succeeded: the request
        comes next.

        @raise LocalProtocolError: GSS-API was not the method selected.
        """
        if self.state is not ServerState.SOCKS5_GSSAPI:
            raise LocalProtocolError(f"not negotiating GSS-API but {self.state.name}")
        self.state = ServerState.SOCKS5_REQUEST

    def takeTrailingData(self) -> bytes:
        """
        Take the bytes that arrived after the request, once relaying, or
        after the greeting, once GSS-API is selected (they belong to its
        sub-negotiation).

        @raise LocalProtocolError: the connection is not relaying.
        """
        if self.state not in (ServerState.RELAYING, ServerState.SOCKS5_GSSAPI):
            raise LocalProtocolError(f"not relaying but {self.state.name}")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    @staticmethod
    def _succeeded(message: SOCKS4Reply | SOCKS5Reply) -> bool:
        if isinstance(message, SOCKS4Reply):
            return message.code == SOCKS4ReplyCode.GRANTED
        return message.reply == ReplyCode.SUCCEEDED

    def _afterReply(self, succeeded: bool) -> ServerState:
        if not succeeded:
            return ServerState.CLOSED
        isBind = self.request is not None and self.request.command == Command.BIND
        if isBind and self.state is ServerState.REPLYING:
            return ServerState.BIND_WAITING
        return ServerState.RELAYING

    def _fail(self, error: MalformedMessage) -> RemoteProtocolError:
        """
        Close the state machine and build the error that answers C{error}.
        """
        state = self.state
        self.state = ServerState.CLOSED
        self._buffer.clear()
        reply, code = b"", None
        if state is ServerState.SOCKS4_REQUEST or (self.version == 4 and state is not ServerState.RELAYING):
            code = SOCKS4ReplyCode.REJECTED
            reply = SOCKS4Reply(code).toBytes()
        elif state is ServerState.SOCKS5_USERNAME_PASSWORD:
            code = AuthStatus.FAILURE
            reply = UsernamePasswordReply(code).toBytes()
        elif state in (ServerState.SOCKS5_REQUEST, ServerState.REPLYING) and error.reply is not None:
            code = error.reply
            reply = SOCKS5Reply(ReplyCode(code)).toBytes()
        return RemoteProtocolError(error.reason, reply, code)
