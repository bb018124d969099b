"""
Connecting through the first of several proxies that works.

L{FailoverEndpoint} tries a list of proxies in order: a proxy that cannot
be reached, does not answer in time, breaks the protocol, fails (SOCKS5
0x01) or refuses the client's credentials is skipped and the next one
tried.  A refusal of the destination itself (SOCKS5 0x02 to 0x08, SOCKS4
91 to 93) is that proxy's decision and ends the attempt with its error.

L{ProxyHealth} remembers the proxies that failed: such a proxy is "down"
for 30 seconds, doubling with each further failure up to 5 minutes, and
while down it is tried after the proxies that are not, never skipped (so
a route whose proxies are all down still tries them all).  A proxy that
carries a connection, or answers with a refusal, is up again at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .errors import SOCKSError
from .urls import ProxyURL, endpointFor

__all__ = ["FIRST_DOWN_PERIOD", "LONGEST_DOWN_PERIOD", "FailoverEndpoint", "NoProxyReached", "ProxyHealth"]

#: Seconds a proxy is down after its first failure.
FIRST_DOWN_PERIOD = 30.0

#: The longest a proxy stays down, however often it failed.
LONGEST_DOWN_PERIOD = 300.0


class NoProxyReached(ConnectError):
    """
    Every proxy of a route failed.

    @ivar failures: each proxy tried, in order, with how it failed.
    """

    def __init__(self, failures: Sequence[tuple[ProxyURL, Failure]]) -> None:
        self.failures = tuple(failures)
        described = "; ".join(f"{url}: {_describe(failure)}" for url, failure in self.failures)
        super().__init__(string=f"no proxy could carry the connection ({described})")

    def __str__(self) -> str:
        return self.args[0] if self.args else "no proxy could carry the connection"


def _describe(failure: Failure) -> str:
    if failure.check(TimeoutError):
        return "no answer in time"
    return failure.getErrorMessage()


class ProxyHealth:
    """
    Which proxies failed lately, by scheme, host and port.

    @ivar firstPeriod: seconds a proxy is down after its first failure.
    @ivar longestPeriod: the longest it stays down.
    """

    def __init__(
        self,
        reactor: Any,
        firstPeriod: float = FIRST_DOWN_PERIOD,
        longestPeriod: float = LONGEST_DOWN_PERIOD,
    ) -> None:
        """
        @param reactor: gives the time (C{seconds()}).
        """
        self._reactor = reactor
        self.firstPeriod, self.longestPeriod = firstPeriod, longestPeriod
        self._down: dict[tuple[str, str, int], tuple[int, float]] = {}

    @staticmethod
    def _key(url: ProxyURL) -> tuple[str, str, int]:
        return url.scheme, url.host, url.port

    def downUntil(self, url: ProxyURL) -> float:
        """
        When (the reactor's clock) C{url}'s last down period ends; 0 when it
        has not failed since it last worked.
        """
        entry = self._down.get(self._key(url))
        return 0.0 if entry is None else entry[1]

    def isDown(self, url: ProxyURL) -> bool:
        """
        Whether C{url} failed less than its down period ago.
        """
        return self._reactor.seconds() < self.downUntil(url)

    def order(self, proxies: Sequence[ProxyURL]) -> list[ProxyURL]:
        """
        C{proxies} in the order to try them: those up as listed, then those
        down as listed.
        """
        return sorted(proxies, key=self.isDown)

    def failed(self, url: ProxyURL) -> float:
        """
        Mark C{url} down; return for how many seconds.
        """
        key = self._key(url)
        count = self._down.get(key, (0, 0.0))[0] + 1
        period = min(self.firstPeriod * 2 ** (count - 1), self.longestPeriod)
        self._down[key] = (count, self._reactor.seconds() + period)
        return period

    def worked(self, url: ProxyURL) -> None:
        """
        C{url} answered: it is up.
        """
        self._down.pop(self._key(url), None)


def _isRefusal(failure: Failure) -> bool:
    """
    Whether the proxy refused the destination: its decision, not its fault.
    """
    error = failure.value
    return isinstance(error, SOCKSError) and error.code is not None and error.code != 0x01


@implementer(IStreamClientEndpoint)
class FailoverEndpoint:
    """
    Connects to a destination through the first of C{proxies} that carries
    the connection.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        proxies: Sequence[ProxyURL],
        host: str,
        port: int,
        *,
        health: ProxyHealth | None = None,
        timeout: float = 30.0,
        resolver: IHostnameResolver | None = None,
    ) -> None:
        """
        @param proxies: tried in order (proxies that are down last).
        @param health: the failures remembered across connections; by
            default this endpoint's own.
        @param timeout: seconds each proxy has to connect and answer.
        @param resolver: resolves a name for C{socks5://} and C{socks4://}.
        """
        if not proxies:
            raise ValueError("a failover endpoint needs at least one proxy")
        self._reactor = reactor
        self._proxies = tuple(proxies)
        self._host, self._port = host, port
        self._health = health if health is not None else ProxyHealth(reactor)
        self._timeout = timeout
        self._resolver = resolver

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Try each proxy in turn.

        @return: fires with the protocol once a proxy carries the
            connection; fails with a proxy's refusal of the destination,
            with L{NoProxyReached} when every proxy failed, or with
            L{CancelledError}.
        """
        remaining = self._health.order(self._proxies)
        failures: list[tuple[ProxyURL, Failure]] = []
        current: list[Deferred[IProtocol] | None] = [None]
        cancelled = [False]

        def cancel(outer: Deferred[IProtocol]) -> None:
            cancelled[0] = True
            if current[0] is not None:
                current[0].cancel()

        outer: Deferred[IProtocol] = Deferred(cancel)

        def tryNext() -> None:
            if not remaining:
                outer.errback(NoProxyReached(failures))
                return
            url = remaining.pop(0)
            try:
                endpoint = endpointFor(
                    self._reactor, url, self._host, self._port, resolver=self._resolver, timeout=self._timeout
                )
            except ValueError as problem:
                failures.append((url, Failure(problem)))
                tryNext()
                return
            attempt = endpoint.connect(protocolFactory)
            current[0] = attempt
            attempt.addTimeout(self._timeout, self._reactor)
            attempt.addBoth(finished, url)

        def finished(result: IProtocol | Failure, url: ProxyURL) -> None:
            current[0] = None
            if cancelled[0]:
                if not isinstance(result, Failure) and result.transport is not None:
                    result.transport.loseConnection()  # type: ignore[attr-defined]
                return
            if not isinstance(result, Failure):
                self._health.worked(url)
                outer.callback(result)
            elif _isRefusal(result):
                self._health.worked(url)
                outer.errback(result)
            elif result.check(CancelledError):
                outer.errback(result)
            else:
                if not result.check(DNSLookupError):
                    period = self._health.failed(url)
                    self.log.info(
                        "proxy {proxy} failed ({problem}); down for {period} s, trying the next",
                        proxy=str(url),
                        problem=_describe(result),
                        period=period,
                    )
                failures.append((url, result))
                tryNext()

        tryNext()
        return outer
