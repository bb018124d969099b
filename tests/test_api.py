"""
Tests of socksgate's public Python API: each public module says what it
exports in C{__all__}, every exported name exists, the package ships
C{py.typed}, and docs/embedding.md names only what the code exports.
"""

from __future__ import annotations

import ast
import importlib
import os
import re

from twisted.trial.unittest import SynchronousTestCase

import socksgate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The public modules and packages; each must list its names in C{__all__}.
PUBLIC = (
    "socksgate.accesslog",
    "socksgate.addresses",
    "socksgate.auth",
    "socksgate.config",
    "socksgate.descriptors",
    "socksgate.haproxy",
    "socksgate.hostnames",
    "socksgate.htpasswd",
    "socksgate.ident",
    "socksgate.interfaces",
    "socksgate.lookups",
    "socksgate.policy",
    "socksgate.resolver",
    "socksgate.rules",
    "socksgate.latch",
    "socksgate.logfiles",
    "socksgate.scripts.stats",
    "socksgate.server",
    "socksgate.server.commands",
    "socksgate.service",
    "socksgate.session",
    "socksgate.status",
    "socksgate.testing",
    "socksgate.threads",
    "socksgate.udprelay",
    "socksgate.udpsockets",
    "socksgate.vocabulary",
    "socksgate.wire",
)

#: Public modules that have no C{__all__} yet, with the reason.  The docs
#: may name their names, which must then exist.
WITHOUT_ALL: dict[str, str] = {}

#: Names in backquotes in docs/embedding.md that are not socksgate's.
NOT_OURS = {"Deferred", "MultiService", "RuntimeError", "None", "IntEnum", "StrEnum", "repr", "str"}


def exported(module: str) -> list[str]:
    """
    The names C{module} exports: its C{__all__}, or for a module of
    L{WITHOUT_ALL}, every name it defines that does not start with C{_}.
    """
    loaded = importlib.import_module(module)
    if module in WITHOUT_ALL:
        return [name for name in vars(loaded) if not name.startswith("_")]
    return list(loaded.__all__)


def documentedNames(text: str) -> dict[str, set[str]]:
    """
    The socksgate names a page of documentation uses: those its code
    imports (C{from socksgate.M import A, B}) and those it spells out
    (C{socksgate.M.A}), each under its module.
    """
    names: dict[str, set[str]] = {}
    for module, imported in re.findall(r"from (socksgate[\w.]*) import ([\w, ]+)", text):
        names.setdefault(module, set()).update(name.strip() for name in imported.split(","))
    for dotted in re.findall(r"\bsocksgate(?:\.\w+)+", text):
        parts = dotted.split(".")
        for length in range(len(parts), 0, -1):
            module = ".".join(parts[:length])
            try:
                importlib.import_module(module)
            except ImportError:
                continue
            if length < len(parts):
                names.setdefault(module, set()).add(parts[length])
            break
    return names


class AllTests(SynchronousTestCase):
    """
    Every public module has an C{__all__} of names that exist.
    """

    def test_everyPublicModuleHasAll(self) -> None:
        """
        Each module of L{PUBLIC} defines C{__all__}, a list of distinct
        names.
        """
        missing = [module for module in PUBLIC if not hasattr(importlib.import_module(module), "__all__")]
        self.assertEqual(missing, [])
        for module in PUBLIC:
            names = importlib.import_module(module).__all__
            self.assertEqual(len(names), len(set(names)), module)

    def test_exportedNamesExist(self) -> None:
        """
        Every name in an C{__all__} of socksgate (public modules and the
        others that have one) is defined by its module.
        """
        absent = []
        for name in sorted(_moduleNames()):
            module = importlib.import_module(name)
            for exportedName in getattr(module, "__all__", ()):
                if not hasattr(module, exportedName):
                    absent.append(f"{name}.{exportedName}")
        self.assertEqual(absent, [])

    def test_packageInitHasNoImports(self) -> None:
        """
        C{socksgate/__init__.py} imports nothing, so that importing the
        wire codec loads no Twisted.
        """
        with open(socksgate.__file__, encoding="utf-8") as file:
            tree = ast.parse(file.read())
        self.assertEqual(
            [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)], []
        )


class TypedTests(SynchronousTestCase):
    """
    The package is marked as typed (PEP 561).
    """

    def test_pyTyped(self) -> None:
        """
        C{socksgate/py.typed} exists, and setup.cfg puts it in the package
        data (tests/test_packaging.py finds it in the wheel).
        """
        self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(socksgate.__file__), "py.typed")))
        with open(os.path.join(ROOT, "setup.cfg"), encoding="utf-8") as file:
            self.assertRegex(file.read(), r"\nsocksgate = [^\n]*py\.typed")


class EmbeddingDocTests(SynchronousTestCase):
    """
    docs/embedding.md describes the API the code exports.
    """

    def setUp(self) -> None:
        with open(os.path.join(ROOT, "docs", "embedding.md"), encoding="utf-8") as file:
            self.text = file.read()

    def test_documentedNamesExported(self) -> None:
        """
        Every name the page imports from a socksgate module or spells out
        as C{socksgate.module.name} is in that module's C{__all__}.
        """
        names = documentedNames(self.text)
        self.assertIn("startGateway", names["socksgate.testing"])
        unexported = [
            f"{module}.{name}"
            for module, moduleNames in sorted(names.items())
            for name in sorted(moduleNames)
            if name not in exported(module)
        ]
        self.assertEqual(unexported, [])

    def test_documentedCallsAndClassesExported(self) -> None:
        """
        Every name in backquotes that the page calls (C{parseConfig(text)},
        C{makeChecker("memory:...")}) or that looks like a class
        (C{SessionTable}) is exported by a socksgate module, or is a method
        or attribute of an exported class or interface (C{url(scheme)}),
        unless it is one of L{NOT_OURS}.
        """
        everything: set[str] = set()
        members: set[str] = set()
        for module in (*PUBLIC, *WITHOUT_ALL):
            loaded = importlib.import_module(module)
            for name in exported(module):
                everything.add(name)
                value = getattr(loaded, name, None)
                if isinstance(value, type):
                    members.update(dir(value))
                    members.update(getattr(value, "__dataclass_fields__", ()))
                elif hasattr(value, "names") and hasattr(value, "providedBy"):
                    members.update(value.names())
        used = set()
        for span in re.findall(r"`([^`\n]+)`", self.text):
            used.update(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\(", span))
            used.update(re.findall(r"^[A-Z][A-Za-z0-9]+$", span))
        self.assertIn("startSinkServer", used)
        unknown = sorted(name for name in used - NOT_OURS if name not in everything and name not in members)
        self.assertEqual(unknown, [])


def _moduleNames() -> list[str]:
    """
    The dotted names of every module of socksgate.
    """
    package = os.path.dirname(socksgate.__file__)
    names = []
    for directory, subdirectories, files in os.walk(package):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(directory, name), os.path.dirname(package))[:-3].split(
                    os.sep
                )
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names
