"""
How the stream relay closes one side of a session over any transport,
TLS included: passing a FIN on, and letting a TLS transport whose session
has ended close.

Passing a FIN on.  A plain TCP (or UNIX) transport half-closes with
C{loseWriteConnection}: its peer reads the end of the stream and may go on
sending.  Twisted's TLS transport (L{TLSMemoryBIOProtocol}, what an
C{ssl:} listener's protocols get) has no half-close of its own:
C{loseWriteConnection} falls through its C{ProtocolWrapper.__getattr__}
to the TCP socket under the TLS session and shuts down that socket's
sending side with no TLS close_notify.  The peer sees a TLS session cut
short, and when it closes in turn, the TLS layer, reading that error,
closes a TCP transport whose sending side is already shut, which loses its
connection at once, in the middle of the TLS layer's own
C{dataReceived}: Twisted logs C{Unhandled Error ... AttributeError:
'NoneType' object has no attribute 'bio_read'}.  For such a transport,
L{finishWriting} calls C{loseConnection} instead: the TLS layer writes
what is buffered, then its close_notify (the peer reads the end of the
stream, as from a FIN), and reads on until the peer closes too.

Letting a closing TLS transport close.  When the TLS session ends from
the client's side (its close_notify, or a TLS error), the TLS layer closes
the TCP transport under it without telling the relay (the relay hears of
it only from C{connectionLost}).  That TCP transport still has the
relay's producer (the destination) registered through the TLS layer; if
that producer was paused because the client read slowly, the TCP
transport, once its buffer drains, resumes the producer instead of
closing (a transport with a producer waits for it), and, the TLS layer
discarding whatever the destination sends now, never closes: the session
stays open for as long as the destination does.  L{producerFor} wraps the
producer of such a transport so that being resumed while the transport
(or the one under it) is closing unregisters it, and the transport closes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer, ISSLTransport
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

__all__ = ["canHalfClose", "finishWriting", "producerFor"]

#: How many transports deep (protocol wrappers over a socket) the checks
#: here look.
_DEPTH = 8


def _layers(transport: Any) -> list[Any]:
    """
    C{transport} and, while it is a protocol wrapper, the transports under
    it (at most L{_DEPTH}).
    """
    layers = [transport]
    while isinstance(layers[-1], ProtocolWrapper) and len(layers) < _DEPTH:
        layers.append(layers[-1].transport)
    return layers


def _isTLS(transport: Any) -> bool:
    return (
        isinstance(transport, TLSMemoryBIOProtocol)
        or ISSLTransport.providedBy(transport)
        or bool(getattr(transport, "TLS", False))
    )


def _overTLS(transport: Any) -> bool:
    return any(_isTLS(layer) for layer in _layers(transport))


def canHalfClose(transport: Any) -> bool:
    """
    Whether C{transport.loseWriteConnection()} sends a FIN its peer reads
    as the end of the stream: not when the transport is TLS, or wraps TLS
    (a protocol wrapper such as L{socksgate.haproxy}'s over an C{ssl:}
    listener), where it would shut the socket under the TLS session.
    """
    return not _overTLS(transport)


def finishWriting(transport: Any) -> None:
    """
    Pass a FIN on to C{transport}'s peer: C{loseWriteConnection} where it
    can half-close (L{canHalfClose}); otherwise C{loseConnection}, which
    for TLS sends the buffered bytes, then close_notify, and reads on
    until the peer closes.
    """
    if canHalfClose(transport):
        transport.loseWriteConnection()
    else:
        transport.loseConnection()


@implementer(IPushProducer)
class _ClosingAwareProducer:
    """
    A producer registered with a TLS transport on behalf of another: it
    passes every call on, except a C{resumeProducing} that comes while the
    transport, or one under it, is closing, which unregisters it instead.
    """

    def __init__(self, consumer: Any, producer: Any) -> None:
        self._consumer, self._producer = consumer, producer

    def pauseProducing(self) -> None:
        self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        if any(getattr(layer, "disconnecting", False) for layer in _layers(self._consumer)):
            self._consumer.unregisterProducer()
        else:
            self._producer.resumeProducing()

    def stopProducing(self) -> None:
        self._producer.stopProducing()


def producerFor(consumer: Any, producer: Any) -> Any:
    """
    What to register with C{consumer} as its streaming producer so that
    C{producer} is paused and resumed with C{consumer}'s buffer:
    C{producer} itself, or, for a TLS C{consumer}, a wrapper that lets
    the transport close once its TLS session has ended (see the module's
    docstring).
    """
    if _overTLS(consumer):
        return _ClosingAwareProducer(consumer, producer)
    return producer
