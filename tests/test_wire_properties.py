"""
Property tests for L{socksgate.wire}: every message survives encoding and
parsing, and no input makes a parser or the server state machine raise
anything but the codec's own errors.
"""

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    MAX_HOSTNAME_LENGTH,
    NEED_DATA,
    Command,
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
    SOCKSProtocolError,
    SOCKSServerConnection,
    UDPDatagram,
    UsernamePasswordReply,
    UsernamePasswordRequest,
    parseSOCKS4Reply,
    parseSOCKS4Request,
    parseSOCKS5Greeting,
    parseSOCKS5MethodSelection,
    parseSOCKS5Reply,
    parseSOCKS5Request,
    parseUDPDatagram,
    parseUsernamePasswordReply,
    parseUsernamePasswordRequest,
)

modest = settings(max_examples=200, deadline=None, database=None)


def _fitHostname(name):
    """
    Shorten C{name} until its UTF-8 form is at most 255 bytes.
    """
    while len(name.encode("utf-8")) > MAX_HOSTNAME_LENGTH:
        name = name[:-1]
    return name


# Valid names: 1 to 255 UTF-8 bytes, none of them <= 0x20 or 0x7f.  UTF-8
# puts bytes below 0x80 only in ASCII characters, so leaving out those
# characters (and surrogates, which UTF-8 cannot encode) is enough.
hostnames = st.one_of(
    st.text(
        st.characters(
            exclude_categories=("Cs",),
            exclude_characters=[chr(c) for c in range(0x21)] + ["\x7f"],
        ),
        min_size=1,
        max_size=MAX_HOSTNAME_LENGTH,
    ).map(_fitHostname),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=200, max_size=255),
)
ipv4Addresses = st.ip_addresses(v=4)
# 0.0.0.x with x != 0 is the SOCKS4a marker, not an address SOCKS4 can carry.
socks4Addresses = ipv4Addresses.filter(lambda address: not 0 < int(address) < 256)
hosts = st.one_of(ipv4Addresses, st.ip_addresses(v=6), hostnames)
ports = st.integers(0, 0xFFFF)
octets = st.integers(0, 0xFF)
fields = st.binary(max_size=255)

socks4Requests = st.builds(
    SOCKS4Request,
    st.sampled_from([Command.CONNECT, Command.BIND]),
    st.one_of(socks4Addresses, hostnames),
    ports,
    fields.map(lambda userid: userid.replace(b"\x00", b"\x01")),
)
socks4Replies = st.builds(SOCKS4Reply, st.sampled_from(SOCKS4ReplyCode), ipv4Addresses, ports)
greetings = st.builds(SOCKS5Greeting, st.lists(octets, max_size=255).map(tuple))
methodSelections = st.builds(SOCKS5MethodSelection, octets)
credentials = st.builds(UsernamePasswordRequest, fields, fields)
credentialReplies = st.builds(UsernamePasswordReply, octets)
socks5Requests = st.builds(SOCKS5Request, st.sampled_from(Command), hosts, ports)
socks5Replies = st.builds(SOCKS5Reply, st.sampled_from(ReplyCode), hosts, ports)
datagrams = st.builds(UDPDatagram, hosts, ports, st.binary(max_size=512), octets)

# Each message strategy with the parser that reads it back.
MESSAGES = [
    (socks4Requests, parseSOCKS4Request),
    (socks4Replies, parseSOCKS4Reply),
    (greetings, parseSOCKS5Greeting),
    (methodSelections, parseSOCKS5MethodSelection),
    (credentials, parseUsernamePasswordRequest),
    (credentialReplies, parseUsernamePasswordReply),
    (socks5Requests, parseSOCKS5Request),
    (socks5Replies, parseSOCKS5Reply),
]
STREAM_PARSERS = [parse for _, parse in MESSAGES]

pairs = st.sampled_from(MESSAGES).flatmap(lambda pair: st.tuples(pair[0], st.just(pair[1])))


