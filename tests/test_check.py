"""
C{socksgate check} as a command.
"""

from __future__ import annotations

import os
import sys

from twisted.internet.utils import getProcessOutputAndValue

from .helpers import LoopbackTestCase

SOCKSGATE = os.path.join(os.path.dirname(sys.executable), "socksgate")

GOOD = """\
[server]
listen = ["tcp:1080"]

[[rule]]
action = "deny"
ports = ["23"]
message = "no telnet"

[[rule]]
action = "permit"
clients = ["10.0.0.0/8"]
destinations = ["*"]

[[expect]]
client = "10.1.2.3"
destination = "www.example.com:443"
result = "permit"
"""


class CheckTests(LoopbackTestCase):
    """
    Validation and explained decisions, with exit statuses.
    """

    def writeConfig(self, text: str) -> str:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(text)
        return path

    async def check(self, *arguments: str) -> tuple[str, str, int]:
        out, err, code = await getProcessOutputAndValue(SOCKSGATE, ["check", *arguments], env=os.environ)
        return out.decode(), err.decode(), code

    async def test_valid(self) -> None:
        """
        A valid file: exit 0, with its rules and expectations counted.
        """
        path = self.writeConfig(GOOD)
        out, err, code = await self.check("-c", path)
        self.assertEqual((code, out), (0, f"valid: {path}: 2 rules, 1 expectations hold\n"), err)

    async def test_invalid(self) -> None:
        """
        An invalid file: exit 1, naming file, line, key and problem.
        """
        path = self.writeConfig(GOOD.replace('ports = ["23"]', 'ports = ["23-"]'))
        out, err, code = await self.check("-c", path)
        self.assertEqual(code, 1)
        self.assertIn(f"{path}:6: [rule #1] ports: '23-' is not a port", out)

    async def test_badListener(self) -> None:
        """
        A listener that is no endpoint description makes the file invalid:
        exit 1, naming file, line, key and problem.
        """
        path = self.writeConfig(GOOD.replace('listen = ["tcp:1080"]', 'listen = ["tcpp:31090"]'))
        out, err, code = await self.check("-c", path)
        self.assertEqual(code, 1)
        self.assertIn(f"{path}:2: [server] listen: 'tcpp:31090': unknown endpoint type 'tcpp'", out)
        self.assertNotIn("Traceback", out + err)

    async def test_failingExpectation(self) -> None:
        """
        A file whose expectation fails is invalid, and the message says
        which and why.
        """
        path = self.writeConfig(GOOD.replace('result = "permit"', 'result = "deny"'))
        out, err, code = await self.check("-c", path)
        self.assertEqual(code, 1)
        self.assertIn(f"{path}:14: [expect #1]: client 10.1.2.3 SOCKS5 connect www.example.com:443", out)
        self.assertIn("expected deny, got permit by rule 2 (line 9)", out)

    async def test_permit(self) -> None:
        """
        A permitted request: exit 0 and the rule with its line.
        """
        out, err, code = await self.check(
            "-c", self.writeConfig(GOOD), "--client", "10.9.9.9", "--destination", "192.0.2.1:80"
        )
        self.assertEqual(code, 0, err)
        self.assertTrue(out.endswith("permit by rule 2 (line 9)\n"), out)

    async def test_permitShowsSessionsPerSecond(self) -> None:
        """
        A permit by a rule with C{sessions-per-second} says its limit.
        """
        config = GOOD.replace('clients = ["10.0.0.0/8"]', 'clients = ["10.0.0.0/8"]\nsessions-per-second = 5')
        out, err, code = await self.check(
            "-c", self.writeConfig(config), "--client", "10.9.9.9", "--destination", "192.0.2.1:80"
        )
        self.assertEqual(code, 0, err)
        self.assertTrue(
            out.endswith(
                "permit by rule 2 (line 9) (sessions-per-second 5, per client address and per user)\n"
            ),
            out,
        )

    async def test_deny(self) -> None:
        """
        A denied request: exit 1 and the rule, its line and message.
        """
        out, err, code = await self.check(
            "-c", self.writeConfig(GOOD), "--client", "10.9.9.9", "--destination", "[2001:db8::1]:23"
        )
        self.assertEqual(code, 1)
        self.assertTrue(out.endswith("deny by rule 1 (line 4): no telnet\n"), out)

    async def test_noRuleMatches(self) -> None:
        """
        A request that no rule matches is denied, and says so.
        """
        out, err, code = await self.check(
            "-c", self.writeConfig(GOOD), "--client", "192.168.0.1", "--destination", "h.example:80",
            "--version", "4a", "--user", "bob",
        )  # fmt: skip
        self.assertEqual(code, 1)
        self.assertTrue(out.endswith("deny: no rule matched\n"), out)

    async def test_nameLookedUp(self) -> None:
        """
        When the decision depends on the address of a name, the name is
        looked up (here: localhost, from /etc/hosts) and each address
        decided.
        """
        rules = (
            '[[rule]]\naction = "deny"\ndestinations = ["127.0.0.0/8", "::1"]\n[[rule]]\naction = "permit"\n'
        )
        out, err, code = await self.check(
            "-c", self.writeConfig(rules), "--client", "10.0.0.1", "--destination", "localhost:80"
        )
        self.assertEqual(code, 1, out + err)
        self.assertIn("localhost: the decision depends on its address; looking it up", out)
        self.assertIn("127.0.0.1: deny by rule 1 (line 1)", out)

    async def test_givenAddress(self) -> None:
        """
        --address gives the address a name resolves to.
        """
        rules = '[[rule]]\naction = "deny"\ndestinations = ["10.0.0.0/8"]\n[[rule]]\naction = "permit"\n'
        out, err, code = await self.check(
            "-c", self.writeConfig(rules), "--client", "10.0.0.1", "--destination", "x.example:80",
            "--address", "192.0.2.7",
        )  # fmt: skip
        self.assertEqual(code, 0, out + err)
        self.assertTrue(out.endswith("permit by rule 2 (line 4)\n"), out)

    async def test_badRequest(self) -> None:
        """
        A malformed destination is reported, exit 1, no traceback.
        """
        out, err, code = await self.check(
            "-c", self.writeConfig(GOOD), "--client", "10.0.0.1", "--destination", "nowhere"
        )
        self.assertEqual(code, 1)
        self.assertIn("is not HOST:PORT", err)
        self.assertNotIn("Traceback", err)

    async def test_unknownCommandOrVersion(self) -> None:
        """
        An unknown C{--command} or C{--version} is refused (exit 2), the
        choices named as the strings a rule writes.
        """
        path = self.writeConfig(GOOD)
        out, err, code = await self.check("-c", path, "--command", "ping")
        self.assertEqual(code, 2)
        self.assertIn(
            "argument --command: invalid choice: 'ping' (choose from 'connect', 'bind', 'udp')", err
        )
        out, err, code = await self.check("-c", path, "--version", "6")
        self.assertEqual(code, 2)
        self.assertIn("argument --version: invalid choice: '6' (choose from '4', '4a', '5')", err)
        self.assertIn("[--command {connect,bind,udp}]", err)


