"""
Tests for L{socksgate.wire._socks4}: SOCKS4 and SOCKS4a requests and replies.

Every vector is written by hand from the SOCKS4 protocol document and the
SOCKS4a extension: a request is C{VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL},
SOCKS4a sets DSTIP to C{0.0.0.x} (x != 0) and appends C{HOSTNAME NUL}, and
a reply is C{VN=0 CD DSTPORT(2) DSTIP(4)}, all in network byte order.
"""

from ipaddress import IPv4Address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    Command,
    MalformedMessage,
    ReplyCode,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS4Request,
    parseSOCKS4Reply,
    parseSOCKS4Request,
)

# CONNECT to 192.0.2.1 port 8080 (0x1f90) for USERID "alice".
CONNECT = b"\x04\x01\x1f\x90\xc0\x00\x02\x01alice\x00"

# BIND to 10.0.0.1 port 0x1234 with an empty USERID.
BIND = b"\x04\x02\x12\x34\x0a\x00\x00\x01\x00"

# SOCKS4a CONNECT to example.com port 80 (0x0050) for USERID "bob".
SOCKS4A = b"\x04\x01\x00\x50\x00\x00\x00\x01bob\x00example.com\x00"

# A granted reply carrying 198.51.100.7 port 0x1234.
GRANTED = b"\x00\x5a\x12\x34\xc6\x33\x64\x07"

# The header of a SOCKS4a CONNECT to port 80, before USERID.
SOCKS4A_HEADER = b"\x04\x01\x00\x50\x00\x00\x00\x01"


