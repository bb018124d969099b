"""
RFC 1413 ident lookups, against a real oidentd, Twisted's own ident server
and identds that misbehave, all on loopback.
"""

from __future__ import annotations

import os
import pwd

from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.protocols import ident as twistedIdent
from twisted.trial.unittest import SynchronousTestCase

from socksgate.ident import IdentError, IdentRefused, IdentUnavailable, parseReply, queryIdent

from .helpers import LoopbackTestCase, freePort
from .ident_helpers import (
    cannedIdentd,
    connectAs,
    connectLoopback,
    listenLoopback,
    startOidentd,
    tableIdentd,
)


class ParseReplyTests(SynchronousTestCase):
    """
    Reply lines as RFC 1413 and real identds write them.
    """

    def test_userId(self) -> None:
        """
        The RFC's own example, with spaces around every separator, gives
        the user id.
        """
        self.assertEqual(parseReply("6193, 23 : USERID : UNIX : stjohns", 6193, 23), "stjohns")

    def test_compact(self) -> None:
        """
        oidentd's form, without spaces, gives the user id.
        """
        self.assertEqual(parseReply("53156,43941:USERID:UNIX:root", 53156, 43941), "root")

    def test_charsetAndColons(self) -> None:
        """
        An operating system field with a character set is passed over, and
        the user id is the rest of the line, colons included.
        """
        self.assertEqual(parseReply("1, 2 : USERID : UNIX , UTF-8 : a:b", 1, 2), "a:b")

    def test_errorTokens(self) -> None:
        """
        Every RFC 1413 error, and a private C{X} token, is an
        L{IdentRefused} that carries the token.
        """
        for token in ("NO-USER", "HIDDEN-USER", "INVALID-PORT", "UNKNOWN-ERROR", "X-LOCAL"):
            refusal = self.assertRaises(IdentRefused, parseReply, f"6195, 23 : ERROR : {token}", 6195, 23)
            self.assertEqual(refusal.token, token)
            self.assertIsInstance(refusal, IdentError)
            self.assertIn(token, refusal.reason)

    def test_otherPorts(self) -> None:
        """
        A reply about another port pair than the query's is no answer.
        """
        for line in (
            "6194, 23 : USERID : UNIX : x",
            "23, 6193 : USERID : UNIX : x",
            "6193 : USERID : UNIX : x",
        ):
            self.assertRaises(IdentUnavailable, parseReply, line, 6193, 23)

    def test_malformed(self) -> None:
        """
        Lines that are not RFC 1413 replies are no answer.
        """
        for line in (
            "",
            "garbage",
            "6193, 23 : USERID : UNIX",
            "6193, 23 : USERID : UNIX : ",
            "6193, 23 : USERID :  : x",
            "6193, 23 : ERROR :",
            "6193, 23 : ERROR : NO USER",
            "6193, 23 : ERROR : NO-USER : more",
            "6193, 23 : OK : x : y",
        ):
            self.assertRaises(IdentUnavailable, parseReply, line, 6193, 23)


class OidentdTests(LoopbackTestCase):
    """
    Queries to Debian's oidentd about real loopback connections.
    """

    async def test_matchingUser(self) -> None:
        """
        oidentd names the user who owns the client side of the connection:
        this process's user.
        """
        identPort = await startOidentd(self)
        listening = listenLoopback(self)
        serverPort = listening.getHost().port
        client = await connectLoopback(self, "127.0.0.1", serverPort)
        userId = await queryIdent(
            reactor, "127.0.0.1", client.getHost().port, serverPort, identPort=identPort
        )
        self.assertEqual(userId, pwd.getpwuid(os.geteuid()).pw_name)

    async def test_otherUser(self) -> None:
        """
        A connection opened by a process that runs as C{nobody} is
        C{nobody}'s, and oidentd says so.
        """
        identPort = await startOidentd(self)
        listening = listenLoopback(self)
        serverPort = listening.getHost().port
        clientPort = await connectAs(self, "nobody", serverPort)
        userId = await queryIdent(reactor, "127.0.0.1", clientPort, serverPort, identPort=identPort)
        self.assertEqual(userId, "nobody")
        self.assertNotEqual(userId, pwd.getpwuid(os.geteuid()).pw_name)

    async def test_noSuchConnection(self) -> None:
        """
        A query about a connection that does not exist gets ERROR :
        NO-USER: an L{IdentRefused} with that token.
        """
        identPort = await startOidentd(self)
        listening = listenLoopback(self)
        query = queryIdent(reactor, "127.0.0.1", freePort(), listening.getHost().port, identPort=identPort)
        refusal = await self.assertFailure(query, IdentRefused)
        self.assertEqual(refusal.token, "NO-USER")

    async def test_queryFromBindHost(self) -> None:
        """
        identd finds a connection only when asked from the address the
        client reached: a client of 127.0.0.2 is found when the query
        comes from there, and not when it comes from 127.0.0.1.
        """
        identPort = await startOidentd(self)
        listening = listenLoopback(self, interface="127.0.0.2")
        serverPort = listening.getHost().port
        client = await connectLoopback(self, "127.0.0.2", serverPort)
        self.assertEqual(client.getHost().host, "127.0.0.1")
        clientPort = client.getHost().port
        userId = await queryIdent(
            reactor, "127.0.0.1", clientPort, serverPort, identPort=identPort, bindHost="127.0.0.2"
        )
        self.assertEqual(userId, pwd.getpwuid(os.geteuid()).pw_name)
        query = queryIdent(reactor, "127.0.0.1", clientPort, serverPort, identPort=identPort)
        self.assertEqual((await self.assertFailure(query, IdentRefused)).token, "NO-USER")


