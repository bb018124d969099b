"""
Tests of socksgate's import graph: no module imports itself through
others (no import cycle), and no import of socksgate's own modules hides in
a function, where it could hide a cycle.

The graph is read from the source with L{ast}, not by importing: every
C{import} and C{from ... import} statement of every module under
C{socksgate/}, at any depth (in functions, methods and C{try} blocks too),
relative ones resolved against the importing module's package.  Imports
under C{if TYPE_CHECKING:} are left out of the graph: they never run, so a
cycle through them cannot break an import (they exist for annotations,
which C{from __future__ import annotations} leaves unevaluated).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

import socksgate

#: The directory of the socksgate package under test.
PACKAGE = os.path.dirname(os.path.abspath(socksgate.__file__))

#: Imports allowed inside functions, as C{(importing module, imported
#: module)}, each with its reason.  Anything else imported in a function
#: fails L{FunctionImportTests}; an entry that no longer matches an import
#: fails it too, so the list never outlives its reasons.
ALLOWED_IN_FUNCTIONS: dict[tuple[str, str], str] = {
    ("socksgate.config", "twisted.cred.credentials"): (
        "start-up speed: loading a configuration (socksgate check, convert) imports no Twisted"
    ),
    ("socksgate.config", "twisted.cred.strcred"): (
        "start-up speed: loading a configuration (socksgate check, convert) imports no Twisted"
    ),
    ("socksgate.gssauth", "gssapi"): (
        "an optional dependency (socksgate[gssapi]): imported when GSS-API is used, a clear error if missing"
    ),
    ("socksgate.scripts.main", "socksgate.scripts.stats"): (
        "start-up speed: each socksgate subcommand loads only its own tool"
    ),
    ("socksgate.scripts.main", "socksgate.scripts.passwd"): (
        "start-up speed: each socksgate subcommand loads only its own tool"
    ),
    ("socksgate.scripts.main", "socksgate.scripts.convert"): (
        "start-up speed: each socksgate subcommand loads only its own tool"
    ),
}

#: Modules that may be imported inside any function, with the reason.
ALLOWED_ANYWHERE: dict[str, str] = {
    "twisted.internet.reactor": (
        "importing the global reactor installs the default one: only done when no reactor was given"
    ),
}


@dataclass(frozen=True)
class ImportStatement:
    """
    One import of a module by another, as the source says it.

    @ivar importer: the dotted name of the module that imports.
    @ivar imported: the dotted name of the module imported (for C{from M
        import name}, C{M.name} when that is a module of the package, else
        C{M}).
    @ivar line: the line of the statement.
    @ivar inFunction: whether the statement is inside a function.
    @ivar typeChecking: whether the statement is under C{if TYPE_CHECKING:}.
    """

    importer: str
    imported: str
    line: int
    inFunction: bool
    typeChecking: bool


def moduleNames(package: str = PACKAGE) -> dict[str, str]:
    """
    Every module of the package, by dotted name.

    @return: a mapping from dotted name (C{socksgate.wire._server},
        C{socksgate.wire} for its C{__init__.py}) to file path.
    """
    modules = {}
    root = os.path.dirname(package)
    for directory, subdirectories, files in os.walk(package):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _isTypeChecking(test: ast.expr) -> bool:
    """
    Whether an C{if} test is C{TYPE_CHECKING} or C{typing.TYPE_CHECKING}.
    """
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(node: ast.AST, inFunction: bool, typeChecking: bool) -> Iterator[tuple[ast.AST, bool, bool]]:
    """
    Every node below C{node}, with whether it is inside a function and
    whether it is under C{if TYPE_CHECKING:} (its C{else} branch runs).
    """
    for child in ast.iter_child_nodes(node):
        childInFunction = inFunction or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield child, inFunction, typeChecking
        if isinstance(child, ast.If) and _isTypeChecking(child.test):
            for statement in child.body:
                yield statement, inFunction, True
                yield from _walk(statement, inFunction, True)
            for statement in child.orelse:
                yield statement, inFunction, typeChecking
                yield from _walk(statement, inFunction, typeChecking)
        else:
            yield from _walk(child, childInFunction, typeChecking)


def importStatements(modules: dict[str, str]) -> list[ImportStatement]:
    """
    Every import statement of every module, at any depth.

    @param modules: the package's modules, as L{moduleNames} gives them.
    """
    statements = []
    for importer, path in sorted(modules.items()):
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        isPackage = os.path.basename(path) == "__init__.py"
        for node, inFunction, typeChecking in _walk(tree, False, False):
            for imported in _importedBy(node, importer, isPackage, modules):
                statements.append(ImportStatement(importer, imported, node.lineno, inFunction, typeChecking))
    return statements


def _importedBy(node: ast.AST, importer: str, isPackage: bool, modules: dict[str, str]) -> list[str]:
    """
    The modules one statement imports: none if it is not an import.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = importer.split(".") if isPackage else importer.split(".")[:-1]
        if node.level > 1:
            package = package[: -(node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    imported = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        imported.append(submodule if submodule in modules or (base, alias.name) in _REACTOR else base)
    return sorted(set(imported))


#: C{from twisted.internet import reactor} imports the module-like reactor.
_REACTOR = {("twisted.internet", "reactor")}


def importGraph(statements: list[ImportStatement], modules: dict[str, str]) -> dict[str, set[str]]:
    """
    The package's modules, each with the package modules it imports when
    it runs (type-checking-only imports left out).
    """
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for statement in statements:
        if statement.typeChecking or statement.imported not in modules:
            continue
        if statement.imported != statement.importer:
            graph[statement.importer].add(statement.imported)
    return graph


def findCycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """
    Find import cycles with a depth-first search.

    @return: one cycle for each back edge the search meets, each as the
        list of modules along it, starting and ending with the same module
        (C{["a", "b", "a"]}), starting at its smallest name; sorted.
    """
    cycles: set[tuple[str, ...]] = set()
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                cycle = path[path.index(imported) :]
                start = cycle.index(min(cycle))
                cycle = cycle[start:] + cycle[:start]
                cycles.add((*cycle, cycle[0]))
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return [list(cycle) for cycle in sorted(cycles)]


def functionImports(statements: list[ImportStatement]) -> list[ImportStatement]:
    """
    The imports made inside functions that no entry of
    L{ALLOWED_IN_FUNCTIONS} or L{ALLOWED_ANYWHERE} allows.
    """
    return [
        statement
        for statement in statements
        if statement.inFunction
        and (statement.importer, statement.imported) not in ALLOWED_IN_FUNCTIONS
        and statement.imported not in ALLOWED_ANYWHERE
    ]


def _parse(
    testCase: SynchronousTestCase, sources: dict[str, str]
) -> tuple[dict[str, str], list[ImportStatement]]:
    """
    Write C{sources} (module name to source; a source starting with
    C{# package} is a package's C{__init__.py}) as a package C{pkg} in a
    fresh directory, and read its imports as the tests read socksgate's.
    """
    directory = testCase.mktemp()
    for name, source in sources.items():
        parts = name.split(".")
        isPackage = name == parts[0] or source.startswith("# package")
        folder = os.path.join(directory, *(parts if isPackage else parts[:-1]))
        os.makedirs(folder, exist_ok=True)
        fileName = "__init__.py" if isPackage else parts[-1] + ".py"
        with open(os.path.join(folder, fileName), "w") as file:
            file.write(source)
    modules = moduleNames(os.path.join(directory, "pkg"))
    return modules, importStatements(modules)


class GraphReadingTests(SynchronousTestCase):
    """
    L{importStatements}, L{importGraph} and L{findCycles} on small made-up
    packages.
    """

    def test_relativeAndAbsolute(self) -> None:
        """
        C{from . import b}, C{from .b import name}, C{from ..pkg import c}
        and C{import pkg.sub.d} are resolved to the modules they load.
        """
        modules, statements = _parse(
            self,
            {
                "pkg": "",
                "pkg.a": "from . import b\nfrom .b import thing\n",
                "pkg.b": "import pkg.sub.d\n",
                "pkg.sub": "# package\nfrom ..c import other\n",
                "pkg.c": "",
                "pkg.sub.d": "from .. import c\n",
            },
        )
        graph = importGraph(statements, modules)
        self.assertEqual(graph["pkg.a"], {"pkg.b"})
        self.assertEqual(graph["pkg.b"], {"pkg.sub.d"})
        self.assertEqual(graph["pkg.sub"], {"pkg.c"})
        self.assertEqual(graph["pkg.sub.d"], {"pkg.c"})

    def test_cycleThroughFunction(self) -> None:
        """
        An import inside a function is part of the graph, and the cycle it
        closes is found and named from its smallest module.
        """
        modules, statements = _parse(
            self,
            {
                "pkg": "",
                "pkg.b": "from .c import x\n",
                "pkg.c": "def f():\n    from .a import y\n",
                "pkg.a": "from . import b\n",
            },
        )
        self.assertEqual(findCycles(importGraph(statements, modules)), [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]])
        self.assertEqual(
            [(s.importer, s.imported, s.line) for s in functionImports(statements)], [("pkg.c", "pkg.a", 2)]
        )

    def test_typeCheckingLeftOut(self) -> None:
        """
        An import under C{if TYPE_CHECKING:} closes no cycle; one in its
        C{else} branch does.
        """
        modules, statements = _parse(
            self,
            {
                "pkg": "",
                "pkg.a": "from . import b\n",
                "pkg.b": "import typing\nif typing.TYPE_CHECKING:\n    from . import a\n",
            },
        )
        self.assertEqual(findCycles(importGraph(statements, modules)), [])
        modules, statements = _parse(
            self,
            {
                "pkg": "",
                "pkg.a": "from . import b\n",
                "pkg.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n"
                "    from . import a\n",
            },
        )
        self.assertEqual(findCycles(importGraph(statements, modules)), [["pkg.a", "pkg.b", "pkg.a"]])

    def test_noCycle(self) -> None:
        """
        A diamond (two modules importing a third) is no cycle.
        """
        self.assertEqual(findCycles({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}), [])


class ImportCycleTests(SynchronousTestCase):
    """
    socksgate's modules import each other without cycles.
    """

    def test_readsTheWholePackage(self) -> None:
        """
        The graph covers socksgate's subpackages and sees their imports
        (a guard against a reader that finds nothing, and so no cycle).
        """
        modules = moduleNames()
        graph = importGraph(importStatements(modules), modules)
        self.assertIn("socksgate.wire._server", graph)
        self.assertIn("socksgate.server", graph["socksgate.service"])
        self.assertIn("socksgate.config", graph["socksgate.service"])
        self.assertIn("socksgate.status._gateway", graph["socksgate.status._service"])

    def test_noCycles(self) -> None:
        """
        No module of socksgate imports itself through other modules,
        counting imports inside functions and leaving out imports that only
        run for type checkers.  The failure names each cycle.
        """
        modules = moduleNames()
        cycles = findCycles(importGraph(importStatements(modules), modules))
        self.assertEqual(cycles, [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles))


class FunctionImportTests(SynchronousTestCase):
    """
    Imports inside socksgate's functions are the allowed ones only.
    """

    def test_noHiddenImports(self) -> None:
        """
        Every import inside a function is in L{ALLOWED_IN_FUNCTIONS} or
        L{ALLOWED_ANYWHERE}, which give the reason: no import hides in a
        function to get round an import cycle.
        """
        hidden = functionImports(importStatements(moduleNames()))
        self.assertEqual(
            [f"{s.importer}:{s.line} imports {s.imported}" for s in hidden],
            [],
            "imports inside functions: move them to the top of the module, or allow them with a reason",
        )

    def test_allowedStillUsed(self) -> None:
        """
        Each entry of L{ALLOWED_IN_FUNCTIONS} still matches an import in a
        function, so the list lists only what the code does.
        """
        made = {(s.importer, s.imported) for s in importStatements(moduleNames()) if s.inFunction}
        self.assertEqual(sorted(set(ALLOWED_IN_FUNCTIONS) - made), [])
