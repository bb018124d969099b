"""
Installing the package makes C{twistd socksgate} appear, with a plain
install and with a strict editable install.

Each install goes to a directory of its own, and twistd runs with
C{python -S}, so that only that install (and not the one running these
tests) can provide the plugin.
"""

from __future__ import annotations

import os
import sys
import sysconfig

from twisted.internet.utils import getProcessOutputAndValue

from .helpers import LoopbackTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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

    async def install(self, *arguments: str) -> str:
        directory = os.path.abspath(self.mktemp())
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", *arguments, directory],
            env=os.environ, path=ROOT,
        )
        self.assertEqual(code, 0, err)
        return directory

    async def probe(self, target: str, mode: str) -> bytes:
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-S", "-c", PROBE, target, mode, sysconfig.get_paths()["purelib"]],
            env={"PATH": os.environ.get("PATH", "")}, path=cwd,
        )
        self.assertEqual(code, 0, err)
        return out

    async def test_plainInstall(self) -> None:
        """
        C{pip install .} puts the plugin where twistd finds it.
        """
        target = await self.install(".", "--target")
        out = await self.probe(target, "plain")
        self.assertIn(f"socksgate from {target}".encode(), out)
        self.assertIn(b"socksgate", out.split(b"Commands:")[1])

    async def test_strictEditableInstall(self) -> None:
        """
        C{pip install -e . --config-settings editable_mode=strict} does too.
        """
        prefix = await self.install("-e", ".", "--config-settings", "editable_mode=strict", "--prefix")
        sitePackages = sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix})
        out = await self.probe(sitePackages, "editable")
        self.assertIn(b"socksgate from " + os.path.join(ROOT, "build").encode(), out)
        self.assertIn(b"socksgate", out.split(b"Commands:")[1])
