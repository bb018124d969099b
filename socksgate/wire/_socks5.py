"""
SOCKS5 messages (RFC 1928) and the username/password sub-negotiation
(RFC 1929).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ._addresses import Host, encodeAddress, parseAddress
from ._constants import AuthStatus, Command, ReplyCode
from ._errors import MalformedMessage


@dataclass(frozen=True)
class SOCKS5Greeting:
    """
    The client's first message: C{VER=5 NMETHODS METHODS}.

    @ivar methods: the method numbers the client offers, in its order.
    """

    methods: tuple[int, ...]

    def toBytes(self) -> bytes:
        """
        Encode this greeting.
        """
        if len(self.methods) > 255:
            raise ValueError("at most 255 methods")
        return bytes([5, len(self.methods), *self.methods])


@dataclass(frozen=True)
class SOCKS5MethodSelection:
    """
    The server's answer to a greeting: C{VER=5 METHOD}.
    """

    method: int

    def toBytes(self) -> bytes:
        """
        Encode this selection.
        """
        return bytes([5, self.method])


@dataclass(frozen=True)
class UsernamePasswordRequest:
    """
    RFC 1929 C{VER=1 ULEN UNAME PLEN PASSWD}.

    The password is left out of the C{repr}, so that it cannot reach a log
    by accident.
    """

    username: bytes
    password: bytes = b""

    def __repr__(self) -> str:
        return f"UsernamePasswordRequest(username={self.username!r}, password=<hidden>)"

    def toBytes(self) -> bytes:
        """
        Encode this request.
        """
        if len(self.username) > 255 or len(self.password) > 255:
            raise ValueError("user name and password are at most 255 bytes")
        return bytes([1, len(self.username)]) + self.username + bytes([len(self.password)]) + self.password


@dataclass(frozen=True)
class UsernamePasswordReply:
    """
    RFC 1929 C{VER=1 STATUS}; any status but 0 is a failure.
    """

    status: int

    @property
    def succeeded(self) -> bool:
        """
        Whether the server accepted the credentials.
        """
        return self.status == AuthStatus.SUCCESS

    def toBytes(self) -> bytes:
        """
        Encode this reply.
        """
        return bytes([1, self.status])


@dataclass(frozen=True)
class SOCKS5Request:
    """
    C{VER=5 CMD RSV ATYP DST.ADDR DST.PORT}.
    """

    command: Command
    host: Host
    port: int

    def toBytes(self) -> bytes:
        """
        Encode this request.
        """
        return bytes([5, self.command, 0]) + encodeAddress(self.host, self.port)


@dataclass(frozen=True)
class SOCKS5Reply:
    """
    C{VER=5 REP RSV ATYP BND.ADDR BND.PORT}.
    """

    reply: ReplyCode
    host: Host = IPv4Address(0)
    port: int = 0

    def toBytes(self) -> bytes:
        """
        Encode this reply.
        """
        return bytes([5, self.reply, 0]) + encodeAddress(self.host, self.port)


def parseSOCKS5Greeting(data: bytes) -> tuple[SOCKS5Greeting, int] | None:
    """
    Parse a greeting from the start of C{data}.

    @return: the greeting and its length, or L{None} for more data.
    @raise MalformedMessage: VER is not 5 (no reply exists for this).
    """
    if not data:
        return None
    if data[0] != 5:
        raise MalformedMessage(f"version {data[0]} is not SOCKS5", None)
    if len(data) < 2:
        return None
    end = 2 + data[1]
    if len(data) < end:
        return None
    return SOCKS5Greeting(tuple(data[2:end])), end


def parseSOCKS5MethodSelection(data: bytes) -> tuple[SOCKS5MethodSelection, int] | None:
    """
    Parse a method selection from the start of C{data}.
    """
    if not data:
        return None
    if data[0] != 5:
        raise MalformedMessage(f"method selection version {data[0]} is not 5", None)
    if len(data) < 2:
        return None
    return SOCKS5MethodSelection(data[1]), 2


def parseUsernamePasswordRequest(data: bytes) -> tuple[UsernamePasswordRequest, int] | None:
    """
    Parse an RFC 1929 request from the start of C{data}.

    @raise MalformedMessage: the sub-negotiation version is not 1.
    """
    if not data:
        return None
    if data[0] != 1:
        raise MalformedMessage(f"username/password version {data[0]} is not 1", None)
    if len(data) < 2:
        return None
    passwordLengthAt = 2 + data[1]
    if len(data) <= passwordLengthAt:
        return None
    end = passwordLengthAt + 1 + data[passwordLengthAt]
    if len(data) < end:
        return None
    username = bytes(data[2:passwordLengthAt])
    password = bytes(data[passwordLengthAt + 1 : end])
    return UsernamePasswordRequest(username, password), end


def parseUsernamePasswordReply(data: bytes) -> tuple[UsernamePasswordReply, int] | None:
    """
    Parse an RFC 1929 reply from the start of C{data}.
    """
    if not data:
        return None
    if data[0] != 1:
        raise MalformedMessage(f"username/password reply version {data[0]} is not 1", None)
    if len(data) < 2:
        return None
    return UsernamePasswordReply(data[1]), 2


def parseSOCKS5Request(data: bytes) -> tuple[SOCKS5Request, int] | None:
    """
    Parse a request from the start of C{data}.

    @raise MalformedMessage: with REP 0x07 for an unknown command, 0x08 for
        an unknown address type, 0x04 for an invalid host name, and 0x01
        for a wrong version.
    """
    if not data:
        return None
    if data[0] != 5:
        raise MalformedMessage(f"request version {data[0]} is not 5")
    if len(data) < 2:
        return None
    try:
        command = Command(data[1])
    except ValueError:
        raise MalformedMessage(f"unknown command {data[1]:#04x}", ReplyCode.COMMAND_NOT_SUPPORTED) from None
    parsed = parseAddress(data, 3)
    if parsed is None:
        return None
    host, port, end = parsed
    return SOCKS5Request(command, host, port), end


def parseSOCKS5Reply(data: bytes) -> tuple[SOCKS5Reply, int] | None:
    """
    Parse a reply from the start of C{data}.

    @raise MalformedMessage: a wrong version, an unknown reply code or
        address type.
    """
    if not data:
        return None
    if data[0] != 5:
        raise MalformedMessage(f"reply version {data[0]} is not 5")
    if len(data) < 2:
        return None
    try:
        reply = ReplyCode(data[1])
    except ValueError:
        raise MalformedMessage(f"unknown reply code {data[1]:#04x}") from None
    parsed = parseAddress(data, 3)
    if parsed is None:
        return None
    host, port, end = parsed
    return SOCKS5Reply(reply, host, port), end