class SOCKS4RequestParseTests(SynchronousTestCase):
    """
    Tests for L{parseSOCKS4Request}.
    """

    def assertNeedsMoreForEveryPrefix(self, data):
        """
        Assert that every proper prefix of C{data}, fed one byte longer each
        time, makes L{parseSOCKS4Request} ask for more data.
        """
        for end in range(len(data)):
            self.assertIsNone(parseSOCKS4Request(data[:end]), data[:end])

    def test_connect(self):
        """
        A SOCKS4 CONNECT request parses into its command, IPv4 address, port
        (in network byte order) and USERID, and takes all of its bytes.
        """
        self.assertEqual(
            parseSOCKS4Request(CONNECT),
            (SOCKS4Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080, b"alice"), 14),
        )

    def test_connectIsNotSOCKS4a(self):
        """
        A request with a real DSTIP is not a SOCKS4a request.
        """
        request, _ = parseSOCKS4Request(CONNECT)
        self.assertFalse(request.isSOCKS4a)

    def test_bindWithEmptyUserid(self):
        """
        A BIND request with an empty USERID parses, and port 0x1234 is read
        big-endian.
        """
        self.assertEqual(
            parseSOCKS4Request(BIND),
            (SOCKS4Request(Command.BIND, IPv4Address("10.0.0.1"), 0x1234, b""), 9),
        )

    def test_socks4aRequestWithHostname(self):
        """
        A request whose DSTIP is 0.0.0.1 carries a host name after USERID;
        it parses into a request whose host is that name.
        """
        request, consumed = parseSOCKS4Request(SOCKS4A)
        self.assertEqual(request, SOCKS4Request(Command.CONNECT, "example.com", 80, b"bob"))
        self.assertTrue(request.isSOCKS4a)
        self.assertEqual(consumed, len(SOCKS4A))

    def test_socks4aMarkerAnyLastOctet(self):
        """
        Any DSTIP of the form 0.0.0.x with x != 0, here 0.0.0.255, marks a
        SOCKS4a request.
        """
        data = b"\x04\x01\x00\x50\x00\x00\x00\xff\x00example.com\x00"
        self.assertEqual(
            parseSOCKS4Request(data),
            (SOCKS4Request(Command.CONNECT, "example.com", 80), len(data)),
        )

    def test_dstipZeroIsNotSOCKS4a(self):
        """
        DSTIP 0.0.0.0 is a plain SOCKS4 address, not the SOCKS4a marker, so
        no host name is read after USERID.
        """
        data = b"\x04\x01\x00\x50\x00\x00\x00\x00\x00"
        self.assertEqual(
            parseSOCKS4Request(data),
            (SOCKS4Request(Command.CONNECT, IPv4Address("0.0.0.0"), 80), 9),
        )

    def test_socks4aUTF8Hostname(self):
        """
        A SOCKS4a host name is decoded from UTF-8.
        """
        data = SOCKS4A_HEADER + b"\x00b\xc3\xbccher.example\x00"
        request, _ = parseSOCKS4Request(data)
        self.assertEqual(request.host, "b\u00fccher.example")

    def test_connectEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a SOCKS4 request, including the empty one,
        parses as L{None}.
        """
        self.assertNeedsMoreForEveryPrefix(CONNECT)
        self.assertNeedsMoreForEveryPrefix(BIND)

    def test_socks4aEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a SOCKS4a request parses as L{None}, including
        those that end after the USERID's NUL but before the host name's.
        """
        self.assertNeedsMoreForEveryPrefix(SOCKS4A)

    def test_connectTrailingBytes(self):
        """
        Bytes after a SOCKS4 request are not consumed.
        """
        self.assertEqual(
            parseSOCKS4Request(CONNECT + b"GET / HTTP/1.0\r\n"),
            (SOCKS4Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080, b"alice"), 14),
        )

    def test_socks4aTrailingBytes(self):
        """
        Bytes after a SOCKS4a request, including further NULs, are not
        consumed.
        """
        result = parseSOCKS4Request(SOCKS4A + b"\x00\x16\x03\x01")
        self.assertEqual(result[1], len(SOCKS4A))

    def test_bytearrayInput(self):
        """
        A request held in a L{bytearray} parses as it does in L{bytes}, and
        its USERID is returned as L{bytes}.
        """
        request, consumed = parseSOCKS4Request(bytearray(CONNECT))
        self.assertEqual(request.host, IPv4Address("192.0.2.1"))
        self.assertIs(type(request.userid), bytes)
        self.assertEqual(consumed, 14)

    def test_wrongVersion(self):
        """
        A request whose VN is not 4 is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS4Request, b"\x05\x01\x1f\x90\xc0\x00\x02\x01\x00")

    def test_wrongVersionFirstByte(self):
        """
        A wrong VN is refused as soon as the first byte has arrived.
        """
        self.assertRaises(MalformedMessage, parseSOCKS4Request, b"\x05")

    def test_unknownCommand(self):
        """
        A CD other than CONNECT (1) or BIND (2) is malformed; SOCKS4 has no
        UDP ASSOCIATE (3).
        """
        for command in (b"\x00", b"\x03", b"\xff"):
            data = b"\x04" + command + b"\x00\x50\x7f\x00\x00\x01\x00"
            self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_useridOf255Bytes(self):
        """
        A USERID of 255 bytes, the most socksgate accepts, parses.
        """
        userid = b"u" * 255
        data = b"\x04\x01\x00\x50\x7f\x00\x00\x01" + userid + b"\x00"
        request, consumed = parseSOCKS4Request(data)
        self.assertEqual(request.userid, userid)
        self.assertEqual(consumed, 8 + 255 + 1)

    def test_useridOf255BytesWithoutNULNeedsMoreData(self):
        """
        255 USERID bytes without a NUL yet may still become a valid request.
        """
        data = b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 255
        self.assertIsNone(parseSOCKS4Request(data))

    def test_useridTooLong(self):
        """
        256 USERID bytes without a NUL are malformed at once, rather than
        asking for more data and letting the buffer grow.
        """
        data = b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 256
        self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_useridTooLongWithNUL(self):
        """
        A USERID of 256 bytes is malformed even when its NUL has arrived.
        """
        data = b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 256 + b"\x00"
        self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_useridVeryLong(self):
        """
        A USERID of 10,000 bytes without NUL is malformed.
        """
        data = b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 10000
        self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_socks4aHostnameTooLong(self):
        """
        A SOCKS4a host name of 10,000 bytes without NUL is malformed.
        """
        data = SOCKS4A_HEADER + b"\x00" + b"h" * 10000
        self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_socks4aHostnameOf256Bytes(self):
        """
        A SOCKS4a host name of 256 bytes is malformed even with its NUL.
        """
        data = SOCKS4A_HEADER + b"\x00" + b"h" * 256 + b"\x00"
        self.assertRaises(MalformedMessage, parseSOCKS4Request, data)

    def test_socks4aHostnameOf255Bytes(self):
        """
        A SOCKS4a host name of 255 bytes parses.
        """
        data = SOCKS4A_HEADER + b"\x00" + b"h" * 255 + b"\x00"
        request, consumed = parseSOCKS4Request(data)
        self.assertEqual(request.host, "h" * 255)
        self.assertEqual(consumed, len(data))

    def test_socks4aEmptyHostname(self):
        """
        An empty SOCKS4a host name is malformed, with the SOCKS5 reply code
        for an unreachable host.
        """
        error = self.assertRaises(MalformedMessage, parseSOCKS4Request, SOCKS4A_HEADER + b"\x00\x00")
        self.assertEqual(error.reply, ReplyCode.HOST_UNREACHABLE)

    def test_socks4aInvalidHostname(self):
        """
        A SOCKS4a host name with a space, a control character, DEL or bytes
        that are not UTF-8 is malformed.
        """
        for name in (b"a b", b"a\tb", b"a\x7fb", b"\xff\xfe"):
            data = SOCKS4A_HEADER + b"\x00" + name + b"\x00"
            error = self.assertRaises(MalformedMessage, parseSOCKS4Request, data)
            self.assertEqual(error.reply, ReplyCode.HOST_UNREACHABLE)


class SOCKS4RequestToBytesTests(SynchronousTestCase):
    """
    Tests for L{SOCKS4Request.toBytes}.
    """

    def test_connect(self):
        """
        A SOCKS4 CONNECT request encodes to VN, CD, the port and address in
        network byte order, and the NUL-terminated USERID.
        """
        request = SOCKS4Request(Command.CONNECT, IPv4Address("192.0.2.1"), 8080, b"alice")
        self.assertEqual(request.toBytes(), CONNECT)

    def test_bind(self):
        """
        A BIND request with the default USERID encodes port 0x1234 big-endian
        and an empty USERID.
        """
        request = SOCKS4Request(Command.BIND, IPv4Address("10.0.0.1"), 0x1234)
        self.assertEqual(request.toBytes(), BIND)

    def test_socks4a(self):
        """
        A request to a host name encodes DSTIP 0.0.0.1 and appends the
        NUL-terminated name.
        """
        request = SOCKS4Request(Command.CONNECT, "example.com", 80, b"bob")
        self.assertEqual(request.toBytes(), SOCKS4A)

    def test_useridTooLong(self):
        """
        A USERID longer than 255 bytes cannot be encoded.
        """
        request = SOCKS4Request(Command.CONNECT, IPv4Address("10.0.0.1"), 80, b"u" * 256)
        self.assertRaises(ValueError, request.toBytes)

    def test_useridWithNUL(self):
        """
        A USERID holding a NUL cannot be encoded.
        """
        request = SOCKS4Request(Command.CONNECT, IPv4Address("10.0.0.1"), 80, b"a\x00b")
        self.assertRaises(ValueError, request.toBytes)

    def test_invalidHostname(self):
        """
        A host name that could not be parsed back cannot be encoded.
        """
        for name in ("", "a b", "h" * 256):
            request = SOCKS4Request(Command.CONNECT, name, 80)
            self.assertRaises(ValueError, request.toBytes)

    def test_socks4aMarkerAddress(self):
        """
        An IPv4 address 0.0.0.x with x != 0 cannot be encoded, since it would
        be read back as the SOCKS4a marker; 0.0.0.0 can.
        """
        for last in (1, 7, 255):
            request = SOCKS4Request(Command.CONNECT, IPv4Address(last), 80)
            self.assertRaises(ValueError, request.toBytes)
        request = SOCKS4Request(Command.CONNECT, IPv4Address(0), 80)
        self.assertEqual(request.toBytes(), b"\x04\x01\x00\x50\x00\x00\x00\x00\x00")


class SOCKS4ReplyTests(SynchronousTestCase):
    """
    Tests for L{SOCKS4Reply} and L{parseSOCKS4Reply}.
    """

    def test_parseGranted(self):
        """
        A reply parses into its CD, DSTIP and DSTPORT (big-endian), and takes
        eight bytes.
        """
        self.assertEqual(
            parseSOCKS4Reply(GRANTED),
            (SOCKS4Reply(SOCKS4ReplyCode.GRANTED, IPv4Address("198.51.100.7"), 0x1234), 8),
        )

    def test_parseEveryCode(self):
        """
        Each of the four reply codes 90 to 93 parses.
        """
        for code in (0x5A, 0x5B, 0x5C, 0x5D):
            reply, _ = parseSOCKS4Reply(bytes([0, code]) + b"\x00" * 6)
            self.assertEqual(reply.code, code)

    def test_parseEveryPrefixNeedsMoreData(self):
        """
        Every proper prefix of a reply parses as L{None}.
        """
        for end in range(len(GRANTED)):
            self.assertIsNone(parseSOCKS4Reply(GRANTED[:end]))

    def test_parseTrailingBytes(self):
        """
        Bytes after a reply are not consumed.
        """
        _, consumed = parseSOCKS4Reply(GRANTED + b"\x00\x5a")
        self.assertEqual(consumed, 8)

    def test_parseWrongVersion(self):
        """
        A reply whose VN is not 0 is malformed.
        """
        self.assertRaises(MalformedMessage, parseSOCKS4Reply, b"\x04\x5a" + b"\x00" * 6)

    def test_parseUnknownCode(self):
        """
        A reply whose CD is not one of 90 to 93 is malformed.
        """
        for code in (b"\x00", b"\x59", b"\x5e"):
            self.assertRaises(MalformedMessage, parseSOCKS4Reply, b"\x00" + code + b"\x00" * 6)

    def test_toBytes(self):
        """
        A reply encodes to VN 0, CD, DSTPORT and DSTIP in network byte order.
        """
        reply = SOCKS4Reply(SOCKS4ReplyCode.GRANTED, IPv4Address("198.51.100.7"), 0x1234)
        self.assertEqual(reply.toBytes(), GRANTED)

    def test_toBytesDefaults(self):
        """
        A reply built from a code alone carries address 0.0.0.0 and port 0.
        """
        self.assertEqual(
            SOCKS4Reply(SOCKS4ReplyCode.REJECTED).toBytes(),
            b"\x00\x5b\x00\x00\x00\x00\x00\x00",
        )