SPELLINGS = """\
[[rule]]
action = "deny"
destinations = ["bücher.test", "127.0.0.0/8"]
message = "no"

[[rule]]
action = "permit"

[[expect]]
client = "10.1.2.3"
destination = "XN--BCHER-KVA\u3002test:80"
result = "deny"

[[expect]]
client = "10.1.2.3"
destination = "0.0.0.0:80"
result = "deny"
"""


class SpellingTests(LoopbackTestCase):
    """
    C{[[expect]]} and C{socksgate check} decide a destination in the form
    the gateway does: names normalised, unspecified addresses as the local
    host they reach.
    """

    writeConfig = CheckTests.writeConfig
    check = CheckTests.check

    async def test_expectations(self) -> None:
        """
        An expectation spelling the rule's name with an A-label in capitals
        and an ideographic full stop, and one for 0.0.0.0 under
        C{deny 127.0.0.0/8}, are both denied as the gateway would.
        """
        out, err, code = await self.check("-c", self.writeConfig(SPELLINGS))
        self.assertEqual(code, 0, out + err)

    async def test_request(self) -> None:
        """
        C{--destination} in fullwidth letters, C{[::ffff:0.0.0.0]:80} and
        C{0.0.0.0:80} are denied
        by rule 1; an invalid name is a bad request.
        """
        path = self.writeConfig(SPELLINGS)
        for destination in ["ＢÜＣＨＥＲ.test:80", "[::ffff:0.0.0.0]:80", "0.0.0.0:80"]:
            out, err, code = await self.check(
                "-c", path, "--client", "10.1.2.3", "--destination", destination
            )
            self.assertEqual((code, out.splitlines()[-1]), (1, "deny by rule 1 (line 1): no"), destination)
        out, err, code = await self.check(
            "-c", path, "--client", "10.1.2.3", "--destination", "a\u200db.test:80"
        )
        self.assertEqual(code, 1)
        self.assertIn("bad request", err)


class VersionTests(LoopbackTestCase):
    """
    C{socksgate --version}.
    """

    async def test_version(self) -> None:
        """
        It prints the package's version and exits 0.
        """
        from importlib.metadata import version

        import socksgate

        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "socksgate.scripts.main", "--version"], env=os.environ
        )
        self.assertEqual((code, out.decode()), (0, f"socksgate {socksgate.__version__}\n"), err)
        self.assertEqual(version("socksgate"), socksgate.__version__)
