"""
The GSS-API protected stream of RFC 1961 section 5, for both roles.

After a GSS-API negotiation that agreed on integrity or confidentiality,
everything either side sends, the SOCKS request and reply included, goes
as wrapped tokens in encapsulation messages.  L{MessageProtection} seals
and unseals with an established security context (the framing is the
codec's, L{socksgate.wire.StreamDecoder} and L{socksgate.wire.encapsulate});
L{ProtectedTransport} is a transport that seals what is written to it, so
that the stream L{socksgate.relay.Relay} relays a protected session as any
other (the zero-copy relay cannot: the gateway must see every byte).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer, ITCPTransport
from zope.interface import implementer

from .gssauth import describeGSSError
from .wire import MalformedMessage, ProtectionLevel, StreamDecoder, encapsulate

__all__ = ["MessageProtection", "ProtectedTransport", "ProtectionFailed"]


class ProtectionFailed(Exception):
    """
    The peer's protected stream is broken: not encapsulation messages, a
    token that fails its integrity check, or one without the agreed
    confidentiality.
    """


class MessageProtection:
    """
    One direction's sealing and the other's unsealing, with a security
    context established by either role.

    @ivar level: the agreed L{ProtectionLevel}: C{INTEGRITY} wraps without
        encryption, C{CONFIDENTIALITY} with it (section 5: C{conf_req_flag}
        false and true).
    @ivar chunkSize: the most plaintext one wrapped token carries, so that
        the token fits in one message.
    """

    def __init__(self, context: Any, level: ProtectionLevel) -> None:
        if level not in (ProtectionLevel.INTEGRITY, ProtectionLevel.CONFIDENTIALITY):
            raise ValueError(f"no stream protection for level {level!r}")
        self.level = level
        self._context = context
        self._encrypt = level is ProtectionLevel.CONFIDENTIALITY
        self._decoder = StreamDecoder()
        self.chunkSize = context.get_wrap_size_limit(0xFFFF, self._encrypt)

    @property
    def pending(self) -> bool:
        """
        Whether part of a message from the peer waits for its rest.
        """
        return self._decoder.pending

    def seal(self, data: bytes) -> bytes:
        """
        Wrap C{data} into as many encapsulation messages as it needs.
        """
        wrap, size, encrypt = self._context.wrap, self.chunkSize, self._encrypt
        view = memoryview(data)
        return b"".join(
            encapsulate(wrap(bytes(view[start : start + size]), encrypt).message)
            for start in range(0, len(data), size)
        )

    def unseal(self, data: bytes) -> bytes:
        """
        Take bytes from the peer and return the plaintext of the tokens now
        complete (possibly empty).

        @raise ProtectionFailed: the stream is broken; close the connection.
        """
        try:
            tokens = self._decoder.receiveData(data)
        except MalformedMessage as error:
            raise ProtectionFailed(error.reason) from None
        plaintext = []
        for token in tokens:
            try:
                unwrapped = self._context.unwrap(token)
            except Exception as error:
                raise ProtectionFailed(f"a token failed its check: {describeGSSError(error)}") from None
            if self._encrypt and not unwrapped.encrypted:
                raise ProtectionFailed("a token without confidentiality in a confidential session")
            plaintext.append(unwrapped.message)
        return b"".join(plaintext)


@implementer(ITCPTransport, IPushProducer)
class ProtectedTransport:
    """
    A transport that seals everything written to it before the transport
    below sends it; every other call goes to that transport.  What comes
    from the peer is unsealed by whoever reads it (the protocol, with the
    same L{MessageProtection}).

    @ivar transport: the transport below.
    @ivar protection: the L{MessageProtection} of the session.
    """

    def __init__(self, transport: Any, protection: MessageProtection) -> None:
        self.transport = transport
        self.protection = protection

    def write(self, data: bytes) -> None:
        """
        Seal C{data} and send it.
        """
        if data:
            self.transport.write(self.protection.seal(data))

    def writeSequence(self, data: Any) -> None:
        """
        Seal and send each piece of C{data}, joined.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close once what was written has been sent.
        """
        self.transport.loseConnection()

    def abortConnection(self) -> None:
        """
        Close at once.
        """
        self.transport.abortConnection()

    def loseWriteConnection(self) -> None:
        """
        Send a FIN once what was written has been sent (half-close).
        """
        self.transport.loseWriteConnection()

    def getPeer(self) -> Any:
        """
        The peer's address.
        """
        return self.transport.getPeer()

    def getHost(self) -> Any:
        """
        The local address.
        """
        return self.transport.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Let C{producer} be paused while the transport below is full.
        """
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        """
        Stop reading from the peer.
        """
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """
        Read from the peer again.
        """
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """
        Stop reading for good.
        """
        self.transport.stopProducing()

    def getTcpNoDelay(self) -> bool:
        """
        As the transport below.
        """
        return bool(self.transport.getTcpNoDelay())

    def setTcpNoDelay(self, enabled: bool) -> None:
        """
        As the transport below.
        """
        self.transport.setTcpNoDelay(enabled)

    def getTcpKeepAlive(self) -> bool:
        """
        As the transport below.
        """
        return bool(self.transport.getTcpKeepAlive())

    def setTcpKeepAlive(self, enabled: bool) -> None:
        """
        As the transport below.
        """
        self.transport.setTcpKeepAlive(enabled)
