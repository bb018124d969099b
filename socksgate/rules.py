"""
The rule engine: the default L{IAccessPolicy}, from the C{[[rule]]} tables
of the configuration.  The first rule that matches decides; a request that
matches no rule is denied.

A rule matches when every field it sets matches.  Destinations match by
name and by address: a name pattern (C{www.example.com},
C{.example.com}) matches the name the client asked for, an address pattern
(IP, CIDR) matches the address the gateway would connect to.  Before a
name is resolved, a rule whose destination could match only by address
I{may} match; the engine then says whether the answer depends on the
address (L{RulePolicy.decideUnresolved}), so that a request every address
of which would be denied is refused without looking the name up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Union

from zope.interface import implementer

from .interfaces import IAccessPolicy
from .policy import DENY, PERMIT, AccessRequest, Decision, IPAddress, withoutPassword
from .vocabulary import Command, Version

__all__ = [
    "ALL_COMMANDS",
    "ALL_VERSIONS",
    "DestinationPatterns",
    "IPNetwork",
    "Rule",
    "RulePolicy",
    "anyPort",
]

IPNetwork = Union[IPv4Network, IPv6Network]

#: Every version and every command, in the vocabulary's order (kept for
#: the importers of these names).
ALL_VERSIONS = tuple(Version)
ALL_COMMANDS = tuple(Command)


@dataclass(frozen=True)
class DestinationPatterns:
    """
    The C{destinations} of a rule, sorted by kind.

    @ivar anything: C{"*"} was given.
    @ivar names: exact host names, lower case, without a final dot.
    @ivar domains: domain suffixes, lower case, each with its leading dot
        (C{".example.com"} matches C{example.com} and every name below it).
    @ivar networks: IP networks (a single address is a /32 or /128).
    """

    anything: bool = True
    names: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    def matchesName(self, name: str) -> bool:
        """
        Whether a name pattern (or C{"*"}) matches C{name}.
        """
        if self.anything:
            return True
        name = name.lower().rstrip(".")
        if name in self.names:
            return True
        dotted = "." + name
        return any(dotted.endswith(domain) for domain in self.domains)


@dataclass(frozen=True)
class Rule:
    """
    One C{[[rule]]} table, ready to match.

    Fields left out of the table are L{None} here and match anything.

    @ivar index: its number in the file, from 1.
    @ivar line: the line of its C{[[rule]]} header, if known.
    @ivar users: C{None} for anyone; else a set of names, C{"*"} (any
        authenticated or claimed user) and C{"-"} (anonymous).
    @ivar ports: inclusive C{(low, high)} ranges.
    @ivar bandwidth: bytes per second each way, shared by the sessions it
        permits (L{socksgate.bandwidth}); L{None}: no limit.
    @ivar sessionsPerSecond: the new sessions a second this rule permits
        each client address and each user (L{socksgate.ratelimit}); 0: no
        limit.
    """

    index: int
    action: str
    line: int | None = None
    clients: tuple[IPNetwork, ...] | None = None
    listeners: frozenset[str] | None = None
    destinations: DestinationPatterns = DestinationPatterns()
    ports: tuple[tuple[int, int], ...] | None = None
    commands: frozenset[str] | None = None
    versions: frozenset[str] | None = None
    users: frozenset[str] | None = None
    via: str = "direct"
    message: str = ""
    bandwidth: float | None = None
    sessionsPerSecond: int = 0

    def matchesPort(self, port: int) -> bool:
        """
        Whether C{port} is one of C{ports} (any port when they are not set).
        """
        return self.ports is None or any(low <= port <= high for low, high in self.ports)

    def decision(self) -> Decision:
        """
        The decision this rule makes when it matches.
        """
        return Decision(self.action, self.index, self.message, self.via)

    def matchesAllButDestination(self, request: AccessRequest) -> bool:
        """
        Whether every field but C{destinations} matches (C{commands} and
        C{versions} are sorted out by L{RulePolicy}'s index).  Port 0 of a
        BIND or UDP request stands for any port (a BIND that does not know
        its peer's port, a UDP association): it matches here, and
        L{RulePolicy} treats a rule with C{ports} as one that may match.
        """
        if self.ports is not None and not anyPort(request) and not self.matchesPort(request.port):
            return False
        if self.listeners is not None and request.listener not in self.listeners:
            return False
        if self.users is not None:
            user = request.user
            if user is None:
                if "-" not in self.users:
                    return False
            elif "*" not in self.users and user not in self.users:
                return False
        if self.clients is not None:
            client = request.client
            if client is None or not any(client in network for network in self.clients):
                return False
        return True


def anyPort(request: AccessRequest) -> bool:
    """
    Whether C{request} stands for any port: port 0 of a BIND (the client
    does not know its peer's port yet) or of a UDP association (its
    destinations are decided one by one).  A CONNECT to port 0 is decided
    as port 0.
    """
    return request.port == 0 and request.command != Command.CONNECT


#: How a rule's destination relates to a request: it matches, it does
#: not, or (for a name not yet resolved) it depends on the address.
_NO, _YES, _MAYBE = 0, 1, 2


def _destinationMatch(patterns: DestinationPatterns, request: AccessRequest) -> int:
    if patterns.anything:
        return _YES
    name, address = request.destinationName, request.destinationAddress
    if name is None and address is None:
        # No destination yet (UDP ASSOCIATE, or BIND for any peer): each
        # one is decided when it is known.
        return _MAYBE
    if name is not None and patterns.matchesName(name):
        return _YES
    if not patterns.networks:
        return _NO
    if address is None:
        return _MAYBE if name is not None else _NO
    return _YES if any(address in network for network in patterns.networks) else _NO


_NO_RULE = Decision(DENY, None, "no rule matched")
_NO_RULE_FOR_ANY_ADDRESS = Decision(DENY, None, "no rule permits any address of this name")


#: Below this many rules for a version and command, scanning them all is
#: cheaper than consulting the client index.
_INDEX_FROM = 32


class _ClientIndex:
    """
    The rules of one version and command, found by client address: a rule
    with C{clients} is filed under each of its networks, by prefix length,
    so a request is compared only with the rules that could match its
    client (and those that match any client), in their order.
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.anyClient: list[int] = []
        self.byPrefix: dict[tuple[int, int], dict[int, list[int]]] = {}
        for position, rule in enumerate(rules):
            if rule.clients is None:
                self.anyClient.append(position)
                continue
            for network in rule.clients:
                bucket = self.byPrefix.setdefault((network.version, network.prefixlen), {})
                bucket.setdefault(int(network.network_address), []).append(position)
        self.prefixes = [
            (version, ((1 << width) - 1) ^ ((1 << (width - length)) - 1), bucket)
            for (version, length), bucket in self.byPrefix.items()
            for width in (32 if version == 4 else 128,)
        ]

    def candidates(self, client: IPAddress | None) -> Iterable[Rule]:
        """
        The rules that could match a request from C{client}, in order.
        """
        if client is None:
            return [self.rules[position] for position in self.anyClient]
        value, version = int(client), client.version
        positions = set(self.anyClient)
        for prefixVersion, mask, bucket in self.prefixes:
            if prefixVersion == version:
                positions.update(bucket.get(value & mask, ()))
        return [self.rules[position] for position in sorted(positions)]


@implementer(IAccessPolicy)
class RulePolicy:
    """
    Decides requests by a list of rules, first match wins.

    The rules are indexed by version and command and, in large policies,
    by client network, so a request is compared only with the rules that
    could apply to it.

    When passwords are required (SOCKS5 without C{"none"} among its
    methods), a rule permits SOCKS4 or SOCKS4a only if its C{versions}
    names that version: permits without C{versions} do not apply to them
    (denials do), and one that matches no rule is denied with a message
    saying it carries no password.

    @ivar rules: the rules, in order.
    @ivar passwordsRequired: whether SOCKS5 requires a password.
    """

    def __init__(self, rules: tuple[Rule, ...], passwordsRequired: bool = False) -> None:
        self.rules = rules
        self.passwordsRequired = passwordsRequired
        self._byKind: dict[tuple[str, str], tuple[Rule, ...] | _ClientIndex] = {}
        for version in ALL_VERSIONS:
            guarded = passwordsRequired and version != Version.SOCKS5
            for command in ALL_COMMANDS:
                applicable = tuple(
                    rule
                    for rule in rules
                    if (
                        version in rule.versions
                        if rule.versions is not None
                        else not guarded or rule.action == DENY
                    )
                    and (rule.commands is None or command in rule.commands)
                )
                indexed = len(applicable) >= _INDEX_FROM
                self._byKind[version, command] = _ClientIndex(applicable) if indexed else applicable

    def _candidates(self, request: AccessRequest) -> Iterable[Rule]:
        rules = self._byKind.get((request.version, request.command), ())
        if isinstance(rules, _ClientIndex):
            return rules.candidates(request.client)
        return rules

    def decide(self, request: AccessRequest) -> Decision:
        """
        Decide C{request}; see L{IAccessPolicy}.  For a name not resolved
        yet, a denial means every address would be denied.
        """
        return self.decideUnresolved(request)[0]

    def decideUnresolved(self, request: AccessRequest) -> tuple[Decision, bool]:
        """
        Decide C{request}, and say whether the decision depends on the
        address a name resolves to.

        @return: the decision and C{dependsOnAddress}.  When it depends, the
            decision is a permit with no rule: resolve, then decide again
            for each address.
        """
        mayDeny = False
        for rule in self._candidates(request):
            if not rule.matchesAllButDestination(request):
                continue
            match = _destinationMatch(rule.destinations, request)
            if match == _NO:
                continue
            if anyPort(request) and not rule.matchesPort(0):
                match = _MAYBE
            if match == _MAYBE:
                if rule.action == PERMIT:
                    return _depends(rule, request), True
                # Denies some destinations: what comes after decides the rest.
                mayDeny = True
                continue
            if rule.action == PERMIT and mayDeny:
                return _depends(rule, request), True
            return rule.decision(), False
        if self.passwordsRequired and request.version != Version.SOCKS5:
            return withoutPassword(request.version), False
        return (_NO_RULE_FOR_ANY_ADDRESS if mayDeny else _NO_RULE), False

    def ruleFor(self, decision: Decision) -> Rule | None:
        """
        The rule that made C{decision}, if one did.
        """
        if decision.rule is None or not 1 <= decision.rule <= len(self.rules):
            return None
        return self.rules[decision.rule - 1]


_DEPENDS = Decision(PERMIT, None, "depends on the address the name resolves to")


def _depends(rule: Rule, request: AccessRequest) -> Decision:
    """
    The decision for a request that C{rule} (a permit) may match, once its
    destination or port is known.  A name not resolved yet gets
    L{_DEPENDS}: each address is decided next.  A request with no
    destination or port 0 (a UDP association, a BIND for any peer) is
    permitted by the first rule that may permit it: each destination and
    peer is decided again when it is known.
    """
    if request.destinationName is not None and request.destinationAddress is None:
        return _DEPENDS
    return rule.decision()
