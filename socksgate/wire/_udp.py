"""
The SOCKS5 UDP request header (RFC 1928, section 7):
C{RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA}.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._addresses import Host, encodeAddress, parseAddress
from ._errors import MalformedMessage


@dataclass(frozen=True)
class UDPDatagram:
    """
    One datagram with its SOCKS UDP header.

    @ivar host: the destination (client to relay) or the source (relay to
        client) of C{data}.
    @ivar fragment: FRAG; anything but 0 is a fragment, which socksgate drops.
    """

    host: Host
    port: int
    data: bytes
    fragment: int = 0

    def toBytes(self) -> bytes:
        """
        Encode this datagram with its header.
        """
        return b"\x00\x00" + bytes([self.fragment]) + encodeAddress(self.host, self.port) + self.data


def parseUDPDatagram(datagram: bytes) -> UDPDatagram:
    """
    Parse a whole datagram.

    @raise MalformedMessage: the header is truncated, its RSV field is not
        zero, or its address is invalid.
    """
    if len(datagram) < 4:
        raise MalformedMessage("UDP header truncated")
    if datagram[0] != 0 or datagram[1] != 0:
        raise MalformedMessage("UDP header RSV is not zero")
    parsed = parseAddress(datagram, 3)
    if parsed is None:
        raise MalformedMessage("UDP header truncated")
    host, port, end = parsed
    return UDPDatagram(host, port, bytes(datagram[end:]), datagram[2])
