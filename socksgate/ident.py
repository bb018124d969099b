"""
RFC 1413 ident lookups: ask the identd on a SOCKS client's host which user
owns the client's connection to the gateway.

The SOCKS4 server protocol uses L{queryIdent} for C{[auth] ident}. With
C{"log"} it writes the user identd names to the session log and goes on,
answer or not. With C{"require"} it refuses the request with
CD 92 when no identd answers (L{IdentUnavailable}) and with CD 93 when the
user identd names differs from the request's USERID; an identd that
answers with an error (L{IdentRefused}) names no user, so no USERID can
match it: CD 93 too.

The exchange itself is L{twisted.protocols.ident.IdentClient}'s, over a
bytes boundary that it lacks on Python 3 (twisted/twisted#11868).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols import ident as twistedIdent
from twisted.python.failure import Failure

from .addresses import parseAddress

__all__ = ["IdentError", "IdentRefused", "IdentUnavailable", "parseReply", "queryIdent"]

# RFC 1413 caps a reply at 1000 characters, end of line included.
_MAX_REPLY = 1000


class IdentError(Exception):
    """
    An ident lookup named no user.

    @ivar reason: what happened, short, for the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdentUnavailable(IdentError):
    """
    No identd answered: the connection was refused or failed, no answer
    came in time, the connection closed without one, or what came is not
    an RFC 1413 reply to the query.
    """


class IdentRefused(IdentError):
    """
    identd answered C{ERROR}: it will not name the connection's owner.

    @ivar token: the error token, as identd sent it: C{NO-USER},
        C{HIDDEN-USER}, C{INVALID-PORT}, C{UNKNOWN-ERROR}, or a private
        C{X...} token.
    """

    def __init__(self, token: str) -> None:
        super().__init__(f"identd answered ERROR : {token}")
        self.token = token


def _ports(pair: str) -> tuple[int, int] | None:
    """
    The two ports of a reply's C{port , port} field, if it is one.
    """
    ports = pair.split(",")
    if len(ports) != 2 or not all(port.strip().isdigit() for port in ports):
        return None
    return int(ports[0]), int(ports[1])


def parseReply(line: str, portOnServer: int, portOnClient: int) -> str:
    """
    The user id in an RFC 1413 reply to the query C{portOnServer ,
    portOnClient} (the ports as seen from identd's host).

    @param line: one reply line, without its end of line.
    @return: the user id, without surrounding white space.
    @raise IdentRefused: identd answered C{ERROR}.
    @raise IdentUnavailable: the line is not a reply to that query.
    """
    parts = [part.strip() for part in line.split(":", 3)]
    if len(parts) < 3:
        raise IdentUnavailable(f"malformed answer {line[:80]!r}")
    if _ports(parts[0]) != (portOnServer, portOnClient):
        raise IdentUnavailable(f"answer about other ports: {parts[0][:40]!r}")
    replyType = parts[1].upper()
    if replyType == "ERROR" and len(parts) == 3 and parts[2] and " " not in parts[2]:
        raise IdentRefused(parts[2])
    if replyType == "USERID" and len(parts) == 4 and parts[2] and parts[3]:
        return parts[3]
    raise IdentUnavailable(f"malformed answer {line[:80]!r}")


