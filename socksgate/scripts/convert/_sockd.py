"""
The SOCKS4 C{sockd.conf} of CSTC/NEC sockd 4.x: lines C{permit|deny
[?=I|i|n] [*=userlist] src_addr src_mask [dst_addr dst_mask] [op dst_port]
[: shell_cmd]}, and C{#NO_IDENTD:} and C{#BAD_ID:} lines.

How it converts, beyond what the package's docstring says of every format:

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
    written: whether to require ident of every SOCKS4 client is the
    administrator's choice.
  - C{?=I} and C{?=i} on a permit line ask for an identd check of that line
    alone, which rules cannot express (ident is the global C{[auth]
    ident}, for every SOCKS4 request or none): reported, and the permit
    left out.  C{?=n}, and any C{?=} on a
    deny line (sockd asked identd only about permits), convert exactly.
  - A userlist file (C{*=/path}) is not read: it belongs to the old host.
"""

from __future__ import annotations

from collections.abc import Callable

from ...vocabulary import Command
from ._addresses import _ipv4, _networkMatch, _portMatch, _portNumber, _UnknownService, _unknownService
from ._output import Conversion, _exact, _Invalid, _Match, _Output

__all__ = ["SOCKD", "convertSockdConf", "isSockdLine"]

#: The name of the SOCKS4 format, as L{detectFormat} returns it.
SOCKD = "sockd.conf"


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
                ' request or none ([auth] ident = "require"), which rules cannot select',
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


def isSockdLine(line: str) -> bool:
    """
    Whether C{line} is one that only a SOCKS4 C{sockd.conf} holds: a
    C{#NO_IDENTD:} or C{#BAD_ID:} line, or a C{permit} or C{deny} line whose
    fields start with C{?=}, C{*=} or an address and mask in dotted quads.
    """
    stripped = line.strip()
    if stripped.startswith(tuple(_IDENTD_LINES)):
        return True
    tokens = stripped.split("#", 1)[0].split()
    return bool(tokens) and tokens[0] in ("permit", "deny") and _looksLikeSockd(line)


def _looksLikeSockd(line: str) -> bool:
    tokens = _splitSockdLine(line)[0].split()[1:]
    if tokens and tokens[0][:2] in ("?=", "*="):
        return True
    return len(tokens) >= 2 and _ipv4(tokens[0]) is not None and _ipv4(tokens[1]) is not None
