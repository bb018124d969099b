"""
C{socksgate convert FILE}: the access rules of an older SOCKS server, as
socksgate's C{[[rule]]} tables.

Two formats are read, told apart by their content (the file name breaks a
tie):

  - the SOCKS4 C{sockd.conf} of CSTC/NEC sockd 4.x, lines
    C{permit|deny [?=I|i|n] [*=userlist] src_addr src_mask [dst_addr
    dst_mask] [op dst_port] [: shell_cmd]} and C{#NO_IDENTD:} and
    C{#BAD_ID:} lines;
  - the NEC SOCKS5 C{socks5.conf}: C{ban src-hostmask [src-portrange]},
    C{auth} lines and C{permit|deny auth-methods commands src-hostmask
    dst-hostmask [src-portrange [dst-portrange [user-list]]]}.

How it converts, and why:

  - One rule per source rule, in the same order: first match wins and no
    match denies, in both formats as in socksgate.  socks5.conf's C{ban}
    lines come first, because socks5 refused those clients before reading
    anything else.  Each rule is preceded by a comment quoting its line,
    and its C{message} names the line (C{"sockd.conf line 12"}).
  - Every line that is not converted exactly is reported with its number,
    and marked in the output.  What is written instead fails closed: a
    deny rule is widened (a non-contiguous mask becomes the CIDR of its
    leading one bits; a restriction socksgate cannot express is dropped);
    a permit rule is narrowed (a userlist keeps its names and loses its
    files) or, when nothing narrower exists, left out as a comment.  The
    result may refuse what the original allowed, never the reverse.
  - A line that the original server ignored as invalid is reported and
    left out.
  - "Any address" (C{0.0.0.0 0.0.0.0}, C{-}) leaves the key out, so the
    rule also covers IPv6 and destinations given by name.
  - sockd served SOCKS4 CONNECT and BIND only, so its permit lines become
    rules with C{commands = ["connect", "bind"]} (the conversion never
    permits UDP); its deny lines cover every command.
  - C{: shell_cmd} tails: socksgate never runs commands.  The command is
    kept as a comment above its rule and the rule's C{message} says the
    original ran one, so the session log shows when it would have run.
    This is a conversion by design, not a problem, and is not reported.
  - C{#NO_IDENTD:} and C{#BAD_ID:} lines are kept as comments saying what
    socksgate does instead (CD 92 and CD 93 when C{[auth] ident =
    "require"}); they are not reported either.  No C{[auth]} table is
    written: this version of socksgate refuses them.
  - C{?=I} and C{?=i} on a permit line ask for an identd check of that line
    alone, which rules cannot express (ident is the global C{[auth]
    ident}): reported, and the permit left out.  C{?=n}, and any C{?=} on a
    deny line (sockd asked identd only about permits), convert exactly.
  - A userlist file (C{*=/path}) is not read: it belongs to the old host.
  - Service names are looked up on this host (C{getservbyname}).
  - socks5.conf's authentication methods become C{users} and C{versions}:
    C{n} is C{users = ["-"]} (anonymous only), C{uk} is C{users = ["*"]}
    with C{versions = ["5"]} (authenticated: only SOCKS5 authenticates),
    C{-} leaves both out; a user list becomes C{users}.  Rules cannot tell
    username/password from GSS-API, so C{u} or C{k} without the other is
    reported.
  - socks5.conf's C{p} and C{t} commands (ping, traceroute) are reported;
    a rule left with no command socksgate serves matches nothing and is
    left out.  Source port ranges cannot be expressed (C{-} or a range of
    every port is fine), nor can clients named by host or domain name
    (socksgate matches clients by address).
  - socks5.conf's C{.domain} matched the names below the domain;
    socksgate's C{".domain"} matches the domain's own name as well.
  - C{auth}, C{set}, C{interface}, C{route}, C{proxy}, C{noproxy},
    C{socks4} and C{socks5} lines are kept as comments and reported.
"""

from __future__ import annotations

import os
import re
import socket
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TextIO

from ..vocabulary import Command, Version

