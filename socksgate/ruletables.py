"""
Reading the C{[[rule]]} and C{[[expect]]} tables, and checking the
expectations against the policy they describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from ._tablecheck import ConfigError, TableChecker, ipAddressProblem, notNegative
from .bandwidth import parseBandwidth
from .configschema import EXPECT, RULE
from .hostnames import InvalidHostname, normalHostname
from .policy import PERMIT, AccessRequest, Decision, IPAddress, reachedAddress
from .rules import DestinationPatterns, Rule, RulePolicy
from .vocabulary import Command, Version

_ACTIONS = ("permit", "deny")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


def parseRule(checker: TableChecker, index: int) -> Rule:
    """
    Read one C{[[rule]]} table.

    @param index: its number, from 1.
    @raise ConfigError: a key is unknown or a value is wrong.
    """
    checker.checkKeys(RULE.names)
    if "action" not in checker.values:
        raise checker.error(None, 'has no action: give action = "permit" or "deny"')
    action = checker.get("action", str, None, lambda value: _oneOf(value, _ACTIONS))
    via = checker.get("via", str, RULE.default("via"), _knownRoute)
    message = checker.get("message", str, RULE.default("message"), lambda value: None)
    listeners = checker.strings("listeners", None)
    return Rule(
        index=index,
        action=action,
        line=checker.line,
        clients=_optional(checker, "clients", _network),
        listeners=frozenset(listeners) if listeners else None,
        destinations=_destinations(checker),
        ports=_optional(checker, "ports", _portRange),
        commands=_frozen(checker.strings("commands", None, tuple(Command))),
        versions=_frozen(checker.strings("versions", None, tuple(Version))),
        users=_frozen(checker.strings("users", None)),
        via=via,
        message=message,
        bandwidth=parseBandwidth(checker.get("bandwidth", str, RULE.default("bandwidth"), _bandwidthProblem)),
        sessionsPerSecond=checker.get(
            "sessions-per-second", int, RULE.default("sessions-per-second"), notNegative
        ),
    )


def _oneOf(value: str, allowed: tuple[str, ...]) -> str | None:
    return None if value in allowed else f"{value!r} is not one of {', '.join(allowed)}"


def _bandwidthProblem(value: str) -> str | None:
    try:
        parseBandwidth(value)
    except ValueError as problem:
        return str(problem)
    return None


def _knownRoute(value: str) -> str | None:
    # An upstream's name is checked against the [[upstream]] tables by
    # socksgate.config, which reads them.
    return None if value else 'must be "direct" or the name of an [[upstream]]'


def _frozen(values: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _optional(checker: TableChecker, key: str, convert: Any) -> tuple[Any, ...] | None:
    """
    Convert each item of the list C{key}, or L{None} when it is absent.
    """
    if key not in checker.values:
        return None
    items = checker.values[key]
    if not isinstance(items, list) or not items:
        raise checker.error(key, "must be a non-empty list")
    converted = []
    for item in items:
        try:
            converted.append(convert(item))
        except ValueError as problem:
            raise checker.error(key, str(problem)) from None
    return tuple(converted)


def _network(item: Any) -> Any:
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not an IP address or network")
    try:
        return ip_network(item)
    except ValueError as problem:
        raise ValueError(f"{item!r} is not an IP address or network ({problem})") from None


def _portRange(item: Any) -> tuple[int, int]:
    text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
    if isinstance(text, str):
        match = re.fullmatch(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?", text)
        if match:
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if low <= high <= 65535:
                return low, high
    raise ValueError(f'{item!r} is not a port or a range of ports such as "1024-65535"')


def _destinations(checker: TableChecker) -> DestinationPatterns:
    items = _optional(checker, "destinations", _destinationItem)
    if items is None or ("*", "*") in items:
        return DestinationPatterns()
    return DestinationPatterns(
        anything=False,
        names=frozenset(value for kind, value in items if kind == "name"),
        domains=tuple(value for kind, value in items if kind == "domain"),
        networks=tuple(value for kind, value in items if kind == "network"),
    )


def _destinationItem(item: Any) -> tuple[str, Any]:
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not a destination")
    if item == "*":
        return "*", "*"
    try:
        return "network", ip_network(item)
    except ValueError as problem:
        if any(character in item for character in ":/") or re.fullmatch(r"[\d.]+", item):
            raise ValueError(f"{item!r} is not an IP address or network ({problem})") from None
    # Names are kept in the form requests are decided in (normalHostname).
    domain = item.startswith(".")
    try:
        name = normalHostname(item[1:] if domain else item)
    except InvalidHostname:
        name = ""
    if not _HOSTNAME.match(name) or re.fullmatch(r"[\d.]+", name):
        raise ValueError(f'{item!r} is not an IP address, network, host name, .domain or "*"')
    return ("domain", "." + name) if domain else ("name", name)


@dataclass(frozen=True)
class Expectation:
    """
    One C{[[expect]]} table: a request and the decision it must get.

    @ivar index: its number, from 1.
    @ivar line: the line of its header, if known.
    @ivar result: C{"permit"} or C{"deny"}.
    @ivar rule: the rule that must decide, if the table names one.
    """

    index: int
    line: int | None
    request: AccessRequest
    result: str
    rule: int | None = None

    def describe(self) -> str:
        """
        The request, in a few words, for messages.
        """
        request = self.request
        destination = request.destinationName or str(request.destinationAddress)
        if request.destinationName and request.destinationAddress is not None:
            destination += f" ({request.destinationAddress})"
        user = f" user {request.user}" if request.user else ""
        return (
            f"client {request.client} SOCKS{request.version} {request.command} "
            f"{destination}:{request.port}{user}"
        )


def parseExpectation(checker: TableChecker, index: int, defaultListener: str) -> Expectation:
    """
    Read one C{[[expect]]} table.
    """
    checker.checkKeys(EXPECT.names)
    for required in ("client", "destination", "result"):
        if required not in checker.values:
            raise checker.error(None, f"has no {required}")
    client = checker.get("client", str, None, ipAddressProblem)
    destination = checker.get("destination", str, None, lambda value: None)
    try:
        host, port = splitHostPort(destination)
    except ValueError as problem:
        raise checker.error("destination", str(problem)) from None
    address = checker.get("address", str, None, ipAddressProblem)
    user = checker.get("user", str, None, lambda value: None)
    version = Version(
        checker.get("version", str, EXPECT.default("version"), lambda value: _oneOf(value, tuple(Version)))
    )
    if isinstance(host, str):
        name, resolved = host, reachedAddress(ip_address(address)) if address else None
    else:
        if address:
            raise checker.error("address", "is only for a destination given by name")
        name, resolved = None, host
    request = AccessRequest(
        client=ip_address(client),
        clientPort=0,
        listener=checker.get("listener", str, defaultListener, lambda value: None),
        version=version,
        command=Command(
            checker.get(
                "command", str, EXPECT.default("command"), lambda value: _oneOf(value, tuple(Command))
            )
        ),
        destinationName=name,
        destinationAddress=resolved,
        port=port,
        user=user,
        auth="userpass" if user and version == Version.SOCKS5 else "none",
    )
    return Expectation(
        index=index,
        line=checker.line,
        request=request,
        result=checker.get("result", str, None, lambda value: _oneOf(value, _ACTIONS)),
        rule=checker.get("rule", int, None, lambda value: None if value > 0 else "must be 1 or more"),
    )


def splitHostPort(text: str) -> tuple[str | IPAddress, int]:
    """
    Split C{host:port} (C{[v6address]:port} for IPv6) into a host and a
    port, the host as the gateway decides it: an address as the address it
    reaches (L{reachedAddress}), a name in its L{normalHostname} form.

    @raise ValueError: it is not of that form, or the name is not valid.
    """
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not match or int(match.group(2) or match.group(4)) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (or [IPv6]:PORT)")
    host, port = match.group(1) or match.group(3), int(match.group(2) or match.group(4))
    try:
        return reachedAddress(ip_address(host)), port
    except ValueError:
        if match.group(1):
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    try:
        name = normalHostname(host)
    except InvalidHostname as problem:
        raise ValueError(str(problem)) from None
    try:
        return reachedAddress(ip_address(name)), port
    except ValueError:
        return name, port


def decideExpectation(policy: Any, expectation: Expectation) -> tuple[Decision, bool]:
    """
    Decide an expectation's request as the gateway would.

    @return: the decision and whether it depends on an address that the
        expectation does not give.
    """
    request = expectation.request
    if isinstance(policy, RulePolicy):
        return policy.decideUnresolved(request)
    return policy.decide(request), False


def checkExpectations(path: str, policy: Any, expectations: tuple[Expectation, ...]) -> None:
    """
    Check every expectation against C{policy}.

    @raise ConfigError: naming the first expectation that fails.
    """
    for expectation in expectations:
        decision, depends = decideExpectation(policy, expectation)
        where = f"expect #{expectation.index}"
        if depends:
            raise ConfigError(
                path,
                f"{expectation.describe()}: the decision depends on the address "
                f'{expectation.request.destinationName} resolves to; give it as address = "..."',
                where,
                expectation.line,
            )
        ruleMismatch = expectation.rule is not None and decision.rule != expectation.rule
        if decision.action != expectation.result or ruleMismatch:
            wanted = expectation.result + (f" by rule {expectation.rule}" if expectation.rule else "")
            raise ConfigError(
                path,
                f"{expectation.describe()}: expected {wanted}, got {describeDecision(policy, decision)}",
                where,
                expectation.line,
            )


def describeDecision(policy: Any, decision: Decision) -> str:
    """
    A decision in words: C{"deny by rule 3 (line 20): no telnet"}.
    """
    words = "permit" if decision.action == PERMIT else "deny"
    rule = policy.ruleFor(decision) if isinstance(policy, RulePolicy) else None
    if rule is not None:
        words += f" by rule {rule.index}" + (f" (line {rule.line})" if rule.line else "")
    elif decision.rule is None and isinstance(policy, RulePolicy):
        words += ": no rule matched"
    if decision.message and (rule is not None or not isinstance(policy, RulePolicy)):
        words += f": {decision.message}"
    if rule is not None and rule.sessionsPerSecond and decision.action == PERMIT:
        words += f" (sessions-per-second {rule.sessionsPerSecond}, per client address and per user)"
    return words
