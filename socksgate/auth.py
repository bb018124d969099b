"""
Authentication: SOCKS5 method negotiation, username/password (RFC 1929)
checked through C{twisted.cred}, and the throttle every login from an
address goes through.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any, TypeVar

from twisted.cred.checkers import ICredentialsChecker, InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import ISOCKSUser
from .wire import Method

__all__ = [
    "METHOD_NUMBERS",
    "LoginRefused",
    "LoginThrottle",
    "PasswordAuthenticator",
    "SOCKSUser",
    "selectMethod",
    "throttledAs",
]

T = TypeVar("T")

#: The SOCKS5 method number of each name in C{[auth] methods}.
METHOD_NUMBERS = {
    "none": Method.NO_AUTHENTICATION,
    "gssapi": Method.GSSAPI,
    "userpass": Method.USERNAME_PASSWORD,
}


def selectMethod(preferred: tuple[str, ...], offered: tuple[int, ...]) -> int:
    """
    The first of the server's C{preferred} methods that the client
    C{offered}, or L{Method.NO_ACCEPTABLE_METHODS}.
    """
    for name in preferred:
        number = METHOD_NUMBERS[name]
        if number in offered:
            return number
    return Method.NO_ACCEPTABLE_METHODS


@implementer(ISOCKSUser)
@dataclass(frozen=True)
class SOCKSUser:
    """
    A user who logged in.
    """

    name: str


@implementer(IRealm)
class _UserRealm:
    """
    Gives every authenticated user an avatar that only carries the name.
    """

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, SOCKSUser, Any]:
        name = avatarId.decode("utf-8", "backslashreplace") if isinstance(avatarId, bytes) else str(avatarId)
        return ISOCKSUser, SOCKSUser(name), lambda: None


class PasswordAuthenticator:
    """
    Checks RFC 1929 user names and passwords with any
    L{ICredentialsChecker} for L{twisted.cred.credentials.IUsernamePassword},
    through a L{Portal}.

    Credentials are given to the checker as bytes, Twisted's usual form, but
    as text to Twisted's in-memory checker (C{memory:} descriptions), which
    keeps its users as text.
    """

    def __init__(self, checker: ICredentialsChecker) -> None:
        self.checker = checker
        self._portal = Portal(_UserRealm(), [checker])
        self._asText = isinstance(checker, InMemoryUsernamePasswordDatabaseDontUse)

    def login(self, username: bytes, password: bytes) -> Deferred[SOCKSUser]:
        """
        Check the credentials.

        @return: a Deferred that fires with the user, or fails with
            L{twisted.cred.error.UnauthorizedLogin}.
        """
        if self._asText:
            credentials = UsernamePassword(
                username.decode("utf-8", "surrogateescape"), password.decode("utf-8", "surrogateescape")
            )
        else:
            credentials = UsernamePassword(username, password)
        return self._portal.login(credentials, None, ISOCKSUser).addCallback(lambda result: result[1])


class LoginRefused(UnauthorizedLogin):
    """
    A login refused without checking its password: too many logins from its
    client address are being checked or waiting already.
    """


@dataclass
class _Address:
    """
    What the throttle knows of one client address.

    @ivar failures: failed logins since the address last went C{forget}
        seconds without one.
    @ivar lastFailure: when the last one was.
    @ivar busy: logins being checked or waiting for their answer.
    @ivar waiting: logins waiting for their turn, oldest first.
    """

    failures: int = 0
    lastFailure: float = 0.0
    busy: int = 0
    waiting: deque[tuple[Callable[[], Deferred[Any]], Deferred[Any]]] = field(default_factory=deque)


def throttledAs(client: Any) -> Any:
    """
    What the login throttle counts C{client} as: an IPv4 address as
    itself, an IPv6 address as its /64 (one host or site usually holds a
    whole /64, and could otherwise take a fresh address for every guess),
    anything else (a UNIX socket's L{None}) as itself.
    """
    if isinstance(client, IPv6Address):
        return IPv6Network((int(client) >> 64 << 64, 64))
    return client


class LoginThrottle:
    """
    Slows down password guessing from a client address, whatever the
    answers.

    Every login from an address goes the same way, right or wrong: at most
    C{concurrent} are checked or answered at a time (up to C{queue} more
    wait their turn, and beyond those a login is refused unchecked with
    L{LoginRefused}); once checked, its answer waits the address's delay —
    nothing while it has no recent failure, then C{first} seconds after
    the first failure, doubling with each further one up to C{longest} —
    and its place is given to the next login only when that answer is due,
    even if the client left.  Only failures count, and only time forgets
    them: an address with no failure for C{forget} seconds starts again; a
    success does not.  At most C{capacity} idle addresses are remembered
    (the oldest are forgotten first).  IPv6 clients are counted by their
    /64 (L{throttledAs}).
    """

    def __init__(
        self,
        clock: IReactorTime,
        first: float = 0.5,
        longest: float = 30.0,
        forget: float = 600.0,
        capacity: int = 65536,
        concurrent: int = 2,
        queue: int = 32,
    ) -> None:
        self._clock = clock
        self._first, self._longest, self._forget, self._capacity = first, longest, forget, capacity
        self._concurrent, self._queue = concurrent, queue
        self._addresses: OrderedDict[Any, _Address] = OrderedDict()
        self._delayed: dict[Deferred[Any], IDelayedCall] = {}

    def delayFor(self, client: Any) -> float:
        """
        How long the answer to a login from C{client} checked now waits.
        """
        state = self._addresses.get(throttledAs(client))
        if state is None or not state.failures or self._clock.seconds() - state.lastFailure > self._forget:
            return 0.0
        return min(self._first * 2 ** (state.failures - 1), self._longest)

    def login(self, client: Any, check: Callable[[], Deferred[T]]) -> Deferred[T]:
        """
        Call C{check} when C{client} has a free place, and answer with its
        result once the address's delay has passed.

        @param check: checks the credentials; called at most once, never
            if the login is refused or cancelled while it waits.
        @return: a Deferred that fires with C{check}'s result, or fails with
            its failure or with L{LoginRefused}.  Cancelling it abandons the
            login; a place taken stays taken until its answer was due.
        """
        client = throttledAs(client)
        state = self._addresses.pop(client, None) or _Address()
        self._addresses[client] = state
        if state.busy >= self._concurrent and len(state.waiting) >= self._queue:
            self._forgetIdle()
            return fail(
                LoginRefused(
                    f"{state.busy} logins from this address are under way and {len(state.waiting)} wait"
                )
            )
        entry: tuple[Callable[[], Deferred[Any]], Deferred[Any]]

        def cancelled(answer: Deferred[Any]) -> None:
            if entry in state.waiting:
                state.waiting.remove(entry)

        answer: Deferred[T] = Deferred(cancelled)
        entry = (check, answer)
        state.waiting.append(entry)
        self._next(client, state)
        return answer

    def _next(self, client: Any, state: _Address) -> None:
        """
        Start the logins of C{client} that have a free place.
        """
        while state.waiting and state.busy < self._concurrent:
            check, answer = state.waiting.popleft()
            state.busy += 1
            maybeDeferred(check).addBoth(self._checked, client, state, answer)

    def _checked(self, result: Any, client: Any, state: _Address, answer: Deferred[Any]) -> None:
        """
        A check is done: count a failure, and answer when the delay is over.
        """
        delay = self.delayFor(client)
        if isinstance(result, Failure):
            now = self._clock.seconds()
            if now - state.lastFailure > self._forget:
                state.failures = 0
            state.failures += 1
            state.lastFailure = now
        if delay:
            self._delayed[answer] = self._clock.callLater(
                delay, self._answered, result, client, state, answer
            )
        else:
            self._answer(result, client, state, answer)

    def _answered(self, result: Any, client: Any, state: _Address, answer: Deferred[Any]) -> None:
        """
        A delayed answer is due.
        """
        del self._delayed[answer]
        self._answer(result, client, state, answer)

    def stop(self) -> None:
        """
        Forget every login under way and every delayed answer (the gateway
        stops; its clients are gone).  Logins still waiting fail with
        L{LoginRefused}.
        """
        delayed, self._delayed = self._delayed, {}
        for call in delayed.values():
            if call.active():
                call.cancel()
        addresses, self._addresses = self._addresses, OrderedDict()
        for state in addresses.values():
            for _, answer in state.waiting:
                if not answer.called:
                    answer.errback(LoginRefused("the gateway is stopping"))

    def _answer(self, result: Any, client: Any, state: _Address, answer: Deferred[Any]) -> None:
        """
        Give the answer (unless the login was abandoned), and the place to
        the next login.
        """
        state.busy -= 1
        if not answer.called:
            answer.callback(result)
        self._next(client, state)
        if not (state.busy or state.waiting or state.failures):
            self._addresses.pop(client, None)
        self._forgetIdle()

    def _forgetIdle(self) -> None:
        """
        Keep at most C{capacity} addresses, forgetting the least recently
        used idle ones.
        """
        excess = len(self._addresses) - self._capacity
        for client in list(self._addresses):
            if excess <= 0:
                break
            state = self._addresses[client]
            if not state.busy and not state.waiting:
                del self._addresses[client]
                excess -= 1