__all__ = ["SOCKD", "SOCKS5", "Conversion", "convertSockdConf", "convertSocks5Conf", "detectFormat", "run"]

#: The name of the SOCKS4 format, as L{detectFormat} returns it.
SOCKD = "sockd.conf"

#: The name of the NEC SOCKS5 format, as L{detectFormat} returns it.
SOCKS5 = "socks5.conf"


@dataclass(frozen=True)
class Conversion:
    """
    The result of a conversion.

    @ivar toml: the TOML text: comments and C{[[rule]]} tables.
    @ivar problems: C{(line number, message)} for everything that was not
        converted exactly, in line order.
    """

    toml: str
    problems: tuple[tuple[int, str], ...]


class _Invalid(Exception):
    """
    The line is not valid in its format: the original server ignored it.
    """


class _UnknownService(Exception):
    """
    A port is given by a service name this host does not know.
    """


#: Some keys of a rule: TOML key to its list of strings.
_Fields = dict[str, list[str]]


@dataclass(frozen=True)
class _Match:
    """
    What one part of a source line becomes.

    @ivar wide: the fields to use in a deny rule: the same requests or more.
    @ivar narrow: the fields to use in a permit rule: the same or fewer.
    @ivar problem: why the two differ, or a remark worth reporting.
    """

    wide: _Fields | None
    narrow: _Fields | None
    problem: str | None = None


def _exact(**fields: list[str] | None) -> _Match:
    """
    A part converted exactly; keys given as L{None} are left out (any).
    """
    value = {key: items for key, items in fields.items() if items is not None}
    return _Match(value, value)


def _nothing(problem: str) -> _Match:
    """
    A part that matches no request socksgate can receive.
    """
    return _Match(None, None, problem)


_KEYS = ("clients", "destinations", "ports", "commands", "versions", "users")


class _Output:
    """
    The converted file, built line by line, and its problems.
    """

    def __init__(self, source: str, title: str) -> None:
        self.source, self.title = source, title
        self.lines: list[str] = []
        self.problems: list[tuple[int, str]] = []

    def comment(self, text: str, wrap: bool = True) -> None:
        text = _commentSafe(text)
        lines = textwrap.wrap(text, 96, subsequent_indent="  ", break_on_hyphens=False) if wrap else [text]
        self.lines.extend(f"# {line}".rstrip() for line in lines or [""])

    def quote(self, number: int, original: str) -> None:
        self.lines.append("")
        self.comment(f"{self.source} line {number}: {original.strip()}", wrap=False)

    def report(self, number: int, message: str, marker: str = "NOT CONVERTED") -> None:
        self.problems.append((number, message))
        self.comment(f"{marker}: {message}")

    def invalid(self, number: int, original: str, why: str) -> None:
        self.quote(number, original)
        self.report(number, f"{why}; the original server ignored this line, and so does the conversion")

    def rule(
        self, number: int, original: str, action: str, parts: list[_Match], notes: list[str], message: str
    ) -> None:
        chosen = [part.wide if action == "deny" else part.narrow for part in parts]
        leftOut = any(fields is None for fields in chosen)
        self.quote(number, original)
        for note in notes:
            self.comment(note)
        for part in parts:
            if part.problem is None:
                continue
            exact = part.wide == part.narrow
            if leftOut:
                suffix = "; the rule is left out" + ("" if exact else ", to fail closed")
            elif exact:
                suffix = ""
            else:
                suffix = (
                    f"; the {action} rule is {'widened' if action == 'deny' else 'narrowed'}, to fail closed"
                )
            self.report(number, part.problem + suffix, "LEFT OUT" if leftOut else "NOT CONVERTED EXACTLY")
        if leftOut:
            return
        fields: _Fields = {}
        for each in chosen:
            fields.update(each or {})
        self.lines.append("[[rule]]")
        self.lines.append(f"action = {_tomlString(action)}")
        for key in _KEYS:
            if key in fields:
                self.lines.append(f"{key} = [{', '.join(_tomlString(item) for item in fields[key])}]")
        self.lines.append(f"message = {_tomlString(message)}")

    def finish(self) -> Conversion:
        header = [
            f"# socksgate [[rule]] tables converted from {self.title} by `socksgate convert`.",
            "# The first rule that matches decides; a request that matches no rule is denied,",
            f"# as in {self.source}.",
        ]
        if self.problems:
            lines = sorted({number for number, _ in self.problems})
            header.append(
                f"# {len(lines)} source line(s) were not converted exactly: see the comments marked"
                " NOT CONVERTED and LEFT OUT."
            )
        problems = tuple(sorted(self.problems, key=lambda problem: problem[0]))
        return Conversion("\n".join(header + self.lines) + "\n", problems)