def valid(parse):
    """
    The encoded messages that C{parse} reads.
    """
    for strategy, parser in MESSAGES:
        if parser is parse:
            return strategy.map(lambda message: message.toBytes())
    return datagrams.map(lambda datagram: datagram.toBytes())


@st.composite
def mutated(draw, encodings):
    """
    Valid encodings with a few bytes replaced, then cut short or extended.
    """
    data = bytearray(draw(encodings))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(octets)
    data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=16))


anyBytes = st.binary(max_size=600)
clientBytes = st.one_of(
    anyBytes,
    mutated(st.one_of(valid(parseSOCKS4Request), valid(parseSOCKS5Greeting))),
    st.tuples(
        st.sampled_from([b"\x05\x01\x00", b"\x05\x01\x02"]),
        mutated(valid(parseUsernamePasswordRequest)),
        mutated(valid(parseSOCKS5Request)),
    ).map(b"".join),
    st.tuples(st.just(b"\x05\x01\x00"), mutated(valid(parseSOCKS5Request))).map(b"".join),
)


# A stream parser with damaged bytes of the messages it reads.
damaged = st.sampled_from(STREAM_PARSERS).flatmap(
    lambda parse: st.tuples(st.just(parse), mutated(valid(parse)))
)


def chunked(data, cuts):
    """
    Split C{data} at the offsets in C{cuts}.
    """
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in zip(points, points[1:], strict=False)]


class RoundTripTests(SynchronousTestCase):
    """
    Encoding a message and parsing the bytes gives the message back.
    """

    @modest
    @given(pairs)
    def test_roundTrip(self, pair):
        """
        Every message parses back from its own bytes into an equal message,
        taking all of them.
        """
        message, parse = pair
        data = message.toBytes()
        self.assertEqual(parse(data), (message, len(data)))

    @modest
    @given(pairs, st.binary(max_size=64))
    def test_roundTripTrailingBytes(self, pair, trailing):
        """
        Bytes after a message are left alone: the parser gives the message
        and the length of its bytes alone.
        """
        message, parse = pair
        data = message.toBytes()
        self.assertEqual(parse(data + trailing), (message, len(data)))
        self.assertEqual(parse(bytearray(data + trailing)), (message, len(data)))

    @modest
    @given(pairs, st.data())
    def test_prefixNeedsMoreData(self, pair, data):
        """
        Any proper prefix of a message parses as L{None}.
        """
        message, parse = pair
        encoded = message.toBytes()
        end = data.draw(st.integers(0, len(encoded) - 1))
        self.assertIsNone(parse(encoded[:end]))

    @modest
    @given(datagrams)
    def test_datagramRoundTrip(self, datagram):
        """
        Every UDP datagram parses back from its own bytes.
        """
        self.assertEqual(parseUDPDatagram(datagram.toBytes()), datagram)


