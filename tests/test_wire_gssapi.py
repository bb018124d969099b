"""
Tests for L{socksgate.wire._gssapi}: the RFC 1961 framing of both roles,
with vectors written by hand from the RFC, and the server state machine's
hand-over to it.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    GSSAPIClientConnection,
    GSSAPIMessage,
    GSSAPIMessageType,
    GSSAPIServerConnection,
    GSSAPIState,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    ServerState,
    SOCKS5MethodSelection,
    SOCKSServerConnection,
    StreamDecoder,
    encapsulate,
    parseGSSAPIMessage,
)


class MessageTests(SynchronousTestCase):
    """
    C{VER MTYP LEN TOKEN}, and the two-octet abort message.
    """

    def test_encode(self) -> None:
        """
        A message is VER 1, MTYP, LEN in network order, then the token.
        """
        message = GSSAPIMessage(GSSAPIMessageType.AUTHENTICATION, b"x" * 258)
        self.assertEqual(message.toBytes(), b"\x01\x01\x01\x02" + b"x" * 258)
        self.assertEqual(encapsulate(b"abc"), b"\x01\x03\x00\x03abc")
        self.assertEqual(GSSAPIMessage(GSSAPIMessageType.ABORT).toBytes(), b"\x01\xff")

    def test_tooLong(self) -> None:
        """
        A token longer than 65535 octets cannot be framed.
        """
        self.assertRaises(ValueError, GSSAPIMessage(GSSAPIMessageType.ENCAPSULATED, bytes(65536)).toBytes)

    def test_parse(self) -> None:
        """
        A message is parsed once complete; part of one gives L{None}.
        """
        data = b"\x01\x02\x00\x01\x02rest"
        for end in range(5):
            self.assertIsNone(parseGSSAPIMessage(data[:end]))
        self.assertEqual(parseGSSAPIMessage(data), (GSSAPIMessage(GSSAPIMessageType.PROTECTION, b"\x02"), 5))
        self.assertEqual(parseGSSAPIMessage(b"\x01\xff"), (GSSAPIMessage(GSSAPIMessageType.ABORT), 2))

    def test_malformed(self) -> None:
        """
        Another VER or an unknown MTYP is malformed.
        """
        self.assertRaises(MalformedMessage, parseGSSAPIMessage, b"\x05\x01\x00\x00")
        self.assertRaises(MalformedMessage, parseGSSAPIMessage, b"\x01\x04\x00\x00")

    def test_reprHidesToken(self) -> None:
        """
        A message's C{repr} gives its token's length, not the token.
        """
        self.assertEqual(
            repr(GSSAPIMessage(GSSAPIMessageType.AUTHENTICATION, b"ticket")),
            "GSSAPIMessage(AUTHENTICATION, <6 bytes>)",
        )


class ServerNegotiationTests(SynchronousTestCase):
    """
    L{GSSAPIServerConnection}: context tokens, then the level.
    """

    def test_exchange(self) -> None:
        """
        A context token in, one out; the level in, the level out; the bytes
        after it are the SOCKS exchange's.
        """
        codec = GSSAPIServerConnection()
        codec.receiveData(b"\x01\x01\x00\x02ap")
        self.assertEqual(codec.nextEvent(), GSSAPIMessage(GSSAPIMessageType.AUTHENTICATION, b"ap"))
        self.assertIsNone(codec.nextEvent())
        self.assertEqual(codec.sendToken(b"rep"), b"\x01\x01\x00\x03rep")
        codec.contextEstablished()
        codec.receiveData(b"\x01\x02\x00\x01\x00\x05\x01\x00")
        self.assertEqual(codec.nextEvent(), GSSAPIMessage(GSSAPIMessageType.PROTECTION, b"\x00"))
        self.assertEqual(codec.sendProtection(b"\x00"), b"\x01\x02\x00\x01\x00")
        self.assertIs(codec.state, GSSAPIState.ESTABLISHED)
        self.assertEqual(codec.takeTrailingData(), b"\x05\x01\x00")

    def test_wrongType(self) -> None:
        """
        A level message while the context is being established is answered
        with the abort message.
        """
        codec = GSSAPIServerConnection()
        codec.receiveData(b"\x01\x02\x00\x01\x01")
        error = self.assertRaises(RemoteProtocolError, codec.nextEvent)
        self.assertEqual((error.reply, error.code), (b"\x01\xff", 0xFF))
        self.assertIs(codec.state, GSSAPIState.CLOSED)

    def test_clientAborts(self) -> None:
        """
        The client's abort message ends the negotiation with nothing to send.
        """
        codec = GSSAPIServerConnection()
        codec.receiveData(b"\x01\xff")
        error = self.assertRaises(RemoteProtocolError, codec.nextEvent)
        self.assertEqual(error.reply, b"")

    def test_bounded(self) -> None:
        """
        More than two whole messages' worth of bytes waiting is refused.
        """
        codec = GSSAPIServerConnection()
        codec.receiveData(b"\x01\x01\xff\xff" + bytes(65535))
        error = self.assertRaises(RemoteProtocolError, codec.receiveData, bytes(65540))
        self.assertEqual(error.reply, b"\x01\xff")

    def test_misuse(self) -> None:
        """
        Sending the level before the context is established, or taking the
        trailing bytes before the end, is a local error.
        """
        codec = GSSAPIServerConnection()
        self.assertRaises(LocalProtocolError, codec.sendProtection, b"\x01")
        self.assertRaises(LocalProtocolError, codec.takeTrailingData)


class ClientNegotiationTests(SynchronousTestCase):
    """
    L{GSSAPIClientConnection}: the server's level message ends it.
    """

    def test_exchange(self) -> None:
        """
        The client's token and level go out framed; the server's level
        message establishes the negotiation.
        """
        codec = GSSAPIClientConnection()
        self.assertEqual(codec.sendToken(b"ap"), b"\x01\x01\x00\x02ap")
        codec.receiveData(b"\x01\x01\x00\x03rep")
        self.assertEqual(codec.nextEvent(), GSSAPIMessage(GSSAPIMessageType.AUTHENTICATION, b"rep"))
        codec.contextEstablished()
        self.assertEqual(codec.sendProtection(b"\x02"), b"\x01\x02\x00\x01\x02")
        codec.receiveData(b"\x01\x02\x00\x01\x02\x01\x03")
        self.assertEqual(codec.nextEvent(), GSSAPIMessage(GSSAPIMessageType.PROTECTION, b"\x02"))
        self.assertIs(codec.state, GSSAPIState.ESTABLISHED)
        self.assertEqual(codec.takeTrailingData(), b"\x01\x03")

    def test_serverAborts(self) -> None:
        """
        The server's abort message is a remote error with nothing to send.
        """
        codec = GSSAPIClientConnection()
        codec.receiveData(b"\x01\xff")
        self.assertEqual(self.assertRaises(RemoteProtocolError, codec.nextEvent).reply, b"")


class StreamDecoderTests(SynchronousTestCase):
    """
    The protected stream split into its tokens.
    """

    def test_tokens(self) -> None:
        """
        Whole messages give their tokens; a partial one waits.
        """
        decoder = StreamDecoder()
        self.assertEqual(decoder.receiveData(b"\x01\x03\x00\x01a\x01\x03\x00\x02b"), [b"a"])
        self.assertTrue(decoder.pending)
        self.assertEqual(decoder.receiveData(b"c"), [b"bc"])
        self.assertFalse(decoder.pending)

    def test_notEncapsulated(self) -> None:
        """
        Another message type in the stream (an abort too) is malformed.
        """
        self.assertRaises(MalformedMessage, StreamDecoder().receiveData, b"\x01\x01\x00\x00")
        self.assertRaises(MalformedMessage, StreamDecoder().receiveData, b"\x01\xff")


class ServerStateTests(SynchronousTestCase):
    """
    The SOCKS server state machine hands the connection to the GSS-API
    negotiation and takes it back for the request.
    """

    def test_handOver(self) -> None:
        """
        Selecting GSS-API leaves the bytes after the greeting to the
        negotiation; once it is established the request is read.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x05\x01\x01\x01\x01\x00\x00")
        connection.nextEvent()
        self.assertEqual(connection.send(SOCKS5MethodSelection(1)), b"\x05\x01")
        self.assertIs(connection.state, ServerState.SOCKS5_GSSAPI)
        self.assertEqual(connection.takeTrailingData(), b"\x01\x01\x00\x00")
        connection.gssapiEstablished()
        self.assertIs(connection.state, ServerState.SOCKS5_REQUEST)
        self.assertRaises(LocalProtocolError, connection.gssapiEstablished)