def _commentSafe(text: str) -> str:
    """
    C{text} with the characters a TOML comment may not hold escaped.
    """
    return "".join(f"\\x{ord(char):02x}" if _isControl(char) else char for char in text)


def _isControl(char: str) -> bool:
    return (char < " " and char != "\t") or char == "\x7f"


def _tomlString(text: str) -> str:
    """
    C{text} as a TOML basic string.
    """
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif _isControl(char) or char == "\t":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


# Addresses and ports, shared by both formats.

_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _ipv4(text: str) -> IPv4Address | None:
    """
    C{text} as an address if it is a dotted quad, else L{None}.
    """
    if not _DOTTED_QUAD.fullmatch(text):
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _networkMatch(key: str, address: IPv4Address, mask: IPv4Address, shown: str) -> _Match:
    """
    The addresses whose bits under C{mask}'s one bits equal C{address}'s.

    A contiguous mask is a CIDR; any other is reported, widened to the CIDR
    of the mask's leading one bits.
    """
    bits = int(mask)
    prefix = 0
    while prefix < 32 and bits & (1 << (31 - prefix)):
        prefix += 1
    leading = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    network = IPv4Network((int(address) & leading, prefix))
    wide = {} if prefix == 0 else {key: [_networkText(network)]}
    if bits == leading:
        return _Match(wide, wide)
    return _Match(wide, None, f"mask {mask} is not contiguous, so {shown} is no CIDR")


def _networkText(network: IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)


def _portNumber(text: str) -> int:
    """
    A port given by number or by service name.

    @raise _Invalid: a number out of range.
    @raise _UnknownService: a name this host does not know.
    """
    if text.isdigit():
        if int(text) > 65535:
            raise _Invalid(f"port {text} is out of range")
        return int(text)
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError):
        raise _UnknownService(text) from None


def _portMatch(ranges: list[tuple[int, int]], shown: str) -> _Match:
    """
    The C{ports} key for the union of inclusive C{ranges}.
    """
    clipped = sorted((max(low, 1), min(high, 65535)) for low, high in ranges)
    merged: list[tuple[int, int]] = []
    for low, high in clipped:
        if low > high:
            continue
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    if not merged:
        return _nothing(f"{shown} matches no port")
    if merged == [(1, 65535)]:
        return _exact()
    return _exact(ports=[str(low) if low == high else f"{low}-{high}" for low, high in merged])


def _unknownService(name: str) -> _Match:
    return _Match({}, None, f"service {name!r} is unknown on this host")


# SOCKS4 sockd.conf

_OPERATORS: dict[str, Callable[[int], list[tuple[int, int]]]] = {
    "eq": lambda port: [(port, port)],
    "neq": lambda port: [(1, port - 1), (port + 1, 65535)],
    "lt": lambda port: [(1, port - 1)],
    "gt": lambda port: [(port + 1, 65535)],
    "le": lambda port: [(1, port)],
    "ge": lambda port: [(port, 65535)],
}

_IDENTD_LINES = {
    "#NO_IDENTD:": (
        "sockd ran this command when a client's identd could not be reached.  socksgate never runs"
        ' commands: with [auth] ident = "require" it refuses such a SOCKS4 client with CD 92, and the'
        " access log records it."
    ),
    "#BAD_ID:": (
        "sockd ran this command when identd named another user than the client claimed.  socksgate"
        ' never runs commands: with [auth] ident = "require" it refuses such a SOCKS4 client with'
        " CD 93, and the access log records it."
    ),
}


