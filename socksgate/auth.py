"""
Authentication: SOCKS5 method negotiation, username/password (RFC 1929)
checked through C{twisted.cred}, and the slow-down of repeated failures.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.cred.checkers import ICredentialsChecker, InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import UsernamePassword
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from .interfaces import ISOCKSUser
from .wire import Method

#: The SOCKS5 method number of each name in C{[auth] methods}.
METHOD_NUMBERS = {"none": Method.NO_AUTHENTICATION, "userpass": Method.USERNAME_PASSWORD}


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
    L{ICredentialsChecker} for L{IUsernamePassword}, through a L{Portal}.

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


class LoginThrottle:
    """
    Slows down password guessing: each failed login from a client address
    makes the next failure from that address wait twice as long before its
    reply, from C{first} seconds up to C{longest}.  An address that has not
    failed for C{forget} seconds starts again; a success clears it.  At most
    C{capacity} addresses are remembered (the oldest are forgotten first).
    """

    def __init__(
        self,
        clock: IReactorTime,
        first: float = 0.5,
        longest: float = 30.0,
        forget: float = 600.0,
        capacity: int = 65536,
    ) -> None:
        self._clock = clock
        self._first, self._longest, self._forget, self._capacity = first, longest, forget, capacity
        self._failures: OrderedDict[Any, tuple[int, float]] = OrderedDict()

    def failed(self, client: Any) -> float:
        """
        Count a failure from C{client}.

        @return: how long to wait before answering it.
        """
        now = self._clock.seconds()
        count, last = self._failures.pop(client, (0, now))
        if now - last > self._forget:
            count = 0
        count += 1
        self._failures[client] = (count, now)
        while len(self._failures) > self._capacity:
            self._failures.popitem(last=False)
        return min(self._first * 2 ** (count - 1), self._longest)

    def succeeded(self, client: Any) -> None:
        """
        Forget C{client}'s failures.
        """
        self._failures.pop(client, None)
