"""
The UDP sockets of a UDP association (L{socksgate.udprelay}): each hands
what it reads to its association, and sends with the socket's own
C{sendto} once listening.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import DatagramProtocol

if TYPE_CHECKING:
    from .udprelay import UDPAssociation

__all__ = ["RelaySocket"]


class RelaySocket(DatagramProtocol):
    """
    One UDP socket of an association: hands what it reads to it.

    @ivar main: whether it is the socket the client sends to.
    @ivar sendTo: sends a datagram to an address given as C{(text, port)},
        of the socket's family: the socket's own C{sendto} once
        listening on a real socket, without the checks of Twisted's
        C{write} (the relay's addresses are already checked), else the
        transport's C{write}.
    """

    noisy = False

    def __init__(self, association: UDPAssociation, main: bool) -> None:
        self.association = association
        self.main = main
        self.sendTo: Callable[[bytes, tuple[str, int]], object] = self._notListening

    def _notListening(self, data: bytes, address: tuple[str, int]) -> object:
        return self.transport.write(data, address)

    def startProtocol(self) -> None:
        """
        Listening: send with the socket itself when there is one.
        """
        raw = getattr(self.transport, "socket", None)
        self.sendTo = raw.sendto if isinstance(raw, socket.socket) else self.transport.write

    def logPrefix(self) -> str:
        """
        How Twisted names the socket in its log.
        """
        return "socksgate UDP relay"

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Pass a datagram to the association.
        """
        self.association.datagramReceived(self, datagram, addr[0], addr[1])
