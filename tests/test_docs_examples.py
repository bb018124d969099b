"""
Every configuration file and every C{socksgate} command that the pages
under docs/ show is loaded or run, so a page cannot show a file that does
not load or a command that does not work.

What the tests understand in a page:

  - A C{```toml} block is a whole configuration file: it must load with
    L{socksgate.config.parseConfig}.  A block whose first line is a
    comment starting C{# fragment} is only part of one: it must be valid
    TOML.  A block of C{[[route]]} tables is a client routing table: it
    must load with L{socksgate.client.routing.parseRoutes}.  An htpasswd
    file a block names (C{checker = "htpasswd:PATH"}) is provided, empty,
    for the load; so are an upstream's C{password-file} (a password) and
    C{ca-file} (a PEM block).
  - A line of a shell block (C{```sh}, C{```text} or a bare C{```}) that
    starts with C{socksgate check -c FILE} is run, FILE being the last
    whole configuration file shown above it on the same page; the file
    must be valid (and the request, if one is given, decided).  Any other
    C{socksgate} command line must be one the command's parser accepts.
    A synopsis (a line with C{[} options or a word in capitals such as
    C{HOST}) is not a command.  In a block other than C{```sh}, only a
    line that starts C{$ } is a command (the others are output).
"""

from __future__ import annotations

import io
import os
import re
import shlex
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from socksgate.client.routing import parseRoutes
from socksgate.config import ConfigError, parseConfig
from socksgate.scripts import main as console

from .test_packaging import ROOT

DOCS = os.path.join(ROOT, "docs")
_FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_HTPASSWD = re.compile(r'htpasswd:([^"]+)"')
_PASSWORD_FILE = re.compile(r'^password-file = "([^"/]+)"', re.MULTILINE)
_UPSTREAM_FILE = re.compile(r'^(password-file|ca-file) = "(/[^"]+)"', re.MULTILINE)
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_:]+$")


@dataclass(frozen=True)
class Block:
    """
    One fenced block of a page.

    @ivar page: the page, relative to docs/.
    @ivar line: the line of its opening fence.
    @ivar language: the fence's language (C{""} for none).
    @ivar text: its lines, unindented.
    """

    page: str
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        """
        C{page:line}, for messages.
        """
        return f"docs/{self.page}:{self.line}"


def pages() -> list[str]:
    """
    Every Markdown page under docs/ (not the build's output).
    """
    found = []
    for directory, subdirectories, files in os.walk(DOCS):
        subdirectories[:] = [name for name in subdirectories if not name.startswith("_")]
        found.extend(
            os.path.relpath(os.path.join(directory, name), DOCS) for name in files if name.endswith(".md")
        )
    return sorted(found)


def blocks(page: str) -> list[Block]:
    """
    The fenced blocks of C{page}, in order.
    """
    with open(os.path.join(DOCS, page), encoding="utf-8") as stream:
        text = stream.read()
    found = []
    for match in _FENCE.finditer(text):
        indent = match.group(1)
        body = re.sub(rf"^{indent}", "", match.group(3), flags=re.MULTILINE)
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group(2), body))
    return found


class DocsExamplesTests(SynchronousTestCase):
    """
    The pages' configuration files load and their commands work.
    """

    def load(self, block: Block) -> str:
        """
        Load a whole configuration file shown in C{block}, its htpasswd
        files provided; return the text as loaded.
        """
        text = block.text
        for path in set(_HTPASSWD.findall(text)):
            provided = self.mktemp()
            open(provided, "w").close()
            text = text.replace(f"htpasswd:{path}", f"htpasswd:{provided}")
        for key, path in set(_UPSTREAM_FILE.findall(text)):
            provided = self.mktemp()
            with open(provided, "w") as stream:
                stream.write("s3cret\n" if key == "password-file" else "-----BEGIN CERTIFICATE-----\n")
            text = text.replace(f'{key} = "{path}"', f'{key} = "{provided}"')
        try:
            parseConfig(text, block.where)
        except ConfigError as error:
            self.fail(f"{block.where}: the file shown does not load: {error}")
        return text

    def loadRoutes(self, block: Block) -> None:
        """
        Load a client routing table shown in C{block}, from a directory in
        which the password files it names exist.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        for name in _PASSWORD_FILE.findall(block.text):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as stream:
                stream.write("secret\n")
        try:
            parseRoutes(block.text, os.path.join(directory, "routes.toml"))
        except ConfigError as error:
            self.fail(f"{block.where}: the routing table shown does not load: {error}")

    def test_tomlBlocksLoad(self) -> None:
        """
        Every C{toml} block loads as a configuration file, a routing table
        or, marked so, as a fragment of valid TOML.
        """
        seen = 0
        for page in pages():
            for block in blocks(page):
                if block.language != "toml":
                    continue
                seen += 1
                if block.text.startswith("# fragment"):
                    tomllib.loads(block.text)
                elif "route" in tomllib.loads(block.text):
                    self.loadRoutes(block)
                else:
                    self.load(block)
        self.assertGreater(seen, 10)

    def test_commands(self) -> None:
        """
        Every C{socksgate check -c FILE} line runs against the file the page
        shows above it and exits 0; every other C{socksgate} command line is
        accepted by the command's parser.
        """
        ran = 0
        for page in pages():
            lastFile = None
            for block in blocks(page):
                if block.language == "toml" and not block.text.startswith("# fragment"):
                    if "route" not in tomllib.loads(block.text):
                        lastFile = block
                    continue
                if block.language not in ("", "sh", "text"):
                    continue
                for line in block.text.splitlines():
                    if block.language != "sh" and not line.startswith("$ "):
                        continue
                    words = _command(line)
                    if words is None:
                        continue
                    if words[:2] == ["socksgate", "check"]:
                        self.assertIsNotNone(lastFile, f"{block.where}: {line}: no file above it")
                        assert lastFile is not None
                        self.runCheck(block, lastFile, words)
                        ran += 1
                    else:
                        try:
                            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                                console._parser().parse_args(words[1:])
                        except SystemExit as exit:
                            if exit.code:
                                self.fail(f"{block.where}: {line!r} is not a valid command")
        self.assertGreater(ran, 0)

    def runCheck(self, block: Block, configuration: Block, words: list[str]) -> None:
        """
        Run C{socksgate check} with the file of C{configuration} in place of
        the one named after C{-c}.
        """
        text = self.load(configuration)
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
        arguments = list(words[1:])
        arguments[arguments.index("-c") + 1] = path
        out, err = io.StringIO(), io.StringIO()
        status = console.main(arguments, out, err)
        where = f"{block.where}: {' '.join(words)}"
        self.assertEqual(err.getvalue(), "", where)
        self.assertTrue(out.getvalue().startswith("valid: "), f"{where}: {out.getvalue()}")
        # A request is answered 0 when permitted, 1 when denied.
        self.assertIn(status, (0, 1) if "--client" in words else (0,), where)


def _command(line: str) -> list[str] | None:
    """
    The words of a C{socksgate} command line, without comments and
    redirections, or L{None} when the line is not one.
    """
    line = line.strip().removeprefix("$ ")
    if not line.startswith("socksgate ") or "[" in line:
        return None
    words = shlex.split(line, comments=True)
    if any(_PLACEHOLDER.match(word) for word in words):
        return None
    for index, word in enumerate(words):
        if word in (">", "|", "&&", ">>"):
            return words[:index]
    return words