def convertSockdConf(text: str) -> Conversion:
    """
    Convert the text of a SOCKS4 C{sockd.conf}; see the module's docstring.
    """
    output = _Output(SOCKD, "a SOCKS4 sockd.conf")
    for number, line in enumerate(text.splitlines(), 1):
        try:
            _sockdLine(output, number, line)
        except _Invalid as problem:
            output.invalid(number, line, str(problem))
    return output.finish()


def _splitSockdLine(line: str) -> tuple[str, str | None]:
    """
    Split C{line} as sockd did: the first C{:} starts the shell command,
    unless a C{#} comes first and starts a comment.
    """
    for index, char in enumerate(line):
        if char == ":":
            return line[:index], line[index + 1 :]
        if char == "#":
            return line[:index], None
    return line, None


def _sockdLine(output: _Output, number: int, line: str) -> None:
    stripped = line.strip()
    for prefix, explanation in _IDENTD_LINES.items():
        if stripped.startswith(prefix):
            output.quote(number, line)
            output.comment(explanation)
            return
    body, command = _splitSockdLine(line)
    tokens = body.split()
    if not tokens:
        if command is not None and command.strip():
            raise _Invalid("a shell command without a rule")
        return
    action, rest = tokens[0], tokens[1:]
    if action not in ("permit", "deny"):
        raise _Invalid(f"{action!r} is neither permit nor deny")
    parts: list[_Match] = []
    notes: list[str] = []
    if rest and rest[0].startswith("?="):
        identd = rest.pop(0)[2:]
        if identd not in ("I", "i", "n", ""):
            raise _Invalid(f"?={identd} is not ?=I, ?=i or ?=n")
        _sockdIdentd(action, identd, parts, notes)
    if rest and rest[0].startswith("*="):
        parts.append(_sockdUsers(rest.pop(0)[2:]))
    if len(rest) < 2:
        raise _Invalid("no source address and mask")
    parts.append(_sockdAddress("clients", rest[0], rest[1]))
    rest = rest[2:]
    if len(rest) > 1 and rest[0] not in _OPERATORS:
        parts.append(_sockdAddress("destinations", rest[0], rest[1]))
        rest = rest[2:]
    if len(rest) > 1:
        operator, port = rest[0], rest[1]
        rest = rest[2:]
        if operator not in _OPERATORS:
            raise _Invalid(f"{operator!r} is not a port operator (eq, neq, lt, gt, le, ge)")
        try:
            parts.append(_portMatch(_OPERATORS[operator](_portNumber(port)), f"{operator} {port}"))
        except _UnknownService:
            parts.append(_unknownService(port))
    if rest:
        parts.append(_Match({}, {}, f"extra field {' '.join(rest)!r} is ignored, as sockd ignored it"))
    if action == "permit":
        parts.append(_exact(commands=[Command.CONNECT, Command.BIND]))
    message = f"{SOCKD} line {number}"
    if command is not None and command.strip():
        notes.append(f"sockd ran this shell command, which socksgate never runs: {command.strip()}")
        message += " (ran a shell command)"
    output.rule(number, line, action, parts, notes, message)


def _sockdIdentd(action: str, identd: str, parts: list[_Match], notes: list[str]) -> None:
    """
    What C{?=identd} means for a rule.
    """
    if action == "deny":
        notes.append(f"?={identd} has no effect on a deny line: sockd asked identd only about permits.")
    elif identd in ("I", "i"):
        parts.append(
            _Match(
                {},
                None,
                f"?={identd} asks identd about this line alone; socksgate asks identd about every SOCKS4"
                " request or none ([auth] ident), and this version refuses [auth] tables",
            )
        )
    else:
        notes.append(f'?={identd}: no identd check, as with socksgate\'s default [auth] ident = "off".')


def _sockdUsers(userlist: str) -> _Match:
    """
    The C{users} key for a C{*=} userlist: names, and files (C{/path}).
    """
    names = [name for name in userlist.split(",") if name]
    files = [name for name in names if name.startswith("/")]
    plain = [name for name in names if not name.startswith("/")]
    if not files:
        return _exact(users=plain or None)
    return _Match(
        {},
        {"users": plain} if plain else None,
        f"userlist file {', '.join(files)} is not read: it is the original host's",
    )


