"""
Tests for L{socksgate.wire._udp}: the SOCKS5 UDP request header.

Vectors are written by hand from RFC 1928, section 7:
C{RSV(2)=0 FRAG ATYP DST.ADDR DST.PORT DATA}, in network byte order.
"""

from ipaddress import IPv4Address, IPv6Address

from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import MalformedMessage, UDPDatagram, parseUDPDatagram

# "hello" for 192.0.2.1 port 53 (0x0035).
IPV4_DATAGRAM = b"\x00\x00\x00\x01\xc0\x00\x02\x01\x00\x35hello"

# "payload" for example.com port 0x1234.
DOMAIN_DATAGRAM = b"\x00\x00\x00\x03\x0bexample.com\x12\x34payload"

# "x" for 2001:db8:85a3:8d3:1319:8a2e:370:7348 port 0x1234.
IPV6_DATAGRAM = b"\x00\x00\x00\x04\x20\x01\x0d\xb8\x85\xa3\x08\xd3\x13\x19\x8a\x2e\x03\x70\x73\x48\x12\x34x"
IPV6 = IPv6Address("2001:db8:85a3:8d3:1319:8a2e:370:7348")


class ParseUDPDatagramTests(SynchronousTestCase):
    """
    Tests for L{parseUDPDatagram}.
    """

    def test_ipv4(self):
        """
        A datagram for an IPv4 address parses into the address, the port and
        the payload, with fragment 0.
        """
        self.assertEqual(
            parseUDPDatagram(IPV4_DATAGRAM),
            UDPDatagram(IPv4Address("192.0.2.1"), 53, b"hello", 0),
        )

    def test_domainName(self):
        """
        A datagram for a domain name parses, its port read big-endian.
        """
        self.assertEqual(parseUDPDatagram(DOMAIN_DATAGRAM), UDPDatagram("example.com", 0x1234, b"payload"))

    def test_ipv6(self):
        """
        A datagram for an IPv6 address parses all sixteen address bytes.
        """
        self.assertEqual(parseUDPDatagram(IPV6_DATAGRAM), UDPDatagram(IPV6, 0x1234, b"x"))

    def test_emptyPayload(self):
        """
        A header without payload parses into an empty payload.
        """
        self.assertEqual(parseUDPDatagram(IPV4_DATAGRAM[:10]), UDPDatagram(IPv4Address("192.0.2.1"), 53, b""))

    def test_payloadIsEverythingAfterHeader(self):
        """
        Every byte after DST.PORT is payload, including bytes that look like
        another header.
        """
        datagram = parseUDPDatagram(IPV4_DATAGRAM + IPV4_DATAGRAM)
        self.assertEqual(datagram.data, b"hello" + IPV4_DATAGRAM)

    def test_fragment(self):
        """
        FRAG is kept as the datagram's fragment number.
        """
        datagram = parseUDPDatagram(b"\x00\x00\x81" + IPV4_DATAGRAM[3:])
        self.assertEqual(datagram.fragment, 0x81)

    def test_bytearray(self):
        """
        A datagram in a L{bytearray} parses, and its payload is L{bytes}.
        """
        for data in (IPV4_DATAGRAM, DOMAIN_DATAGRAM, IPV6_DATAGRAM):
            datagram = parseUDPDatagram(bytearray(data))
            self.assertEqual(datagram, parseUDPDatagram(data))
            self.assertIs(type(datagram.data), bytes)

    def test_truncatedHeader(self):
        """
        A datagram that ends before its header does is malformed: a whole
        datagram has arrived, so there is no more data to wait for.
        """
        for data, headerLength in ((IPV4_DATAGRAM, 10), (DOMAIN_DATAGRAM, 18), (IPV6_DATAGRAM, 22)):
            for end in range(headerLength):
                self.assertRaises(MalformedMessage, parseUDPDatagram, data[:end])

    def test_reservedNotZero(self):
        """
        A datagram whose RSV field is not zero is malformed.
        """
        for reserved in (b"\x00\x01", b"\x01\x00", b"\xff\xff"):
            self.assertRaises(MalformedMessage, parseUDPDatagram, reserved + IPV4_DATAGRAM[2:])

    def test_unknownAddressType(self):
        """
        An unknown ATYP is malformed, with reply code 0x08.
        """
        error = self.assertRaises(
            MalformedMessage, parseUDPDatagram, b"\x00\x00\x00\x02\xc0\x00\x02\x01\x00\x35"
        )
        self.assertEqual(error.reply, 0x08)

    def test_invalidDomainName(self):
        """
        An empty domain name, or one with a control character, is malformed
        with reply code 0x04.
        """
        for data in (b"\x00\x00\x00\x03\x00\x00\x35", b"\x00\x00\x00\x03\x02a\rb\x00\x35"):
            error = self.assertRaises(MalformedMessage, parseUDPDatagram, data)
            self.assertEqual(error.reply, 0x04)


class UDPDatagramToBytesTests(SynchronousTestCase):
    """
    Tests for L{UDPDatagram.toBytes}.
    """

    def test_ipv4(self):
        """
        A datagram for an IPv4 address encodes RSV, FRAG 0, ATYP 1, the
        address, the port and the payload.
        """
        self.assertEqual(UDPDatagram(IPv4Address("192.0.2.1"), 53, b"hello").toBytes(), IPV4_DATAGRAM)

    def test_domainName(self):
        """
        A datagram for a domain name encodes ATYP 3 and the length-prefixed
        name.
        """
        self.assertEqual(UDPDatagram("example.com", 0x1234, b"payload").toBytes(), DOMAIN_DATAGRAM)

    def test_ipv6(self):
        """
        A datagram for an IPv6 address encodes ATYP 4 and sixteen bytes.
        """
        self.assertEqual(UDPDatagram(IPV6, 0x1234, b"x").toBytes(), IPV6_DATAGRAM)

    def test_fragment(self):
        """
        The fragment number is encoded as FRAG.
        """
        self.assertEqual(
            UDPDatagram(IPv4Address("192.0.2.1"), 53, b"hello", 0x81).toBytes(),
            b"\x00\x00\x81" + IPV4_DATAGRAM[3:],
        )

    def test_invalidName(self):
        """
        A datagram for a name that cannot be sent cannot be encoded.
        """
        self.assertRaises(ValueError, UDPDatagram("", 53, b"").toBytes)
