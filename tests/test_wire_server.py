"""
Tests for L{socksgate.wire._server}: the server-side handshake state machine
L{SOCKSServerConnection}.

Client bytes are written by hand from the SOCKS4 document, the SOCKS4a
extension, RFC 1928 and RFC 1929.
"""

from ipaddress import IPv4Address, IPv6Address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    MAX_HANDSHAKE_BUFFER,
    NEED_DATA,
    Command,
    LocalProtocolError,
    RemoteProtocolError,
    ReplyCode,
    ServerState,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    SOCKSServerConnection,
    UsernamePasswordReply,
    UsernamePasswordRequest,
)

# SOCKS4 CONNECT to 192.0.2.1 port 8080 for USERID "alice".
SOCKS4_CONNECT = b"\x04\x01\x1f\x90\xc0\x00\x02\x01alice\x00"

# SOCKS4 BIND to 192.0.2.1 port 8080 with an empty USERID.
SOCKS4_BIND = b"\x04\x02\x1f\x90\xc0\x00\x02\x01\x00"

# SOCKS4a CONNECT to example.com port 80 for USERID "bob".
SOCKS4A_CONNECT = b"\x04\x01\x00\x50\x00\x00\x00\x01bob\x00example.com\x00"

# SOCKS5 greetings offering "no authentication", and "username/password".
GREETING_NO_AUTH = b"\x05\x01\x00"
GREETING_PASSWORD = b"\x05\x01\x02"

# RFC 1929 credentials: user "alice", password "s3cret".
CREDENTIALS = b"\x01\x05alice\x06s3cret"

# SOCKS5 CONNECT to 192.0.2.1 port 8080.
SOCKS5_CONNECT = b"\x05\x01\x00\x01\xc0\x00\x02\x01\x1f\x90"

# SOCKS5 CONNECT to example.com port 443.
SOCKS5_CONNECT_DOMAIN = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"

# SOCKS5 BIND to 2001:db8::1 port 0x1234.
SOCKS5_BIND_IPV6 = b"\x05\x02\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x12\x34"

# Early data a client may send right after its request.
EARLY = b"GET / HTTP/1.0\r\n\r\n"

# The SOCKS4 reply with CD 91 (rejected) and zero port and address.
SOCKS4_REJECTED = b"\x00\x5b\x00\x00\x00\x00\x00\x00"


def socks5AtRequest(greeting=GREETING_NO_AUTH):
    """
    Make a connection that has received a SOCKS5 greeting and answered it
    with "no authentication", so that it waits for the request.
    """
    connection = SOCKSServerConnection()
    connection.receiveData(greeting)
    connection.nextEvent()
    connection.send(SOCKS5MethodSelection(0))
    return connection


def atReply(data):
    """
    Make a connection that has taken the request at the end of C{data} (a
    SOCKS4 request, or a SOCKS5 request after the greeting was answered).
    """
    if data[0] == 4:
        connection = SOCKSServerConnection()
    else:
        connection = socks5AtRequest()
    connection.receiveData(data)
    connection.nextEvent()
    return connection