def _sockdAddress(key: str, address: str, mask: str) -> _Match:
    """
    An address and mask pair of sockd.conf.
    """
    parsedAddress, parsedMask = _ipv4(address), _ipv4(mask)
    if parsedAddress is None or parsedMask is None:
        wrong = address if parsedAddress is None else mask
        side = "source" if key == "clients" else "destination"
        return _Match(
            {}, None, f"{side} {wrong!r} is not a dotted quad (sockd looked names up when it started)"
        )
    return _networkMatch(key, parsedAddress, parsedMask, f"{address} {mask}")


# NEC SOCKS5 socks5.conf

_PARTIAL_ADDRESS = re.compile(r"(?:\d{1,3}\.){1,3}")
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
)

_PROXY_LINES = (
    "chooses whether to chain to another proxy server;"
    " socksgate's [[upstream]] tables and via keys are written by hand"
)
_NOT_RULES = {
    "set": "sets a socks5 server variable; socksgate has its own [server] settings",
    "interface": "chooses the interface to reach a destination; socksgate leaves that to the host's routes",
    "route": "chooses the interface to reach a destination; socksgate leaves that to the host's routes",
    "proxy": _PROXY_LINES,
    "noproxy": _PROXY_LINES,
    "socks4": _PROXY_LINES,
    "socks5": _PROXY_LINES,
}

_AUTH_LINE = (
    "auth lines choose the authentication methods of clients; in socksgate that is [auth] methods, and"
    " this version refuses [auth] tables: set it by hand once it accepts them"
)

_COMMANDS = (("c", Command.CONNECT), ("b", Command.BIND), ("u", Command.UDP))


def convertSocks5Conf(text: str) -> Conversion:
    """
    Convert the text of an NEC SOCKS5 C{socks5.conf}; see the module's
    docstring.
    """
    output = _Output(SOCKS5, "an NEC SOCKS5 socks5.conf")
    lines = [
        (number, line, line.split("#", 1)[0].split()) for number, line in enumerate(text.splitlines(), 1)
    ]
    bans = [each for each in lines if each[2][:1] == ["ban"]]
    others = [each for each in lines if each[2] and each[2][0] != "ban"]
    if bans:
        output.lines.append("")
        output.comment("ban lines first: socks5 refused those clients before reading any other line.")
    for number, line, tokens in bans + others:
        try:
            _socks5Line(output, number, line, tokens)
        except _Invalid as problem:
            output.invalid(number, line, str(problem))
    return output.finish()


def _socks5Line(output: _Output, number: int, line: str, tokens: list[str]) -> None:
    keyword = tokens[0]
    message = f"{SOCKS5} line {number}"
    if keyword == "ban":
        if len(tokens) not in (2, 3):
            raise _Invalid("a ban line is: ban source-host [source-port]")
        parts = [_hostMatch("clients", tokens[1]), _sourcePorts(tokens[2] if len(tokens) > 2 else "-")]
        output.rule(number, line, "deny", parts, [], message + " (ban)")
    elif keyword in ("permit", "deny"):
        if not 5 <= len(tokens) <= 8:
            raise _Invalid(
                f"a {keyword} line is: {keyword} auth-methods commands source-host destination-host"
                " [source-port [destination-port [user-list]]]"
            )
        methods, commands, source, destination = tokens[1:5]
        sourcePorts, destinationPorts, users = (tokens[5:] + ["-", "-", "-"])[:3]
        parts = [
            _hostMatch("clients", source),
            _hostMatch("destinations", destination),
            _sourcePorts(sourcePorts),
            _destinationPorts(destinationPorts),
            _commandMatch(commands),
            _userMatch(_letters(methods, "nuk", "auth-methods"), methods, users),
        ]
        output.rule(number, line, keyword, parts, [], message)
    elif keyword == "auth":
        output.quote(number, line)
        output.report(number, _AUTH_LINE)
    elif keyword in _NOT_RULES:
        output.quote(number, line)
        output.report(number, f"{keyword} lines are not converted: this one {_NOT_RULES[keyword]}")
    else:
        raise _Invalid(f"{keyword!r} is not a socks5.conf keyword")