class _IdentQueryProtocol(twistedIdent.IdentClient):
    """
    Twisted's ident client, speaking bytes on the wire and text to
    L{twisted.protocols.ident.IdentClient}, for one query whose reply L{parseReply} reads.
    """

    MAX_LENGTH = _MAX_REPLY

    def __init__(self, portOnServer: int, portOnClient: int) -> None:
        super().__init__()
        self.portOnServer, self.portOnClient = portOnServer, portOnClient

    def ask(self) -> Deferred[str]:
        """
        Send the query.

        @return: fires with the user id, or fails with L{IdentError}, or
            with L{twisted.protocols.ident.IdentError} if the connection
            closes first.
        """
        return self.lookup(self.portOnServer, self.portOnClient)

    def sendLine(self, line: str) -> None:  # type: ignore[override]
        super().sendLine(line.encode("ascii"))

    def lineReceived(self, line: bytes) -> None:  # type: ignore[override]
        # US-ASCII is RFC 1413's default; UTF-8 covers it and the user ids
        # of identds that send UTF-8. Other bytes stay visible, escaped.
        super().lineReceived(line.decode("utf-8", "backslashreplace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        queries, self.queries = self.queries, []
        for query in queries:
            query[0].errback(IdentUnavailable(f"answer longer than {self.MAX_LENGTH} bytes"))
        self.transport.loseConnection()

    def parseResponse(self, deferred: Deferred[str], line: str) -> None:
        try:
            userId = parseReply(line, self.portOnServer, self.portOnClient)
        except IdentError as refusal:
            deferred.errback(refusal)
        else:
            deferred.callback(userId)


def _unmapped(host: str) -> str:
    """
    C{host}, or the IPv4 address in it if it is IPv4-mapped (a client of a
    dual-stack listener); a scoped address keeps its scope.
    """
    address = parseAddress(host)
    return host if address is None or "%" in host else str(address)


def _identEndpoint(reactor: Any, host: str, port: int, bindHost: str | None) -> IStreamClientEndpoint:
    """
    A TCP endpoint to C{host:port}, from C{bindHost} if given.
    """
    bindAddress = None if bindHost is None else (_unmapped(bindHost), 0)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, bindAddress=bindAddress)
    return TCP4ClientEndpoint(reactor, host, port, bindAddress=bindAddress)


async def _exchange(endpoint: IStreamClientEndpoint, portOnServer: int, portOnClient: int) -> str:
    """
    Connect, ask, and close, whatever happens.
    """
    try:
        protocol = await connectProtocol(endpoint, _IdentQueryProtocol(portOnServer, portOnClient))
    except error.ConnectingCancelledError:
        raise CancelledError() from None
    try:
        userId = await protocol.ask()
    except twistedIdent.IdentError:
        # IdentClient's own error comes only from connectionLost.
        raise IdentUnavailable("identd closed the connection without an answer") from None
    except IdentError:
        protocol.transport.loseConnection()
        raise
    except BaseException:
        protocol.transport.abortConnection()
        raise
    protocol.transport.loseConnection()
    return userId


def _connectFailed(failure: Failure) -> Failure:
    """
    A connection that could not be made: no identd.
    """
    failure.trap(error.ConnectError)
    if failure.check(error.ConnectionRefusedError):
        raise IdentUnavailable("connection refused") from None
    raise IdentUnavailable(f"cannot connect: {failure.getErrorMessage()}") from None


def queryIdent(
    reactor: Any,
    clientHost: str,
    clientPort: int,
    serverPort: int,
    timeout: float = 5.0,
    identPort: int = 113,
    bindHost: str | None = None,
) -> Deferred[str]:
    """
    Ask the identd at C{clientHost} which user owns the TCP connection
    from its port C{clientPort} to our port C{serverPort} (the RFC 1413
    query C{clientPort , serverPort}).

    Cancelling the returned L{Deferred} abandons the query and closes its
    connection; it then fails with L{CancelledError}.

    @param reactor: an L{twisted.internet.interfaces.IReactorTCP} and
        L{twisted.internet.interfaces.IReactorTime}.
    @param clientHost: the client's IP address, where identd runs.
    @param clientPort: the client's port of the connection in question.
    @param serverPort: our port of that connection.
    @param timeout: seconds for the whole exchange, connecting included.
    @param identPort: identd's port.
    @param bindHost: the local address to query from: the address the
        client reached us on, as identd expects the query from the other
        end of the connection it is asked about. Any when L{None}.
    @return: fires with the user id, or fails with L{IdentUnavailable} or
        L{IdentRefused}.
    """
    endpoint = _identEndpoint(reactor, _unmapped(clientHost), identPort, bindHost)
    query = Deferred.fromCoroutine(_exchange(endpoint, clientPort, serverPort))

    def timedOut(result: object, seconds: float) -> object:
        if isinstance(result, Failure):
            raise IdentUnavailable(f"no answer within {seconds:g} seconds")
        return result

    query.addTimeout(timeout, reactor, onTimeoutCancel=timedOut)
    query.addErrback(_connectFailed)
    return query
