"""
Tests for L{socksgate.wire._socks5} (RFC 1928 and RFC 1929 messages) and the
address encoding of L{socksgate.wire._addresses} that they share.

Every vector is written by hand from RFC 1928 and RFC 1929; ports and
addresses are in network byte order.
"""

from ipaddress import IPv4Address, IPv6Address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    Command,
    MalformedMessage,
    Method,
    ReplyCode,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKS5Request,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    decodeHostname,
    encodeAddress,
    encodeHostname,
    parseAddress,
    parseSOCKS5Greeting,
    parseSOCKS5MethodSelection,
    parseSOCKS5Reply,
    parseSOCKS5Request,
    parseUsernamePasswordReply,
    parseUsernamePasswordRequest,
)

# Offers "no authentication" (0x00) and "username/password" (0x02).
GREETING = b"\x05\x02\x00\x02"

# RFC 1929: user "alice", password "s3cret".
CREDENTIALS = b"\x01\x05alice\x06s3cret"

# CONNECT to 192.0.2.1 port 8080 (0x1f90).
CONNECT_IPV4 = b"\x05\x01\x00\x01\xc0\x00\x02\x01\x1f\x90"

# CONNECT to example.com (11 bytes) port 443 (0x01bb).
CONNECT_DOMAIN = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"

# UDP ASSOCIATE for 2001:db8:85a3:8d3:1319:8a2e:370:7348 port 0x1234.
IPV6_BYTES = b"\x20\x01\x0d\xb8\x85\xa3\x08\xd3\x13\x19\x8a\x2e\x03\x70\x73\x48"
IPV6 = IPv6Address("2001:db8:85a3:8d3:1319:8a2e:370:7348")
ASSOCIATE_IPV6 = b"\x05\x03\x00\x04" + IPV6_BYTES + b"\x12\x34"

# A successful reply with BND.ADDR 192.0.2.1 and BND.PORT 1080 (0x0438).
REPLY_IPV4 = b"\x05\x00\x00\x01\xc0\x00\x02\x01\x04\x38"


def assertNeedsMoreForEveryPrefix(testCase, parse, data):
    """
    Assert that C{parse} returns L{None} for every proper prefix of C{data},
    from the empty one up, one byte longer each time.
    """
    for end in range(len(data)):
        testCase.assertIsNone(parse(data[:end]), data[:end])