class TwistedIdentServerTests(LoopbackTestCase):
    """
    Queries to Twisted's own L{twisted.protocols.ident.IdentServer}.
    """

    async def test_userId(self) -> None:
        """
        The user id in Twisted's reply (spaces around separators) is the
        answer.
        """
        identPort = tableIdentd(self, {(4000, 1080): "alice"})
        self.assertEqual(await queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identPort), "alice")

    async def test_errors(self) -> None:
        """
        Each error the server answers with is an L{IdentRefused} carrying
        its token.
        """
        errors = [twistedIdent.NoUser(), twistedIdent.HiddenUser(), twistedIdent.InvalidPort()]
        errors.append(twistedIdent.IdentError())
        identPort = tableIdentd(self, {(4000 + i, 1080): error for i, error in enumerate(errors)})
        for i, error in enumerate(errors):
            query = queryIdent(reactor, "127.0.0.1", 4000 + i, 1080, identPort=identPort)
            refusal = await self.assertFailure(query, IdentRefused)
            self.assertEqual(refusal.token, error.identDescription)

    async def test_ipv6(self) -> None:
        """
        An IPv6 client host is asked over IPv6.
        """
        identPort = tableIdentd(self, {(4000, 1080): "six"}, interface="::1")
        self.assertEqual(await queryIdent(reactor, "::1", 4000, 1080, identPort=identPort), "six")

    async def test_ipv4Mapped(self) -> None:
        """
        An IPv4-mapped client address (a client of a dual-stack listener)
        is asked over IPv4.
        """
        identPort = tableIdentd(self, {(4000, 1080): "four"})
        userId = await queryIdent(
            reactor, "::ffff:127.0.0.1", 4000, 1080, identPort=identPort, bindHost="::ffff:127.0.0.1"
        )
        self.assertEqual(userId, "four")


class NoIdentdTests(LoopbackTestCase):
    """
    When no identd answers, the query fails with L{IdentUnavailable}.
    """

    async def test_connectionRefused(self) -> None:
        """
        A port where nothing listens: L{IdentUnavailable}, connection
        refused.
        """
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=freePort())
        unavailable = await self.assertFailure(query, IdentUnavailable)
        self.assertIn("refused", unavailable.reason)

    async def test_noAnswer(self) -> None:
        """
        An identd that accepts the query and never answers: after the
        timeout, L{IdentUnavailable}, and the connection is closed. The
        query was C{clientPort, serverPort}.
        """
        identd = cannedIdentd(self, None)
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, timeout=0.5, identPort=identd.port)
        unavailable = await self.assertFailure(query, IdentUnavailable)
        self.assertIn("no answer within", unavailable.reason)
        connection = await identd.connected
        await connection.lost
        self.assertEqual(connection.queries, [b"4000, 1080"])

    async def test_closedWithoutAnswer(self) -> None:
        """
        An identd that reads the query and closes: L{IdentUnavailable}.
        """
        identd = cannedIdentd(self, None, close=True)
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identd.port)
        unavailable = await self.assertFailure(query, IdentUnavailable)
        self.assertIn("without an answer", unavailable.reason)

    async def test_malformedAnswer(self) -> None:
        """
        An answer that is not RFC 1413: L{IdentUnavailable}, and the
        connection is closed.
        """
        identd = cannedIdentd(self, b"HTTP/1.1 400 Bad Request\r\n")
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identd.port)
        await self.assertFailure(query, IdentUnavailable)
        await (await identd.connected).lost

    async def test_answerTooLong(self) -> None:
        """
        A line longer than RFC 1413 allows: L{IdentUnavailable}, without
        waiting for its end.
        """
        identd = cannedIdentd(self, b"4000, 1080 : USERID : UNIX : " + b"x" * 2000)
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identd.port)
        unavailable = await self.assertFailure(query, IdentUnavailable)
        self.assertIn("longer", unavailable.reason)


class ConnectionTests(LoopbackTestCase):
    """
    The query's own connection: where it comes from, and that it ends.
    """

    async def test_closedAfterAnswer(self) -> None:
        """
        After the answer, the query closes its connection.
        """
        identd = cannedIdentd(self, b"4000 , 1080 : USERID : UNIX : carol\r\n")
        self.assertEqual(await queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identd.port), "carol")
        await (await identd.connected).lost

    async def test_bindHost(self) -> None:
        """
        The query comes from C{bindHost}.
        """
        identd = cannedIdentd(self, b"4000 , 1080 : USERID : UNIX : carol\r\n")
        await queryIdent(reactor, "127.0.0.1", 4000, 1080, identPort=identd.port, bindHost="127.0.0.2")
        connection = await identd.connected
        self.assertEqual(connection.transport.getPeer().host, "127.0.0.2")

    async def test_cancelPending(self) -> None:
        """
        Cancelling a query that waits for its answer fails it with
        L{CancelledError} and closes its connection.
        """
        identd = cannedIdentd(self, None)
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, timeout=30, identPort=identd.port)
        connection = await identd.connected
        query.cancel()
        await self.assertFailure(query, CancelledError)
        await connection.lost

    async def test_cancelConnecting(self) -> None:
        """
        Cancelling a query before its connection is made fails it with
        L{CancelledError}.
        """
        identd = cannedIdentd(self, None)
        query = queryIdent(reactor, "127.0.0.1", 4000, 1080, timeout=30, identPort=identd.port)
        query.cancel()
        await self.assertFailure(query, CancelledError)