class SOCKS4ServerTests(SynchronousTestCase):
    """
    SOCKS4 and SOCKS4a handshakes through L{SOCKSServerConnection}.
    """

    def test_initialState(self):
        """
        A new connection waits for the version byte and knows no version nor
        request.
        """
        connection = SOCKSServerConnection()
        self.assertIs(connection.state, ServerState.AWAITING_VERSION)
        self.assertIsNone(connection.version)
        self.assertIsNone(connection.request)
        self.assertIs(connection.nextEvent(), NEED_DATA)

    def test_requestOneByteAtATime(self):
        """
        A SOCKS4 request fed one byte at a time gives L{NEED_DATA} until its
        last byte arrives, then the request; the connection then waits for
        the server's reply.
        """
        connection = SOCKSServerConnection()
        for byte in SOCKS4_CONNECT[:-1]:
            connection.receiveData(bytes([byte]))
            self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.receiveData(SOCKS4_CONNECT[-1:])
        expected = SOCKS4Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080, b"alice")
        self.assertEqual(connection.nextEvent(), expected)
        self.assertEqual(connection.version, 4)
        self.assertEqual(connection.request, expected)
        self.assertIs(connection.state, ServerState.REPLYING)
        self.assertIs(connection.nextEvent(), NEED_DATA)

    def test_socks4a(self):
        """
        A SOCKS4a request gives a request for the host name.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(SOCKS4A_CONNECT)
        self.assertEqual(connection.nextEvent(), SOCKS4Request(Command.CONNECT, "example.com", 80, b"bob"))

    def test_socks4aOneByteAtATime(self):
        """
        A SOCKS4a request fed one byte at a time gives L{NEED_DATA} until the
        NUL after the host name arrives.
        """
        connection = SOCKSServerConnection()
        for byte in SOCKS4A_CONNECT[:-1]:
            connection.receiveData(bytes([byte]))
            self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.receiveData(b"\x00")
        self.assertEqual(connection.nextEvent().host, "example.com")

    def test_replySucceeded(self):
        """
        L{SOCKSServerConnection.reply} with success encodes CD 90 with the
        given port (big-endian) and IPv4 address, and starts relaying.
        """
        connection = atReply(SOCKS4_CONNECT)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv4Address("198.51.100.7"), 0x1234),
            b"\x00\x5a\x12\x34\xc6\x33\x64\x07",
        )
        self.assertIs(connection.state, ServerState.RELAYING)

    def test_replySucceededWithIPv6Address(self):
        """
        A SOCKS4 reply cannot carry an IPv6 address, so DSTIP is 0.0.0.0.
        """
        connection = atReply(SOCKS4_CONNECT)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv6Address("2001:db8::1"), 80),
            b"\x00\x5a\x00\x50\x00\x00\x00\x00",
        )

    def test_replyFailureMapsToRejected(self):
        """
        Every SOCKS5 failure code becomes CD 91 in a SOCKS4 reply, and
        closes the connection.
        """
        for code in ReplyCode:
            if code == ReplyCode.SUCCEEDED:
                continue
            connection = atReply(SOCKS4_CONNECT)
            self.assertEqual(connection.reply(code), SOCKS4_REJECTED, code)
            self.assertIs(connection.state, ServerState.CLOSED)

    def test_sendSOCKS4Reply(self):
        """
        L{SOCKSServerConnection.send} accepts a L{SOCKS4Reply} for a SOCKS4
        request; a failure code other than 91 is sent as it is.
        """
        connection = atReply(SOCKS4_CONNECT)
        self.assertEqual(
            connection.send(SOCKS4Reply(SOCKS4ReplyCode.IDENTD_MISMATCH)),
            b"\x00\x5d\x00\x00\x00\x00\x00\x00",
        )
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_trailingData(self):
        """
        Bytes that arrived with the request are given by
        L{SOCKSServerConnection.takeTrailingData} once relaying, and only
        once.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(SOCKS4_CONNECT + EARLY)
        connection.nextEvent()
        connection.reply(ReplyCode.SUCCEEDED)
        self.assertEqual(connection.takeTrailingData(), EARLY)
        self.assertEqual(connection.takeTrailingData(), b"")

    def test_bind(self):
        """
        The first successful reply to a BIND request leaves the connection
        waiting for the incoming connection; the second starts relaying.
        """
        connection = atReply(SOCKS4_BIND)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.9"), 0x1234),
            b"\x00\x5a\x12\x34\xc0\x00\x02\x09",
        )
        self.assertIs(connection.state, ServerState.BIND_WAITING)
        self.assertIs(connection.nextEvent(), NEED_DATA)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.1"), 0xABCD),
            b"\x00\x5a\xab\xcd\xc0\x00\x02\x01",
        )
        self.assertIs(connection.state, ServerState.RELAYING)

    def test_bindSecondReplyFailure(self):
        """
        A failed second reply to a BIND request closes the connection.
        """
        connection = atReply(SOCKS4_BIND)
        connection.reply(ReplyCode.SUCCEEDED)
        self.assertEqual(connection.reply(ReplyCode.TTL_EXPIRED), SOCKS4_REJECTED)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_malformedRequest(self):
        """
        A malformed SOCKS4 request raises L{RemoteProtocolError} whose reply
        is the SOCKS4 rejection: VN 0, CD 91, six zero bytes.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x04\x03\x00\x50\x7f\x00\x00\x01\x00")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x00\x5b" + b"\x00" * 6)
        self.assertEqual(error.code, 91)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_useridTooLong(self):
        """
        A USERID longer than 255 bytes is refused with the SOCKS4 rejection
        as soon as its 256th byte arrives.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 255)
        self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.receiveData(b"u")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, SOCKS4_REJECTED)

    def test_invalidSOCKS4aHostname(self):
        """
        An invalid SOCKS4a host name is refused with the SOCKS4 rejection,
        not a SOCKS5 reply.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, SOCKS4_REJECTED)

    def test_sendSOCKS5ReplyToSOCKS4Request(self):
        """
        A SOCKS5 reply to a SOCKS4 request is a local error, and leaves the
        state alone.
        """
        connection = atReply(SOCKS4_CONNECT)
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5Reply(ReplyCode.SUCCEEDED))
        self.assertIs(connection.state, ServerState.REPLYING)


class SOCKS5ServerTests(SynchronousTestCase):
    """
    SOCKS5 handshakes through L{SOCKSServerConnection}.
    """

    def test_noAuthentication(self):
        """
        A greeting is taken, the method selection is encoded, the request is
        taken, the reply is encoded, and the bytes that came with the request
        are the trailing data.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_NO_AUTH)
        self.assertEqual(connection.nextEvent(), SOCKS5Greeting((0,)))
        self.assertEqual(connection.version, 5)
        self.assertIs(connection.state, ServerState.SOCKS5_SELECTING_METHOD)
        self.assertIs(connection.nextEvent(), NEED_DATA)
        self.assertEqual(connection.send(SOCKS5MethodSelection(0)), b"\x05\x00")
        self.assertIs(connection.state, ServerState.SOCKS5_REQUEST)

        connection.receiveData(SOCKS5_CONNECT + EARLY)
        expected = SOCKS5Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080)
        self.assertEqual(connection.nextEvent(), expected)
        self.assertEqual(connection.request, expected)
        self.assertIs(connection.state, ServerState.REPLYING)
        self.assertIs(connection.nextEvent(), NEED_DATA)

        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv4Address("198.51.100.7"), 0x1234),
            b"\x05\x00\x00\x01\xc6\x33\x64\x07\x12\x34",
        )
        self.assertIs(connection.state, ServerState.RELAYING)
        self.assertEqual(connection.takeTrailingData(), EARLY)

    def test_replyDefaults(self):
        """
        L{SOCKSServerConnection.reply} with a code alone sends BND.ADDR
        0.0.0.0 and BND.PORT 0.
        """
        connection = atReply(SOCKS5_CONNECT)
        self.assertEqual(connection.reply(ReplyCode.SUCCEEDED), b"\x05\x00\x00\x01" + b"\x00" * 6)

    def test_replyIPv6(self):
        """
        A SOCKS5 reply may carry an IPv6 BND.ADDR.
        """
        connection = atReply(SOCKS5_CONNECT)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv6Address("2001:db8::1"), 0x1234),
            b"\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x12\x34",
        )

    def test_replyFailure(self):
        """
        A failure reply carries its code and closes the connection.
        """
        connection = atReply(SOCKS5_CONNECT)
        self.assertEqual(connection.reply(ReplyCode.CONNECTION_REFUSED), b"\x05\x05\x00\x01" + b"\x00" * 6)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_domainNameRequest(self):
        """
        A request for a domain name gives a request whose host is the name.
        """
        connection = atReply(SOCKS5_CONNECT_DOMAIN)
        self.assertEqual(connection.request, SOCKS5Request(Command.CONNECT, "example.com", 443))

    def test_pipelined(self):
        """
        A greeting, request and early data arriving in one piece give the
        greeting, then, once the method is sent, the request, and the early
        data once relaying.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_NO_AUTH + SOCKS5_CONNECT + EARLY)
        self.assertEqual(connection.nextEvent(), SOCKS5Greeting((0,)))
        self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.send(SOCKS5MethodSelection(0))
        self.assertEqual(
            connection.nextEvent(),
            SOCKS5Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080),
        )
        connection.reply(ReplyCode.SUCCEEDED)
        self.assertEqual(connection.takeTrailingData(), EARLY)

    def test_oneByteAtATime(self):
        """
        A greeting and a request fed one byte at a time each give
        L{NEED_DATA} until their last byte.
        """
        connection = SOCKSServerConnection()
        for byte in GREETING_NO_AUTH[:-1]:
            connection.receiveData(bytes([byte]))
            self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.receiveData(GREETING_NO_AUTH[-1:])
        self.assertEqual(connection.nextEvent(), SOCKS5Greeting((0,)))
        connection.send(SOCKS5MethodSelection(0))
        for byte in SOCKS5_BIND_IPV6[:-1]:
            connection.receiveData(bytes([byte]))
            self.assertIs(connection.nextEvent(), NEED_DATA)
        connection.receiveData(SOCKS5_BIND_IPV6[-1:])
        self.assertEqual(
            connection.nextEvent(),
            SOCKS5Request(Command.BIND, IPv6Address("2001:db8::1"), 0x1234),
        )

    def test_usernamePasswordSuccess(self):
        """
        After method 2 is selected, the RFC 1929 request is taken; a
        successful status leads on to the SOCKS5 request.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_PASSWORD)
        self.assertEqual(connection.nextEvent(), SOCKS5Greeting((2,)))
        self.assertEqual(connection.send(SOCKS5MethodSelection(2)), b"\x05\x02")
        self.assertIs(connection.state, ServerState.SOCKS5_USERNAME_PASSWORD)
        connection.receiveData(CREDENTIALS + SOCKS5_CONNECT_DOMAIN)
        self.assertEqual(connection.nextEvent(), UsernamePasswordRequest(b"alice", b"s3cret"))
        self.assertIs(connection.state, ServerState.SOCKS5_AUTHENTICATING)
        self.assertIs(connection.nextEvent(), NEED_DATA)
        self.assertEqual(connection.send(UsernamePasswordReply(0)), b"\x01\x00")
        self.assertIs(connection.state, ServerState.SOCKS5_REQUEST)
        self.assertEqual(connection.nextEvent(), SOCKS5Request(Command.CONNECT, "example.com", 443))

    def test_usernamePasswordFailure(self):
        """
        A failed RFC 1929 status is encoded and closes the connection; bytes
        that arrive afterwards are ignored.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_PASSWORD)
        connection.nextEvent()
        connection.send(SOCKS5MethodSelection(2))
        connection.receiveData(CREDENTIALS)
        connection.nextEvent()
        self.assertEqual(connection.send(UsernamePasswordReply(1)), b"\x01\x01")
        self.assertIs(connection.state, ServerState.CLOSED)
        connection.receiveData(SOCKS5_CONNECT)
        self.assertIs(connection.nextEvent(), NEED_DATA)

    def test_usernamePasswordWrongVersion(self):
        """
        An RFC 1929 request whose version is not 1 is answered with the RFC
        1929 failure status.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_PASSWORD)
        connection.nextEvent()
        connection.send(SOCKS5MethodSelection(2))
        connection.receiveData(b"\x05\x05alice\x06s3cret")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x01\x01")
        self.assertEqual(error.code, 1)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_noAcceptableMethods(self):
        """
        Selecting method 0xFF is encoded and closes the connection.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x05\x01\x01")
        connection.nextEvent()
        self.assertEqual(connection.send(SOCKS5MethodSelection(0xFF)), b"\x05\xff")
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_unsupportedMethod(self):
        """
        Selecting a method the state machine cannot carry on with (0x03,
        CHAP) is a local error.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x05\x01\x03")
        connection.nextEvent()
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5MethodSelection(3))

    def test_unknownCommand(self):
        """
        A request with an unknown command raises L{RemoteProtocolError}
        whose reply is REP 0x07 with a zero IPv4 address and port.
        """
        connection = socks5AtRequest()
        connection.receiveData(b"\x05\x09\x00\x01\xc0\x00\x02\x01\x1f\x90")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x05\x07\x00\x01" + b"\x00" * 6)
        self.assertEqual(error.code, 0x07)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_unknownAddressType(self):
        """
        A request with an unknown address type is answered with REP 0x08.
        """
        connection = socks5AtRequest()
        connection.receiveData(b"\x05\x01\x00\x02\xc0\x00\x02\x01\x1f\x90")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x05\x08\x00\x01" + b"\x00" * 6)

    def test_invalidHostname(self):
        """
        A request for a host name with a control character is answered with
        REP 0x04.
        """
        connection = socks5AtRequest()
        connection.receiveData(b"\x05\x01\x00\x03\x03a\x00b\x00\x50")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x05\x04\x00\x01" + b"\x00" * 6)

    def test_requestWrongVersion(self):
        """
        A request whose version is not 5 is answered with general failure.
        """
        connection = socks5AtRequest()
        connection.receiveData(b"\x04\x01\x00\x01\xc0\x00\x02\x01\x1f\x90")
        error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
        self.assertEqual(error.reply, b"\x05\x01\x00\x01" + b"\x00" * 6)

    def test_bind(self):
        """
        The first successful reply to a BIND request leaves the connection
        waiting; the second starts relaying.
        """
        connection = atReply(SOCKS5_BIND_IPV6)
        connection.reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.9"), 0x1234)
        self.assertIs(connection.state, ServerState.BIND_WAITING)
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)
        self.assertEqual(
            connection.reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.1"), 0xABCD),
            b"\x05\x00\x00\x01\xc0\x00\x02\x01\xab\xcd",
        )
        self.assertIs(connection.state, ServerState.RELAYING)

    def test_bindFirstReplyFailure(self):
        """
        A failed first reply to a BIND request closes the connection.
        """
        connection = atReply(SOCKS5_BIND_IPV6)
        connection.reply(ReplyCode.NOT_ALLOWED)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_udpAssociate(self):
        """
        A successful reply to UDP ASSOCIATE starts relaying at once.
        """
        connection = atReply(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
        self.assertEqual(connection.request.command, Command.UDP_ASSOCIATE)
        connection.reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.9"), 0x1234)
        self.assertIs(connection.state, ServerState.RELAYING)


class MisuseTests(SynchronousTestCase):
    """
    L{SOCKSServerConnection} refuses calls its state does not allow.
    """

    def test_sendBeforeVersion(self):
        """
        Nothing can be sent before the client has said anything.
        """
        connection = SOCKSServerConnection()
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5MethodSelection(0))
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5Reply(ReplyCode.SUCCEEDED))
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)
        self.assertIs(connection.state, ServerState.AWAITING_VERSION)

    def test_sendBeforeGreetingComplete(self):
        """
        A method selection cannot be sent while the greeting is incomplete.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x05\x02\x00")
        self.assertIs(connection.nextEvent(), NEED_DATA)
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5MethodSelection(0))

    def test_replyBeforeRequest(self):
        """
        A reply cannot be sent in answer to a greeting or before the request.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_NO_AUTH)
        connection.nextEvent()
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)
        connection.send(SOCKS5MethodSelection(0))
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)

    def test_wrongAnswerToCredentials(self):
        """
        Only an RFC 1929 reply answers an RFC 1929 request.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(GREETING_PASSWORD + CREDENTIALS)
        connection.nextEvent()
        connection.send(SOCKS5MethodSelection(2))
        connection.nextEvent()
        self.assertRaises(LocalProtocolError, connection.send, SOCKS5MethodSelection(0))
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)

    def test_sendWhileRelaying(self):
        """
        Nothing more can be sent once relaying.
        """
        connection = atReply(SOCKS5_CONNECT)
        connection.reply(ReplyCode.SUCCEEDED)
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)

    def test_sendWhenClosed(self):
        """
        Nothing can be sent once closed.
        """
        connection = atReply(SOCKS5_CONNECT)
        connection.reply(ReplyCode.GENERAL_FAILURE)
        self.assertRaises(LocalProtocolError, connection.reply, ReplyCode.SUCCEEDED)

    def test_takeTrailingDataBeforeRelaying(self):
        """
        L{SOCKSServerConnection.takeTrailingData} is a local error in every
        state before relaying, and after a failure.
        """
        connection = SOCKSServerConnection()
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)
        connection.receiveData(GREETING_NO_AUTH + SOCKS5_CONNECT + EARLY)
        connection.nextEvent()
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)
        connection.send(SOCKS5MethodSelection(0))
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)
        connection.nextEvent()
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)
        connection.reply(ReplyCode.HOST_UNREACHABLE)
        self.assertRaises(LocalProtocolError, connection.takeTrailingData)


class RemoteErrorTests(SynchronousTestCase):
    """
    Errors that are the client's fault, and the bytes that answer them.
    """

    def test_unknownVersion(self):
        """
        A first byte that is neither 4 nor 5 raises L{RemoteProtocolError}
        with nothing to send, and closes the connection.
        """
        for first in (b"\x00", b"\x03", b"\x06", b"G"):
            connection = SOCKSServerConnection()
            connection.receiveData(first + b"ET / HTTP/1.1\r\n")
            error = self.assertRaises(RemoteProtocolError, connection.nextEvent)
            self.assertEqual(error.reply, b"")
            self.assertIsNone(error.code)
            self.assertIs(connection.state, ServerState.CLOSED)

    def test_closedIgnoresData(self):
        """
        After a remote error, received bytes are ignored and no event
        follows.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(b"\x16\x03\x01")
        self.assertRaises(RemoteProtocolError, connection.nextEvent)
        connection.receiveData(SOCKS4_CONNECT)
        self.assertIs(connection.nextEvent(), NEED_DATA)

    def test_bufferLimitExact(self):
        """
        L{MAX_HANDSHAKE_BUFFER} bytes may wait before the reply.
        """
        connection = SOCKSServerConnection()
        connection.receiveData(SOCKS4_CONNECT)
        connection.receiveData(b"x" * (MAX_HANDSHAKE_BUFFER - len(SOCKS4_CONNECT)))
        self.assertEqual(connection.nextEvent().port, 8080)

    def test_bufferLimitPipelined(self):
        """
        More than L{MAX_HANDSHAKE_BUFFER} bytes arriving before the reply
        raise L{RemoteProtocolError} and close the connection.
        """
        connection = SOCKSServerConnection()
        data = GREETING_NO_AUTH + SOCKS5_CONNECT + b"x" * MAX_HANDSHAKE_BUFFER
        self.assertRaises(RemoteProtocolError, connection.receiveData, data)
        self.assertIs(connection.state, ServerState.CLOSED)

    def test_bufferLimitWhileReplying(self):
        """
        Early data piling up past L{MAX_HANDSHAKE_BUFFER} while the server
        connects is answered with a general failure reply.
        """
        connection = atReply(SOCKS5_CONNECT)
        connection.receiveData(b"x" * MAX_HANDSHAKE_BUFFER)
        error = self.assertRaises(RemoteProtocolError, connection.receiveData, b"x")
        self.assertEqual(error.reply, b"\x05\x01\x00\x01" + b"\x00" * 6)

    def test_bufferLimitSOCKS4(self):
        """
        Too much data after a SOCKS4 request is answered with the SOCKS4
        rejection.
        """
        connection = atReply(SOCKS4_CONNECT)
        error = self.assertRaises(
            RemoteProtocolError, connection.receiveData, b"x" * (MAX_HANDSHAKE_BUFFER + 1)
        )
        self.assertEqual(error.reply, SOCKS4_REJECTED)