def _letters(text: str, allowed: str, what: str) -> frozenset[str]:
    """
    The letters of a C{-} or letters field.
    """
    if text == "-":
        return frozenset(allowed)
    if not set(text) <= set(allowed):
        raise _Invalid(f"{what} {text!r} is not - or letters of {', '.join(allowed)}")
    return frozenset(text)


def _hostMatch(key: str, text: str) -> _Match:
    """
    A socks5.conf host pattern: C{-}, C{a.b.c.d/m.m.m.m}, C{n1.n2.},
    an address, C{.domain} or a host name.
    """
    if text == "-":
        return _exact()
    if "/" in text:
        address, _, mask = text.partition("/")
        parsedAddress, parsedMask = _ipv4(address), _ipv4(mask)
        if parsedAddress is None or parsedMask is None:
            raise _Invalid(f"{text!r} is not address/mask in dotted quads")
        return _networkMatch(key, parsedAddress, parsedMask, text)
    if _PARTIAL_ADDRESS.fullmatch(text):
        octets = text.rstrip(".").split(".")
        address = _ipv4(".".join(octets + ["0"] * (4 - len(octets))))
        if address is None:
            raise _Invalid(f"{text!r} is not a network prefix")
        return _exact(**{key: [str(IPv4Network((address, 8 * len(octets))))]})
    address = _ipv4(text)
    if address is not None:
        return _exact(**{key: [str(address)]})
    if _HOST_NAME.fullmatch(text.removeprefix(".").removesuffix(".")):
        if key == "clients":
            return _Match({}, None, f"client {text!r} is a name; socksgate matches clients by address only")
        return _exact(destinations=[text.lower().removesuffix(".")])
    raise _Invalid(f"{text!r} is not a host pattern")


def _portPattern(text: str) -> list[tuple[int, int]]:
    """
    A socks5.conf port pattern other than C{-}: a port, a service name, or
    an interval such as C{[1024,65535]} or C{(1023,65535]}.
    """
    if text[:1] not in "[(":
        port = _portNumber(text)
        return [(port, port)]
    match = re.fullmatch(r"([\[(])([^,\])]+),([^,\])]+)([\])])", text) or re.fullmatch(
        r"([\[(])(\d+)-(\d+)([\])])", text
    )
    if match is None:
        raise _Invalid(f"{text!r} is not a port range such as [1024,65535]")
    low, high = _portNumber(match.group(2)), _portNumber(match.group(3))
    return [(low + (match.group(1) == "("), high - (match.group(4) == ")"))]


def _destinationPorts(text: str) -> _Match:
    if text == "-":
        return _exact()
    try:
        return _portMatch(_portPattern(text), f"port range {text}")
    except _UnknownService as name:
        return _unknownService(str(name))


def _sourcePorts(text: str) -> _Match:
    if text == "-":
        return _exact()
    try:
        ranges = _portPattern(text)
    except _UnknownService:
        ranges = []
    if _portMatch(ranges, text).wide == {}:
        return _exact()
    return _Match({}, None, f"source ports {text}: socksgate rules cannot restrict the client's port")


def _commandMatch(text: str) -> _Match:
    letters = _letters(text, "cbupt", "commands")
    served = [name for letter, name in _COMMANDS if letter in letters]
    problem = None
    unsupported = [name for letter, name in (("p", "ping"), ("t", "traceroute")) if letter in letters]
    if text != "-" and unsupported:
        verb = "is" if len(unsupported) == 1 else "are"
        problem = f"commands {text}: {' and '.join(unsupported)} {verb} not supported by socksgate"
    if not served:
        return _nothing(f"{problem}, and no other command is left")
    fields = {} if len(served) == len(_COMMANDS) else {"commands": served}
    return _Match(fields, fields, problem)


