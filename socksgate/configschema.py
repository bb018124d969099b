"""
What the configuration file may hold: every table and key, with its type,
default, reload behaviour, a one-line description and an example.

This is the one description of the file.  The parser (L{socksgate.config},
L{socksgate.ruletables}) takes the set of known keys and the defaults from
it, and the configuration reference (C{docs/reference/configuration.md},
the man page C{socksgate.toml(5)}) is rendered from it, so the checker and
the reference cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .vocabulary import Command, Version

__all__ = ["ANY", "FIRST_LISTENER", "Key", "REQUIRED", "TABLES", "Table", "UNSET", "table", "tomlValue"]

#: Reload behaviours, in words.
RESTART = "restart: a reload keeps the running value (a warning says so for listeners)"
NEW_CONNECTIONS = "reload: applies to connections accepted after it"
NEW_REQUESTS = "reload: decides requests from then on, and the open UDP associations' datagrams"
CHECKED = "reload: checked at every load and reload; a failing one refuses the file"
UPSTREAM_RELOAD = (
    "reload: sessions started after it use the new value; each server's up or down state is kept"
)


class _Marker:
    def __init__(self, words: str) -> None:
        self.words = words

    def __repr__(self) -> str:
        return self.words


#: The default of a key the table must have.
REQUIRED = _Marker("required")
#: The default of a C{[[rule]]} condition left out: it matches anything.
ANY = _Marker("any (left out: matches anything)")
#: The default of an C{[[expect]]} key left out: the request has none.
UNSET = _Marker("not set")
#: The default of C{[[expect]]} C{listener}.
FIRST_LISTENER = _Marker("the first of [server] listen")


@dataclass(frozen=True)
class Key:
    """
    One key of a table.

    @ivar name: the key, as written in the file.
    @ivar kind: its TOML type, in words (C{"string"}, C{"number"},
        C{"integer"}, C{"list of strings"}, C{"list"}).
    @ivar default: its value when the key is left out, as a TOML value
        (tuples for lists), or L{REQUIRED}, L{ANY}, L{UNSET} or
        L{FIRST_LISTENER}.
    @ivar reload: what a SIGHUP reload does with a changed value.
    @ivar doc: one line: what it means.
    @ivar example: a value, as TOML text.
    @ivar context: other lines of the same table the example needs to load.
    """

    name: str
    kind: str
    default: Any
    reload: str
    doc: str
    example: str
    context: str = ""


@dataclass(frozen=True)
class Table:
    """
    One table of the file.

    @ivar name: its name (C{"server"}, C{"rule"}...).
    @ivar array: whether it is written C{[[name]]}, once for each.
    @ivar doc: what it is for.
    @ivar page: the guide that tells more, a docs/ page name.
    @ivar keys: its keys, in the order the reference lists them.
    """

    name: str
    array: bool
    doc: str
    page: str
    keys: tuple[Key, ...]

    @property
    def header(self) -> str:
        """
        The table's header as written in the file.
        """
        return f"[[{self.name}]]" if self.array else f"[{self.name}]"

    @property
    def names(self) -> frozenset[str]:
        """
        The names of its keys: every other key is an error.
        """
        return frozenset(key.name for key in self.keys)

    def key(self, name: str) -> Key:
        """
        The key called C{name}.

        @raise KeyError: the table has no such key.
        """
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def default(self, name: str) -> Any:
        """
        The default of the key called C{name}.
        """
        return self.key(name).default


SERVER = Table(
    "server",
    False,
    "Listeners, outgoing connections, what is served, time-outs and limits.",
    "configuration",
    (
        Key(
            "listen",
            "list of strings",
            ("tcp:1080:interface=127.0.0.1",),
            RESTART,
            "Twisted server endpoint descriptions to listen on (at least one); --listen replaces them.",
            '["tcp:1080:interface=0.0.0.0", "haproxy:tcp:1081:interface=127.0.0.1"]',
        ),
        Key(
            "external",
            "string",
            "0.0.0.0",
            NEW_CONNECTIONS,
            "Source address of outgoing connections; a specific address also limits destinations to "
            "its family. 0.0.0.0 or :: lets the system choose.",
            '"192.0.2.10"',
        ),
        Key(
            "advertise",
            "string",
            "",
            NEW_CONNECTIONS,
            "The address BIND and UDP ASSOCIATE replies give clients (BND.ADDR) when they must reach "
            "another address than the gateway's own (NAT); \"\": the gateway's own.",
            '"198.51.100.7"',
        ),
        Key(
            "versions",
            "list of strings",
            tuple(str(version) for version in Version),
            NEW_CONNECTIONS,
            "SOCKS versions served; another is refused (SOCKS4/4a: CD 91, SOCKS5: method 0xFF).",
            '["5"]',
        ),
        Key(
            "commands",
            "list of strings",
            tuple(str(command) for command in Command),
            NEW_CONNECTIONS,
            "Commands served; another gets 0x07 (SOCKS4: CD 91).",
            '["connect"]',
        ),
        Key(
            "handshake-timeout",
            "number",
            10.0,
            NEW_CONNECTIONS,
            "Seconds from the accept to a complete request; then the connection is closed without a reply.",
            "5.0",
        ),
        Key(
            "connect-timeout",
            "number",
            30.0,
            NEW_CONNECTIONS,
            "Seconds for the name lookup, and for the connection attempts together; then 0x06.",
            "10.0",
        ),
        Key(
            "bind-timeout",
            "number",
            120.0,
            NEW_CONNECTIONS,
            "Seconds a BIND waits for its peer; then 0x06 (SOCKS4: CD 91).",
            "60.0",
        ),
        Key(
            "idle-timeout",
            "number",
            0.0,
            NEW_CONNECTIONS,
            "Seconds without traffic before a relayed session closes; 0: never.",
            "3600.0",
        ),
        Key(
            "udp-idle-timeout",
            "number",
            300.0,
            NEW_CONNECTIONS,
            "Seconds without a datagram either way before a UDP association ends.",
            "120.0",
        ),
        Key(
            "max-sessions",
            "integer",
            10000,
            NEW_CONNECTIONS,
            "Open client connections, all listeners together; past it a connection is closed at once.",
            "2000",
        ),
        Key(
            "max-sessions-per-client",
            "integer",
            512,
            NEW_CONNECTIONS,
            "Open client connections from one client address.",
            "64",
        ),
        Key(
            "grace-period",
            "number",
            30.0,
            NEW_CONNECTIONS,
            "Seconds SIGTERM lets open sessions run before closing them; 0: close them at once.",
            "10.0",
        ),
    ),
)

AUTH = Table(
    "auth",
    False,
    "SOCKS5 authentication methods, passwords, GSS-API, and ident for SOCKS4.",
    "auth",
    (
        Key(
            "methods",
            "list of strings",
            ("none",),
            NEW_CONNECTIONS,
            "SOCKS5 methods in the server's order of preference: userpass, gssapi, none.",
            '["userpass"]',
            'checker = "unix"',
        ),
        Key(
            "checker",
            "string",
            "",
            NEW_CONNECTIONS,
            "The twisted.cred checker for userpass (htpasswd:FILE, file:FILE, unix, memory:USER:PASSWORD); "
            "--auth wins over it.",
            '"unix"',
        ),
        Key(
            "ident",
            "string",
            "off",
            NEW_CONNECTIONS,
            "RFC 1413 ident checks of SOCKS4 clients: off, log or require.",
            '"log"',
        ),
        Key(
            "gssapi-keytab",
            "string",
            "",
            NEW_CONNECTIONS,
            'The acceptor keytab for methods "gssapi"; "": KRB5_KTNAME or the library\'s default.',
            '"/etc/socksgate/socksgate.keytab"',
        ),
        Key(
            "gssapi-service",
            "string",
            "rcmd",
            NEW_CONNECTIONS,
            "The service of the gateway's principal (any SERVICE/HOST in the keytab).",
            '"socks"',
        ),
        Key(
            "gssapi-protection",
            "list of strings",
            ("integrity", "confidentiality"),
            NEW_CONNECTIONS,
            "GSS-API protection levels accepted: none, integrity, confidentiality.",
            '["none", "integrity", "confidentiality"]',
        ),
    ),
)

LOG = Table(
    "log",
    False,
    "The session log, its rotation, and the status page.",
    "accesslog",
    (
        Key(
            "access",
            "string",
            "",
            RESTART,
            'The session log, one JSON object a line; "-": standard output; "": none. --access-log wins.',
            '"/var/log/socksgate/access.log"',
        ),
        Key(
            "rotate",
            "string",
            "none",
            RESTART,
            "Rotation of the session log: none, daily (at midnight) or size.",
            '"size"',
        ),
        Key(
            "rotate-size",
            "integer",
            100 * 1024 * 1024,
            RESTART,
            'The size in bytes at which rotate = "size" rotates.',
            "52428800",
        ),
        Key(
            "keep",
            "integer",
            10,
            RESTART,
            'How many rotated files rotate = "size" keeps; 0: all.',
            "30",
        ),
        Key(
            "status",
            "string",
            "",
            RESTART,
            'The endpoint of the status page and /metrics; "": none. --status wins.',
            '"tcp:9180:interface=127.0.0.1"',
        ),
    ),
)

RULE = Table(
    "rule",
    True,
    "The access policy: the first rule that matches a request decides; none matching denies.",
    "policy",
    (
        Key("action", "string", REQUIRED, NEW_REQUESTS, "permit or deny.", '"permit"'),
        Key(
            "clients",
            "list",
            ANY,
            NEW_REQUESTS,
            "The client's address: IP addresses and CIDR networks.",
            '["10.0.0.0/8", "2001:db8::/32"]',
        ),
        Key(
            "listeners",
            "list of strings",
            ANY,
            NEW_REQUESTS,
            "The endpoint descriptions the request may arrive on, as written in listen; [] means any.",
            '["tcp:1080:interface=127.0.0.1"]',
        ),
        Key(
            "destinations",
            "list",
            ANY,
            NEW_REQUESTS,
            'Destinations: "*", an IP or CIDR, a host name, or ".example.com" (that domain and below).',
            '[".example.com", "192.0.2.0/24"]',
        ),
        Key(
            "ports",
            "list",
            ANY,
            NEW_REQUESTS,
            'Destination ports: 443, "443" or an inclusive range "1024-65535".',
            '[80, "443", "8000-8999"]',
        ),
        Key("commands", "list of strings", ANY, NEW_REQUESTS, "connect, bind, udp.", '["connect"]'),
        Key("versions", "list of strings", ANY, NEW_REQUESTS, "4, 4a, 5.", '["5"]'),
        Key(
            "users",
            "list of strings",
            ANY,
            NEW_REQUESTS,
            'User names; "*": any authenticated or claimed user; "-": anonymous only.',
            '["alice", "bob"]',
        ),
        Key("via", "string", "direct", NEW_REQUESTS, "The route of permitted requests.", '"direct"'),
        Key(
            "message",
            "string",
            "",
            NEW_REQUESTS,
            "Written to the session log with the decision.",
            '"no telnet"',
        ),
        Key(
            "bandwidth",
            "string",
            "",
            NEW_REQUESTS,
            'A limit in each direction shared by every session the rule permits; "": none.',
            '"10MB/s"',
        ),
        Key(
            "sessions-per-second",
            "integer",
            0,
            NEW_REQUESTS,
            "New sessions a second the rule permits each client address and each user; 0: no limit.",
            "5",
        ),
    ),
)

UPSTREAM = Table(
    "upstream",
    True,
    "Chaining: another SOCKS server that sessions routed via it (a rule's via) go through.",
    "chaining",
    (
        Key(
            "name",
            "string",
            REQUIRED,
            UPSTREAM_RELOAD,
            "The name rules give in via.",
            '"corp"',
            'servers = ["socks5h://127.0.0.1:1081"]',
        ),
        Key(
            "servers",
            "list of strings",
            REQUIRED,
            UPSTREAM_RELOAD,
            "Server URLs (socks5://, socks5h://: names unresolved, socks4://, socks4a://), tried in order.",
            '["socks5h://proxy1.example:1080", "socks5h://proxy2.example:1080"]',
            'name = "corp"',
        ),
        Key(
            "username",
            "string",
            "",
            UPSTREAM_RELOAD,
            "The user name given to the servers (RFC 1929; SOCKS4: the USERID).",
            '"gateway"',
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]',
        ),
        Key(
            "password",
            "string",
            "",
            UPSTREAM_RELOAD,
            "The password given with username; never logged.",
            '"s3cret"',
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]\nusername = "gateway"',
        ),
        Key(
            "password-file",
            "string",
            "",
            UPSTREAM_RELOAD,
            "A file whose first line is the password (read before the privilege drop), instead of password.",
            '"corp.secret"',
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]\nusername = "gateway"',
        ),
        Key(
            "tls",
            "boolean",
            False,
            UPSTREAM_RELOAD,
            "Reach the servers over TLS, their names checked against their certificates (service_identity).",
            "true",
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]',
        ),
        Key(
            "ca-file",
            "string",
            "",
            UPSTREAM_RELOAD,
            'PEM certificates of the authorities trusted for the servers (with tls); "": the system\'s.',
            '"corp-ca.pem"',
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]\ntls = true',
        ),
        Key(
            "down-period",
            "number",
            30.0,
            UPSTREAM_RELOAD,
            "Seconds a failed server is left alone at first (doubling, to 5 minutes or this if longer).",
            "60.0",
            'name = "corp"\nservers = ["socks5h://127.0.0.1:1081"]',
        ),
    ),
)

EXPECT = Table(
    "expect",
    True,
    "Regression checks: a request and the decision the rules must give it.",
    "policy",
    (
        Key("client", "string", REQUIRED, CHECKED, "The client's IP address.", '"10.1.2.3"'),
        Key(
            "destination",
            "string",
            REQUIRED,
            CHECKED,
            "HOST:PORT (or [IPv6]:PORT) of the request.",
            '"www.example.com:443"',
        ),
        Key(
            "address",
            "string",
            UNSET,
            CHECKED,
            "The address a destination given by name resolves to, when the decision depends on it.",
            '"192.0.2.80"',
        ),
        Key("command", "string", "connect", CHECKED, "connect, bind or udp.", '"bind"'),
        Key("user", "string", UNSET, CHECKED, "The user of the request; none when left out.", '"alice"'),
        Key("version", "string", "5", CHECKED, "4, 4a or 5.", '"4a"'),
        Key(
            "listener",
            "string",
            FIRST_LISTENER,
            CHECKED,
            "The listener the request arrives on.",
            '"tcp:1080:interface=127.0.0.1"',
        ),
        Key("result", "string", REQUIRED, CHECKED, "permit or deny: what the rules must decide.", '"deny"'),
        Key("rule", "integer", UNSET, CHECKED, "The number (from 1) of the rule that must decide.", "1"),
    ),
)

#: Every table, in the order the reference lists them.
TABLES = (SERVER, AUTH, LOG, RULE, UPSTREAM, EXPECT)


def table(name: str) -> Table:
    """
    The table called C{name}.

    @raise KeyError: the file has no such table.
    """
    for candidate in TABLES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def tomlValue(value: Any) -> str:
    """
    A default as TOML text: C{"none"}, C{10.0}, C{["4", "4a", "5"]}.
    """
    if isinstance(value, _Marker):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(tomlValue(item) for item in value) + "]"
    return repr(value)
