"""
The NEC SOCKS5 C{socks5.conf}: C{ban src-hostmask [src-portrange]}, C{auth}
lines and C{permit|deny auth-methods commands src-hostmask dst-hostmask
[src-portrange [dst-portrange [user-list]]]}.

How it converts, beyond what the package's docstring says of every format:

  - The C{ban} lines come first, because socks5 refused those clients
    before reading anything else; the other lines follow in their order.
  - The authentication methods become C{users} and C{versions}: C{n} is
    C{users = ["-"]} (anonymous only), C{uk} is C{users = ["*"]} with
    C{versions = ["5"]} (authenticated: only SOCKS5 authenticates), C{-}
    leaves both out; a user list becomes C{users}.  Rules match the user,
    not the method that authenticated it, so C{u} or C{k} without the other
    converts exactly only when the file's C{auth} lines never offer the
    other method (then C{users = ["*"]}, C{versions = ["5"]}); otherwise it
    is reported (a permit left out, a deny widened to both methods).
  - The C{p} and C{t} commands (ping, traceroute) are reported; a rule left
    with no command socksgate serves matches nothing and is left out.
    Source port ranges cannot be expressed (C{-} or a range of every port
    is fine), nor can clients named by host or domain name (socksgate
    matches clients by address).
  - socks5.conf's C{.domain} matched the names below the domain, not the
    domain's own name; socksgate's C{".domain"} matches that name as well.
    A permit is preceded by a deny rule for the bare name (with the
    permit's other keys), a deny is widened to the bare name; both are
    reported.
  - C{auth} lines are kept as comments and reported: socksgate's
    C{[auth] methods} is one list for every client, and the passwords
    (socks5's own password file) are the original host's, so the
    C{[auth]} table is written by hand.  C{set}, C{interface}, C{route},
    C{proxy}, C{noproxy}, C{socks4} and C{socks5} lines are kept as
    comments and reported too.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network

from ...vocabulary import Command, Version
from ._addresses import _ipv4, _networkMatch, _portMatch, _portNumber, _UnknownService, _unknownService
from ._output import Conversion, _exact, _Invalid, _Match, _nothing, _Output

__all__ = ["SOCKS5", "convertSocks5Conf", "isSocks5Line"]

#: The name of the NEC SOCKS5 format, as L{detectFormat} returns it.
SOCKS5 = "socks5.conf"


_PARTIAL_ADDRESS = re.compile(r"(?:\d{1,3}\.){1,3}")
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
)

_PROXY_LINES = (
    "chooses whether to chain to another proxy server;"
    " socksgate chains with [[upstream]] tables and the rules' via keys, written by hand"
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
    'auth lines choose the authentication methods of clients; socksgate\'s [auth] methods ("none",'
    ' "userpass", "gssapi") is one list for every client, and its userpass needs a checker for'
    " passwords that are the original host's: write the [auth] table by hand"
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
    offered = _offeredMethods([each[2] for each in lines if each[2][0:1] == ["auth"]])
    if bans:
        output.lines.append("")
        output.comment("ban lines first: socks5 refused those clients before reading any other line.")
    for number, line, tokens in bans + others:
        try:
            _socks5Line(output, number, line, tokens, offered)
        except _Invalid as problem:
            output.invalid(number, line, str(problem))
    return output.finish()


def _offeredMethods(authLines: list[list[str]]) -> frozenset[str]:
    """
    The authenticating methods (C{u}, C{k}) that some C{auth} line offers
    to some client: both when there is none (socks5 then offered every
    method) or when a line is not valid.
    """
    if not authLines:
        return frozenset("uk")
    offered: set[str] = set()
    for tokens in authLines:
        if len(tokens) != 4:
            return frozenset("uk")
        try:
            offered |= _letters(tokens[3], "nuk", "auth-methods")
        except _Invalid:
            return frozenset("uk")
    return frozenset(offered) & frozenset("uk")


def _socks5Line(output: _Output, number: int, line: str, tokens: list[str], offered: frozenset[str]) -> None:
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
            _userMatch(_letters(methods, "nuk", "auth-methods"), methods, users, offered),
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
        name = text.lower().removesuffix(".")
        if not name.startswith("."):
            return _exact(destinations=[name])
        fields = {"destinations": [name]}
        return _Match(
            fields,
            fields,
            f"{text} matched the names below {name[1:]}, not {name[1:]} itself, which socksgate's"
            f" {name!r} matches too",
            guard={"destinations": [name[1:]]},
        )
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


def _userMatch(methods: frozenset[str], shown: str, userList: str, offered: frozenset[str]) -> _Match:
    """
    The C{users} and C{versions} keys for authentication methods and a
    user list.

    @param offered: the authenticating methods the C{auth} lines offer.
    """
    if methods & {"u", "k"} and not methods & offered:
        return _nothing(f"auth methods {shown}: no auth line offers them, so no client can use them")
    if methods & {"u", "k"} and offered <= methods:
        methods = methods | {"u", "k"}
    authenticated = methods & {"u", "k"}
    split = (
        f"auth methods {shown}: socksgate rules match the authenticated user, not whether a password or"
        " GSS-API authenticated it, and the auth lines offer both"
    )
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


_SOCKS5_KEYWORDS = frozenset(_NOT_RULES) | {"ban", "auth"}


def isSocks5Line(line: str) -> bool:
    """
    Whether C{line} is one that only an NEC C{socks5.conf} holds: a line of
    one of its own keywords (C{ban}, C{auth}, C{set}, ...), or a C{permit}
    or C{deny} line whose first two fields are authentication methods and
    commands.
    """
    tokens = line.strip().split("#", 1)[0].split()
    if not tokens:
        return False
    if tokens[0] in _SOCKS5_KEYWORDS:
        return True
    return (
        tokens[0] in ("permit", "deny")
        and len(tokens) >= 5
        and re.fullmatch(r"-|[nuk]+", tokens[1]) is not None
        and re.fullmatch(r"-|[cbupt]+", tokens[2]) is not None
    )
