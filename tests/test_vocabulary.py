"""
L{socksgate.vocabulary}: the strings its enums stand for, records written
with them, and no module spelling the vocabulary's sets again.
"""

from __future__ import annotations

import ast
import json
import os
from enum import StrEnum
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

import socksgate
from socksgate.accesslog import FLUSH_DELAY, AccessLogService
from socksgate.config import LogConfig
from socksgate.session import SessionRecord, TextLineSampler, emitSession
from socksgate.vocabulary import Command, Outcome, Version

#: The package's directory, whose modules L{spellings} reads.
PACKAGE = os.path.dirname(os.path.abspath(socksgate.__file__))

#: Modules that may spell the sets: the vocabulary itself, and the wire
#: codec, which has its own enums of codes and imports nothing of ours.
_OWNERS = ("vocabulary.py", "wire" + os.sep)


def spellings(source: str) -> list[tuple[int, str]]:
    """
    The tuple, set and list literals of C{source} whose items are exactly
    the strings of one of L{Outcome}, L{Version} or L{Command}, in any
    order (a C{frozenset({...})} is found by its set literal).

    @return: the line and the enum's name of each, in line order.
    """
    vocabularies = {frozenset(enum): enum.__name__ for enum in (Outcome, Version, Command)}
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Tuple, ast.Set, ast.List)):
            continue
        items = node.elts
        if not items or not all(
            isinstance(item, ast.Constant) and isinstance(item.value, str) for item in items
        ):
            continue
        strings = [item.value for item in items if isinstance(item, ast.Constant)]
        name = vocabularies.get(frozenset(strings))
        if name is not None and len(strings) == len(set(strings)):
            found.append((node.lineno, name))
    return sorted(found)


def packageModules() -> list[str]:
    """
    The paths, relative to L{PACKAGE}, of the package's Python modules
    other than the vocabulary's owners.
    """
    modules = []
    for directory, subdirectories, files in os.walk(PACKAGE):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(directory, name), PACKAGE)
            if not name.endswith(".py") or relative.startswith(_OWNERS):
                continue
            modules.append(relative)
    return modules


class ValueTests(SynchronousTestCase):
    """
    The members are the strings of the session log and the configuration
    file (SPEC), written here by hand.
    """

    def test_outcomes(self) -> None:
        """
        L{Outcome} has the session log's five outcomes, in SPEC's order.
        """
        self.assertEqual(
            [outcome.value for outcome in Outcome], ["closed", "denied", "failed", "error", "timeout"]
        )

    def test_versions(self) -> None:
        """
        L{Version} has the versions of C{versions = ["4", "4a", "5"]}.
        """
        self.assertEqual([version.value for version in Version], ["4", "4a", "5"])

    def test_commands(self) -> None:
        """
        L{Command} has the commands of C{commands = ["connect", "bind", "udp"]}.
        """
        self.assertEqual([command.value for command in Command], ["connect", "bind", "udp"])

    def test_membersAreTheirStrings(self) -> None:
        """
        A member equals its string, hashes as it (so either finds the other
        in a dict or set), and C{str}, C{format} and C{json.dumps} write it
        as the string.
        """
        for enum in (Outcome, Version, Command):
            self.assertTrue(issubclass(enum, StrEnum))
            for member in enum:
                text = member.value
                self.assertEqual(member, text)
                self.assertEqual({text: 1}[member], 1)
                self.assertIn(text, {member})
                self.assertIs(type(str(member)), str)
                self.assertEqual(str(member), text)
                self.assertEqual(f"{member}", text)
                self.assertEqual(f"{member:>8}", f"{text:>8}")
                self.assertEqual(json.dumps({member: member}), json.dumps({text: text}))


def _record(version: str, command: str, outcome: str) -> SessionRecord:
    """
    A session record with fixed values but the three given.
    """
    return SessionRecord(
        session="00000001",
        listener="tcp:1080:interface=127.0.0.1",
        client="127.0.0.1:40001",
        started=0.0,
        time="2026-11-21T10:00:00.123Z",
        version=version,
        command=command,
        destination="www.example.com:443",
        outcome=outcome,
        reply=2,
        rule=1,
        message="no",
    )


class RecordTests(SynchronousTestCase):
    """
    A record written with the vocabulary's members is the record written
    with their strings, for every observer.
    """

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == "socksgate.session":
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def test_asDictHoldsStrings(self) -> None:
        """
        L{SessionRecord.asDict} of a record set with members holds plain
        strings, equal (and equal in C{repr}) to those of a record set with
        the strings.
        """
        withMembers = _record(Version.SOCKS4A, Command.BIND, Outcome.DENIED).asDict()
        withStrings = _record("4a", "bind", "denied").asDict()
        self.assertEqual(withMembers, withStrings)
        self.assertEqual(repr(withMembers), repr(withStrings))
        for name in ("version", "command", "outcome"):
            self.assertIs(type(withMembers[name]), str)

    def test_eventsAndLogLineReadBack(self) -> None:
        """
        The session events of the two records format alike, and the access
        log writes them as the same bytes, which read back as the strings.
        """
        path = os.path.abspath(self.mktemp())
        clock = Clock()
        service = AccessLogService(LogConfig(access=path), clock)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        # A sampler each, so that both events have their text.
        emitSession(_record(Version.SOCKS5, Command.UDP, Outcome.TIMEOUT), 1.5, TextLineSampler())
        emitSession(_record("5", "udp", "timeout"), 1.5, TextLineSampler())
        clock.advance(FLUSH_DELAY)
        withMembers, withStrings = self.events
        self.assertEqual(formatEvent(withMembers), formatEvent(withStrings))
        self.assertEqual(repr(withMembers["record"]), repr(withStrings["record"]))
        with open(path, "rb") as stream:
            first, second = stream.read().splitlines()
        self.assertEqual(first, second)
        record = json.loads(first)
        self.assertEqual((record["version"], record["command"], record["outcome"]), ("5", "udp", "timeout"))


class SpellingTests(SynchronousTestCase):
    """
    Outside the vocabulary (and the wire codec), no module spells the set
    of all outcomes, versions or commands itself.
    """

    def test_findsSpellings(self) -> None:
        """
        L{spellings} finds a tuple, a set (in a C{frozenset}) and a list of
        one enum's strings, in any order, and nothing else.
        """
        source = (
            'A = ("4", "4a", "5")\n'
            'B = frozenset({"udp", "bind", "connect"})\n'
            'C = ["closed", "denied", "failed", "error", "timeout"]\n'
            'D = ("4", "5")\n'
            'E = ("connect", "bind", "udp", "ping")\n'
            "F = tuple(Version)\n"
            'G = ("connect", "bind", "udp", 1)\n'
        )
        self.assertEqual(spellings(source), [(1, "Version"), (2, "Command"), (3, "Outcome")])

    def test_noModuleSpellsTheVocabulary(self) -> None:
        """
        No module of the package, but the vocabulary and the wire codec,
        has a literal of all the strings of L{Outcome}, L{Version} or
        L{Command}: it derives them from the enums.
        """
        modules = packageModules()
        self.assertIn("config.py", modules)
        self.assertIn(os.path.join("status", "_counts.py"), modules)
        found = []
        for relative in modules:
            with open(os.path.join(PACKAGE, relative), encoding="utf-8") as source:
                found.extend(f"{relative}:{line}: {name}" for line, name in spellings(source.read()))
        self.assertEqual(found, [])
