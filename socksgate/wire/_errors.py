"""
Errors raised by the wire codec.

A L{MalformedMessage} says the peer sent bytes that break the protocol,
and carries the SOCKS5 reply code that answers them; the server state
machine turns it into a L{RemoteProtocolError} that carries the exact
bytes to send before closing.  A L{LocalProtocolError} says the caller
used the codec wrongly (sent a message the state does not allow).
"""

from __future__ import annotations


class SOCKSProtocolError(Exception):
    """
    Base class of every error the wire codec raises.
    """


class MalformedMessage(SOCKSProtocolError):
    """
    The peer sent bytes that are not a valid message.

    @ivar reason: what was wrong, for the log.
    @ivar reply: the SOCKS5 reply code (REP) that answers this error in a
        request, or L{None} where the protocol has no reply for it (a
        malformed greeting is answered by closing the connection).
    """

    def __init__(self, reason: str, reply: int | None = 0x01) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class RemoteProtocolError(SOCKSProtocolError):
    """
    The peer broke the protocol; send L{reply} (possibly empty) and close.

    @ivar reason: what was wrong, for the log.
    @ivar reply: the bytes to write to the peer before closing.
    @ivar code: the reply code in those bytes (SOCKS5 REP, SOCKS4 CD or
        the RFC 1929 status), or L{None} when nothing is sent.
    """

    def __init__(self, reason: str, reply: bytes = b"", code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply
        self.code = code


class LocalProtocolError(SOCKSProtocolError):
    """
    The caller asked the codec for something its state does not allow.
    """