class GreetingTests(SynchronousTestCase):
    """
    Tests for L{SOCKS5Greeting} and L{parseSOCKS5Greeting}.
    """

    def test_parse(self):
        """
        A greeting parses into the offered methods, in the client's order.
        """
        self.assertEqual(parseSOCKS5Greeting(GREETING), (SOCKS5Greeting((0, 2)), 4))

    def test_parseNoMethods(self):
        """
        A greeting with NMETHODS 0 parses into an empty offer.
        """
        self.assertEqual(parseSOCKS5Greeting(b"\x05\x00"), (SOCKS5Greeting(()), 2))

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a greeting parses as L{None}.
        """
        assertNeedsMoreForEveryPrefix(self, parseSOCKS5Greeting, GREETING)

    def test_parseTrailingBytes(self):
        """
        Bytes after a greeting, such as a pipelined request, are not consumed.
        """
        self.assertEqual(parseSOCKS5Greeting(GREETING + CONNECT_IPV4), (SOCKS5Greeting((0, 2)), 4))

    def test_parseWrongVersion(self):
        """
        A greeting whose VER is not 5 is malformed, and has no reply code,
        since RFC 1928 has no answer to it but closing.
        """
        error = self.assertRaises(MalformedMessage, parseSOCKS5Greeting, b"\x04\x01\x00")
        self.assertIsNone(error.reply)

    def test_toBytes(self):
        """
        A greeting encodes to VER, NMETHODS and the methods.
        """
        self.assertEqual(SOCKS5Greeting((0, 2)).toBytes(), GREETING)

    def test_toBytesTooManyMethods(self):
        """
        More than 255 methods cannot be encoded.
        """
        self.assertRaises(ValueError, SOCKS5Greeting(tuple(range(256))).toBytes)


class MethodSelectionTests(SynchronousTestCase):
    """
    Tests for L{SOCKS5MethodSelection} and L{parseSOCKS5MethodSelection}.
    """

    def test_parse(self):
        """
        A method selection parses into the chosen method.
        """
        self.assertEqual(
            parseSOCKS5MethodSelection(b"\x05\x02"),
            (SOCKS5MethodSelection(Method.USERNAME_PASSWORD), 2),
        )

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a method selection parses as L{None}.
        """
        assertNeedsMoreForEveryPrefix(self, parseSOCKS5MethodSelection, b"\x05\xff")

    def test_parseTrailingBytes(self):
        """
        Bytes after a method selection are not consumed.
        """
        self.assertEqual(parseSOCKS5MethodSelection(b"\x05\x00\x05\x00"), (SOCKS5MethodSelection(0), 2))

    def test_parseWrongVersion(self):
        """
        A method selection whose VER is not 5 is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS5MethodSelection, b"\x04\x00")

    def test_toBytes(self):
        """
        A method selection encodes to VER and METHOD.
        """
        self.assertEqual(SOCKS5MethodSelection(Method.NO_ACCEPTABLE_METHODS).toBytes(), b"\x05\xff")


class UsernamePasswordRequestTests(SynchronousTestCase):
    """
    Tests for L{UsernamePasswordRequest} and L{parseUsernamePasswordRequest}.
    """

    def test_parse(self):
        """
        An RFC 1929 request parses into the user name and password.
        """
        self.assertEqual(
            parseUsernamePasswordRequest(CREDENTIALS),
            (UsernamePasswordRequest(b"alice", b"s3cret"), 14),
        )

    def test_parseEmptyFields(self):
        """
        A request with ULEN 0 and PLEN 0 parses into empty fields.
        """
        self.assertEqual(
            parseUsernamePasswordRequest(b"\x01\x00\x00"), (UsernamePasswordRequest(b"", b""), 3)
        )

    def test_parseLongestFields(self):
        """
        A user name and a password of 255 bytes each parse.
        """
        data = b"\x01\xff" + b"u" * 255 + b"\xff" + b"p" * 255
        self.assertEqual(
            parseUsernamePasswordRequest(data),
            (UsernamePasswordRequest(b"u" * 255, b"p" * 255), 513),
        )

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a request parses as L{None}.
        """
        assertNeedsMoreForEveryPrefix(self, parseUsernamePasswordRequest, CREDENTIALS)

    def test_parseTrailingBytes(self):
        """
        Bytes after a request are not consumed.
        """
        _, consumed = parseUsernamePasswordRequest(CREDENTIALS + CONNECT_IPV4)
        self.assertEqual(consumed, 14)

    def test_parseWrongVersion(self):
        """
        A request whose VER is not 1 is malformed.
        """
        for data in (b"\x05", b"\x00\x05alice\x06s3cret", b"\x05\x05alice\x06s3cret"):
            self.assertRaises(MalformedMessage, parseUsernamePasswordRequest, data)

    def test_toBytes(self):
        """
        A request encodes to VER 1, ULEN, UNAME, PLEN and PASSWD.
        """
        self.assertEqual(UsernamePasswordRequest(b"alice", b"s3cret").toBytes(), CREDENTIALS)

    def test_toBytesTooLong(self):
        """
        A user name or a password longer than 255 bytes cannot be encoded.
        """
        self.assertRaises(ValueError, UsernamePasswordRequest(b"u" * 256, b"p").toBytes)
        self.assertRaises(ValueError, UsernamePasswordRequest(b"u", b"p" * 256).toBytes)

    def test_reprHidesPassword(self):
        """
        The C{repr} of a request shows the user name but not the password.
        """
        text = repr(UsernamePasswordRequest(b"alice", b"s3cret"))
        self.assertIn("alice", text)
        self.assertNotIn("s3cret", text)


