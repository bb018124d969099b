"""
The client connection of one request as the command that serves it sees
it: a narrow handle, so that commands depend on these few operations and
not on the protocol's insides.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from ..interfaces import IClientConnection, ISession
from ..session import SessionRecord
from ..vocabulary import RequestRefused, endedAs
from ..wire import ReplyCode

if TYPE_CHECKING:
    from .protocol import SOCKSServerProtocol

__all__ = ["EARLY_DATA_LIMIT", "ClientConnection"]

#: Bytes a client may send ahead of the reply before the gateway stops
#: reading from it until the session starts.
EARLY_DATA_LIMIT = 64 * 1024

_NO_ADDRESS = IPv4Address(0)


@implementer(IClientConnection)
class ClientConnection:
    """
    L{IClientConnection} over a L{SOCKSServerProtocol}.
    """

    def __init__(self, protocol: SOCKSServerProtocol) -> None:
        self._protocol = protocol

    @property
    def transport(self) -> Any:
        """
        The client's transport.
        """
        return self._protocol.transport

    @property
    def record(self) -> SessionRecord:
        """
        The request's session record.
        """
        record = self._protocol.record
        assert record is not None
        return record

    @property
    def client(self) -> IPv4Address | IPv6Address | None:
        """
        The client's IP address, or L{None} for a UNIX socket.
        """
        return self._protocol.client

    @property
    def version(self) -> int | None:
        """
        The SOCKS version of the request, 4 or 5 (L{None} before the first
        byte).
        """
        return self._protocol.codec.version

    @property
    def gateway(self) -> Any:
        """
        The L{socksgate.server.SOCKSServerFactory} of the listener.
        """
        return self._protocol.factory

    @property
    def gone(self) -> bool:
        """
        Whether the client's connection is lost.
        """
        return self._protocol.clientGone

    def reply(self, code: ReplyCode, address: Any = _NO_ADDRESS, port: int = 0) -> int:
        """
        Send reply C{code} with BND.ADDR C{address} and BND.PORT C{port}.

        @return: the reply as the session log writes it: C{code} for
            SOCKS5, the CD (90 or 91) for SOCKS4.
        """
        protocol = self._protocol
        protocol.transport.write(protocol.codec.reply(code, address, port))
        if self.version == 5:
            return int(code)
        return 90 if code == ReplyCode.SUCCEEDED else 91

    def refuse(self, refusal: RequestRefused) -> None:
        """
        Answer with C{refusal}'s reply, record it and close.
        """
        self._protocol.session = None
        self._protocol.refuseRequest(refusal)

    def attach(self, session: ISession | None) -> None:
        """
        Hand the client connection's events to C{session}.
        """
        self._protocol.session = session

    def takeEarlyData(self) -> bytes:
        """
        The bytes that came after the request and are not relayed yet.
        """
        return self._protocol.codec.takeTrailingData()

    def finish(self, outcome: str, reply: int | None, message: str) -> None:
        """
        Emit the session record, once.
        """
        self._protocol.finishSession(outcome, reply, message)

    def relayEnded(self, relay: Any, why: str) -> None:
        """
        The relay of the session ended for C{why}: write its byte counts
        and emit the record, as C{timeout} with the reason when the idle
        timeout ended it, else as C{closed}.
        """
        record = self.record
        record.bytes_out, record.bytes_in = relay.bytesOut, relay.bytesIn
        outcome, message = endedAs(why, self._protocol.factory.config.idleTimeout)
        if message:
            record.message = message
        self._protocol.finishSession(outcome, record.reply, message)

    def released(self) -> None:
        """
        Everything of the session is closed: leave the session table.
        """
        self._protocol.sessionClosed()