def _userMatch(methods: frozenset[str], shown: str, userList: str) -> _Match:
    """
    The C{users} and C{versions} keys for authentication methods and a
    user list.
    """
    authenticated = methods & {"u", "k"}
    split = f"auth methods {shown}: socksgate rules cannot tell username/password from GSS-API"
    if userList == "-":
        if authenticated == {"u", "k"}:
            return _exact() if "n" in methods else _exact(users=["*"], versions=[Version.SOCKS5])
        if not authenticated:
            return _exact(users=["-"])
        if "n" in methods:
            return _Match({}, {"users": ["-"]}, split)
        return _Match({"users": ["*"], "versions": [Version.SOCKS5]}, None, split)
    names = [name for name in userList.split(",") if name]
    if authenticated == {"u", "k"}:
        return _exact(users=names, versions=None if "n" in methods else [Version.SOCKS5])
    if not authenticated:
        return _Match(
            {"users": names}, None, "a user list with auth method n: anonymous clients have no name"
        )
    return _Match({"users": names}, None, split)


# Telling the formats apart, and the command.

_SOCKS5_KEYWORDS = frozenset(_NOT_RULES) | {"ban", "auth"}


def detectFormat(text: str, path: str | None = None) -> str | None:
    """
    Which format C{text} is in: L{SOCKD}, L{SOCKS5}, or L{None} when it is
    neither.

    Each rule line votes by its shape; the file name (C{sockd.conf},
    C{socks5.conf}) breaks a tie.  A file with other lines and no votes
    (such as Dante's C{sockd.conf}) is neither.
    """
    votes = {SOCKD: 0, SOCKS5: 0}
    others = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(tuple(_IDENTD_LINES)):
            votes[SOCKD] += 1
            continue
        tokens = stripped.split("#", 1)[0].split()
        if not tokens:
            continue
        if tokens[0] in _SOCKS5_KEYWORDS:
            votes[SOCKS5] += 1
        elif tokens[0] in ("permit", "deny") and _looksLikeSockd(line):
            votes[SOCKD] += 1
        elif (
            tokens[0] in ("permit", "deny")
            and len(tokens) >= 5
            and re.fullmatch(r"-|[nuk]+", tokens[1])
            and re.fullmatch(r"-|[cbupt]+", tokens[2])
        ):
            votes[SOCKS5] += 1
        else:
            others += 1
    if votes[SOCKD] != votes[SOCKS5]:
        return max(votes, key=lambda kind: votes[kind])
    if others and not votes[SOCKD]:
        return None
    name = os.path.basename(path or "")
    for kind in (SOCKD, SOCKS5):
        if kind in name:
            return kind
    return None


def _looksLikeSockd(line: str) -> bool:
    tokens = _splitSockdLine(line)[0].split()[1:]
    if tokens and tokens[0][:2] in ("?=", "*="):
        return True
    return len(tokens) >= 2 and _ipv4(tokens[0]) is not None and _ipv4(tokens[1]) is not None


_CONVERTERS: dict[str, Callable[[str], Conversion]] = {SOCKD: convertSockdConf, SOCKS5: convertSocks5Conf}


def run(path: str, stdout: TextIO, stderr: TextIO) -> int:
    """
    Convert the file at C{path}: the TOML goes to C{stdout}, each problem to
    C{stderr} as C{PATH:LINE: message}.

    @return: the exit status: 0 when everything was converted exactly, 1
        when some lines were not (the TOML is still written), 2 when the
        file cannot be read or is in neither format.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        stderr.write(f"{path}: cannot be read: {error.strerror or error}\n")
        return 2
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    kind = detectFormat(text, path)
    if kind is None:
        stderr.write(
            f"{path}: neither a SOCKS4 sockd.conf nor an NEC socks5.conf"
            " (a Dante sockd.conf is another format, which this command does not read)\n"
        )
        return 2
    conversion = _CONVERTERS[kind](text)
    stdout.write(conversion.toml)
    for number, message in conversion.problems:
        stderr.write(f"{path}:{number}: {message}\n")
    return 1 if conversion.problems else 0
