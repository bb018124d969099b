"""
Tests that L{socksgate.wire} stays free of Twisted: it must import with the
standard library alone.
"""

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SkipTest, SynchronousTestCase

# The repository root, which holds the socksgate package under test.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json, sys
before = set(sys.modules)
import socksgate.wire
print(json.dumps({
    "file": socksgate.wire.__file__,
    "loaded": sorted(set(sys.modules) - before),
    "twisted": sorted(
        name for name in sys.modules if name == "twisted" or name.startswith("twisted.")
    ),
    "stdlib": sorted(getattr(sys, "stdlib_module_names", ())),
}))
"""


def importWire():
    """
    Import L{socksgate.wire} from this repository in a fresh interpreter
    and describe what that loaded.
    """
    environment = dict(os.environ)
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = ROOT if not path else ROOT + os.pathsep + path
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    return json.loads(output)


class WireIsolationTests(SynchronousTestCase):
    """
    Importing L{socksgate.wire} loads nothing outside the standard library.
    """

    def test_importsTheWireUnderTest(self):
        """
        The subprocess imports the codec of this repository.
        """
        report = importWire()
        self.assertEqual(
            os.path.dirname(os.path.abspath(report["file"])),
            os.path.join(ROOT, "socksgate", "wire"),
        )

    def test_noTwisted(self):
        """
        After C{import socksgate.wire}, no module named C{twisted} or
        starting with C{twisted.} is in C{sys.modules}.
        """
        self.assertEqual(importWire()["twisted"], [])

    def test_onlyStandardLibrary(self):
        """
        Every module the import loads is part of C{socksgate} or of the
        standard library.
        """
        report = importWire()
        if not report["stdlib"]:
            raise SkipTest("sys.stdlib_module_names needs Python 3.10")
        stdlib = set(report["stdlib"])
        foreign = [
            name
            for name in report["loaded"]
            if name.split(".")[0] not in stdlib and name.split(".")[0] != "socksgate"
        ]
        self.assertEqual(foreign, [])
