"""
Endpoint descriptions are checked when the configuration loads: a typo is
an error naming the file, line and key, and what is wrong, before anything
listens.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import ConfigError, parseConfig
from socksgate.endpoints import endpointProblem
from socksgate.tap import Options


class EndpointProblemTests(SynchronousTestCase):
    """
    L{endpointProblem} in words.
    """

    def test_good(self) -> None:
        """
        The descriptions the docs show are accepted, systemd: included
        (its sockets exist only under socket activation).
        """
        for description in (
            "tcp:1080:interface=127.0.0.1",
            "tcp:1080:interface=0.0.0.0:backlog=1024",
            "tcp6:1080:interface=\\:\\:1",
            "unix:/run/socksgate.sock",
            "haproxy:tcp:1080",
            "systemd:domain=INET:index=0",
        ):
            self.assertIsNone(endpointProblem(description), description)

    def test_bad(self) -> None:
        """
        Each kind of mistake is said plainly.
        """
        self.assertEqual(
            endpointProblem("tcpp:31090"),
            "'tcpp:31090': unknown endpoint type 'tcpp' (tcp, tcp6, ssl, unix, systemd, "
            "or haproxy: before one of them)",
        )
        self.assertEqual(endpointProblem("tcp:abc"), "'tcp:abc': 'abc' is not a number")
        self.assertEqual(
            endpointProblem("tcp:1080:backlog=abc"), "'tcp:1080:backlog=abc': 'abc' is not a number"
        )
        self.assertEqual(
            endpointProblem("tcp:1080:bogus=1"), "'tcp:1080:bogus=1': tcp: has no parameter 'bogus'"
        )
        self.assertEqual(endpointProblem("tcp:99999"), "'tcp:99999': port 99999 is not between 0 and 65535")
        self.assertEqual(
            endpointProblem("haproxy:tcp:x"), "'haproxy:tcp:x': behind haproxy: 'tcp:x': 'x' is not a number"
        )


class ConfigTests(SynchronousTestCase):
    """
    The configuration file refuses bad descriptions with file, line, key.
    """

    def problem(self, text: str) -> str:
        """
        The error loading C{text} as /etc/socksgate.toml.
        """
        return str(self.assertRaises(ConfigError, parseConfig, text, "/etc/socksgate.toml"))

    def test_listen(self) -> None:
        """
        A bad C{[server] listen} item.
        """
        self.assertEqual(
            self.problem('[server]\nlisten = ["tcp:1080", "tcp:1080:backlog=abc"]\n'),
            "/etc/socksgate.toml:2: [server] listen: 'tcp:1080:backlog=abc': 'abc' is not a number",
        )

    def test_status(self) -> None:
        """
        A bad C{[log] status}; an empty one means no status page.
        """
        self.assertIn(
            "[log] status: 'tcpx:9': unknown endpoint type 'tcpx'", self.problem('[log]\nstatus = "tcpx:9"\n')
        )
        self.assertEqual(parseConfig('[log]\nstatus = ""\n', "x.toml").log.status, "")

    def test_statusBarePort(self) -> None:
        """
        A bare port number for C{[log] status} is that port on loopback (as
        docs/status.md says), so it loads, and it is kept as written.
        """
        self.assertEqual(parseConfig('[log]\nstatus = "9180"\n', "x.toml").log.status, "9180")

    def test_statusBarePortOption(self) -> None:
        """
        C{twistd socksgate --status 9180} is accepted, as docs/status.md
        shows it.
        """
        options = Options()
        options.parseOptions(["--status", "9180"])
        self.assertEqual(options["configuration"].log.status, "9180")