class FuzzTests(SynchronousTestCase):
    """
    Arbitrary input never makes the codec raise anything but its own
    errors.
    """

    def assertParsesOrRefuses(self, parse, data):
        """
        Assert that C{parse} returns L{None}, returns a message and a count
        within C{data}, or raises L{SOCKSProtocolError}.
        """
        try:
            result = parse(data)
        except SOCKSProtocolError:
            return
        if result is not None:
            _, consumed = result
            self.assertTrue(0 < consumed <= len(data))

    @modest
    @given(st.sampled_from(STREAM_PARSERS), st.one_of(anyBytes, clientBytes))
    def test_streamParsers(self, parse, data):
        """
        Stream parsers, given arbitrary bytes or a L{bytearray} of them,
        return L{None} or a message, or raise L{SOCKSProtocolError}.
        """
        self.assertParsesOrRefuses(parse, data)
        self.assertParsesOrRefuses(parse, bytearray(data))

    @modest
    @given(damaged)
    def test_streamParsersMutated(self, pair):
        """
        Stream parsers given damaged valid messages return L{None} or a
        message, or raise L{SOCKSProtocolError}.
        """
        parse, data = pair
        self.assertParsesOrRefuses(parse, data)
        self.assertParsesOrRefuses(parse, bytearray(data))

    @modest
    @given(st.one_of(anyBytes, mutated(valid(parseUDPDatagram))))
    def test_datagramParser(self, data):
        """
        L{parseUDPDatagram} returns a datagram or raises
        L{SOCKSProtocolError} for any bytes.
        """
        for datagram in (data, bytearray(data)):
            try:
                parseUDPDatagram(datagram)
            except SOCKSProtocolError:
                pass

    @modest
    @given(clientBytes, st.lists(st.integers(0, 1000), max_size=20))
    def test_serverOnlyReading(self, data, cuts):
        """
        Fed any bytes in any chunks, with C{nextEvent} called after each
        chunk until it gives L{NEED_DATA}, the state machine raises nothing
        but L{SOCKSProtocolError}.
        """
        connection = SOCKSServerConnection()
        try:
            for chunk in chunked(data, cuts):
                connection.receiveData(chunk)
                while connection.nextEvent() is not NEED_DATA:
                    pass
        except SOCKSProtocolError:
            pass

    @modest
    @given(clientBytes, st.lists(st.integers(0, 1000), max_size=20), st.data())
    def test_serverAnswering(self, data, cuts, choices):
        """
        Fed any bytes in any chunks by a server that answers every message
        with a valid answer, the state machine raises nothing but
        L{RemoteProtocolError}, and ends closed, relaying or waiting.
        """
        replying = (ServerState.REPLYING, ServerState.BIND_WAITING)
        outcomes = st.sampled_from([ReplyCode.SUCCEEDED, ReplyCode.NOT_ALLOWED])
        connection = SOCKSServerConnection()
        try:
            for chunk in chunked(data, cuts):
                connection.receiveData(chunk)
                while True:
                    event = connection.nextEvent()
                    if event is NEED_DATA and connection.state in replying:
                        code = choices.draw(outcomes)
                        connection.reply(code, IPv4Address(0), 0)
                    elif isinstance(event, SOCKS5Greeting):
                        method = choices.draw(st.sampled_from([0x00, 0x02, 0xFF]))
                        connection.send(SOCKS5MethodSelection(method))
                    elif isinstance(event, UsernamePasswordRequest):
                        status = choices.draw(st.sampled_from([0x00, 0x01]))
                        connection.send(UsernamePasswordReply(status))
                    elif event is NEED_DATA:
                        break
        except RemoteProtocolError:
            self.assertIs(connection.state, ServerState.CLOSED)

    @modest
    @given(st.data())
    def test_serverHandshake(self, data):
        """
        A valid handshake followed by early data, split into any chunks,
        gives the client's messages in order and the early data once
        relaying.
        """
        version = data.draw(st.sampled_from([4, 5]))
        if version == 4:
            request = data.draw(socks4Requests.filter(lambda r: r.command == Command.CONNECT))
            expected = [request]
        else:
            request = data.draw(socks5Requests.filter(lambda r: r.command != Command.BIND))
            login = data.draw(st.one_of(st.none(), credentials))
            method = 0 if login is None else 2
            offer = data.draw(st.lists(octets, max_size=5))
            greeting = SOCKS5Greeting(tuple(offer) + (method,))
            expected = [greeting] + ([] if login is None else [login]) + [request]
        early = data.draw(st.binary(max_size=64))
        stream = b"".join(message.toBytes() for message in expected) + early
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))

        connection = SOCKSServerConnection()
        received = []
        for chunk in chunked(stream, cuts):
            connection.receiveData(chunk)
            while (event := connection.nextEvent()) is not NEED_DATA:
                received.append(event)
                if isinstance(event, SOCKS5Greeting):
                    connection.send(SOCKS5MethodSelection(method))
                elif isinstance(event, UsernamePasswordRequest):
                    connection.send(UsernamePasswordReply(0))
        self.assertEqual(received, expected)
        self.assertEqual(connection.request, request)
        connection.reply(ReplyCode.SUCCEEDED)
        self.assertIs(connection.state, ServerState.RELAYING)
        self.assertEqual(connection.takeTrailingData(), early)
