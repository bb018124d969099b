"""
The man pages socksgate(1) and socksgate.toml(5): built from docs/man/ by
Sphinx, committed in man/, installed with the package, rendered by man.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest

from socksgate.configschema import TABLES

from .helpers import LoopbackTestCase
from .test_packaging import BUILD, ROOT

#: The committed pages, by the directory of share/man they install in.
PAGES = {"man1": "socksgate.1", "man5": "socksgate.toml.5"}


class ManPageTests(LoopbackTestCase):
    """
    Both pages render, say what they must, match their sources and ship.
    """

    timeout = 180

    async def render(self, page: str) -> str:
        """
        The page as C{man -l} renders it, as plain text.
        """
        if shutil.which("man") is None:
            raise SkipTest("man is not installed (Debian: man-db)")
        out, err, code = await getProcessOutputAndValue(
            "man",
            ["-l", os.path.join(ROOT, "man", page)],
            env={"PATH": os.environ.get("PATH", ""), "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0"},
        )
        self.assertEqual(code, 0, err)
        return out.decode("utf-8")

    async def test_commandPage(self) -> None:
        """
        C{man -l man/socksgate.1} renders the console command's page, with
        every tool of C{socksgate}.
        """
        text = await self.render("socksgate.1")
        self.assertIn("SOCKSGATE(1)", text)
        for tool in ("check -c FILE", "convert FILE", "passwd FILE USER", "stats [--json"):
            self.assertIn(tool, text)

    async def test_filePage(self) -> None:
        """
        C{man -l man/socksgate.toml.5} renders the file's page, with every
        table and key of the schema.
        """
        text = " ".join((await self.render("socksgate.toml.5")).split())
        self.assertIn("SOCKSGATE.TOML(5)", text)
        for table in TABLES:
            self.assertIn(table.header, text)
            for key in table.keys:
                self.assertIn(f"{key.name} = {key.example}", text)

    async def test_builtFromSources(self) -> None:
        """
        The committed pages are what Sphinx's man builder makes of docs/
        now: a page whose sources (or the schema) changed without a new
        build fails here.  Rebuild with C{sphinx-build -b man docs man}.
        """
        try:
            import myst_parser  # noqa: F401
            import sphinx  # noqa: F401
        except ImportError:
            raise SkipTest("the docs extra (sphinx, myst-parser) is not installed") from None
        built = os.path.abspath(self.mktemp())
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "sphinx", "-q", "-W", "-n", "-b", "man", "-d", built + ".doctrees", "docs", built],
            env=os.environ,
            path=ROOT,
        )
        self.assertEqual(code, 0, err)
        for page in PAGES.values():
            with open(os.path.join(built, page), encoding="utf-8") as stream:
                fresh = stream.read()
            with open(os.path.join(ROOT, "man", page), encoding="utf-8") as stream:
                self.assertEqual(
                    stream.read(), fresh, f"man/{page} is out of date: sphinx-build -b man docs man"
                )

    async def test_inTheWheel(self) -> None:
        """
        C{pip install .} installs both pages as data files under
        C{share/man/man1} and C{share/man/man5}.
        """
        wheels = os.path.abspath(self.mktemp())
        os.makedirs(wheels)
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-c", BUILD, "build_wheel", wheels], env=os.environ, path=ROOT
        )
        self.assertEqual(code, 0, err)
        [wheel] = os.listdir(wheels)
        with zipfile.ZipFile(os.path.join(wheels, wheel)) as archive:
            names = archive.namelist()
        for directory, page in PAGES.items():
            self.assertTrue(
                any(name.endswith(f".data/data/share/man/{directory}/{page}") for name in names),
                f"{page} is not in the wheel",
            )