class UsernamePasswordReplyTests(SynchronousTestCase):
    """
    Tests for L{UsernamePasswordReply} and L{parseUsernamePasswordReply}.
    """

    def test_parseSuccess(self):
        """
        STATUS 0 parses into a successful reply.
        """
        reply, consumed = parseUsernamePasswordReply(b"\x01\x00")
        self.assertEqual((reply, consumed), (UsernamePasswordReply(0), 2))
        self.assertTrue(reply.succeeded)

    def test_parseFailure(self):
        """
        Any STATUS but 0 parses into a failed reply.
        """
        for status in (1, 2, 0xFF):
            reply, _ = parseUsernamePasswordReply(bytes([1, status]))
            self.assertEqual(reply.status, status)
            self.assertFalse(reply.succeeded)

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a reply parses as L{None}.
        """
        assertNeedsMoreForEveryPrefix(self, parseUsernamePasswordReply, b"\x01\x00")

    def test_parseTrailingBytes(self):
        """
        Bytes after a reply are not consumed.
        """
        self.assertEqual(parseUsernamePasswordReply(b"\x01\x01\x05\x00"), (UsernamePasswordReply(1), 2))

    def test_parseWrongVersion(self):
        """
        A reply whose VER is not 1 is malformed.
        """
        self.assertRaises(MalformedMessage, parseUsernamePasswordReply, b"\x05\x00")

    def test_toBytes(self):
        """
        A reply encodes to VER 1 and STATUS.
        """
        self.assertEqual(UsernamePasswordReply(0).toBytes(), b"\x01\x00")
        self.assertEqual(UsernamePasswordReply(1).toBytes(), b"\x01\x01")


class RequestTests(SynchronousTestCase):
    """
    Tests for L{SOCKS5Request} and L{parseSOCKS5Request}.
    """

    def test_parseIPv4(self):
        """
        A CONNECT request to an IPv4 address parses, its port read big-endian.
        """
        self.assertEqual(
            parseSOCKS5Request(CONNECT_IPV4),
            (SOCKS5Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080), 10),
        )

    def test_parseDomainName(self):
        """
        A CONNECT request to a domain name parses into the name as text.
        """
        self.assertEqual(
            parseSOCKS5Request(CONNECT_DOMAIN),
            (SOCKS5Request(Command.CONNECT, "example.com", 443), 18),
        )

    def test_parseIPv6(self):
        """
        A UDP ASSOCIATE request to an IPv6 address parses all sixteen address
        bytes in order, and port 0x1234 big-endian.
        """
        self.assertEqual(
            parseSOCKS5Request(ASSOCIATE_IPV6),
            (SOCKS5Request(Command.UDP_ASSOCIATE, IPV6, 0x1234), 22),
        )

    def test_parseBind(self):
        """
        A BIND request parses.
        """
        data = b"\x05\x02\x00\x01\x0a\x00\x00\x01\x00\x00"
        self.assertEqual(
            parseSOCKS5Request(data), (SOCKS5Request(Command.BIND, IPv4Address("10.0.0.1"), 0), 10)
        )

    def test_parseBytearray(self):
        """
        Requests held in a L{bytearray}, as the server state machine holds
        them, parse as they do in L{bytes}.
        """
        for data in (CONNECT_IPV4, CONNECT_DOMAIN, ASSOCIATE_IPV6):
            self.assertEqual(parseSOCKS5Request(bytearray(data)), parseSOCKS5Request(data))

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a request parses as L{None}, for each address
        type.
        """
        for data in (CONNECT_IPV4, CONNECT_DOMAIN, ASSOCIATE_IPV6):
            assertNeedsMoreForEveryPrefix(self, parseSOCKS5Request, data)

    def test_parseTrailingBytes(self):
        """
        Bytes after a request are not consumed.
        """
        for data in (CONNECT_IPV4, CONNECT_DOMAIN, ASSOCIATE_IPV6):
            _, consumed = parseSOCKS5Request(data + b"\x05\x01\x00\x01trailing")
            self.assertEqual(consumed, len(data))

    def test_parseWrongVersion(self):
        """
        A request whose VER is not 5 is malformed, answered with general
        failure.
        """
        error = self.assertRaises(
            MalformedMessage, parseSOCKS5Request, b"\x04\x01\x00\x01\xc0\x00\x02\x01\x1f\x90"
        )
        self.assertEqual(error.reply, ReplyCode.GENERAL_FAILURE)

    def test_parseUnknownCommand(self):
        """
        An unknown CMD is malformed, answered with "command not supported"
        (0x07), as soon as CMD has arrived.
        """
        for command in (0x00, 0x04, 0xFF):
            error = self.assertRaises(MalformedMessage, parseSOCKS5Request, bytes([5, command]))
            self.assertEqual(error.reply, 0x07)

    def test_parseUnknownAddressType(self):
        """
        An unknown ATYP is malformed, answered with "address type not
        supported" (0x08).
        """
        for addressType in (0x00, 0x02, 0x05, 0xFF):
            data = bytes([5, 1, 0, addressType]) + b"\xc0\x00\x02\x01\x1f\x90"
            error = self.assertRaises(MalformedMessage, parseSOCKS5Request, data)
            self.assertEqual(error.reply, 0x08)

    def test_parseEmptyDomainName(self):
        """
        A domain name of length 0 is malformed, answered with "host
        unreachable" (0x04).
        """
        error = self.assertRaises(MalformedMessage, parseSOCKS5Request, b"\x05\x01\x00\x03\x00\x00\x50")
        self.assertEqual(error.reply, 0x04)

    def test_parseDomainNameWithControlCharacter(self):
        """
        A domain name holding a control character (newline, NUL, ESC), a
        space or DEL is malformed, answered with 0x04.
        """
        for name in (b"a\nbc", b"ab\x00c", b"\x1babc", b"ab c", b"abc\x7f"):
            data = b"\x05\x01\x00\x03\x04" + name + b"\x00\x50"
            error = self.assertRaises(MalformedMessage, parseSOCKS5Request, data)
            self.assertEqual(error.reply, 0x04)

    def test_parseDomainNameNotUTF8(self):
        """
        A domain name that is not UTF-8 is malformed, answered with 0x04.
        """
        error = self.assertRaises(
            MalformedMessage, parseSOCKS5Request, b"\x05\x01\x00\x03\x02\xff\xfe\x00\x50"
        )
        self.assertEqual(error.reply, 0x04)

    def test_toBytesIPv4(self):
        """
        A request to an IPv4 address encodes VER, CMD, RSV 0, ATYP 1, the
        address and the port in network byte order.
        """
        request = SOCKS5Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080)
        self.assertEqual(request.toBytes(), CONNECT_IPV4)

    def test_toBytesDomainName(self):
        """
        A request to a domain name encodes ATYP 3 and the length-prefixed name.
        """
        request = SOCKS5Request(Command.CONNECT, "example.com", 443)
        self.assertEqual(request.toBytes(), CONNECT_DOMAIN)

    def test_toBytesIPv6(self):
        """
        A request to an IPv6 address encodes ATYP 4 and all sixteen bytes.
        """
        request = SOCKS5Request(Command.UDP_ASSOCIATE, IPV6, 0x1234)
        self.assertEqual(request.toBytes(), ASSOCIATE_IPV6)

    def test_toBytesInvalidName(self):
        """
        A request to a name that cannot be sent cannot be encoded.
        """
        for name in ("", "a b", "x" * 256):
            self.assertRaises(ValueError, SOCKS5Request(Command.CONNECT, name, 80).toBytes)


