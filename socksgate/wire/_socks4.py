"""
SOCKS4 and SOCKS4a requests and replies.

A request is C{VN=4 CD DSTPORT DSTIP USERID NUL}; SOCKS4a puts
C{0.0.0.x} (x != 0) in DSTIP and adds C{HOSTNAME NUL}.  A reply is
C{VN=0 CD DSTPORT DSTIP}.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from ._addresses import Host, decodeHostname, encodeHostname
from ._constants import MAX_HOSTNAME_LENGTH, MAX_USERID_LENGTH, Command, SOCKS4ReplyCode
from ._errors import MalformedMessage

_HEADER = struct.Struct("!BBH4s")
_SOCKS4A_MARKER = IPv4Address("0.0.0.1")


@dataclass(frozen=True)
class SOCKS4Request:
    """
    A SOCKS4 or SOCKS4a request.

    @ivar command: L{Command.CONNECT} or L{Command.BIND}.
    @ivar host: an L{ipaddress.IPv4Address} (SOCKS4) or a host name (SOCKS4a).
    @ivar port: the destination port.
    @ivar userid: the USERID field, as sent.
    """

    command: Command
    host: IPv4Address | str
    port: int
    userid: bytes = b""

    @property
    def isSOCKS4a(self) -> bool:
        """
        Whether this request names its destination by host name.
        """
        return isinstance(self.host, str)

    def toBytes(self) -> bytes:
        """
        Encode this request.
        """
        if len(self.userid) > MAX_USERID_LENGTH or b"\x00" in self.userid:
            raise ValueError("USERID must be at most 255 bytes without NUL")
        if not isinstance(self.host, str) and 0 < int(self.host) < 256:
            raise ValueError("DSTIP 0.0.0.x with x != 0 would mark a SOCKS4a request")
        address = _SOCKS4A_MARKER if isinstance(self.host, str) else self.host
        message = _HEADER.pack(4, self.command, self.port, address.packed)
        message += self.userid + b"\x00"
        if isinstance(self.host, str):
            message += encodeHostname(self.host) + b"\x00"
        return message


@dataclass(frozen=True)
class SOCKS4Reply:
    """
    A SOCKS4 reply.

    @ivar code: the CD field.
    @ivar host: DSTIP (meaningful for BIND).
    @ivar port: DSTPORT (meaningful for BIND).
    """

    code: SOCKS4ReplyCode
    host: IPv4Address = IPv4Address(0)
    port: int = 0

    def toBytes(self) -> bytes:
        """
        Encode this reply.
        """
        return _HEADER.pack(0, self.code, self.port, self.host.packed)


def _nulTerminated(data: bytes, start: int, limit: int, what: str) -> tuple[bytes, int] | None:
    """
    Find a NUL-terminated field of at most C{limit} bytes at C{data[start]}.

    @return: the field and the offset past its NUL, or L{None} for more data.
    @raise MalformedMessage: no NUL within C{limit + 1} bytes.
    """
    end = data.find(b"\x00", start, start + limit + 1)
    if end == -1:
        if len(data) - start > limit:
            raise MalformedMessage(f"{what} longer than {limit} bytes")
        return None
    return bytes(data[start:end]), end + 1


def parseSOCKS4Request(data: bytes) -> tuple[SOCKS4Request, int] | None:
    """
    Parse a SOCKS4 or SOCKS4a request from the start of C{data}.

    @return: the request and the number of bytes it took, or L{None} if
        C{data} holds only part of one.
    @raise MalformedMessage: the bytes are not a valid request.
    """
    if len(data) < _HEADER.size:
        if data and data[0] != 4:
            raise MalformedMessage(f"version {data[0]} is not SOCKS4")
        return None
    version, command, port, rawAddress = _HEADER.unpack_from(data)
    if version != 4:
        raise MalformedMessage(f"version {version} is not SOCKS4")
    if command not in (Command.CONNECT, Command.BIND):
        raise MalformedMessage(f"unknown SOCKS4 command {command}")
    userid = _nulTerminated(data, _HEADER.size, MAX_USERID_LENGTH, "USERID")
    if userid is None:
        return None
    user, offset = userid
    address = IPv4Address(rawAddress)
    host: Host = address
    if rawAddress[:3] == b"\x00\x00\x00" and rawAddress[3] != 0:
        name = _nulTerminated(data, offset, MAX_HOSTNAME_LENGTH, "SOCKS4a host name")
        if name is None:
            return None
        rawName, offset = name
        host = decodeHostname(rawName)
    return SOCKS4Request(Command(command), host, port, user), offset


def parseSOCKS4Reply(data: bytes) -> tuple[SOCKS4Reply, int] | None:
    """
    Parse a SOCKS4 reply from the start of C{data}.

    @return: the reply and its length (8), or L{None} for more data.
    @raise MalformedMessage: VN is not 0 or CD is unknown.
    """
    if len(data) < _HEADER.size:
        return None
    version, code, port, rawAddress = _HEADER.unpack_from(data)
    if version != 0:
        raise MalformedMessage(f"SOCKS4 reply version {version} is not 0")
    try:
        replyCode = SOCKS4ReplyCode(code)
    except ValueError:
        raise MalformedMessage(f"unknown SOCKS4 reply code {code}") from None
    return SOCKS4Reply(replyCode, IPv4Address(rawAddress), port), _HEADER.size
