"""
Host values and the address encoding shared by SOCKS4a, SOCKS5 requests and
replies and the SOCKS5 UDP header.

A host is an L{ipaddress.IPv4Address}, an L{ipaddress.IPv6Address} or, for
a domain name, a L{str}.  A name is kept as the peer sent it (decoded from
UTF-8), so that a message built again from the parsed value gives the same
bytes.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Union

from ._constants import MAX_HOSTNAME_LENGTH, AddressType, ReplyCode
from ._errors import MalformedMessage

#: An IP address or a domain name.
Host = Union[IPv4Address, IPv6Address, str]

_PORT = struct.Struct("!H")


def decodeHostname(raw: bytes, reply: int = ReplyCode.HOST_UNREACHABLE) -> str:
    """
    Turn the bytes of a host name from the wire into text.

    @param raw: the name's bytes, without length prefix or terminator.
    @param reply: the SOCKS5 reply code for a name that is not valid.
    @return: the name.
    @raise MalformedMessage: the name is empty, longer than 255 bytes, not
        UTF-8, or holds a control character or a space.
    """
    if not raw:
        raise MalformedMessage("empty host name", reply)
    if len(raw) > MAX_HOSTNAME_LENGTH:
        raise MalformedMessage("host name longer than 255 bytes", reply)
    if any(byte <= 0x20 or byte == 0x7F for byte in raw):
        raise MalformedMessage("host name holds a control character or space", reply)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("host name is not UTF-8", reply) from None


def encodeHostname(name: str) -> bytes:
    """
    Turn a host name into the bytes sent on the wire.

    @raise ValueError: the name cannot be sent (empty, too long, or with a
        character that L{decodeHostname} refuses).
    """
    raw = name.encode("utf-8")
    try:
        decodeHostname(raw)
    except MalformedMessage as error:
        raise ValueError(error.reason) from None
    return raw


def encodeAddress(host: Host, port: int) -> bytes:
    """
    Encode ATYP, the address and the port as SOCKS5 and its UDP header do.
    """
    if isinstance(host, IPv4Address):
        head = bytes([AddressType.IPV4]) + host.packed
    elif isinstance(host, IPv6Address):
        head = bytes([AddressType.IPV6]) + host.packed
    else:
        raw = encodeHostname(host)
        head = bytes([AddressType.DOMAIN_NAME, len(raw)]) + raw
    return head + _PORT.pack(port)


def parseAddress(data: bytes, offset: int) -> tuple[Host, int, int] | None:
    """
    Parse ATYP, the address and the port starting at C{data[offset]}.

    @return: C{(host, port, end)} where C{end} is the offset just past the
        port, or L{None} if C{data} ends before the address does.
    @raise MalformedMessage: with reply 0x08 for an unknown address type,
        or for a bad host name.
    """
    if len(data) <= offset:
        return None
    addressType = data[offset]
    start = offset + 1
    host: Host
    if addressType == AddressType.IPV4:
        end = start + 4
        if len(data) < end + 2:
            return None
        host = IPv4Address(bytes(data[start:end]))
    elif addressType == AddressType.IPV6:
        end = start + 16
        if len(data) < end + 2:
            return None
        host = IPv6Address(bytes(data[start:end]))
    elif addressType == AddressType.DOMAIN_NAME:
        if len(data) <= start:
            return None
        length = data[start]
        end = start + 1 + length
        if len(data) < end + 2:
            return None
        host = decodeHostname(bytes(data[start + 1 : end]))
    else:
        raise MalformedMessage(
            f"unknown address type {addressType:#04x}",
            ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED,
        )
    (port,) = _PORT.unpack_from(data, end)
    return host, port, end + 2
