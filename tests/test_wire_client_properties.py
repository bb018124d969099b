"""
Property tests for L{socksgate.wire.SOCKSClientConnection}: every message
the client role writes is read back by the server role, every answer the
server role writes is read back by the client role, however the bytes are
cut, and no input makes the client role raise anything but the codec's own
errors.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from socksgate.wire import (
    NEED_DATA,
    ClientState,
    Command,
    Method,
    ReplyCode,
    SOCKS4Reply,
    SOCKS4ReplyCode,
    SOCKS5Greeting,
    SOCKS5MethodSelection,
    SOCKS5Reply,
    SOCKSClientConnection,
    SOCKSProtocolError,
    SOCKSServerConnection,
    UsernamePasswordReply,
)

from .test_wire_properties import (
    chunked,
    credentials,
    hosts,
    ipv4Addresses,
    modest,
    ports,
    socks4Requests,
    socks5Requests,
)


def deliver(testCase, data, cuts, receiver):
    """
    Feed C{data} to C{receiver} in the pieces C{cuts} makes, and take its
    one event once the last piece is in.
    """
    pieces = chunked(data, cuts)
    for piece in pieces[:-1]:
        receiver.receiveData(piece)
        testCase.assertIs(receiver.nextEvent(), NEED_DATA)
    receiver.receiveData(pieces[-1] if pieces else b"")
    return receiver.nextEvent()


offers = st.lists(
    st.sampled_from([Method.NO_AUTHENTICATION, Method.USERNAME_PASSWORD]), min_size=1, max_size=4
)
cuts = st.lists(st.integers(0, 600), max_size=6)
trailing = st.binary(max_size=64)


class ClientServerRoundTripTests(SynchronousTestCase):
    """
    The two roles of the codec understand each other.
    """

    @modest
    @given(offers, st.data(), credentials, socks5Requests, hosts, ports, trailing, cuts)
    def test_socks5Handshake(self, methods, data, login, request, boundHost, boundPort, extra, cut):
        """
        A SOCKS5 handshake, with or without RFC 1929 and with BIND's second
        reply, goes through both roles message for message, and the bytes
        after the last reply are the client's trailing data.
        """
        client, server = SOCKSClientConnection(), SOCKSServerConnection()
        greeting = SOCKS5Greeting(tuple(methods))
        self.assertEqual(deliver(self, client.send(greeting), cut, server), greeting)
        selection = SOCKS5MethodSelection(
            data.draw(st.sampled_from([*methods, Method.NO_ACCEPTABLE_METHODS]))
        )
        self.assertEqual(deliver(self, server.send(selection), cut, client), selection)
        if selection.method == Method.NO_ACCEPTABLE_METHODS:
            self.assertIs(client.state, ClientState.CLOSED)
            return
        if selection.method == Method.USERNAME_PASSWORD:
            self.assertEqual(deliver(self, client.send(login), cut, server), login)
            status = UsernamePasswordReply(data.draw(st.integers(0, 255)))
            self.assertEqual(deliver(self, server.send(status), cut, client), status)
            if not status.succeeded:
                self.assertIs(client.state, ClientState.CLOSED)
                return
        self.assertEqual(deliver(self, client.send(request), cut, server), request)
        replies = [SOCKS5Reply(data.draw(st.sampled_from(ReplyCode)), boundHost, boundPort)]
        if request.command == Command.BIND and replies[0].reply == ReplyCode.SUCCEEDED:
            replies.append(SOCKS5Reply(data.draw(st.sampled_from(ReplyCode)), boundHost, boundPort))
        for reply in replies:
            self.assertEqual(deliver(self, server.send(reply), cut, client), reply)
        if replies[-1].reply != ReplyCode.SUCCEEDED:
            self.assertIs(client.state, ClientState.CLOSED)
            return
        self.assertIs(client.state, ClientState.RELAYING)
        client.receiveData(extra)
        self.assertIs(client.nextEvent(), NEED_DATA)
        self.assertEqual(client.takeTrailingData(), extra)

    @modest
    @given(socks4Requests, st.data(), ipv4Addresses, ports, trailing, cuts)
    def test_socks4Handshake(self, request, data, boundHost, boundPort, extra, cut):
        """
        A SOCKS4 or SOCKS4a request reaches the server role as sent, and its
        replies (two for a granted BIND) reach the client role as sent.
        """
        client, server = SOCKSClientConnection(), SOCKSServerConnection()
        self.assertEqual(deliver(self, client.send(request), cut, server), request)
        replies = [SOCKS4Reply(data.draw(st.sampled_from(SOCKS4ReplyCode)), boundHost, boundPort)]
        if request.command == Command.BIND and replies[0].code == SOCKS4ReplyCode.GRANTED:
            replies.append(SOCKS4Reply(data.draw(st.sampled_from(SOCKS4ReplyCode)), boundHost, boundPort))
        for reply in replies:
            self.assertEqual(deliver(self, server.send(reply), cut, client), reply)
        if replies[-1].code == SOCKS4ReplyCode.GRANTED:
            self.assertIs(client.state, ClientState.RELAYING)
            client.receiveData(extra)
            self.assertEqual(client.takeTrailingData(), extra)
        else:
            self.assertIs(client.state, ClientState.CLOSED)


class ClientFuzzTests(SynchronousTestCase):
    """
    Whatever a server sends, the client role raises only codec errors.
    """

    @modest
    @given(st.sampled_from(["greeting", "socks4", "request"]), st.data(), st.binary(max_size=600), cuts)
    def test_anyServerBytes(self, stage, draw, data, cut):
        """
        Any bytes, in any pieces, after the greeting, the SOCKS4 request or
        the SOCKS5 request give messages, L{NEED_DATA} or a
        L{SOCKSProtocolError}, and nothing else.
        """
        client = SOCKSClientConnection()
        if stage == "socks4":
            client.send(draw.draw(socks4Requests))
        else:
            client.send(SOCKS5Greeting((Method.NO_AUTHENTICATION, Method.USERNAME_PASSWORD)))
        if stage == "request":
            client.receiveData(b"\x05\x00")
            client.nextEvent()
            client.send(draw.draw(socks5Requests))
        try:
            for piece in chunked(data, cut):
                client.receiveData(piece)
                for _ in range(8):
                    if client.nextEvent() is NEED_DATA:
                        break
                    if client.state is ClientState.SENDING_USERNAME_PASSWORD:
                        break
        except SOCKSProtocolError:
            self.assertIs(client.state, ClientState.CLOSED)
