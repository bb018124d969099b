"""
Reading and validating the TOML configuration.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import DEFAULT_LISTEN, Config, ConfigError, ServerConfig, loadConfig, parseConfig


class ParseConfigTests(SynchronousTestCase):
    """
    The [server] table and its errors.
    """

    def error(self, text: str) -> ConfigError:
        return self.assertRaises(ConfigError, parseConfig, text, "gw.toml")

    def test_empty(self) -> None:
        """
        An empty file gives SPEC's defaults.
        """
        config = parseConfig("", "gw.toml")
        self.assertEqual(config.server, ServerConfig())
        self.assertEqual(config.server.listen, (DEFAULT_LISTEN,))
        self.assertEqual(config.server.versions, {"4", "4a", "5"})

    def test_everyKey(self) -> None:
        """
        Every key of [server] is read, integers are taken as seconds.
        """
        config = parseConfig(
            """
[server]
listen = ["tcp:1081", "tcp6:1081:interface=\\\\:\\\\:1"]
external = "192.0.2.1"
advertise = "203.0.113.9"
versions = ["5"]
commands = ["connect"]
handshake-timeout = 5
connect-timeout = 7.5
bind-timeout = 60
idle-timeout = 0
udp-idle-timeout = 30
max-sessions = 100
max-sessions-per-client = 10
""",
            "gw.toml",
        )
        self.assertEqual(
            config.server,
            ServerConfig(
                listen=("tcp:1081", "tcp6:1081:interface=\\:\\:1"),
                external="192.0.2.1",
                advertise="203.0.113.9",
                versions=frozenset({"5"}),
                commands=frozenset({"connect"}),
                handshakeTimeout=5.0,
                connectTimeout=7.5,
                bindTimeout=60.0,
                idleTimeout=0.0,
                udpIdleTimeout=30.0,
                maxSessions=100,
                maxSessionsPerClient=10,
            ),
        )

    def test_errorNamesFileLineKey(self) -> None:
        """
        A wrong value names the file, the line, the table and key, and the
        problem.
        """
        error = self.error("[server]\n\nconnect-timeout = -1\n")
        self.assertEqual(str(error), "gw.toml:3: [server] connect-timeout: must be greater than 0")
        self.assertEqual((error.path, error.line, error.key), ("gw.toml", 3, "server.connect-timeout"))

    def test_wrongType(self) -> None:
        """
        A value of the wrong type is named with what was expected.
        """
        self.assertEqual(
            str(self.error('[server]\nmax-sessions = "many"\n')),
            "gw.toml:2: [server] max-sessions: must be an integer, not 'many'",
        )
        self.assertIn("must be a number", str(self.error("[server]\nidle-timeout = true\n")))

    def test_unknownKey(self) -> None:
        """
        A misspelt key is refused, not ignored.
        """
        self.assertEqual(
            str(self.error("[server]\nconect-timeout = 3\n")),
            "gw.toml:2: [server] conect-timeout: unknown key",
        )

    def test_unknownVersionAndCommand(self) -> None:
        """
        versions and commands take only SPEC's names.
        """
        self.assertIn("'6' is not one of 4, 4a, 5", str(self.error('[server]\nversions = ["6"]')))
        self.assertIn("'ping' is not one of", str(self.error('[server]\ncommands = ["ping"]')))

    def test_badAddress(self) -> None:
        """
        external must be an IP address.
        """
        self.assertIn("is not an IP address", str(self.error('[server]\nexternal = "gateway"')))

    def test_emptyListen(self) -> None:
        """
        An empty listen list is refused.
        """
        self.assertIn("at least one", str(self.error("[server]\nlisten = []")))

    def test_notTOML(self) -> None:
        """
        A syntax error names the line TOML gives.
        """
        error = self.error("[server]\nlisten = [\n\n= 3\n")
        self.assertTrue(str(error).startswith("gw.toml:"), str(error))
        self.assertIn("not valid TOML", str(error))

    def test_unknownTable(self) -> None:
        """
        An unknown table is refused.
        """
        self.assertIn("[sever]", str(self.error("[sever]\nlisten = []\n")))


class LoadConfigTests(SynchronousTestCase):
    """
    Reading the file itself.
    """

    def test_missingFile(self) -> None:
        """
        A file that cannot be read is named with the reason.
        """
        error = self.assertRaises(ConfigError, loadConfig, "/nonexistent/gw.toml")
        self.assertEqual(str(error), "/nonexistent/gw.toml: cannot be read: No such file or directory")

    def test_notUTF8(self) -> None:
        """
        A file that is not UTF-8 is refused with the offending byte.
        """
        path = self.mktemp()
        with open(path, "wb") as stream:
            stream.write(b"[server]\nexternal = '\xff'\n")
        self.assertIn("is not UTF-8", str(self.assertRaises(ConfigError, loadConfig, path)))

    def test_withListen(self) -> None:
        """
        The command line's listeners replace the file's.
        """
        config = Config().withListen(("tcp:2000",))
        self.assertEqual(config.server.listen, ("tcp:2000",))


class SessionsPerSecondTests(SynchronousTestCase):
    """
    A rule's C{sessions-per-second}: an integer, 0 or more.
    """

    def error(self, value: str) -> str:
        text = f'[[rule]]\naction = "permit"\nsessions-per-second = {value}\n'
        return str(self.assertRaises(ConfigError, parseConfig, text, "gw.toml"))

    def test_value(self) -> None:
        """
        The limit is read into the rule; left out, it is 0 (no limit), and
        an C{[[expect]]} is decided as without it.
        """
        config = parseConfig(
            '[[rule]]\naction = "permit"\nsessions-per-second = 5\n[[rule]]\naction = "deny"\n'
            '[[expect]]\nclient = "127.0.0.1"\ndestination = "127.0.0.1:80"\nresult = "permit"\nrule = 1\n'
        )
        self.assertEqual([rule.sessionsPerSecond for rule in config.rules], [5, 0])

    def test_badValues(self) -> None:
        """
        A negative number, a string, a boolean or a fraction is refused,
        naming the file, the line, the rule and the key.
        """
        self.assertEqual(self.error("-1"), "gw.toml:3: [rule #1] sessions-per-second: must be 0 or more")
        self.assertEqual(
            self.error('"5"'), "gw.toml:3: [rule #1] sessions-per-second: must be an integer, not '5'"
        )
        self.assertEqual(
            self.error("true"), "gw.toml:3: [rule #1] sessions-per-second: must be an integer, not True"
        )
        self.assertEqual(
            self.error("1.5"), "gw.toml:3: [rule #1] sessions-per-second: must be an integer, not 1.5"
        )