class ReplyTests(SynchronousTestCase):
    """
    Tests for L{SOCKS5Reply} and L{parseSOCKS5Reply}.
    """

    def test_parse(self):
        """
        A reply parses into REP, BND.ADDR and BND.PORT.
        """
        self.assertEqual(
            parseSOCKS5Reply(REPLY_IPV4),
            (SOCKS5Reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.1"), 1080), 10),
        )

    def test_parseIPv6(self):
        """
        A reply with an IPv6 BND.ADDR parses.
        """
        data = b"\x05\x00\x00\x04" + IPV6_BYTES + b"\x12\x34"
        self.assertEqual(parseSOCKS5Reply(data), (SOCKS5Reply(ReplyCode.SUCCEEDED, IPV6, 0x1234), 22))

    def test_parseEveryCode(self):
        """
        Each REP from 0x00 to 0x08 parses.
        """
        for code in range(9):
            reply, _ = parseSOCKS5Reply(bytes([5, code, 0, 1]) + b"\x00" * 6)
            self.assertEqual(reply.reply, code)

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a reply parses as L{None}.
        """
        assertNeedsMoreForEveryPrefix(self, parseSOCKS5Reply, REPLY_IPV4)

    def test_parseTrailingBytes(self):
        """
        Bytes after a reply are not consumed.
        """
        _, consumed = parseSOCKS5Reply(REPLY_IPV4 + b"HTTP/1.0 200 OK\r\n")
        self.assertEqual(consumed, 10)

    def test_parseWrongVersion(self):
        """
        A reply whose VER is not 5 is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS5Reply, b"\x04" + REPLY_IPV4[1:])

    def test_parseUnknownCode(self):
        """
        A REP above 0x08 is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS5Reply, b"\x05\x09" + REPLY_IPV4[2:])

    def test_parseUnknownAddressType(self):
        """
        A reply with an unknown ATYP is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS5Reply, b"\x05\x00\x00\x02\x00\x00\x00\x00\x00\x00")

    def test_toBytes(self):
        """
        A reply encodes VER, REP, RSV 0 and the address.
        """
        reply = SOCKS5Reply(ReplyCode.SUCCEEDED, IPv4Address("192.0.2.1"), 1080)
        self.assertEqual(reply.toBytes(), REPLY_IPV4)

    def test_toBytesDefaults(self):
        """
        A reply built from a code alone carries 0.0.0.0 port 0.
        """
        self.assertEqual(
            SOCKS5Reply(ReplyCode.CONNECTION_REFUSED).toBytes(),
            b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00",
        )

    def test_toBytesDomainName(self):
        """
        A reply may carry a domain name as BND.ADDR.
        """
        self.assertEqual(
            SOCKS5Reply(ReplyCode.SUCCEEDED, "example.com", 443).toBytes(),
            b"\x05\x00\x00\x03\x0bexample.com\x01\xbb",
        )


