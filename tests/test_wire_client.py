"""
Tests for L{socksgate.wire.SOCKSClientConnection}, the client side of the
handshake, with vectors written by hand from RFC 1928, RFC 1929 and the
SOCKS4 and SOCKS4a protocol documents.
"""

from ipaddress import IPv4Address, IPv6Address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    NEED_DATA,
    ClientState,
    Command,
    LocalProtocolError,
    Method,
    RemoteProtocolError,
    ReplyCode,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    SOCKSClientConnection,
    UDPDatagram,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    parseUDPDatagram,
)


def _connected(methods=(Method.NO_AUTHENTICATION,)):
    """
    A SOCKS5 client that sent its greeting and was given no-authentication.
    """
    client = SOCKSClientConnection()
    client.send(SOCKS5Greeting(tuple(methods)))
    client.receiveData(b"\x05\x00")
    client.nextEvent()
    return client


class SOCKS5ClientTests(SynchronousTestCase):
    """
    A SOCKS5 handshake from the client's side.
    """

    def test_greetingBytes(self):
        """
        A greeting offering no authentication is C{05 01 00}.
        """
        client = SOCKSClientConnection()
        self.assertEqual(client.send(SOCKS5Greeting((Method.NO_AUTHENTICATION,))), b"\x05\x01\x00")
        self.assertEqual(client.version, 5)
        self.assertIs(client.state, ClientState.AWAITING_METHOD)

    def test_connectByAddress(self):
        """
        CONNECT to 127.0.0.1:80 is C{05 01 00 01 7f000001 0050}; the reply
        C{05 00 00 01 0a000001 0438} names the bound address 10.0.0.1:1080
        and the connection relays.
        """
        client = _connected()
        self.assertIs(client.state, ClientState.SENDING_REQUEST)
        data = client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        self.assertEqual(data, b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50")
        self.assertIs(client.nextEvent(), NEED_DATA)
        client.receiveData(b"\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38")
        self.assertEqual(client.nextEvent(), SOCKS5Reply(ReplyCode.SUCCEEDED, IPv4Address("10.0.0.1"), 1080))
        self.assertIs(client.state, ClientState.RELAYING)
        self.assertEqual(client.takeTrailingData(), b"")

    def test_connectByName(self):
        """
        A name is sent unresolved with ATYP 3 and a length byte.
        """
        client = _connected()
        data = client.send(SOCKS5Request(Command.CONNECT, "example.com", 443))
        self.assertEqual(data, b"\x05\x01\x00\x03\x0bexample.com\x01\xbb")

    def test_replyIPv6ByteByByte(self):
        """
        A reply with an IPv6 bound address, fed one byte at a time, is
        parsed once complete; bytes after it are kept for the stream.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, "example.com", 443))
        reply = b"\x05\x00\x00\x04" + b"\x00" * 15 + b"\x01" + b"\x1f\x90"
        for byte in reply[:-1]:
            client.receiveData(bytes([byte]))
            self.assertIs(client.nextEvent(), NEED_DATA)
        client.receiveData(reply[-1:] + b"hello")
        self.assertEqual(client.nextEvent(), SOCKS5Reply(ReplyCode.SUCCEEDED, IPv6Address("::1"), 8080))
        self.assertEqual(client.takeTrailingData(), b"hello")

    def test_replyAndDataTogether(self):
        """
        Data that arrives in the same bytes as the reply is not lost.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        client.receiveData(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00HTTP/1.0 200 OK\r\n")
        client.nextEvent()
        self.assertEqual(client.takeTrailingData(), b"HTTP/1.0 200 OK\r\n")

    def test_failedReply(self):
        """
        A failed reply (C{05 02 ...}, not allowed) is returned and closes.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        client.receiveData(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
        self.assertEqual(client.nextEvent().reply, ReplyCode.NOT_ALLOWED)
        self.assertIs(client.state, ClientState.CLOSED)
        self.assertRaises(LocalProtocolError, client.takeTrailingData)

    def test_usernamePassword(self):
        """
        RFC 1929: the greeting C{05 02 00 02}, the selection C{05 02}, the
        request C{01 05 alice 06 secret}, the status C{01 00}.
        """
        client = SOCKSClientConnection()
        greeting = SOCKS5Greeting((Method.NO_AUTHENTICATION, Method.USERNAME_PASSWORD))
        self.assertEqual(client.send(greeting), b"\x05\x02\x00\x02")
        client.receiveData(b"\x05\x02")
        self.assertEqual(client.nextEvent(), SOCKS5MethodSelection(Method.USERNAME_PASSWORD))
        self.assertIs(client.state, ClientState.SENDING_USERNAME_PASSWORD)
        data = client.send(UsernamePasswordRequest(b"alice", b"secret"))
        self.assertEqual(data, b"\x01\x05alice\x06secret")
        client.receiveData(b"\x01\x00")
        self.assertEqual(client.nextEvent(), UsernamePasswordReply(0))
        self.assertIs(client.state, ClientState.SENDING_REQUEST)

    def test_usernamePasswordRefused(self):
        """
        Any RFC 1929 status but 0 is a refusal: returned, and closed.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS5Greeting((Method.USERNAME_PASSWORD,)))
        client.receiveData(b"\x05\x02\x01\x01")
        client.nextEvent()
        client.send(UsernamePasswordRequest(b"alice", b"wrong"))
        self.assertFalse(client.nextEvent().succeeded)
        self.assertIs(client.state, ClientState.CLOSED)

    def test_noAcceptableMethods(self):
        """
        C{05 ff} is returned and closes the handshake.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS5Greeting((Method.USERNAME_PASSWORD,)))
        client.receiveData(b"\x05\xff")
        self.assertEqual(client.nextEvent(), SOCKS5MethodSelection(Method.NO_ACCEPTABLE_METHODS))
        self.assertIs(client.state, ClientState.CLOSED)

    def test_methodNotOffered(self):
        """
        A server that selects a method the client did not offer breaks the
        protocol.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS5Greeting((Method.NO_AUTHENTICATION,)))
        client.receiveData(b"\x05\x02")
        self.assertRaises(RemoteProtocolError, client.nextEvent)
        self.assertIs(client.state, ClientState.CLOSED)

    def test_wrongReplyVersion(self):
        """
        A SOCKS4 reply to a SOCKS5 request is a remote protocol error.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        client.receiveData(b"\x00\x5a\x00\x00\x00\x00\x00\x00\x00\x00")
        self.assertRaises(RemoteProtocolError, client.nextEvent)

    def test_unknownReplyCode(self):
        """
        A reply code above 0x08 is a remote protocol error.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        client.receiveData(b"\x05\x09\x00\x01\x00\x00\x00\x00\x00\x00")
        self.assertRaises(RemoteProtocolError, client.nextEvent)

    def test_bindTwoReplies(self):
        """
        BIND gets two replies: the listening address, then the peer's.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.BIND, IPv4Address("127.0.0.2"), 0))
        client.receiveData(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x30\x39")
        self.assertEqual(
            client.nextEvent(), SOCKS5Reply(ReplyCode.SUCCEEDED, IPv4Address("127.0.0.1"), 12345)
        )
        self.assertIs(client.state, ClientState.AWAITING_SECOND_REPLY)
        client.receiveData(b"\x05\x00\x00\x01\x7f\x00\x00\x02\xd4\x31")
        self.assertEqual(
            client.nextEvent(), SOCKS5Reply(ReplyCode.SUCCEEDED, IPv4Address("127.0.0.2"), 54321)
        )
        self.assertIs(client.state, ClientState.RELAYING)

    def test_udpAssociate(self):
        """
        UDP ASSOCIATE's reply gives the relay's address; the datagrams'
        header is C{00 00 FRAG ATYP ADDR PORT DATA} both ways.
        """
        client = _connected()
        data = client.send(SOCKS5Request(Command.UDP_ASSOCIATE, IPv4Address(0), 0))
        self.assertEqual(data, b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
        client.receiveData(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x13\x88")
        self.assertEqual(client.nextEvent().port, 5000)
        datagram = UDPDatagram(IPv4Address("127.0.0.1"), 53, b"query")
        self.assertEqual(datagram.toBytes(), b"\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35query")
        self.assertEqual(
            parseUDPDatagram(b"\x00\x00\x00\x03\x04name\x00\x35answer"), UDPDatagram("name", 53, b"answer")
        )

    def test_requestBeforeGreeting(self):
        """
        A SOCKS5 request cannot be the first message.
        """
        client = SOCKSClientConnection()
        self.assertRaises(LocalProtocolError, client.send, SOCKS5Request(Command.CONNECT, "a", 1))

    def test_greetingWithUnknownMethod(self):
        """
        Offering a method without a sub-negotiation to run it is a local
        error, caught before anything is sent.
        """
        client = SOCKSClientConnection()
        self.assertRaises(LocalProtocolError, client.send, SOCKS5Greeting((Method.GSSAPI,)))
        self.assertIs(client.state, ClientState.SENDING_FIRST)

    def test_subnegotiationHook(self):
        """
        A method given with a parser of its own sub-negotiation: once the
        server selects it, its messages come from that parser, the client
        sends its own, and L{SOCKSClientConnection.finishSubnegotiation}
        moves on to the request.
        """

        class Token:
            """
            A made-up sub-negotiation message: C{01 LEN TOKEN}.
            """

            def __init__(self, raw):
                self.raw = raw

            def toBytes(self):
                """
                Encode this token.
                """
                return bytes([1, len(self.raw)]) + self.raw

        def parseToken(data):
            """
            Parse a L{Token}, or L{None} for more data.
            """
            if len(data) < 2 or len(data) < 2 + data[1]:
                return None
            return Token(bytes(data[2 : 2 + data[1]])), 2 + data[1]

        client = SOCKSClientConnection(subnegotiations={Method.GSSAPI: parseToken})
        self.assertEqual(client.send(SOCKS5Greeting((Method.GSSAPI,))), b"\x05\x01\x01")
        client.receiveData(b"\x05\x01")
        client.nextEvent()
        self.assertIs(client.state, ClientState.SUBNEGOTIATING)
        self.assertEqual(client.send(Token(b"hi")), b"\x01\x02hi")
        client.receiveData(b"\x01\x03you")
        self.assertEqual(client.nextEvent().raw, b"you")
        client.finishSubnegotiation()
        self.assertIs(client.state, ClientState.SENDING_REQUEST)
        self.assertRaises(LocalProtocolError, client.finishSubnegotiation)

    def test_tooMuchBefore(self):
        """
        The buffer is bounded before the handshake ends.
        """
        client = _connected()
        client.send(SOCKS5Request(Command.CONNECT, IPv4Address("127.0.0.1"), 80))
        self.assertRaises(RemoteProtocolError, client.receiveData, b"\x05" * (256 * 1024 + 1))


class SOCKS4ClientTests(SynchronousTestCase):
    """
    SOCKS4 and SOCKS4a requests from the client's side.
    """

    def test_socks4Connect(self):
        """
        CONNECT to 1.2.3.4:80 for user bob is C{04 01 0050 01020304 bob 00};
        the reply C{00 5a ...} grants it.
        """
        client = SOCKSClientConnection()
        data = client.send(SOCKS4Request(Command.CONNECT, IPv4Address("1.2.3.4"), 80, b"bob"))
        self.assertEqual(data, b"\x04\x01\x00\x50\x01\x02\x03\x04bob\x00")
        self.assertEqual(client.version, 4)
        client.receiveData(b"\x00\x5a\x00\x00\x00\x00\x00\x00more")
        self.assertEqual(client.nextEvent(), SOCKS4Reply(SOCKS4ReplyCode.GRANTED))
        self.assertIs(client.state, ClientState.RELAYING)
        self.assertEqual(client.takeTrailingData(), b"more")

    def test_socks4aConnect(self):
        """
        SOCKS4a sends DSTIP 0.0.0.1 and the name after the USERID.
        """
        client = SOCKSClientConnection()
        data = client.send(SOCKS4Request(Command.CONNECT, "example.com", 80))
        self.assertEqual(data, b"\x04\x01\x00\x50\x00\x00\x00\x01\x00example.com\x00")

    def test_socks4Rejected(self):
        """
        CD 91 is returned and closes.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS4Request(Command.CONNECT, IPv4Address("1.2.3.4"), 80))
        client.receiveData(b"\x00\x5b\x00\x00\x00\x00\x00\x00")
        self.assertEqual(client.nextEvent().code, SOCKS4ReplyCode.REJECTED)
        self.assertIs(client.state, ClientState.CLOSED)

    def test_socks4Bind(self):
        """
        A SOCKS4 BIND gets two replies, each with DSTPORT and DSTIP.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS4Request(Command.BIND, IPv4Address("127.0.0.2"), 21))
        client.receiveData(b"\x00\x5a\x30\x39\x7f\x00\x00\x01")
        self.assertEqual(
            client.nextEvent(), SOCKS4Reply(SOCKS4ReplyCode.GRANTED, IPv4Address("127.0.0.1"), 12345)
        )
        self.assertIs(client.state, ClientState.AWAITING_SECOND_REPLY)
        client.receiveData(b"\x00\x5a\x00\x14\x7f\x00\x00\x02")
        self.assertEqual(client.nextEvent().port, 20)
        self.assertIs(client.state, ClientState.RELAYING)

    def test_socks4BadReplyVersion(self):
        """
        A reply whose VN is not 0 is a remote protocol error.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS4Request(Command.CONNECT, IPv4Address("1.2.3.4"), 80))
        client.receiveData(b"\x04\x5a\x00\x00\x00\x00\x00\x00")
        self.assertRaises(RemoteProtocolError, client.nextEvent)
        self.assertIs(client.state, ClientState.CLOSED)

    def test_greetingAfterRequest(self):
        """
        Nothing can be sent while the reply is awaited.
        """
        client = SOCKSClientConnection()
        client.send(SOCKS4Request(Command.CONNECT, IPv4Address("1.2.3.4"), 80))
        self.assertRaises(LocalProtocolError, client.send, SOCKS5Greeting((0,)))
