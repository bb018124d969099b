"""
Dante 1.4's server configuration, C{sockd.conf} (Debian: C{danted.conf}):
server settings (C{internal:}, C{external:}, C{socksmethod:},
C{timeout.*:}, C{logoutput:}, C{user.*:}, ...) and C{client pass|block}
and C{socks pass|block} rules in braces.

How it converts, beyond what the package's docstring says of all formats:

  - Dante decides in two passes, both first match and default block:
    C{client} rules decide which client addresses may talk to the server
    at all, then C{socks} rules decide each request.  socksgate has one
    list, so the client rules become the set of addresses they pass
    (each pass rule's C{from:} minus those of the client rules before
    it), and every C{socks pass} rule's C{clients} is intersected with
    that set; C{socks block} rules are kept as they are.  A request is
    then permitted exactly when Dante permits it.
  - Addresses: C{0/0} is any address (the key is left out); C{0.0.0.0/0}
    and C{::/0} stay themselves (IPv4 only, IPv6 only, as in Dante).  A
    host name or C{.domain} destination: Dante compared names as strings
    (C{.example.com} matches every name that ends in C{example.com},
    C{badexample.com} too) and matched an address request by its reverse
    lookup.  socksgate matches names only, C{".example.com"} being the
    domain and below: a permit is narrowed to that, a block widened to
    any destination; both are reported.  A name without a dot may be an
    interface, whose addresses are the machine's: reported.
  - Ports after C{to:} (C{port = 80}, C{port gt 1023}, C{port 1024 -
    65535}) become C{ports}; after C{from:} they are the client's port,
    which socksgate rules cannot restrict.
  - C{command:} and C{protocol:}: socksgate decides a BIND with its
    incoming connection, and UDP with its replies, so a permit covers
    C{bind} only when it also covers C{bindreply} (C{udp}: C{udpassociate}
    and C{udpreply}); a block of either part blocks the command.
  - C{socksmethod:} becomes C{[auth] methods} (C{none}, C{username} as
    C{"userpass"} with C{checker = "unix"}, Dante's system passwords, and
    C{gssapi}); a rule's C{socksmethod:} and C{user:} become C{users} and
    C{versions = ["5"]} (only SOCKS5 authenticates).
  - C{logoutput:}, C{errorlog:}, C{debug:} and C{user.*:} are about how
    the daemon runs, which twistd's options decide: each becomes a
    comment naming the option, and is not reported.  A rule's C{log:}
    is kept as a comment: socksgate logs every session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address

from ._danteparts import (
    ANY,
    Network,
    clientAddresses,
    collapse,
    commandsMatch,
    destinationMatches,
    intersect,
    parseNetworks,
    subtract,
    usersMatch,
)
from ._output import Conversion, _Invalid, _Match, _nothing, _Output, _tomlString

__all__ = ["DANTE", "convertDanteConf", "isDanteLine"]

#: The name of Dante's format, as L{detectFormat} returns it.
DANTE = "danted.conf"

_RULE_START = re.compile(r"^\s*(?:(client|socks)\s+(pass|block)|(pass|block)|(route))\s*(\{|$)")
_SETTING = re.compile(r"^\s*([a-z][a-z0-9_.]*)\s*:")
_METHODS = {"none": "none", "username": "userpass", "gssapi": "gssapi"}
_TIMEOUTS = {
    "timeout.negotiate": "handshake-timeout",
    "timeout.connect": "connect-timeout",
    "timeout.io": "idle-timeout",
    "timeout.io.tcp": "idle-timeout",
    "timeout.io.udp": "udp-idle-timeout",
}
_DAEMON = {
    "logoutput": "the daemon's log is twistd's: stderr is `twistd -n`, syslog `twistd --syslog`, a file"
    " `twistd --logfile FILE`; the session log is [log] access",
    "errorlog": "errors go to twistd's log (`twistd --logfile FILE` or `--syslog`)",
    "debug": "socksgate has no debug level: `twistd -n` keeps it in the foreground",
    "user.privileged": "socksgate opens its ports as the user that starts it, then runs as `twistd --uid"
    " USER --gid GROUP`",
    "user.unprivileged": "run socksgate as this user: `twistd --uid USER --gid GROUP`",
    "user.notprivileged": "run socksgate as this user: `twistd --uid USER --gid GROUP`",
    "user.libwrap": "socksgate has no libwrap; run it as `twistd --uid USER --gid GROUP`",
}


@dataclass
class _Block:
    """
    One rule: its kind (C{client} or C{socks}), verdict and C{key: values}
    fields, each with its line.
    """

    kind: str
    verdict: str
    line: int
    text: list[str] = field(default_factory=list)
    fields: list[tuple[str, list[str], int]] = field(default_factory=list)


def convertDanteConf(text: str) -> Conversion:
    """
    Convert the text of a Dante C{sockd.conf}; see the module's docstring.

    A file that Dante would not start with converts to no rule at all,
    with the line that is wrong reported.
    """
    try:
        return _convert(text)
    except _InvalidFile as problem:
        output = _Output(DANTE, "a Dante sockd.conf")
        output.report(
            problem.line, f"{problem.why}: Dante does not start with this file, so nothing is converted"
        )
        return output.finish()


def _convert(text: str) -> Conversion:
    output = _Output(DANTE, "a Dante sockd.conf")
    methods: list[str] = ["none"]
    server: dict[str, str] = {}
    listen: list[str] = []
    passed: list[Network] = []
    earlier: list[Network] = []
    for item in list(_read(text)):
        number = item.line if isinstance(item, _Block) else item[0]
        try:
            _item(output, item, methods, server, listen, passed, earlier)
        except _Invalid as problem:
            raise _InvalidFile(number, str(problem)) from None
    _writeSettings(output, methods, server, listen)
    return output.finish()


def _item(
    output: _Output,
    item: _Block | tuple[int, str, list[str], str],
    methods: list[str],
    server: dict[str, str],
    listen: list[str],
    passed: list[Network],
    earlier: list[Network],
) -> None:
    """
    Convert one setting or rule.
    """
    if not isinstance(item, _Block):
        number, keyword, values, original = item
        output.quote(number, original)
        _setting(output, number, keyword, values, methods, server, listen)
    elif item.kind == "route":
        output.quote(item.line, " ".join(["route {"] + item.text))
        output.report(item.line, "route: chaining is socksgate's [[upstream]] tables and via keys, by hand")
    elif item.kind == "client":
        _clientRule(output, item, passed, earlier)
    else:
        _socksRule(output, item, methods, passed)


def _read(text: str) -> Iterable[_Block | tuple[int, str, list[str], str]]:
    """
    The settings (line, keyword, values, text) and rules of a file, in order.
    """
    block: _Block | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if block is None:
            start = _RULE_START.match(line)
            if start:
                kind = start.group(1) or ("route" if start.group(4) else "socks")
                block = _Block(kind, start.group(2) or start.group(3) or "", number)
                line = line[start.end() :]
            else:
                setting = _SETTING.match(line)
                if setting is None:
                    raise _InvalidFile(number, f"{line!r} is neither a setting nor a rule")
                yield number, setting.group(1), line[setting.end() :].split(), raw
                continue
        elif not any(block.text):
            line = line.removeprefix("{").strip()
        block.text.append(line)
        closed = "}" in line
        body = line.split("}", 1)[0]
        for match in re.finditer(r"([a-z][a-z0-9_.]*)\s*:(?!:)(.*?)(?=\s+[a-z][a-z0-9_.]*\s*:(?!:)|$)", body):
            block.fields.append((match.group(1), match.group(2).split(), number))
        if closed:
            yield block
            block = None
    if block is not None:
        raise _InvalidFile(block.line, "a rule without its closing }")


class _InvalidFile(Exception):
    """
    The file is not a valid sockd.conf: Dante would not start with it.
    """

    def __init__(self, line: int, why: str) -> None:
        super().__init__(line, why)
        self.line, self.why = line, why


def _setting(
    output: _Output,
    number: int,
    keyword: str,
    values: list[str],
    methods: list[str],
    server: dict[str, str],
    listen: list[str],
) -> None:
    """
    One server setting.
    """
    if keyword == "internal":
        address, port = _internal(values)
        if address is None:
            output.report(
                number,
                f"internal: {values[0]} is an interface name (or a host name), whose address is the"
                f' machine\'s: write listen = ["tcp:{port}:interface=ADDRESS"] with its address by hand',
            )
            return
        listener = f"tcp:{port}:interface={address}" if ":" not in address else ""
        listen.append(listener or f"tcp6:{port}:interface={address.replace(':', chr(92) + ':')}")
    elif keyword == "external":
        if not values or _address(values[0]) is None:
            output.report(
                number,
                f"external: {' '.join(values)} is an interface name (or a host name), whose address is the"
                ' machine\'s: write [server] external = "ADDRESS" with its address by hand',
            )
        elif "external" in server:
            output.report(number, "socksgate has one external address: the first external: line is used")
        else:
            server["external"] = _tomlString(values[0])
    elif keyword in ("socksmethod", "method"):
        methods[:] = [_METHODS[each] for each in values if each in _METHODS]
        others = [each for each in values if each not in _METHODS]
        if others:
            output.report(
                number, f"methods {', '.join(others)} have no socksgate equivalent and are left out"
            )
        if not methods:
            output.report(number, "no method is left, so no client can authenticate")
    elif keyword == "clientmethod":
        if set(values) - {"none"}:
            output.report(
                number, f"clientmethod {' '.join(values)}: socksgate checks clients by address only"
            )
    elif keyword in _TIMEOUTS:
        if len(values) != 1 or not values[0].isdigit():
            raise _Invalid(f"{keyword}: {' '.join(values)} is not a number of seconds")
        if int(values[0]) == 0 and _TIMEOUTS[keyword] != "idle-timeout":
            output.report(number, f"{keyword}: 0 (no limit) has no equivalent: socksgate's default is kept")
        else:
            server[_TIMEOUTS[keyword]] = values[0]
    elif keyword in _DAEMON:
        output.comment(f"{keyword}: {_DAEMON[keyword]}.")
    else:
        output.report(number, f"{keyword}: has no socksgate equivalent and is not converted")


def _internal(values: list[str]) -> tuple[str | None, str]:
    """
    The address and port of an C{internal:} line (port 1080 if not given).
    """
    if not values:
        raise _Invalid("internal: names no address")
    address = values[0].split("port", 1)[0]
    port = "1080"
    rest = " ".join(values)
    found = re.search(r"port\s*=?\s*(\d+)", rest)
    if found:
        port = found.group(1)
    return (address if _address(address) is not None else None), port


def _address(text: str) -> str | None:
    try:
        return str(ip_address(text))
    except ValueError:
        return None


def _writeSettings(output: _Output, methods: list[str], server: dict[str, str], listen: list[str]) -> None:
    lines: list[str] = []
    if listen or server:
        lines += ["", "[server]"]
        if listen:
            lines.append(f"listen = [{', '.join(_tomlString(each) for each in listen)}]")
        lines += [f"{key} = {value}" for key, value in server.items()]
    if methods != ["none"]:
        lines += ["", "[auth]", f"methods = [{', '.join(_tomlString(each) for each in methods)}]"]
        if "userpass" in methods:
            lines.append('checker = "unix"    # Dante checked usernames against the system passwords')
    output.settings.extend(lines)


def _clientRule(output: _Output, block: _Block, passed: list[Network], earlier: list[Network]) -> None:
    """
    A C{client} rule: its C{from:} addresses, less those of the client rules
    before it, join the passed set (a pass) or not (a block).
    """
    output.quote(block.line, " ".join([f"client {block.verdict} {{"] + block.text))
    sources: list[Network] = []
    exact = True
    for key, values, number in block.fields:
        if key == "from":
            networks, problem = clientAddresses(values)
            if problem:
                output.report(number, problem)
                exact = False
            sources.extend(networks)
        elif key == "to":
            if values[:1] not in (["0/0"], ["0.0.0.0/0"], ["::/0"]):
                output.report(
                    number,
                    f"to: {' '.join(values)}: socksgate rules do not match the address a client connected to",
                )
                exact = False
        elif key not in ("log", "clientmethod") or (key == "clientmethod" and set(values) - {"none"}):
            output.report(number, f"{key}: is not converted")
            exact = False
    if block.verdict == "pass" and exact:
        passed.extend(subtract(sources, earlier))
        output.comment("Clients this rule passes join the addresses the socks pass rules below permit.")
    elif block.verdict == "pass":
        output.comment("LEFT OUT: this pass rule passes no client, to fail closed.")
    else:
        output.comment("The clients of this block rule are left out of the socks pass rules below.")
    earlier.extend(sources if sources or exact else ANY)


def _socksRule(output: _Output, block: _Block, methods: list[str], passed: list[Network]) -> None:
    """
    A C{socks} rule, its C{clients} intersected with the passed clients
    when it is a pass.
    """
    action = "permit" if block.verdict == "pass" else "deny"
    parts: list[_Match] = []
    notes: list[str] = []
    commands = {"connect", "bind", "bindreply", "udpassociate", "udpreply"}
    ruleMethods: list[str] | None = None
    users: list[str] | None = None
    clients: list[Network] = list(ANY)
    for key, values, number in block.fields:
        if key == "from":
            networks = parseNetworks(values[0]) if values else None
            if networks is None:
                parts.append(_Match({}, None, f"from: {' '.join(values)} is not a network", line=number))
            else:
                clients = networks
            if len(values) > 1:
                parts.append(
                    _Match({}, None, "socksgate rules cannot restrict the client's port", line=number)
                )
        elif key == "to":
            parts.extend(destinationMatches(values, number))
        elif key == "command":
            commands &= set(values)
        elif key == "protocol":
            wanted = set()
            wanted |= {"connect", "bind", "bindreply"} if "tcp" in values else set()
            wanted |= {"udpassociate", "udpreply"} if "udp" in values else set()
            commands &= wanted
        elif key in ("socksmethod", "method"):
            ruleMethods = [_METHODS.get(each, each) for each in values]
        elif key == "user":
            users = values
        elif key == "log":
            notes.append(f"log: {' '.join(values)}: socksgate logs every session.")
        elif key == "group":
            parts.append(
                _Match({"users": ["*"], "versions": ["5"]}, None, "group: is not converted", line=number)
            )
        else:
            parts.append(_Match({}, None, f"{key}: is not converted", line=number))
    parts.append(commandsMatch(action, commands))
    parts.append(usersMatch(methods, ruleMethods, users))
    if action == "permit":
        clients = intersect(clients, passed)
        if not clients:
            parts.append(_nothing("no client rule passes this rule's clients"))
    shown = [str(each) for version in (4, 6) for each in collapse(clients, version)]
    if clients and shown != ["0.0.0.0/0", "::/0"]:
        parts.append(_Match({"clients": shown}, {"clients": shown}))
    joined = " ".join([f"socks {block.verdict} {{"] + block.text)
    output.rule(block.line, joined, action, parts, notes, f"{DANTE} line {block.line}")


def isDanteLine(line: str) -> bool:
    """
    Whether C{line} is one that only a Dante C{sockd.conf} holds: the start
    of a C{client}/C{socks} rule, or a C{keyword:} setting.
    """
    text = line.split("#", 1)[0]
    if re.match(r"^\s*(client|socks)\s+(pass|block)\b", text) or re.match(r"^\s*(pass|block)\s*\{", text):
        return True
    setting = _SETTING.match(text)
    return setting is not None and (
        setting.group(1) in _DAEMON
        or setting.group(1) in _TIMEOUTS
        or setting.group(1)
        in (
            "internal",
            "external",
            "socksmethod",
            "clientmethod",
            "method",
            "from",
            "to",
            "command",
            "protocol",
        )
    )
