"""
The way out: resolve a destination, ask the policy about each address,
connect to the permitted ones along the route the decision names
(L{socksgate.connecting}), and turn every failure into the SOCKS reply
that reports it.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .connecting import connectToAddresses, routeFor
from .hostnames import InvalidHostname, normalHostname, numericIPv4
from .policy import AccessRequest, Decision, IPAddress, reachedAddress
from .relay import DestinationProtocol
from .upstreams import UpstreamTable
from .vocabulary import RequestRefused
from .wire import ReplyCode

__all__ = [
    "RequestRefused",
    "connectToAddresses",
    "decideOne",
    "destinationFor",
    "literalAddress",
    "openConnection",
    "permittedAddresses",
    "refusalForFailure",
    "resolve",
]

log = Logger()


_ERRNO_REPLIES = {
    errno.ENETUNREACH: ReplyCode.NETWORK_UNREACHABLE,
    errno.EHOSTUNREACH: ReplyCode.HOST_UNREACHABLE,
    errno.EHOSTDOWN: ReplyCode.HOST_UNREACHABLE,
    errno.ECONNREFUSED: ReplyCode.CONNECTION_REFUSED,
    errno.ETIMEDOUT: ReplyCode.TTL_EXPIRED,
}


def refusalForFailure(failure: Failure) -> RequestRefused:
    """
    Map a failure to resolve or connect to the reply that reports it.

    Refused: 0x05; a name that does not resolve, or an unreachable host:
    0x04; an unreachable network: 0x03; a time-out: 0x06; anything else:
    0x01.
    """
    value = failure.value
    if isinstance(value, RequestRefused):
        return value
    reason = str(value) or type(value).__name__
    if isinstance(value, (error.DNSLookupError, error.UnknownHostError)):
        return RequestRefused(ReplyCode.HOST_UNREACHABLE, "failed", reason)
    if isinstance(value, (error.TCPTimedOutError, error.TimeoutError, defer.TimeoutError)):
        return RequestRefused(ReplyCode.TTL_EXPIRED, "timeout", reason)
    if isinstance(value, error.ConnectionRefusedError):
        return RequestRefused(ReplyCode.CONNECTION_REFUSED, "failed", reason)
    if isinstance(value, error.NoRouteError):
        return RequestRefused(ReplyCode.NETWORK_UNREACHABLE, "failed", reason)
    if isinstance(value, error.ConnectError) and value.osError in _ERRNO_REPLIES:
        return RequestRefused(_ERRNO_REPLIES[value.osError], "failed", reason)
    if not isinstance(value, (error.ConnectError, OSError, error.ConnectingCancelledError, CancelledError)):
        log.failure("unexpected failure while connecting", failure)
    return RequestRefused(ReplyCode.GENERAL_FAILURE, "failed", reason)


def literalAddress(host: str | IPAddress) -> IPAddress | None:
    """
    The IP address C{host} is or spells (a client may send C{"127.0.0.1"}
    as a domain name), as L{reachedAddress} gives the address it reaches,
    or L{None} for a real host name.
    """
    if isinstance(host, (IPv4Address, IPv6Address)):
        return reachedAddress(host)
    try:
        return reachedAddress(ip_address(host.strip("[]")))
    except ValueError:
        numeric = numericIPv4(host)
        return reachedAddress(numeric) if numeric is not None else None


def destinationFor(host: str | IPAddress) -> str | IPAddress:
    """
    What C{host} is decided and reached as: the address it is or spells
    (L{literalAddress}), or the host name in the one form that is decided
    and resolved (L{normalHostname}).

    @raise RequestRefused: with 0x04, C{host} is no valid host name in any
        spelling; nothing is decided or resolved.
    """
    address = literalAddress(host)
    if address is not None:
        return address
    assert isinstance(host, str)
    try:
        name = normalHostname(host)
    except InvalidHostname as problem:
        raise RequestRefused(ReplyCode.HOST_UNREACHABLE, "failed", str(problem)) from None
    # Fullwidth digits and dots spell an IPv4 address in Unicode.
    return literalAddress(name) or name


def _timedOut(result: Any, timeout: float) -> None:
    raise defer.TimeoutError(f"no answer within {timeout:g} seconds")


def resolve(resolver: IHostnameResolver, clock: Any, name: str, timeout: float) -> Deferred[list[IPAddress]]:
    """
    Resolve C{name} without blocking, to its distinct addresses in the
    resolver's order.

    The resolver is asked for the name's L{normalHostname} form, the one
    the policy decides, and each address it gives is taken as the address
    it reaches (L{reachedAddress}).

    @raise error.DNSLookupError: (in the Deferred) the name resolves to
        nothing or is not a valid host name.
    @raise defer.TimeoutError: (in the Deferred) no answer in C{timeout}.
    """
    try:
        name = normalHostname(name)
    except InvalidHostname as problem:
        return defer.fail(error.DNSLookupError(str(problem)))
    result: Deferred[list[IPAddress]] = Deferred()
    addresses: list[IPAddress] = []

    @implementer(IResolutionReceiver)
    class Receiver:
        @staticmethod
        def resolutionBegan(resolution: IHostResolution) -> None:
            pass

        @staticmethod
        def addressResolved(address: Any) -> None:
            resolved = reachedAddress(ip_address(address.host.split("%")[0]))
            if resolved not in addresses:
                addresses.append(resolved)

        @staticmethod
        def resolutionComplete() -> None:
            if result.called:
                return
            if addresses:
                result.callback(addresses)
            else:
                result.errback(error.DNSLookupError(f"{name} does not resolve"))

    resolver.resolveHostName(Receiver(), name, 0)
    return result.addTimeout(timeout, clock, onTimeoutCancel=_timedOut)


def openConnection(
    reactor: Any,
    resolver: IHostnameResolver,
    decide: Callable[[AccessRequest], Any],
    request: AccessRequest,
    host: str | IPAddress,
    timeout: float,
    bindHost: IPAddress | None = None,
    raw: bool = False,
    admit: Callable[[Decision], object] | None = None,
    upstreams: UpstreamTable | None = None,
) -> Deferred[tuple[DestinationProtocol, Decision]]:
    """
    Check, resolve and connect one CONNECT request.

    A name is resolved only after the policy has had the chance to refuse
    it outright, and only the addresses the policy permits are tried.

    @param request: the request, with no destination yet.
    @param host: the destination the client asked for; it is decided and
        reached as L{destinationFor} says.
    @param raw: the zero-copy relay will carry the session (see
        L{connectToAddresses}).
    @param admit: called with the decision that permits the session
        before anything connects (L{socksgate.ratelimit.checkSessionRate});
        it raises L{RequestRefused} to refuse it.
    @param upstreams: the gateway's C{[[upstream]]}s, for a decision
        routed C{via} one.
    @return: a Deferred that fires with the connected protocol and the
        decision that permitted it, or fails with L{RequestRefused} or the
        connection's failure (see L{refusalForFailure}).
    """
    try:
        address = destinationFor(host)
    except RequestRefused:
        return defer.fail()
    if isinstance(address, str):
        named = replace(request, destinationName=address)
        return Deferred.fromCoroutine(
            _openByName(reactor, resolver, decide, named, address, timeout, bindHost, raw, admit, upstreams)
        )
    checked = replace(request, destinationAddress=address)
    try:
        answer = decide(checked)
    except Exception:
        return defer.fail(_policyFailed(checked))
    if not isinstance(answer, Decision):
        # A Deferred (or nonsense): the general path settles it.
        return Deferred.fromCoroutine(
            _openAnswered(reactor, answer, checked, [address], timeout, bindHost, raw, admit, upstreams)
        )
    if not answer.permitted:
        return defer.fail(_denied(answer))
    connecting = _connect(reactor, answer, checked, [address], timeout, bindHost, raw, admit, upstreams)
    return connecting.addCallbacks(lambda protocol: (protocol, answer), _failedAfter, errbackArgs=(answer,))


def _connect(
    reactor: Any,
    decision: Decision,
    request: AccessRequest,
    addresses: list[IPAddress],
    timeout: float,
    bindHost: IPAddress | None,
    raw: bool = False,
    admit: Callable[[Decision], object] | None = None,
    upstreams: UpstreamTable | None = None,
) -> Deferred[DestinationProtocol]:
    """
    Connect a permitted request along the route its decision names, once
    C{admit} (if given) has let it.
    """
    try:
        if admit is not None:
            admit(decision)
        route = routeFor(decision, reactor, timeout, bindHost, raw, upstreams)
    except RequestRefused:
        return defer.fail()
    return route.connect(request, addresses, request.port)  # type: ignore[no-any-return]


async def _openAnswered(
    reactor: Any,
    answer: Any,
    request: AccessRequest,
    addresses: list[IPAddress],
    timeout: float,
    bindHost: IPAddress | None,
    raw: bool = False,
    admit: Callable[[Decision], object] | None = None,
    upstreams: UpstreamTable | None = None,
) -> tuple[DestinationProtocol, Decision]:
    """
    Connect an address once the policy's late answer has come.
    """
    decision = await _settle(answer, request)
    if not decision.permitted:
        raise _denied(decision)
    try:
        protocol = await _connect(
            reactor, decision, request, addresses, timeout, bindHost, raw, admit, upstreams
        )
    except Exception:
        _failedAfter(Failure(), decision)
    return protocol, decision


async def permittedAddresses(
    reactor: Any,
    resolver: IHostnameResolver,
    decide: Callable[[AccessRequest], Any],
    request: AccessRequest,
    host: str | IPAddress,
    timeout: float,
) -> tuple[list[IPAddress], Decision]:
    """
    The addresses of C{host} that the policy permits C{request} to reach,
    in the resolver's order, and the decision for the first of them.

    A name is resolved only after the policy has had the chance to refuse
    it outright; each address is then decided with the name and the
    address in hand.  CONNECT, BIND (for the expected peer) and UDP
    ASSOCIATE (for each destination) all decide this way.  C{host} is
    decided and reached as L{destinationFor} says.

    @param request: the request, with no destination yet.
    @raise RequestRefused: denied (0x02), or the name is not valid, does
        not resolve (0x04) or not in time (0x06).
    """
    destination = destinationFor(host)
    if not isinstance(destination, str):
        checked = replace(request, destinationAddress=destination)
        decision = await decideOne(decide, checked)
        if not decision.permitted:
            raise _denied(decision)
        return [destination], decision
    host = destination
    named = replace(request, destinationName=host)
    first = await decideOne(decide, named)
    if not first.permitted:
        raise _denied(first)
    try:
        resolved = await resolve(resolver, reactor, host, timeout)
    except Exception:
        raise refusalForFailure(Failure()) from None
    candidates, decision = [], first
    denial: Decision | None = None
    for each in resolved:
        verdict = await decideOne(decide, replace(named, destinationAddress=each))
        if verdict.permitted:
            if not candidates:
                decision = verdict
            candidates.append(each)
        elif denial is None:
            denial = verdict
    if not candidates:
        assert denial is not None
        raise _denied(denial)
    return candidates, decision


async def _openByName(
    reactor: Any,
    resolver: IHostnameResolver,
    decide: Callable[[AccessRequest], Any],
    request: AccessRequest,
    host: str,
    timeout: float,
    bindHost: IPAddress | None,
    raw: bool = False,
    admit: Callable[[Decision], object] | None = None,
    upstreams: UpstreamTable | None = None,
) -> tuple[DestinationProtocol, Decision]:
    """
    Decide, resolve, decide again for each address, and connect.
    """
    candidates, decision = await permittedAddresses(reactor, resolver, decide, request, host, timeout)
    try:
        protocol = await _connect(
            reactor, decision, request, candidates, timeout, bindHost, raw, admit, upstreams
        )
    except Exception:
        _failedAfter(Failure(), decision)
    return protocol, decision


async def decideOne(decide: Callable[[AccessRequest], Any], request: AccessRequest) -> Decision:
    """
    Ask the policy once, waiting for a late answer; a failure, or an
    answer that is no L{Decision}, becomes a refusal with 0x01 (and is
    logged).
    """
    try:
        answer = decide(request)
    except Exception:
        raise _policyFailed(request) from None
    return await _settle(answer, request)


async def _settle(answer: Any, request: AccessRequest) -> Decision:
    """
    Wait for a policy's answer if it is a Deferred, and check that it is a
    L{Decision}.
    """
    if isinstance(answer, Deferred):
        try:
            answer = await answer
        except CancelledError:
            # The session ended while the policy thought: no failure of it.
            raise
        except Exception:
            raise _policyFailed(request) from None
    if not isinstance(answer, Decision):
        raise RequestRefused(ReplyCode.GENERAL_FAILURE, "error", f"the access policy answered {answer!r}")
    return answer


def _policyFailed(request: AccessRequest) -> RequestRefused:
    """
    Log the policy's failure, being handled now, and build the refusal; a
    L{RequestRefused} the policy raised is its chosen reply, not a failure.
    """
    failure = Failure()
    if isinstance(failure.value, RequestRefused):
        return failure.value
    log.failure("the access policy failed on {request!r}", failure, request=request)
    return RequestRefused(ReplyCode.GENERAL_FAILURE, "error", f"the access policy failed: {failure.value!r}")


def _failedAfter(failure: Failure, decision: Decision) -> None:
    """
    A permitted connection failed: raise its refusal, naming the decision
    that permitted it (the session log and the rule hit counters name the
    rule).
    """
    refusal = refusalForFailure(failure)
    if refusal.decision is None:
        refusal.decision = decision
    raise refusal


def _denied(decision: Decision) -> RequestRefused:
    return RequestRefused(ReplyCode.NOT_ALLOWED, "denied", decision.message or "denied by policy", decision)