class AddressTests(SynchronousTestCase):
    """
    Tests for L{encodeAddress}, L{parseAddress}, L{encodeHostname} and
    L{decodeHostname}.
    """

    def test_encodeIPv4(self):
        """
        An IPv4 address encodes as ATYP 1, four bytes and the port.
        """
        self.assertEqual(encodeAddress(IPv4Address("192.0.2.1"), 0x1234), b"\x01\xc0\x00\x02\x01\x12\x34")

    def test_encodeIPv6(self):
        """
        An IPv6 address encodes as ATYP 4, sixteen bytes and the port.
        """
        self.assertEqual(encodeAddress(IPV6, 0x1234), b"\x04" + IPV6_BYTES + b"\x12\x34")

    def test_encodeDomainName(self):
        """
        A name encodes as ATYP 3, its UTF-8 length, its UTF-8 bytes and the
        port.
        """
        self.assertEqual(encodeAddress("b\u00fccher.example", 80), b"\x03\x0fb\xc3\xbccher.example\x00\x50")

    def test_parseAtOffset(self):
        """
        L{parseAddress} starts at the given offset and returns the offset
        just past the port.
        """
        data = b"xyz\x01\xc0\x00\x02\x01\x12\x34rest"
        self.assertEqual(parseAddress(data, 3), (IPv4Address("192.0.2.1"), 0x1234, 10))

    def test_parseUTF8Name(self):
        """
        A domain name is decoded from UTF-8.
        """
        data = b"\x03\x0fb\xc3\xbccher.example\x00\x50"
        self.assertEqual(parseAddress(data, 0), ("b\u00fccher.example", 80, len(data)))

    def test_parseLongestName(self):
        """
        A domain name of 255 bytes parses.
        """
        data = b"\x03\xff" + b"h" * 255 + b"\x00\x50"
        self.assertEqual(parseAddress(data, 0), ("h" * 255, 80, 259))

    def test_decodeHostnameReplyCode(self):
        """
        L{decodeHostname} raises with the reply code it is given.
        """
        error = self.assertRaises(MalformedMessage, decodeHostname, b"", 0x01)
        self.assertEqual(error.reply, 0x01)

    def test_decodeHostnameTooLong(self):
        """
        A name of 256 bytes is malformed.
        """
        self.assertRaises(MalformedMessage, decodeHostname, b"h" * 256)

    def test_encodeHostnameRefusesWhatDecodeRefuses(self):
        """
        L{encodeHostname} raises L{ValueError} for a name that
        L{decodeHostname} would refuse.
        """
        for name in ("", "a b", "a\x00b", "a\x7fb", "h" * 256, "\u00fc" * 128):
            self.assertRaises(ValueError, encodeHostname, name)

    def test_encodeHostname(self):
        """
        L{encodeHostname} gives the UTF-8 bytes of a valid name.
        """
        self.assertEqual(encodeHostname("b\u00fccher.example"), b"b\xc3\xbccher.example")
