"""
Tests for L{socksgate.scripts.convert._dante}: Dante 1.4 C{sockd.conf}
files turned into socksgate's TOML, the problems reported with their line
numbers, and (with Debian's C{dante-server} installed, as root) that the
converted file decides real requests as a real C{danted} does.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from socksgate.config import parseConfig
from socksgate.scripts.convert import DANTE, convertDanteConf, detectFormat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "tests", "data", "danted.conf")
DANTED = "/usr/sbin/danted"
SOCKSGATE = os.path.join(os.path.dirname(sys.executable), "socksgate")

#: The users the sample names, made by the comparison test (root only).
USERS = ("sgalice", "sgbob", "sgcarol")
PASSWORD = "Dante-Test-1"


def converted(text: str) -> dict[str, Any]:
    """
    The TOML a Dante file converts to, as TOML reads it.
    """
    return tomllib.loads(convertDanteConf(text).toml)


def rules(text: str) -> list[dict[str, Any]]:
    """
    The C{[[rule]]} tables a Dante file converts to, without messages.
    """
    found = converted(text).get("rule", [])
    for each in found:
        each.pop("message")
    return found


PASS_ALL = "client pass { from: 0/0 to: 0/0 }\n"


class DanteSettingsTests(SynchronousTestCase):
    """
    Server settings become C{[server]} and C{[auth]} keys or comments.
    """

    def test_internalExternalTimeouts(self) -> None:
        """
        C{internal:} becomes C{listen}, C{external:} C{external}, and the
        timeouts their socksgate keys.
        """
        text = (
            "internal: 127.0.0.1 port = 1081\ninternal: ::1 port=1082\nexternal: 192.0.2.1\n"
            "timeout.negotiate: 20\ntimeout.connect: 15\ntimeout.io: 600\n"
        )
        conversion = convertDanteConf(text)
        server = tomllib.loads(conversion.toml)["server"]
        self.assertEqual(server["listen"], ["tcp:1081:interface=127.0.0.1", "tcp6:1082:interface=\\:\\:1"])
        self.assertEqual(server["external"], "192.0.2.1")
        self.assertEqual(
            (server["handshake-timeout"], server["connect-timeout"], server["idle-timeout"]), (20, 15, 600)
        )
        self.assertEqual(conversion.problems, ())

    def test_interfaceNames(self) -> None:
        """
        An interface name in C{internal:} or C{external:} is the machine's:
        reported with the key to write by hand, nothing written.
        """
        conversion = convertDanteConf("internal: eth0 port = 1080\nexternal: eth1\n")
        self.assertNotIn("server", tomllib.loads(conversion.toml))
        self.assertEqual([number for number, _ in conversion.problems], [1, 2])
        self.assertIn('listen = ["tcp:1080:interface=ADDRESS"]', conversion.problems[0][1])
        self.assertIn('external = "ADDRESS"', conversion.problems[1][1])

    def test_methods(self) -> None:
        """
        C{socksmethod:} becomes C{[auth] methods}, Dante's system passwords
        the C{unix} checker; methods without an equivalent are reported.
        """
        conversion = convertDanteConf("socksmethod: username pam.any none\n")
        auth = tomllib.loads(conversion.toml)["auth"]
        self.assertEqual(auth, {"methods": ["userpass", "none"], "checker": "unix"})
        self.assertIn("pam.any", conversion.problems[0][1])

    def test_daemonSettings(self) -> None:
        """
        C{logoutput:}, C{user.*:}, C{debug:} and C{errorlog:} become
        comments naming twistd's options, and are not reported.
        """
        text = "logoutput: syslog\nuser.privileged: root\nuser.unprivileged: nobody\n"
        text += "debug: 1\nerrorlog: stderr\n"
        conversion = convertDanteConf(text)
        self.assertEqual(conversion.problems, ())
        self.assertIn("twistd --syslog", conversion.toml)
        self.assertIn("twistd --uid USER --gid GROUP", conversion.toml)

    def test_unknownSettingAndInvalidFile(self) -> None:
        """
        A setting without an equivalent is reported; a file Dante would not
        start with converts to nothing, with its line reported.
        """
        conversion = convertDanteConf("compatibility: sameport\n")
        self.assertEqual([number for number, _ in conversion.problems], [1])
        for broken in (
            PASS_ALL + "socks pass { from: 0/0 to: 0/0\n",
            PASS_ALL + "socks block { from: 0/0 to: 0/0 port x }\n",
        ):
            conversion = convertDanteConf(broken)
            self.assertEqual(rules(broken), [])
            self.assertEqual([number for number, _ in conversion.problems], [2])
            self.assertIn("nothing is converted", conversion.problems[0][1])


class DanteRuleTests(SynchronousTestCase):
    """
    C{client} and C{socks} rules become C{[[rule]]} tables.
    """

    def test_clientRulesIntersected(self) -> None:
        """
        A socks pass applies only to clients the client rules pass: its
        C{clients} is intersected with them, a block from an earlier client
        rule taken out; socks blocks stay as they are.
        """
        text = (
            "client pass { from: 10.1.0.0/16 to: 0/0 }\nclient block { from: 10.2.0.0/16 to: 0/0 }\n"
            "client pass { from: 10.0.0.0/14 to: 0/0 }\n"
            "socks block { from: 0/0 to: 192.0.2.0/24 }\nsocks pass { from: 0/0 to: 0/0 }\n"
        )
        self.assertEqual(
            rules(text),
            [
                {"action": "deny", "destinations": ["192.0.2.0/24"]},
                {"action": "permit", "clients": ["10.0.0.0/15", "10.3.0.0/16"]},
            ],
        )

    def test_noClientRule(self) -> None:
        """
        Without client rules Dante blocks every client: socks pass rules
        match nothing and are left out.
        """
        conversion = convertDanteConf("socks pass { from: 0/0 to: 0/0 }\n")
        self.assertEqual(rules("socks pass { from: 0/0 to: 0/0 }\n"), [])
        self.assertIn("no client rule passes", conversion.problems[0][1])

    def test_ports(self) -> None:
        """
        C{port = N}, C{port gt N}, C{port N - M} and C{port range N - M}
        after C{to:} become C{ports}.
        """
        for spec, expected in [
            ("port = 80", ["80"]),
            ("port eq 80", ["80"]),
            ("port gt 1023", ["1024-65535"]),
            ("port < 1024", ["1-1023"]),
            ("port 1024 - 65535", ["1024-65535"]),
            ("port range 1024 - 2047", ["1024-2047"]),
            ("port != 25", ["1-24", "26-65535"]),
        ]:
            [rule] = rules(PASS_ALL + f"socks pass {{ from: 0/0 to: 0.0.0.0/0 {spec} }}\n")
            self.assertEqual(rule["ports"], expected, spec)
            self.assertEqual(rule["destinations"], ["0.0.0.0/0"])

    def test_commands(self) -> None:
        """
        C{command:} and C{protocol:}: a permit covers BIND only with its
        bindreply, UDP only with its udpreply; a block of either part
        blocks the command.
        """
        self.assertEqual(
            rules(PASS_ALL + "socks pass { from: 0/0 to: 0/0 command: connect }\n")[0]["commands"],
            ["connect"],
        )
        permit = rules(PASS_ALL + "socks pass { from: 0/0 to: 0/0 command: connect bind }\n")
        self.assertEqual(permit[0]["commands"], ["connect"])
        block = rules("socks block { from: 0/0 to: 0/0 command: bindreply udpreply }\n")
        self.assertEqual(block[0]["commands"], ["bind", "udp"])
        tcp = rules(PASS_ALL + "socks pass { from: 0/0 to: 0/0 protocol: tcp }\n")
        self.assertEqual(tcp[0]["commands"], ["connect", "bind"])

    def test_usersAndMethods(self) -> None:
        """
        A rule's C{socksmethod: username} is any authenticated SOCKS5 user,
        its C{user:} those names; C{socksmethod: none} anonymous clients.
        """
        head = "socksmethod: username none\n" + PASS_ALL
        [named] = rules(head + "socks pass {\nfrom: 0/0 to: 0/0\nsocksmethod: username\nuser: alice bob\n}\n")
        self.assertEqual((named["users"], named["versions"]), (["alice", "bob"], ["5"]))
        [anyone] = rules(head + "socks pass {\nfrom: 0/0 to: 0/0\nsocksmethod: username\n}\n")
        self.assertEqual((anyone["users"], anyone["versions"]), (["*"], ["5"]))
        [anonymous] = rules(head + "socks pass {\nfrom: 0/0 to: 0/0\nsocksmethod: none\n}\n")
        self.assertEqual(anonymous["users"], ["-"])
        [every] = rules(head + "socks pass { from: 0/0 to: 0/0 }\n")
        self.assertNotIn("users", every)

    def test_names(self) -> None:
        """
        Dante matched C{.example.com} as any name ending in C{example.com}
        (and address requests by reverse lookup): a permit is narrowed to
        socksgate's C{".example.com"}, a block widened to any destination;
        both reported on the C{to:} line.
        """
        text = (
            PASS_ALL
            + "socks block {\nfrom: 0/0\nto: .Evil.example\n}\nsocks pass { from: 0/0 to: .example.com }\n"
        )
        conversion = convertDanteConf(text)
        self.assertEqual(
            rules(text), [{"action": "deny"}, {"action": "permit", "destinations": [".example.com"]}]
        )
        self.assertEqual([number for number, _ in conversion.problems], [4, 6])

    def test_route(self) -> None:
        """
        C{route} blocks are chaining, written by hand as C{[[upstream]]}.
        """
        conversion = convertDanteConf("route {\nfrom: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\n}\n")
        self.assertIn("[[upstream]]", conversion.problems[0][1])

    def test_detected(self) -> None:
        """
        The sample is detected as Dante's format, not as the SOCKS4
        C{sockd.conf} its name may suggest.
        """
        with open(SAMPLE, encoding="utf-8") as stream:
            text = stream.read()
        self.assertEqual(detectFormat(text, "/etc/sockd.conf"), DANTE)

    def test_sampleLoads(self) -> None:
        """
        The converted sample is a configuration socksgate loads.
        """
        with open(SAMPLE, encoding="utf-8") as stream:
            conversion = convertDanteConf(stream.read())
        self.assertEqual(len(parseConfig(conversion.toml, "converted.toml").rules), 7)
        self.assertEqual([number for number, _ in conversion.problems], [37])


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def socks5Connect(proxy: int, client: str, port: int, user: str | None) -> str:
    """
    A SOCKS5 CONNECT through the proxy on 127.0.0.1:C{proxy}, from
    C{client}, to 127.0.0.1:C{port}: C{"permit"} when the server tried the
    destination (success or refused: nothing listens there), C{"deny"} when
    it refused the request or the client.
    """
    with socket.socket() as connection:
        connection.settimeout(10)
        connection.bind((client, 0))
        connection.connect(("127.0.0.1", proxy))
        try:
            connection.sendall(b"\x05\x01" + (b"\x02" if user else b"\x00"))
            answer = connection.recv(2)
            if len(answer) < 2 or answer[1] == 0xFF:
                return "deny"
            if user:
                name = user.encode()
                connection.sendall(
                    b"\x01" + bytes([len(name)]) + name + bytes([len(PASSWORD)]) + PASSWORD.encode()
                )
                if connection.recv(2)[1:2] != b"\x00":
                    return "deny"
            connection.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", port))
            reply = connection.recv(10)
        except (TimeoutError, ConnectionError):
            return "deny"
    return "permit" if len(reply) >= 2 and reply[1] in (0, 5) else "deny"


#: The comparison table: client address, destination port on 127.0.0.1
#: (127.0.0.9 for the blocked host), user.
REQUESTS = [
    ("127.0.0.5", 8080, None),
    ("127.0.1.5", 8080, None),
    ("127.0.2.5", 8080, None),
    ("127.1.0.5", 8080, None),
    ("127.0.2.5", 5000, "sgalice"),
    ("127.0.2.5", 5000, "sgcarol"),
    ("127.0.2.5", 5000, None),
    ("127.0.2.5", 1000, "sgalice"),
    ("127.0.3.5", 2500, None),
    ("127.0.3.5", 3500, None),
    ("127.0.0.5", 3000, "sgalice"),
    ("127.0.0.5", 3500, "sgcarol"),
    ("127.0.0.5", 3500, None),
    ("127.0.0.5", 6000, None),
    ("127.0.0.5", 6000, "sgcarol"),
    ("127.0.1.5", 6000, None),
]


class DanteComparisonTests(SynchronousTestCase):
    """
    The converted sample decides real requests as Dante itself does: the
    sample runs in a real C{danted} (its C{internal:} port moved to a free
    one), each request of L{REQUESTS} is made to it over loopback, and
    C{socksgate check} is asked about the same request.
    """

    def setUp(self) -> None:
        if not os.path.exists(DANTED):
            raise SkipTest(f"{DANTED} is not installed (Debian package dante-server)")
        if os.geteuid() != 0:
            raise SkipTest("Dante's username method needs system users, which only root may make")
        for user in USERS:
            if subprocess.run(["id", user], capture_output=True).returncode == 0:
                raise SkipTest(f"user {user} exists already: not one this test may remove")
        for user in USERS:
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", user], check=True, timeout=30)
            self.addCleanup(subprocess.run, ["userdel", user], timeout=30)
        subprocess.run(
            ["chpasswd"],
            input="".join(f"{user}:{PASSWORD}\n" for user in USERS),
            text=True,
            check=True,
            timeout=30,
        )
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.port = freePort()
        with open(SAMPLE, encoding="utf-8") as stream:
            text = stream.read()
        self.converted = os.path.join(directory, "converted.toml")
        with open(self.converted, "w", encoding="utf-8") as stream:
            stream.write(convertDanteConf(text).toml)
        config = os.path.join(directory, "danted.conf")
        with open(config, "w", encoding="utf-8") as stream:
            stream.write(
                text.replace("internal: 127.0.0.1 port = 1080", f"internal: 127.0.0.1 port = {self.port}")
            )
        log = open(os.path.join(directory, "danted.log"), "wb")
        self.addCleanup(log.close)
        danted = subprocess.Popen(
            [DANTED, "-f", config, "-N", "1", "-p", os.path.join(directory, "pid")], stderr=log
        )
        self.addCleanup(danted.wait, 30)
        self.addCleanup(danted.terminate)
        for _ in range(100):
            if danted.poll() is not None:
                self.fail(f"danted exited with status {danted.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.fail("danted did not listen within 100 tries")

    def socksgateDecides(self, client: str, port: int, user: str | None, host: str = "127.0.0.1") -> str:
        """
        What C{socksgate check} decides for the request.
        """
        command = [SOCKSGATE, "check", "-c", self.converted, "--client", client]
        command += ["--destination", f"{host}:{port}", "--command", "connect"]
        command += ["--version", "5"] + (["--user", user] if user else [])
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        self.assertIn(done.returncode, (0, 1), done.stderr)
        return "permit" if done.returncode == 0 else "deny"

    def test_sameDecisions(self) -> None:
        """
        Every request of the table gets the same decision from Dante and
        from the converted file, and the table has both kinds; the socks
        block of 127.0.0.9 refuses it in both (Dante with reply 0x02).
        One test, so that parallel trial workers never make the same users.
        """
        dante = [socks5Connect(self.port, client, port, user) for client, port, user in REQUESTS]
        ours = [self.socksgateDecides(client, port, user) for client, port, user in REQUESTS]
        self.assertEqual(list(zip(REQUESTS, ours, strict=True)), list(zip(REQUESTS, dante, strict=True)))
        self.assertEqual(set(dante), {"permit", "deny"})
        with socket.socket() as connection:
            connection.settimeout(10)
            connection.connect(("127.0.0.1", self.port))
            connection.sendall(b"\x05\x01\x00")
            connection.recv(2)
            connection.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.9") + struct.pack("!H", 8080))
            self.assertEqual(connection.recv(10)[1], 2)
        self.assertEqual(self.socksgateDecides("127.0.0.5", 8080, None, "127.0.0.9"), "deny")


class MigrationPageTests(SynchronousTestCase):
    """
    docs/migration.md's configuration examples load.
    """

    def test_tomlExamplesLoad(self) -> None:
        """
        Every C{toml} block of docs/migration.md is a file socksgate loads.
        """
        with open(os.path.join(ROOT, "docs", "migration.md"), encoding="utf-8") as stream:
            blocks = stream.read().split("```toml\n")[1:]
        self.assertTrue(blocks)
        for block in blocks:
            parseConfig(block.split("```", 1)[0], "migration.md")
