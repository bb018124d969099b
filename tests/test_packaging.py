"""
Installing the package makes C{twistd socksgate} appear, with a plain
install and with a strict editable install.

Each test builds the wheel that pip would install (through the build
backend's PEP 517 and PEP 660 hooks, as pip calls them), unpacks it in a
directory of its own, and runs twistd with C{python -S}, so that only that
install (and not the one running these tests) can provide the plugin.
Nothing installed in the running environment is touched.
"""

from __future__ import annotations

import configparser
import os
import sys
import sysconfig
import zipfile

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase

from .helpers import LoopbackTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The package data files a wheel must hold: the PEP 561 marker that says
#: the package has type hints, the status page's assets and the style and
#: script of the C{socksgate stats} HTML report.
DATA_FILES = (
    "socksgate/py.typed",
    "socksgate/status/page/index.html",
    "socksgate/status/page/status.css",
    "socksgate/status/page/status.js",
    "socksgate/scripts/stats/report/report.css",
    "socksgate/scripts/stats/report/report.js",
)

BUILD = """
import sys
from setuptools import build_meta
hook, directory = sys.argv[1:3]
if hook == "build_editable":
    build_meta.build_editable(directory, config_settings={"editable_mode": "strict"})
else:
    build_meta.build_wheel(directory)
"""

PROBE = """
import site, sys
target, mode, dependencies = sys.argv[1:4]
if mode == "plain":
    sys.path.insert(0, target)
else:
    site.addsitedir(target)
sys.path.append(dependencies)
import socksgate
print("socksgate from", socksgate.__file__)
from twisted.scripts.twistd import run
sys.argv = ["twistd", "--help"]
run()
"""


class PackagingTests(LoopbackTestCase):
    """
    The twistd plugin is installed by both kinds of install.
    """

    timeout = 120

    async def install(self, hook: str) -> str:
        """
        Build a wheel with the backend's C{hook} and unpack it, as pip
        installs it.
        """
        wheels, target = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        os.makedirs(wheels)
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-c", BUILD, hook, wheels], env=os.environ, path=ROOT
        )
        self.assertEqual(code, 0, err)
        [wheel] = os.listdir(wheels)
        with zipfile.ZipFile(os.path.join(wheels, wheel)) as archive:
            archive.extractall(target)
        return target

    async def probe(self, target: str, mode: str) -> bytes:
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-S", "-c", PROBE, target, mode, sysconfig.get_paths()["purelib"]],
            env={"PATH": os.environ.get("PATH", "")},
            path=cwd,
        )
        self.assertEqual(code, 0, err)
        return out

    async def test_plainInstall(self) -> None:
        """
        C{pip install .} puts the plugin where twistd finds it, and the
        package data (C{py.typed}, the status page's and the stats report's
        assets) in the wheel.
        """
        target = await self.install("build_wheel")
        for name in DATA_FILES:
            self.assertTrue(os.path.isfile(os.path.join(target, name)), f"{name} is not in the wheel")
        out = await self.probe(target, "plain")
        self.assertIn(f"socksgate from {target}".encode(), out)
        self.assertIn(b"socksgate", out.split(b"Commands:")[1])

    async def test_strictEditableInstall(self) -> None:
        """
        C{pip install -e . --config-settings editable_mode=strict} does too:
        its path file leads to a tree of links in which Twisted finds the
        plugin.
        """
        target = await self.install("build_editable")
        out = await self.probe(target, "editable")
        self.assertIn(b"socksgate from " + os.path.join(ROOT, "build").encode(), out)
        self.assertIn(b"socksgate", out.split(b"Commands:")[1])


class PackageListTests(SynchronousTestCase):
    """
    setup.cfg lists the packages one by one (C{find:} cannot see
    C{twisted.plugins}): a subpackage it leaves out is missing from the
    wheel.
    """

    def test_everyPackageListed(self) -> None:
        """
        Every directory of the socksgate package that holds an
        C{__init__.py} is in setup.cfg's C{packages}, and every package
        listed there exists.
        """
        config = configparser.ConfigParser()
        config.read(os.path.join(ROOT, "setup.cfg"), encoding="utf-8")
        listed = set(config["options"]["packages"].split())
        found = {"twisted.plugins"}
        for directory, subdirectories, files in os.walk(os.path.join(ROOT, "socksgate")):
            subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
            if "__init__.py" in files:
                found.add(os.path.relpath(directory, ROOT).replace(os.sep, "."))
        self.assertEqual(sorted(listed), sorted(found))
