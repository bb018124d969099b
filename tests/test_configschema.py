"""
The schema of the configuration file (L{socksgate.configschema}) is the
one the parser checks with: the same tables, the same keys, the same
defaults, and every example in it loads.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from socksgate import _tablecheck
from socksgate.config import AuthConfig, ConfigError, LogConfig, ServerConfig, parseConfig
from socksgate.configschema import ANY, FIRST_LISTENER, REQUIRED, TABLES, UNSET, table, tomlValue

#: A file in which every table is present, so that the parser reads each.
EVERY_TABLE = """
[server]
[auth]
[log]
[[rule]]
action = "permit"
[[upstream]]
name = "corp"
servers = ["socks5h://127.0.0.1:1081"]
[[expect]]
client = "127.0.0.1"
destination = "127.0.0.1:80"
result = "permit"
"""

_KINDS = {str: "string", float: "number", int: "integer", list: "list", bool: "boolean"}


class _RecordingValues(dict[str, Any]):
    """
    A table's values that remember which keys the parser looked at.
    """

    def __init__(self, values: dict[str, Any], seen: set[str]) -> None:
        super().__init__(values)
        self.seen = seen

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)


class SchemaMatchesParserTests(SynchronousTestCase):
    """
    The parser reads exactly the schema's keys, with its kinds and defaults.
    """

    def readByParser(self, text: str) -> tuple[dict[str, set[str]], list[tuple[str, str, type, Any]]]:
        """
        Parse C{text}, recording every key each table's checker looked at
        and every typed read (table, key, kind, default).
        """
        seen: dict[str, set[str]] = {}
        reads: list[tuple[str, str, type, Any]] = []
        originalInit = _tablecheck.TableChecker.__init__
        originalGet = _tablecheck.TableChecker.get
        originalStrings = _tablecheck.TableChecker.strings

        def init(checker: Any, path: str, lines: Any, name: str, values: Any, occurrence: Any = None) -> None:
            values = _RecordingValues(values, seen.setdefault(name, set()))
            originalInit(checker, path, lines, name, values, occurrence)

        def get(checker: Any, key: str, kind: type, default: Any, check: Any) -> Any:
            if kind is not list:
                reads.append((checker.table, key, kind, default))
            return originalGet(checker, key, kind, default, check)

        def strings(checker: Any, key: str, default: Any, allowed: Any = None) -> Any:
            reads.append((checker.table, key, list, default))
            return originalStrings(checker, key, default, allowed)

        self.patch(_tablecheck.TableChecker, "__init__", init)
        self.patch(_tablecheck.TableChecker, "get", get)
        self.patch(_tablecheck.TableChecker, "strings", strings)
        parseConfig(text, "gw.toml")
        return seen, reads

    def test_sameKeys(self) -> None:
        """
        Every key the parser reads is in the schema, and every key of the
        schema is read by the parser, table by table.
        """
        seen, _ = self.readByParser(EVERY_TABLE)
        self.assertEqual(set(seen), {known.name for known in TABLES})
        for known in TABLES:
            self.assertEqual(seen[known.name], set(known.names), known.name)

    def test_kindsAndDefaults(self) -> None:
        """
        Each typed read asks for the schema's kind, and a default the parser
        uses for a key left out is the schema's.
        """
        _, reads = self.readByParser(EVERY_TABLE)
        self.assertTrue(reads)
        for name, key, kind, default in reads:
            described = table(name).key(key)
            self.assertTrue(described.kind.startswith(_KINDS[kind]), (name, key, kind))
            expected = described.default
            if expected in (REQUIRED, ANY, UNSET, FIRST_LISTENER):
                continue
            if isinstance(expected, tuple):
                self.assertEqual(set(default), set(expected), (name, key))
            else:
                self.assertEqual(default, expected, (name, key))

    def test_dataclassDefaults(self) -> None:
        """
        The defaults of an empty file are the schema's.
        """
        config = parseConfig("", "gw.toml")
        self.assertEqual(config.server, ServerConfig())
        self.assertEqual(config.server.listen, table("server").default("listen"))
        self.assertEqual(config.server.handshakeTimeout, table("server").default("handshake-timeout"))
        self.assertEqual(config.auth.methods, AuthConfig().methods)
        self.assertEqual(config.auth.methods, table("auth").default("methods"))
        self.assertEqual(config.log, LogConfig())
        self.assertEqual(config.log.rotateSize, table("log").default("rotate-size"))

    def test_unknownKeyFromSchema(self) -> None:
        """
        A key the schema does not have is an unknown key in every table,
        and a table it does not have is an unknown table.
        """
        for known in TABLES:
            text = EVERY_TABLE.replace(known.header + "\n", known.header + '\nno-such-key = "x"\n', 1)
            error = self.assertRaises(ConfigError, parseConfig, text, "gw.toml")
            self.assertEqual(error.problem, "unknown key", known.name)
            self.assertIn("no-such-key", error.key or "")
        error = self.assertRaises(ConfigError, parseConfig, "[servre]\n", "gw.toml")
        self.assertEqual(error.problem, "unknown table or key")

    def test_knownKeysAreTheSchemas(self) -> None:
        """
        The parser's set of known keys is the schema's own: a key taken out
        of the schema becomes an unknown key for the parser.
        """
        for known in TABLES:
            removed = known.keys[-1]
            text = EVERY_TABLE.replace(
                known.header + "\n", f"{known.header}\n{removed.name} = {removed.example}\n", 1
            )
            object.__setattr__(known, "keys", known.keys[:-1])
            try:
                error = self.assertRaises(ConfigError, parseConfig, text, "gw.toml")
            finally:
                object.__setattr__(known, "keys", known.keys + (removed,))
            self.assertEqual(error.problem, "unknown key", known.name)
            self.assertTrue((error.key or "").endswith("." + removed.name), error.key)


class SchemaExampleTests(SynchronousTestCase):
    """
    The examples and defaults that the reference shows are valid.
    """

    def test_examplesLoad(self) -> None:
        """
        Every key's example (with its context lines) loads in its table
        (in a directory that holds the files the examples name).
        """
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "corp.secret"), "w") as secret:
            secret.write("s3cret\n")
        with open(os.path.join(directory, "corp-ca.pem"), "w") as authority:
            authority.write("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(directory)
        for known in TABLES:
            for key in known.keys:
                body = f"{key.name} = {key.example}\n" + (key.context + "\n" if key.context else "")
                if known.name == "rule" and key.name != "action":
                    body += 'action = "permit"\n'
                if known.name == "expect":
                    body = _expectation(key.name) + body
                text = f"{known.header}\n{body}"
                if known.name == "expect":
                    text = '[[rule]]\naction = "deny"\n' + text
                try:
                    parseConfig(text, "example.toml")
                except ConfigError as error:
                    self.fail(f"{known.header} {key.name}: {error}")

    def test_defaultsAreTOML(self) -> None:
        """
        Every default that is a value is written as TOML that reads back as
        that value.
        """
        for known in TABLES:
            for key in known.keys:
                if key.default in (REQUIRED, ANY, UNSET, FIRST_LISTENER):
                    continue
                value = tomllib.loads(f"x = {tomlValue(key.default)}")["x"]
                expected = list(key.default) if isinstance(key.default, tuple) else key.default
                self.assertEqual(value, expected, key.name)

    def test_everyKeyDocumented(self) -> None:
        """
        Every key has a type, a reload behaviour, a description and an
        example.
        """
        for known in TABLES:
            for key in known.keys:
                self.assertTrue(key.kind and key.reload and key.doc and key.example, key.name)


def _expectation(keyName: str) -> str:
    """
    The required keys of an [[expect]] other than C{keyName}, for a rule
    that denies everything.
    """
    lines = {
        "client": 'client = "127.0.0.1"\n',
        "destination": 'destination = "www.example.com:80"\n',
        "result": 'result = "deny"\n',
    }
    lines.pop(keyName, None)
    return "".join(lines.values())
