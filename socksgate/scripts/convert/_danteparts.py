"""
What the parts of a Dante rule become: its addresses (and the sets of
client networks that the client rules pass), its ports, commands, methods
and users, as the L{_Match}es of a socksgate rule.  See C{_dante} for how
and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, collapse_addresses, ip_network

from ...vocabulary import Command
from ._addresses import _portMatch
from ._output import _Fields, _Invalid, _Match, _nothing
from ._sockd import _OPERATORS as _PORT_RANGES

__all__: list[str] = []

Network = IPv4Network | IPv6Network
ANY: tuple[Network, ...] = (IPv4Network("0.0.0.0/0"), IPv6Network("::/0"))
_OPERATORS = {"=": "eq", "eq": "eq", "!=": "neq", "neq": "neq", "<": "lt", "lt": "lt", ">": "gt", "gt": "gt"}
_OPERATORS |= {"<=": "le", "le": "le", ">=": "ge", "ge": "ge"}


def clientAddresses(values: list[str]) -> tuple[list[Network], str | None]:
    """
    The networks of a client rule's C{from:}; when it is not exactly a
    network, every address (the pass passes none, the block covers all).
    """
    networks = parseNetworks(values[0]) if values else None
    if networks is None:
        return list(ANY), f"from: {' '.join(values)} is not an address or network socksgate can match"
    if len(values) > 1:
        return networks, f"from: {' '.join(values)}: socksgate rules cannot restrict the client's port"
    return networks, None


def parseNetworks(text: str) -> list[Network] | None:
    if text == "0/0":
        return list(ANY)
    try:
        return [ip_network(text, strict=False)]
    except ValueError:
        return None


def subtract(networks: list[Network], removed: list[Network]) -> list[Network]:
    result = list(networks)
    for gone in removed:
        kept: list[Network] = []
        for each in result:
            if each.version != gone.version or not each.overlaps(gone):
                kept.append(each)
            elif not gone.supernet_of(each):  # type: ignore[arg-type]
                kept.extend(each.address_exclude(gone))  # type: ignore[arg-type]
        result = kept
    return result


def collapse(networks: list[Network], version: int) -> Iterable[Network]:
    return collapse_addresses(each for each in networks if each.version == version)  # type: ignore[misc]


def intersect(left: list[Network], right: list[Network]) -> list[Network]:
    found: list[Network] = []
    for a in left:
        for b in right:
            if a.version == b.version and a.overlaps(b):
                found.append(a if b.supernet_of(a) else b)  # type: ignore[arg-type]
    return found


def destinationMatches(values: list[str], number: int) -> list[_Match]:
    """
    A C{to:} address and its port.
    """
    if not values:
        raise _Invalid("to: names no address")
    target, rest = values[0], values[1:]
    found: list[_Match] = []
    networks = parseNetworks(target)
    if networks is not None:
        if len(networks) == 1:
            found.append(_Match({"destinations": [str(networks[0])]}, {"destinations": [str(networks[0])]}))
    elif "." not in target:
        found.append(
            _Match({}, None, f"to: {target} is an interface or host name: give its address", line=number)
        )
    else:
        name = target.lower()
        wide: _Fields = {}
        if name.startswith("."):
            why = f"Dante matched every name ending in {name[1:]} and address requests by reverse lookup"
        else:
            why = f"Dante matched address requests whose reverse lookup is {name} too"
        found.append(_Match(wide, {"destinations": [name]}, f"to: {target}: {why}", line=number))
    if rest:
        found.append(ports(rest, number))
    return found


def ports(words: list[str], number: int) -> _Match:
    """
    C{port = 80}, C{port gt 1023}, C{port 1024 - 65535} (or C{port range ...}).
    """
    text = " ".join(words)
    joined = re.sub(r"\s+", " ", re.sub(r"(!=|<=|>=|=|<|>)", r" \1 ", text)).strip()
    match = re.fullmatch(r"port (?:range )?(\d+) ?- ?(\d+)", joined)
    if match:
        return _portMatch([(int(match.group(1)), int(match.group(2)))], text)
    match = re.fullmatch(r"port (?:(=|!=|<=|>=|<|>|eq|neq|lt|gt|le|ge) )?(\d+)", joined)
    if match is None or int(match.group(2)) > 65535:
        raise _Invalid(f"{text!r} is not a port")
    return _portMatch(_PORT_RANGES[_OPERATORS[match.group(1) or "="]](int(match.group(2))), text)


def commandsMatch(action: str, commands: set[str]) -> _Match:
    pairs = (
        (Command.CONNECT, {"connect"}),
        (Command.BIND, {"bind", "bindreply"}),
        (Command.UDP, {"udpassociate", "udpreply"}),
    )
    if action == "permit":
        chosen = [name for name, needs in pairs if needs <= commands]
    else:
        chosen = [name for name, needs in pairs if needs & commands]
    if not chosen:
        return _nothing("command: names no command socksgate decides alone")
    fields: _Fields = {} if len(chosen) == 3 else {"commands": list(chosen)}
    split = any(0 < len(needs & commands) < len(needs) for _, needs in pairs)
    problem = (
        "bind and bindreply, udpassociate and udpreply are one command each in socksgate" if split else None
    )
    return _Match(fields, fields, problem)


def usersMatch(offered: list[str], ruleMethods: list[str] | None, names: list[str] | None) -> _Match:
    """
    The C{users} and C{versions} keys for a rule's methods and user names.
    """
    chosen = set(offered) & set(ruleMethods if ruleMethods is not None else offered)
    authenticating = set(offered) - {"none"}
    if not chosen:
        return _nothing("socksmethod: no method of this rule is offered")
    byName = {"users": names, "versions": ["5"]} if names else None
    if "none" not in chosen:
        if chosen != authenticating:
            split = "socksgate rules match the user, not the method that authenticated it"
            return _Match(byName or {"users": ["*"], "versions": ["5"]}, None, split)
        fields = byName or {"users": ["*"], "versions": ["5"]}
        return _Match(fields, fields)
    if names:
        if chosen == {"none"}:
            return _nothing("user: with socksmethod none: an anonymous client has no name")
        return _Match(
            byName,
            byName if chosen >= authenticating else None,
            None
            if chosen >= authenticating
            else "socksgate rules match the user, not the method that authenticated it",
        )
    if chosen == set(offered):
        return _Match({}, {})
    return _Match(
        {},
        {"users": ["-"]},
        "socksmethod none: SOCKS4 requests with a USERID are claimed users in socksgate, not anonymous",
    )
