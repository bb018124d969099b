"""
Tests for L{socksgate.scripts.convert}: SOCKS4 sockd.conf and NEC SOCKS5
socks5.conf files turned into C{[[rule]]} tables, the problems reported
with their line numbers, the command's exit statuses, and that the
converted rules decide requests as the original files did.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tomllib
from ipaddress import ip_address
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import parseConfig
from socksgate.policy import AccessRequest
from socksgate.scripts.convert import (
    DANTE,
    SOCKD,
    SOCKS5,
    Conversion,
    convertSockdConf,
    convertSocks5Conf,
    detectFormat,
    run,
)

# The repository root, which holds the socksgate package under test.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SOCKD_SAMPLE = os.path.join(DATA, "sockd.conf")
SOCKS5_SAMPLE = os.path.join(DATA, "socks5.conf")

#: The command as the console script runs it, in a fresh interpreter.
COMMAND = [
    sys.executable,
    "-c",
    "import sys; from socksgate.scripts.convert import run;"
    " sys.exit(run(sys.argv[1], sys.stdout, sys.stderr))",
]


def readSample(path: str) -> str:
    """
    The text of a sample file.
    """
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def rulesOf(conversion: Conversion) -> list[dict[str, Any]]:
    """
    The C{[[rule]]} tables of a conversion, as TOML reads them.
    """
    return tomllib.loads(conversion.toml).get("rule", [])


def onlyRule(conversion: Conversion) -> dict[str, Any]:
    """
    The one rule of a conversion, without its C{message}.
    """
    [rule] = rulesOf(conversion)
    rule.pop("message")
    return rule


def problemLines(conversion: Conversion) -> list[int]:
    """
    The line numbers of a conversion's problems.
    """
    return [number for number, _ in conversion.problems]


def tcpPort(name: str) -> int:
    """
    The port of a service, as this host knows it.
    """
    return socket.getservbyname(name, "tcp")


class SockdAddressTests(SynchronousTestCase):
    """
    sockd.conf addresses and masks become CIDRs.
    """

    def test_sourceNetwork(self) -> None:
        """
        A source address and contiguous mask become C{clients}; a permit
        covers SOCKS4's CONNECT and BIND only.
        """
        conversion = convertSockdConf("permit 10.1.0.0 255.255.0.0\n")
        self.assertEqual(
            onlyRule(conversion),
            {"action": "permit", "clients": ["10.1.0.0/16"], "commands": ["connect", "bind"]},
        )
        self.assertEqual(conversion.problems, ())

    def test_addressBitsOutsideMask(self) -> None:
        """
        Address bits where the mask is 0 do not matter, as in sockd.
        """
        rule = onlyRule(convertSockdConf("deny 10.1.2.3 255.255.0.0\n"))
        self.assertEqual(rule, {"action": "deny", "clients": ["10.1.0.0/16"]})

    def test_any(self) -> None:
        """
        C{0.0.0.0 0.0.0.0} matches anything, so the key is left out; a deny
        covers every command.
        """
        rule = onlyRule(convertSockdConf("deny 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0\n"))
        self.assertEqual(rule, {"action": "deny"})

    def test_singleHost(self) -> None:
        """
        A mask of all ones is one address, written without a prefix.
        """
        rule = onlyRule(convertSockdConf("deny 0.0.0.0 0.0.0.0 192.0.2.10 255.255.255.255\n"))
        self.assertEqual(rule, {"action": "deny", "destinations": ["192.0.2.10"]})

    def test_destinationPair(self) -> None:
        """
        The second address and mask become C{destinations}.
        """
        rule = onlyRule(convertSockdConf("permit 192.168.7.0 255.255.255.0 198.51.100.0 255.255.255.0\n"))
        self.assertEqual(rule["clients"], ["192.168.7.0/24"])
        self.assertEqual(rule["destinations"], ["198.51.100.0/24"])

    def test_nonContiguousMaskDeny(self) -> None:
        """
        A non-contiguous mask is no CIDR: it is reported, and a deny is
        widened to the CIDR of the mask's leading one bits.
        """
        conversion = convertSockdConf("deny 10.3.0.250 255.255.0.255\n")
        self.assertEqual(onlyRule(conversion), {"action": "deny", "clients": ["10.3.0.0/16"]})
        [(line, message)] = conversion.problems
        self.assertEqual(line, 1)
        self.assertIn("255.255.0.255 is not contiguous", message)
        self.assertIn("widened", message)

    def test_nonContiguousMaskWithoutLeadingOnes(self) -> None:
        """
        A mask whose first bit is 0 widens a deny to every client.
        """
        conversion = convertSockdConf("deny 0.3.0.0 0.255.0.0\n")
        self.assertEqual(onlyRule(conversion), {"action": "deny"})
        self.assertEqual(problemLines(conversion), [1])

    def test_nonContiguousMaskPermit(self) -> None:
        """
        A permit with a non-contiguous mask has no narrower rule: it is left
        out, as a comment, and reported.
        """
        conversion = convertSockdConf("\npermit 10.0.0.0 255.0.255.0\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(problemLines(conversion), [2])
        self.assertIn("left out", conversion.problems[0][1])
        self.assertIn("# LEFT OUT: mask 255.0.255.0 is not contiguous", conversion.toml)

    def test_notDottedQuad(self) -> None:
        """
        A host name where sockd wanted an address is reported; the permit
        is left out.
        """
        conversion = convertSockdConf("permit gw.example.net 255.255.255.255\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("'gw.example.net' is not a dotted quad", conversion.problems[0][1])


class SockdPortTests(SynchronousTestCase):
    """
    sockd.conf port operators become C{ports}.
    """

    def portsOf(self, operator: str) -> list[str] | None:
        """
        The C{ports} of a permit with C{operator}.
        """
        rule = onlyRule(convertSockdConf(f"permit 10.0.0.0 255.0.0.0 {operator}\n"))
        return rule.get("ports")

    def test_operators(self) -> None:
        """
        Each operator becomes the ranges of the ports it matches.
        """
        self.assertEqual(self.portsOf("eq 80"), ["80"])
        self.assertEqual(self.portsOf("neq 25"), ["1-24", "26-65535"])
        self.assertEqual(self.portsOf("lt 1024"), ["1-1023"])
        self.assertEqual(self.portsOf("gt 1023"), ["1024-65535"])
        self.assertEqual(self.portsOf("le 119"), ["1-119"])
        self.assertEqual(self.portsOf("ge 1024"), ["1024-65535"])

    def test_edges(self) -> None:
        """
        Ranges stop at 1 and 65535; an operator that matches every port
        leaves C{ports} out.
        """
        self.assertEqual(self.portsOf("neq 1"), ["2-65535"])
        self.assertEqual(self.portsOf("neq 65535"), ["1-65534"])
        self.assertEqual(self.portsOf("ge 0"), None)
        self.assertEqual(self.portsOf("gt 0"), None)
        self.assertEqual(self.portsOf("neq 0"), None)

    def test_serviceNames(self) -> None:
        """
        A service name is looked up as a TCP service on this host.
        """
        self.assertEqual(self.portsOf("eq telnet"), [str(tcpPort("telnet"))])
        smtp = tcpPort("smtp")
        self.assertEqual(self.portsOf("neq smtp"), [f"1-{smtp - 1}", f"{smtp + 1}-65535"])
        self.assertEqual(self.portsOf("le nntp"), [f"1-{tcpPort('nntp')}"])

    def test_unknownService(self) -> None:
        """
        A service this host does not know is reported: a permit is left
        out, a deny widened to every port.
        """
        permit = convertSockdConf("permit 10.0.0.0 255.0.0.0 eq gofer\n")
        self.assertEqual(rulesOf(permit), [])
        self.assertIn("service 'gofer' is unknown", permit.problems[0][1])
        deny = convertSockdConf("deny 10.0.0.0 255.0.0.0 eq gofer\n")
        self.assertEqual(onlyRule(deny), {"action": "deny", "clients": ["10.0.0.0/8"]})
        self.assertEqual(problemLines(deny), [1])

    def test_matchesNoPort(self) -> None:
        """
        An operator that matches no port (C{lt 1}) makes a rule that
        matches nothing: it is left out and reported.
        """
        conversion = convertSockdConf("deny 10.0.0.0 255.0.0.0 lt 1\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("lt 1 matches no port", conversion.problems[0][1])

    def test_portOutOfRange(self) -> None:
        """
        A port above 65535 made sockd ignore the line: so does the
        conversion, and says so.
        """
        conversion = convertSockdConf("permit 10.0.0.0 255.0.0.0 eq 70000\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("port 70000 is out of range", conversion.problems[0][1])
        self.assertIn("ignored", conversion.problems[0][1])

    def test_badOperator(self) -> None:
        """
        An unknown operator made sockd ignore the line.
        """
        conversion = convertSockdConf("permit 10.0.0.0 255.0.0.0 0.0.0.0 0.0.0.0 is 23\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("'is' is not a port operator", conversion.problems[0][1])

    def test_operatorWithoutDestination(self) -> None:
        """
        An operator right after the source pair applies to any destination,
        as in sockd.
        """
        rule = onlyRule(convertSockdConf("deny 10.0.0.0 255.0.0.0 eq 23\n"))
        self.assertEqual(rule, {"action": "deny", "clients": ["10.0.0.0/8"], "ports": ["23"]})

    def test_extraField(self) -> None:
        """
        A field sockd ignored (an operator without a port) is reported, and
        the rest converted as sockd read it.
        """
        conversion = convertSockdConf("permit 10.0.0.0 255.0.0.0 eq\n")
        self.assertEqual(
            onlyRule(conversion),
            {"action": "permit", "clients": ["10.0.0.0/8"], "commands": ["connect", "bind"]},
        )
        self.assertIn("extra field 'eq' is ignored", conversion.problems[0][1])


class SockdUserTests(SynchronousTestCase):
    """
    sockd.conf userlists and identd fields.
    """

    def test_userlist(self) -> None:
        """
        C{*=user1,user2} becomes C{users}.
        """
        rule = onlyRule(convertSockdConf("deny *=bonnie,clyde 10.0.0.0 255.0.0.0\n"))
        self.assertEqual(rule["users"], ["bonnie", "clyde"])

    def test_emptyUserlist(self) -> None:
        """
        An empty C{*=} matches every user, as in sockd.
        """
        rule = onlyRule(convertSockdConf("deny *= 10.0.0.0 255.0.0.0\n"))
        self.assertNotIn("users", rule)

    def test_userlistFile(self) -> None:
        """
        A userlist file is not read: a permit keeps the listed names, a deny
        covers every user, and both are reported.
        """
        permit = convertSockdConf("permit *=/etc/sockd.engineers,carol 10.2.0.0 255.255.0.0\n")
        self.assertEqual(rulesOf(permit)[0]["users"], ["carol"])
        self.assertIn("/etc/sockd.engineers is not read", permit.problems[0][1])
        deny = convertSockdConf("deny *=/etc/sockd.banned 10.2.0.0 255.255.0.0\n")
        self.assertNotIn("users", rulesOf(deny)[0])
        self.assertEqual(problemLines(deny), [1])

    def test_onlyUserlistFile(self) -> None:
        """
        A permit for the users of a file alone is left out.
        """
        conversion = convertSockdConf("permit *=/etc/sockd.engineers 10.2.0.0 255.255.0.0\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(problemLines(conversion), [1])

    def test_identdOnPermit(self) -> None:
        """
        C{?=I} and C{?=i} ask identd about one line, which rules cannot
        express: the permit is left out and reported.
        """
        for flag in ("I", "i"):
            conversion = convertSockdConf(f"permit ?={flag} *=alice 10.4.0.0 255.255.0.0\n")
            self.assertEqual(rulesOf(conversion), [])
            self.assertIn(f"?={flag} asks identd", conversion.problems[0][1])

    def test_noIdentd(self) -> None:
        """
        C{?=n} is socksgate's default, and converts exactly.
        """
        conversion = convertSockdConf("permit ?=n 10.5.0.0 255.255.0.0 gt 1023\n")
        self.assertEqual(rulesOf(conversion)[0]["ports"], ["1024-65535"])
        self.assertEqual(conversion.problems, ())

    def test_identdOnDeny(self) -> None:
        """
        sockd asked identd only about permits, so C{?=} on a deny converts
        exactly.
        """
        conversion = convertSockdConf("deny ?=I 10.4.0.0 255.255.0.0\n")
        self.assertEqual(onlyRule(conversion), {"action": "deny", "clients": ["10.4.0.0/16"]})
        self.assertEqual(conversion.problems, ())

    def test_badIdentdField(self) -> None:
        """
        A C{?=} letter other than I, i, n made sockd ignore the line.
        """
        conversion = convertSockdConf("permit ?=x 10.4.0.0 255.255.0.0\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("?=x", conversion.problems[0][1])


class SockdLineTests(SynchronousTestCase):
    """
    sockd.conf comments, shell commands, identd command lines, invalid
    lines and the output's layout.
    """

    def test_shellCommand(self) -> None:
        """
        A C{: shell_cmd} tail is kept as a comment above the rule, named in
        the rule's message, and not reported.
        """
        conversion = convertSockdConf("deny *=clyde 10.0.0.0 255.0.0.0 : /usr/ucb/mail -s 'no %u' root\n")
        self.assertIn("socksgate never runs: /usr/ucb/mail -s 'no %u' root", conversion.toml)
        self.assertEqual(rulesOf(conversion)[0]["message"], "sockd.conf line 1 (ran a shell command)")
        self.assertEqual(conversion.problems, ())

    def test_colonWithoutSpace(self) -> None:
        """
        The first C{:} starts the command even when it touches a field, and
        a C{#} inside the command is part of it.
        """
        conversion = convertSockdConf("deny 10.0.0.0 255.0.0.0:echo '#1' >> /tmp/log\n")
        self.assertEqual(rulesOf(conversion)[0]["clients"], ["10.0.0.0/8"])
        self.assertIn("never runs: echo '#1' >> /tmp/log", conversion.toml)

    def test_commentAfterRule(self) -> None:
        """
        A C{#} ends the fields of a rule.
        """
        conversion = convertSockdConf("permit 10.0.0.0 255.0.0.0 eq 80 # the web : for all\n")
        self.assertEqual(rulesOf(conversion)[0]["ports"], ["80"])
        self.assertEqual(conversion.problems, ())

    def test_blankAndComments(self) -> None:
        """
        Blank lines and plain comments are skipped: no rules, no problems,
        and the output still says what it was converted from.
        """
        conversion = convertSockdConf("# sockd.conf\n\n   \n# permit 10.0.0.0 255.0.0.0\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(conversion.problems, ())
        self.assertTrue(conversion.toml.startswith("# socksgate [[rule]] tables converted from"))
        self.assertIn("SOCKS4 sockd.conf", conversion.toml.splitlines()[0])

    def test_identdCommandLines(self) -> None:
        """
        C{#NO_IDENTD:} and C{#BAD_ID:} lines are kept as comments that
        explain CD 92 and CD 93; no C{[auth]} table is written.
        """
        conversion = convertSockdConf(
            "#NO_IDENTD: /usr/ucb/mail -s 'run identd on %A' root\n"
            "#BAD_ID: /usr/ucb/mail -s '%U is %u' root\n"
        )
        self.assertEqual(tomllib.loads(conversion.toml), {})
        self.assertEqual(conversion.problems, ())
        self.assertIn("# sockd.conf line 1: #NO_IDENTD: /usr/ucb/mail", conversion.toml)
        self.assertIn("CD 92", conversion.toml)
        self.assertIn("# sockd.conf line 2: #BAD_ID:", conversion.toml)
        self.assertIn("CD 93", conversion.toml)
        self.assertIn('ident = "require"', conversion.toml)

    def test_invalidLines(self) -> None:
        """
        Lines sockd ignored as invalid are left out and reported with their
        numbers.
        """
        conversion = convertSockdConf(
            "allow 10.0.0.0 255.0.0.0\n\npermit 10.0.0.0\n: /bin/true\npermit 10.0.0.0 255.0.0.0\n"
        )
        self.assertEqual(problemLines(conversion), [1, 3, 4])
        self.assertIn("'allow' is neither permit nor deny", conversion.problems[0][1])
        self.assertIn("no source address and mask", conversion.problems[1][1])
        self.assertIn("a shell command without a rule", conversion.problems[2][1])
        self.assertEqual([rule["message"] for rule in rulesOf(conversion)], ["sockd.conf line 5"])

    def test_quotesEachLine(self) -> None:
        """
        Each rule is preceded by a comment quoting its line and number.
        """
        conversion = convertSockdConf("\n\ndeny 10.0.0.0 255.0.0.0 eq 23\n")
        lines = conversion.toml.splitlines()
        header = lines.index("[[rule]]")
        self.assertEqual(lines[header - 1], "# sockd.conf line 3: deny 10.0.0.0 255.0.0.0 eq 23")

    def test_order(self) -> None:
        """
        Rules keep the order of their lines: first match wins in both.
        """
        conversion = convertSockdConf(
            "deny 10.0.0.0 255.0.0.0 eq 23\npermit 10.0.0.0 255.0.0.0\ndeny 0.0.0.0 0.0.0.0\n"
        )
        self.assertEqual(
            [(rule["action"], rule["message"]) for rule in rulesOf(conversion)],
            [
                ("deny", "sockd.conf line 1"),
                ("permit", "sockd.conf line 2"),
                ("deny", "sockd.conf line 3"),
            ],
        )

    def test_awkwardCharacters(self) -> None:
        """
        Quotes, backslashes and control characters in user names and
        comments still make valid TOML, with the names intact.
        """
        conversion = convertSockdConf('deny *=a"b,c\\d 10.0.0.0 255.0.0.0 : echo \x07 \x7f\n')
        self.assertEqual(rulesOf(conversion)[0]["users"], ['a"b', "c\\d"])

    def test_sample(self) -> None:
        """
        The sample sockd.conf converts to valid TOML with a rule for each
        rule line, and reports exactly its unconvertible lines.
        """
        conversion = convertSockdConf(readSample(SOCKD_SAMPLE))
        self.assertEqual(
            [rule["message"] for rule in rulesOf(conversion)],
            [
                "sockd.conf line 7 (ran a shell command)",
                "sockd.conf line 9",
                "sockd.conf line 11",
                "sockd.conf line 13",
                "sockd.conf line 15",
                "sockd.conf line 17",
                "sockd.conf line 21",
                "sockd.conf line 23 (ran a shell command)",
                "sockd.conf line 24",
                "sockd.conf line 26",
                "sockd.conf line 28",
            ],
        )
        self.assertEqual(problemLines(conversion), [15, 17, 19, 30, 32])


class Socks5HostTests(SynchronousTestCase):
    """
    socks5.conf host patterns.
    """

    def ruleFor(self, source: str, destination: str, action: str = "deny") -> dict[str, Any]:
        """
        The one rule of a line with these host patterns.
        """
        return onlyRule(convertSocks5Conf(f"{action} - - {source} {destination} - -\n"))

    def test_any(self) -> None:
        """
        C{-} matches any host: the keys are left out.
        """
        self.assertEqual(self.ruleFor("-", "-"), {"action": "deny"})

    def test_addressAndMask(self) -> None:
        """
        C{a.b.c.d/m.m.m.m} becomes a CIDR.
        """
        rule = self.ruleFor("10.66.0.0/255.255.0.0", "192.0.2.0/255.255.255.0")
        self.assertEqual(rule["clients"], ["10.66.0.0/16"])
        self.assertEqual(rule["destinations"], ["192.0.2.0/24"])

    def test_partialAddress(self) -> None:
        """
        C{n1.}, C{n1.n2.} and C{n1.n2.n3.} are networks of 8, 16 and 24
        bits.
        """
        self.assertEqual(self.ruleFor("10.", "-")["clients"], ["10.0.0.0/8"])
        self.assertEqual(self.ruleFor("10.2.", "-")["clients"], ["10.2.0.0/16"])
        self.assertEqual(self.ruleFor("10.2.3.", "-")["clients"], ["10.2.3.0/24"])

    def test_address(self) -> None:
        """
        A plain address is that host.
        """
        self.assertEqual(self.ruleFor("-", "198.51.100.7")["destinations"], ["198.51.100.7"])

    def test_destinationNames(self) -> None:
        """
        C{.domain} and host names become destinations, in lower case.
        """
        self.assertEqual(self.ruleFor("-", ".Example.COM")["destinations"], [".example.com"])
        self.assertEqual(self.ruleFor("-", "News.example.com")["destinations"], ["news.example.com"])

    def test_domainPermitExcludesTheDomain(self) -> None:
        """
        socks5.conf's C{.example.com} matched the names below example.com,
        not example.com itself: a permit is preceded by a deny rule for the
        bare name with the permit's other keys, and the line is reported.
        The result permits C{www.example.com} and refuses C{example.com}.
        """
        line = "permit - c 127.0.1.0/255.255.255.0 .example.com - (1023,65535]\n"
        conversion = convertSocks5Conf(line)
        guard, permit = rulesOf(conversion)
        common = {"clients": ["127.0.1.0/24"], "ports": ["1024-65535"], "commands": ["connect"]}
        self.assertEqual(
            guard, {"action": "deny", "destinations": ["example.com"], **common, "message": guard["message"]}
        )
        self.assertEqual(
            permit,
            {"action": "permit", "destinations": [".example.com"], **common, "message": permit["message"]},
        )
        self.assertEqual(problemLines(conversion), [1])
        self.assertIn("not example.com itself", conversion.problems[0][1])
        policy = parseConfig(conversion.toml, "converted.toml").policy
        below = request("127.0.1.5", "www.example.com", 8080, version="5")
        bare = request("127.0.1.5", "example.com", 8080, version="5")
        self.assertEqual(policy.decide(below).action, "permit")
        self.assertEqual((policy.decide(bare).action, policy.decide(bare).rule), ("deny", 1))

    def test_domainDenyWidened(self) -> None:
        """
        A deny of C{.example.com} also denies C{example.com} in socksgate:
        wider than the line, so reported as widened.
        """
        conversion = convertSocks5Conf("deny - - - .example.com\n")
        self.assertEqual(onlyRule(conversion), {"action": "deny", "destinations": [".example.com"]})
        self.assertIn("the deny rule is widened", conversion.problems[0][1])

    def test_clientName(self) -> None:
        """
        Clients named by host or domain name cannot be expressed: a permit
        is left out, a deny widened to every client.
        """
        permit = convertSocks5Conf("permit - c .example.net - - -\n")
        self.assertEqual(rulesOf(permit), [])
        self.assertIn("client '.example.net' is a name", permit.problems[0][1])
        deny = convertSocks5Conf("deny - c host.example.net - - -\n")
        self.assertNotIn("clients", rulesOf(deny)[0])
        self.assertEqual(problemLines(deny), [1])

    def test_nonContiguousMask(self) -> None:
        """
        A non-contiguous mask is reported; the permit is left out.
        """
        conversion = convertSocks5Conf("permit - c 10.5.0.0/255.0.255.0 - - -\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("255.0.255.0 is not contiguous", conversion.problems[0][1])

    def test_invalidHost(self) -> None:
        """
        A host pattern that is none of the forms is an invalid line.
        """
        conversion = convertSocks5Conf("permit - c 10.0.0.0/24 - - -\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("'10.0.0.0/24' is not address/mask", conversion.problems[0][1])


class Socks5PortTests(SynchronousTestCase):
    """
    socks5.conf port patterns.
    """

    def portsOf(self, pattern: str) -> list[str] | None:
        """
        The C{ports} of a permit whose destination ports are C{pattern}.
        """
        return onlyRule(convertSocks5Conf(f"permit - - - - - {pattern}\n")).get("ports")

    def test_forms(self) -> None:
        """
        C{-}, a number, a service name, and intervals with open and closed
        ends.
        """
        self.assertIsNone(self.portsOf("-"))
        self.assertEqual(self.portsOf("443"), ["443"])
        self.assertEqual(self.portsOf("http"), [str(tcpPort("http"))])
        self.assertEqual(self.portsOf("[1024,65535]"), ["1024-65535"])
        self.assertEqual(self.portsOf("(1023,65535]"), ["1024-65535"])
        self.assertEqual(self.portsOf("[1,1024)"), ["1-1023"])
        self.assertEqual(self.portsOf("(0,1024)"), ["1-1023"])
        self.assertEqual(self.portsOf("[ftp,telnet]"), [f"{tcpPort('ftp')}-{tcpPort('telnet')}"])
        self.assertEqual(self.portsOf("[1000-1010]"), ["1000-1010"])
        self.assertIsNone(self.portsOf("[0,65535]"))

    def test_emptyInterval(self) -> None:
        """
        An interval with no port in it matches nothing: left out, reported.
        """
        conversion = convertSocks5Conf("permit - - - - - (5,6)\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("matches no port", conversion.problems[0][1])

    def test_unknownService(self) -> None:
        """
        An unknown service name is reported; the permit left out.
        """
        conversion = convertSocks5Conf("permit - - - - - gofer\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("service 'gofer' is unknown", conversion.problems[0][1])

    def test_invalidInterval(self) -> None:
        """
        A malformed interval is an invalid line.
        """
        conversion = convertSocks5Conf("permit - - - - - [1,\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("is not a port range", conversion.problems[0][1])

    def test_sourcePorts(self) -> None:
        """
        Source ports cannot be expressed: C{-} or every port is fine, a
        restriction leaves a permit out and widens a deny.
        """
        self.assertEqual(convertSocks5Conf("permit - - - - [0,65535] -\n").problems, ())
        permit = convertSocks5Conf("permit - c 10.4.0.0/255.255.0.0 - [1024,65535] 22\n")
        self.assertEqual(rulesOf(permit), [])
        self.assertIn("source ports [1024,65535]", permit.problems[0][1])
        deny = convertSocks5Conf("deny - - 10.4.0.0/255.255.0.0 - (1023,65535] 22\n")
        self.assertEqual(onlyRule(deny), {"action": "deny", "clients": ["10.4.0.0/16"], "ports": ["22"]})
        self.assertEqual(problemLines(deny), [1])


class Socks5MethodTests(SynchronousTestCase):
    """
    socks5.conf commands, authentication methods and user lists.
    """

    def test_commands(self) -> None:
        """
        Command letters become C{commands}; C{-} and C{cbu} leave it out.
        """
        cases = {
            "-": None,
            "cbu": None,
            "c": ["connect"],
            "cb": ["connect", "bind"],
            "u": ["udp"],
            "bu": ["bind", "udp"],
        }
        for letters, expected in cases.items():
            rule = onlyRule(convertSocks5Conf(f"permit - {letters} - -\n"))
            self.assertEqual(rule.get("commands"), expected, letters)

    def test_pingAndTraceroute(self) -> None:
        """
        C{p} and C{t} are reported; a rule with no other command matches
        nothing socksgate serves and is left out.
        """
        conversion = convertSocks5Conf("permit - ct - -\ndeny - pt - -\n")
        self.assertEqual([rule["commands"] for rule in rulesOf(conversion)], [["connect"]])
        self.assertEqual(problemLines(conversion), [1, 2])
        self.assertIn("traceroute is not supported", conversion.problems[0][1])
        self.assertIn("ping and traceroute are not supported", conversion.problems[1][1])
        self.assertIn("left out", conversion.problems[1][1])

    def test_exactMethods(self) -> None:
        """
        Method sets that rules can express convert without problems.
        """
        cases = [
            ("-", "-", {}),
            ("nuk", "-", {}),
            ("n", "-", {"users": ["-"]}),
            ("uk", "-", {"users": ["*"], "versions": ["5"]}),
            ("-", "alice,bob", {"users": ["alice", "bob"]}),
            ("uk", "alice", {"users": ["alice"], "versions": ["5"]}),
        ]
        for methods, users, expected in cases:
            conversion = convertSocks5Conf(f"permit {methods} - - - - - {users}\n")
            rule = onlyRule(conversion)
            self.assertEqual({key: rule[key] for key in ("users", "versions") if key in rule}, expected)
            self.assertEqual(conversion.problems, ())

    def test_usernameOrGSSAPI(self) -> None:
        """
        Rules match the user, not the method that authenticated it: when
        the auth lines offer both methods (or there is no auth line, so
        socks5 offered every method), C{u} alone leaves a permit out and
        widens a deny to any authenticated user.
        """
        for auth in ("", "auth - - uk\n"):
            permit = convertSocks5Conf(auth + "permit u c - mail.example.com - smtp\n")
            self.assertEqual(rulesOf(permit), [])
            self.assertIn(
                "not whether a password or GSS-API authenticated it, and the auth lines offer both",
                permit.problems[-1][1],
            )
        deny = onlyRule(convertSocks5Conf("deny k - - -\n"))
        self.assertEqual(deny, {"action": "deny", "users": ["*"], "versions": ["5"]})

    def test_oneOfferedMethod(self) -> None:
        """
        When the auth lines offer username/password and not GSS-API (or the
        reverse), C{permit u} and C{permit k} lines mean any authenticated
        user: they convert exactly to C{users = ["*"]}, C{versions = ["5"]}.
        A method that no auth line offers matches no client: left out.
        """
        for auth, methods in (("auth 10.0.0.0/255.0.0.0 - n\nauth - - u\n", "u"), ("auth - - k\n", "k")):
            conversion = convertSocks5Conf(auth + f"permit {methods} c - mail.example.com - 25\n")
            self.assertEqual(
                onlyRule(conversion),
                {
                    "action": "permit",
                    "destinations": ["mail.example.com"],
                    "ports": ["25"],
                    "commands": ["connect"],
                    "users": ["*"],
                    "versions": ["5"],
                },
            )
            self.assertNotIn(len(auth.splitlines()) + 1, problemLines(conversion))
        unused = convertSocks5Conf("auth - - u\npermit k c - - - -\n")
        self.assertEqual(rulesOf(unused), [])
        self.assertIn("no auth line offers them", unused.problems[-1][1])

    def test_noneOrOneMethod(self) -> None:
        """
        C{nu} narrows a permit to anonymous clients and widens a deny to
        everyone.
        """
        permit = convertSocks5Conf("permit nu - - -\n")
        self.assertEqual(onlyRule(permit), {"action": "permit", "users": ["-"]})
        self.assertEqual(problemLines(permit), [1])
        self.assertEqual(onlyRule(convertSocks5Conf("deny nk - - -\n")), {"action": "deny"})

    def test_namesWithoutAuthentication(self) -> None:
        """
        A user list with method C{n} alone names users who cannot have
        authenticated: the permit is left out.
        """
        conversion = convertSocks5Conf("permit n - - - - - alice\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertIn("anonymous clients have no name", conversion.problems[0][1])

    def test_invalidLetters(self) -> None:
        """
        Letters outside a field's alphabet make an invalid line.
        """
        conversion = convertSocks5Conf("permit x - - -\npermit - cz - -\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(problemLines(conversion), [1, 2])
        self.assertIn("auth-methods 'x'", conversion.problems[0][1])
        self.assertIn("commands 'cz'", conversion.problems[1][1])


class Socks5LineTests(SynchronousTestCase):
    """
    socks5.conf ban, auth and other lines, and the layout of the output.
    """

    def test_banFirst(self) -> None:
        """
        C{ban} lines become deny rules placed before every other rule.
        """
        conversion = convertSocks5Conf("permit - - - -\nban 172.20.0.0/255.255.0.0 -\nban 10.9.9.9\n")
        self.assertEqual(
            [(rule["action"], rule.get("clients"), rule["message"]) for rule in rulesOf(conversion)],
            [
                ("deny", ["172.20.0.0/16"], "socks5.conf line 2 (ban)"),
                ("deny", ["10.9.9.9"], "socks5.conf line 3 (ban)"),
                ("permit", None, "socks5.conf line 1"),
            ],
        )
        self.assertEqual(conversion.problems, ())

    def test_banSourcePorts(self) -> None:
        """
        A ban of some source ports is reported and widened to every port.
        """
        conversion = convertSocks5Conf("ban 192.168.50. [0,1023]\n")
        self.assertEqual(onlyRule(conversion), {"action": "deny", "clients": ["192.168.50.0/24"]})
        self.assertEqual(problemLines(conversion), [1])

    def test_authLines(self) -> None:
        """
        C{auth} lines are kept as comments and reported, with a message that
        says what socksgate has instead (its C{[auth] methods}, GSS-API
        among them) and why the table is written by hand; no C{[auth]}
        table is written.
        """
        conversion = convertSocks5Conf("auth 10.0.0.0/255.0.0.0 - n\nauth - - u\n")
        self.assertEqual(tomllib.loads(conversion.toml), {})
        self.assertEqual(problemLines(conversion), [1, 2])
        self.assertIn("# socks5.conf line 2: auth - - u", conversion.toml)
        message = conversion.problems[0][1]
        self.assertIn('"gssapi"', message)
        self.assertIn("write the [auth] table by hand", message)
        self.assertNotIn("refuses", message)

    def test_noOutdatedMessages(self) -> None:
        """
        No message of either converter says that socksgate refuses
        C{[auth]} tables, which it reads, or lacks GSS-API.
        """
        texts = [
            readSample(SOCKS5_SAMPLE),
            readSample(SOCKD_SAMPLE),
            "permit ?=I 10.0.0.0 255.0.0.0\nproxy - - gw.example.net:1080\npermit k - - -\n",
        ]
        for text in texts:
            for conversion in (convertSocks5Conf(text), convertSockdConf(text)):
                for _, message in conversion.problems:
                    self.assertNotIn("refuses [auth]", message)
                    self.assertNotIn("cannot tell username/password from GSS-API", message)

    def test_otherLines(self) -> None:
        """
        Server variables, interfaces and proxy chaining are reported, each
        with its line.
        """
        text = (
            "set SOCKS5_NOIDENT\ninterface 10. - eth0\nroute 10. - eth0\nproxy - - gw:1080\n"
            "noproxy 10. -\nsocks4 - - gw:1080\nsocks5 .partner.example - gw:1080\n"
        )
        conversion = convertSocks5Conf(text)
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(problemLines(conversion), [1, 2, 3, 4, 5, 6, 7])
        for (_, message), keyword in zip(conversion.problems, text.split("\n"), strict=False):
            self.assertTrue(message.startswith(f"{keyword.split()[0]} lines are not converted"), message)

    def test_invalidLines(self) -> None:
        """
        Unknown keywords and short lines are reported and left out.
        """
        conversion = convertSocks5Conf("fetch - - - -\npermit - -\n# permit - - - -\nban\n")
        self.assertEqual(rulesOf(conversion), [])
        self.assertEqual(problemLines(conversion), [1, 2, 4])

    def test_sample(self) -> None:
        """
        The sample socks5.conf converts to valid TOML, bans first, and
        reports exactly its unconvertible lines.
        """
        conversion = convertSocks5Conf(readSample(SOCKS5_SAMPLE))
        self.assertEqual(
            [rule["message"] for rule in rulesOf(conversion)],
            [
                "socks5.conf line 6 (ban)",
                "socks5.conf line 8 (ban)",
                "socks5.conf line 23",
                "socks5.conf line 24",
                "socks5.conf line 25",
                "socks5.conf line 26",
                "socks5.conf line 27",
                "socks5.conf line 28",
                "socks5.conf line 29 (guard)",
                "socks5.conf line 29",
                "socks5.conf line 30",
                "socks5.conf line 31",
                "socks5.conf line 32",
                "socks5.conf line 37",
                "socks5.conf line 38",
                "socks5.conf line 39",
            ],
        )
        self.assertEqual(
            problemLines(conversion), [8, 11, 12, 15, 16, 17, 18, 19, 20, 23, 29, 32, 33, 34, 35, 36, 40]
        )
        self.assertTrue(
            conversion.toml.startswith("# socksgate [[rule]] tables converted from an NEC SOCKS5")
        )


class DetectFormatTests(SynchronousTestCase):
    """
    L{detectFormat} tells the two formats apart.
    """

    def test_samples(self) -> None:
        """
        Each sample is recognised by its content, whatever its name.
        """
        self.assertEqual(detectFormat(readSample(SOCKD_SAMPLE), "rules.txt"), SOCKD)
        self.assertEqual(detectFormat(readSample(SOCKS5_SAMPLE), "rules.txt"), SOCKS5)
        self.assertEqual(detectFormat(readSample(SOCKS5_SAMPLE), "/etc/sockd.conf"), SOCKS5)

    def test_singleLines(self) -> None:
        """
        One rule line is enough.
        """
        self.assertEqual(detectFormat("permit 10.0.0.0 255.0.0.0\n"), SOCKD)
        self.assertEqual(detectFormat("deny *=clyde 10.0.0.0 255.0.0.0\n"), SOCKD)
        self.assertEqual(detectFormat("#NO_IDENTD: /bin/true\n"), SOCKD)
        self.assertEqual(detectFormat("permit - - - -\n"), SOCKS5)
        self.assertEqual(detectFormat("ban 10. -\n"), SOCKS5)

    def test_nameBreaksTies(self) -> None:
        """
        A file without rules is recognised by its name, or not at all.
        """
        self.assertEqual(detectFormat("# nothing\n", "/etc/sockd.conf"), SOCKD)
        self.assertEqual(detectFormat("", "/etc/socks5.conf"), SOCKS5)
        self.assertIsNone(detectFormat("# nothing\n", "/etc/rules"))

    def test_neither(self) -> None:
        """
        Dante's sockd.conf is Dante's format, whatever its name.
        """
        dante = (
            "logoutput: syslog\ninternal: eth0 port = 1080\n"
            "client pass {\n from: 0.0.0.0/0 to: 0.0.0.0/0\n}\n"
        )
        self.assertEqual(detectFormat(dante, "/etc/sockd.conf"), DANTE)
        self.assertIsNone(detectFormat("hello world\n", "/etc/sockd.conf"))


class RunTests(SynchronousTestCase):
    """
    L{run} writes the TOML and the problems and returns the exit status.
    """

    def write(self, name: str, content: bytes) -> str:
        """
        Write C{content} to a new file called C{name}.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, name)
        with open(path, "wb") as stream:
            stream.write(content)
        return path

    def runOn(self, path: str) -> tuple[int, str, str]:
        """
        Run the command on C{path}: its status, standard output and error.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        return run(path, stdout, stderr), stdout.getvalue(), stderr.getvalue()

    def test_problems(self) -> None:
        """
        With lines that cannot be converted, the status is 1, the TOML is
        still written, and each problem is a C{PATH:LINE: message} line.
        """
        status, out, err = self.runOn(SOCKD_SAMPLE)
        self.assertEqual(status, 1)
        self.assertEqual(len(tomllib.loads(out)["rule"]), 11)
        lines = err.splitlines()
        self.assertEqual(
            [line.split(": ", 1)[0] for line in lines], [f"{SOCKD_SAMPLE}:{n}" for n in (15, 17, 19, 30, 32)]
        )

    def test_clean(self) -> None:
        """
        A file converted exactly gives status 0 and nothing on standard
        error.
        """
        path = self.write("sockd.conf", b"deny 10.0.0.0 255.0.0.0 eq 23\npermit 10.0.0.0 255.0.0.0\n")
        status, out, err = self.runOn(path)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual([rule["action"] for rule in tomllib.loads(out)["rule"]], ["deny", "permit"])

    def test_latin1(self) -> None:
        """
        A file that is not UTF-8 is read as Latin-1.
        """
        path = self.write("socks5.conf", "# für alle\npermit - - - - - - jürgen\n".encode("latin-1"))
        status, out, err = self.runOn(path)
        self.assertEqual(status, 0)
        self.assertEqual(tomllib.loads(out)["rule"][0]["users"], ["jürgen"])

    def test_unreadable(self) -> None:
        """
        A file that cannot be read gives status 2 and a message.
        """
        path = os.path.join(self.mktemp(), "sockd.conf")
        status, out, err = self.runOn(path)
        self.assertEqual((status, out), (2, ""))
        self.assertIn(f"{path}: cannot be read", err)

    def test_unrecognised(self) -> None:
        """
        A file in none of the formats gives status 2 and a message.
        """
        path = self.write("sockd.conf", b"hello world\n")
        status, out, err = self.runOn(path)
        self.assertEqual((status, out), (2, ""))
        self.assertIn("not a SOCKS4 sockd.conf, an NEC socks5.conf or a Dante sockd.conf", err)


class CommandTests(SynchronousTestCase):
    """
    The converter as a command, in a fresh interpreter.
    """

    def command(self, path: str) -> subprocess.CompletedProcess[str]:
        """
        Run the command on C{path}, with this repository's socksgate.
        """
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, environment.get("PYTHONPATH")]))
        return subprocess.run(
            COMMAND + [path], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
        )

    def test_sockdSample(self) -> None:
        """
        The sample sockd.conf: status 1, TOML on standard output, the
        unconvertible lines with their numbers on standard error.
        """
        result = self.command(SOCKD_SAMPLE)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(tomllib.loads(result.stdout)["rule"]), 11)
        for number in (15, 17, 19, 30, 32):
            self.assertIn(f"{SOCKD_SAMPLE}:{number}: ", result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 5)

    def test_socks5Sample(self) -> None:
        """
        The sample socks5.conf: status 1, TOML, and its problems by line.
        """
        result = self.command(SOCKS5_SAMPLE)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(tomllib.loads(result.stdout)["rule"]), 16)
        self.assertIn(f"{SOCKS5_SAMPLE}:11: auth lines", result.stderr)
        self.assertIn(f"{SOCKS5_SAMPLE}:33: commands p: ping", result.stderr)

    def test_clean(self) -> None:
        """
        A file converted exactly: status 0, nothing on standard error.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write("ban 10.9.9.9 -\npermit - c 10.0.0.0/255.0.0.0 - - http\n")
        result = self.command(path)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertEqual(len(tomllib.loads(result.stdout)["rule"]), 2)

    def test_missing(self) -> None:
        """
        A missing file: status 2.
        """
        result = self.command(os.path.join(os.path.abspath(self.mktemp()), "sockd.conf"))
        self.assertEqual((result.returncode, result.stdout), (2, ""))
        self.assertIn("cannot be read", result.stderr)


#: The address every host name of the decision tests resolves to.
RESOLVED = "192.0.2.80"


def request(
    client: str,
    destination: str,
    port: int,
    user: str | None = None,
    command: str = "connect",
    version: str = "4",
    auth: str = "none",
    clientPort: int = 40000,
) -> AccessRequest:
    """
    An access request; C{destination} is an address, or a host name taken
    as resolved to L{RESOLVED}, an address no sample rule names.
    """
    try:
        address, name = ip_address(destination), None
    except ValueError:
        address, name = ip_address(RESOLVED), destination
    return AccessRequest(
        client=ip_address(client),
        clientPort=clientPort,
        listener="tcp:1080",
        version=version,
        command=command,
        destinationName=name,
        destinationAddress=address,
        port=port,
        user=user,
        auth=auth,
    )


class DecidesTheSameTests(SynchronousTestCase):
    """
    The converted samples load with socksgate's loader and decide requests
    as the original servers did (and, where a line could not be converted
    exactly, fail closed).
    """

    def assertDecisions(
        self, conversion: Conversion, table: list[tuple[AccessRequest, str, int | None]]
    ) -> None:
        """
        The converted configuration decides each request of C{table} with
        the expected action and rule number.
        """
        policy = parseConfig(conversion.toml, "converted.toml").policy
        for each, action, rule in table:
            decision = policy.decide(each)
            self.assertEqual((decision.action, decision.rule), (action, rule), each)

    def test_sockd(self) -> None:
        """
        The sample sockd.conf, rule by rule, for SOCKS4 CONNECT and BIND.
        """
        web = "93.184.216.34"
        table = [
            # line 7: the troublemakers, whatever they ask for
            (request("10.9.9.9", web, 80, "clyde"), "deny", 1),
            # line 9: the payroll host's telnet, from inside and from the lab
            (request("10.9.9.9", "192.0.2.10", 23, "dave"), "deny", 2),
            (request("192.168.7.5", "192.0.2.10", 23, "lab"), "deny", 2),
            # line 11: the lab and the test network; the lab is not inside
            (request("192.168.7.5", "198.51.100.7", 8080, "lab"), "permit", 3),
            (request("192.168.7.5", web, 80, "lab"), "deny", None),
            # line 13: operators anywhere but SMTP; SMTP falls through to line 26
            (request("10.1.2.3", web, 22, "ops"), "permit", 4),
            (request("10.1.2.3", web, 25, "ops"), "deny", None),
            (request("10.1.2.3", "172.16.1.1", 25, "root"), "permit", 10),
            # line 15: carol on unprivileged ports
            (request("10.2.0.5", web, 8080, "carol"), "permit", 5),
            (request("10.2.0.5", web, 22, "carol"), "deny", None),
            # line 17: the print servers
            (request("10.3.0.250", web, 80, "lp"), "deny", 6),
            # line 21: the build farm above 1023
            (request("10.5.1.1", web, 5000, "build"), "permit", 7),
            (request("10.5.1.1", web, 22, "build"), "deny", None),
            # lines 23 and 24: the web for everyone inside, with or without a user id
            (request("10.7.0.1", web, 80, "eve"), "permit", 8),
            (request("10.7.0.1", web, 80), "permit", 8),
            (request("10.7.0.1", web, 443, "eve"), "permit", 9),
            # line 26: up to nntp at the partner network
            (request("10.7.0.1", "172.31.255.255", 119, "eve"), "permit", 10),
            (request("10.7.0.1", "172.32.0.1", 119, "eve"), "deny", None),
            # line 28: the DMZ's privileged ports, CONNECT and BIND
            (request("10.7.0.1", "203.0.113.9", 1023, "eve"), "permit", 11),
            (request("10.7.0.1", "203.0.113.9", 1024, "eve"), "deny", None),
            (request("10.7.0.1", "203.0.113.9", 1000, "eve", command="bind"), "permit", 11),
            # line 30: sockd could not read "gofer" either
            (request("10.6.0.1", web, 70, "eve"), "deny", None),
            # sockd served no UDP
            (request("10.7.0.1", web, 80, command="udp", version="5"), "deny", None),
            # outside clients match no line
            (request("203.0.113.50", web, 80, "mallory"), "deny", None),
        ]
        self.assertDecisions(convertSockdConf(readSample(SOCKD_SAMPLE)), table)

    def test_sockdFailsClosed(self) -> None:
        """
        Where the sample sockd.conf could not be converted exactly, the
        conversion refuses what sockd permitted, never the reverse.
        """
        web = "93.184.216.34"
        table = [
            # sockd permitted dave if /etc/sockd.engineers listed him (line 15)
            (request("10.2.0.5", web, 8080, "dave"), "deny", None),
            # sockd permitted 10.3.1.7 by line 23: line 17 denied only the .250 hosts
            (request("10.3.1.7", web, 80, "eve"), "deny", 6),
            # sockd permitted alice after identd (line 19); now only later lines apply
            (request("10.4.0.1", web, 22, "alice"), "deny", None),
            (request("10.4.0.1", web, 80, "alice"), "permit", 8),
        ]
        self.assertDecisions(convertSockdConf(readSample(SOCKD_SAMPLE)), table)

    def test_socks5(self) -> None:
        """
        The sample socks5.conf, rule by rule, for SOCKS5 and SOCKS4.
        """
        web = "93.184.216.34"
        table = [
            # line 6: the guest network is banned
            (request("172.20.1.1", web, 80, version="5"), "deny", 1),
            # line 23: trackers, for everyone
            (request("10.0.0.5", "www.tracker.example", 443, version="5"), "deny", 3),
            # line 24: the quarantined subnet
            (request("10.66.1.1", web, 80, version="5"), "deny", 4),
            # line 25: anonymous inside clients, CONNECT and BIND above 1023
            (request("10.0.0.5", web, 8080, version="5"), "permit", 5),
            (request("10.0.0.5", web, 2000, command="bind", version="5"), "permit", 5),
            (request("10.0.0.5", web, 5353, command="udp", version="5"), "deny", None),
            # lines 26 and 27: the web
            (request("10.0.0.5", web, 80, version="5"), "permit", 6),
            (request("10.0.0.5", web, 443, version="5"), "permit", 7),
            # line 38: no BIND below 1024 for anyone the lines above left
            (request("10.0.0.5", web, 80, command="bind", version="5"), "deny", 15),
            # line 28: the news server, by name
            (request("10.0.0.5", "news.example.com", 119, version="5"), "permit", 8),
            (request("10.0.0.5", "mail.example.com", 119, version="5"), "deny", None),
            # line 29: alice and bob, authenticated, anywhere in example.com
            (request("8.8.8.8", "www.example.com", 22, "alice", version="5", auth="userpass"), "permit", 10),
            (request("8.8.8.8", "www.example.com", 22, "carol", version="5", auth="userpass"), "deny", None),
            # ... but not example.com itself: the guard before it refuses
            (request("8.8.8.8", "example.com", 22, "alice", version="5", auth="userpass"), "deny", 9),
            (request("10.0.0.5", "www.example.com", 8080, "bob", version="5", auth="gssapi"), "permit", 10),
            # line 30: UDP below 1024 from 10.1
            (request("10.1.0.9", "192.0.2.53", 53, command="udp", version="5"), "permit", 11),
            # line 31: 10.2 on unprivileged ports, whoever they are
            (request("10.2.0.9", web, 5000, "dave", version="5", auth="userpass"), "permit", 12),
            # line 32: 10.3 on privileged ports; line 38 refuses a BIND there
            (request("10.3.0.9", web, 22, version="5"), "permit", 13),
            (request("10.3.0.9", web, 22, command="bind", version="5"), "deny", 15),
            # line 37: any username/password user to mail.example.com's SMTP (auth lines offer no GSS-API)
            (
                request("10.9.0.1", "mail.example.com", 25, "carol", version="5", auth="userpass"),
                "permit",
                14,
            ),
            # line 39: authenticated users to one host; a SOCKS4 claim is no authentication
            (request("8.8.8.8", "198.51.100.7", 22, "alice", version="5", auth="userpass"), "permit", 16),
            (request("8.8.8.8", "198.51.100.7", 22, "alice", version="4"), "deny", None),
            (request("8.8.8.8", "198.51.100.7", 22, version="5"), "deny", None),
        ]
        self.assertDecisions(convertSocks5Conf(readSample(SOCKS5_SAMPLE)), table)

    def test_socks5FailsClosed(self) -> None:
        """
        Where the sample socks5.conf could not be converted exactly, the
        conversion refuses what socks5 permitted, never the reverse.
        """
        table = [
            # socks5 banned 192.168.50.x on source ports up to 1023 only (line 8)
            (
                request("192.168.50.9", "www.example.com", 443, "alice", version="5", auth="userpass"),
                "deny",
                2,
            ),
            # socks5 permitted 10.4 from unprivileged source ports to port 22 (line 34)
            (request("10.4.0.1", "93.184.216.34", 22, version="5", clientPort=2000), "deny", None),
        ]
        self.assertDecisions(convertSocks5Conf(readSample(SOCKS5_SAMPLE)), table)


class ConsoleCommandTests(SynchronousTestCase):
    """
    C{socksgate convert FILE} as administrators run it: the installed
    console script.
    """

    def test_sockdConf(self) -> None:
        """
        The console command converts the sample sockd.conf: TOML that loads
        on standard output, the unconvertible lines with their numbers on
        standard error, exit status 1.
        """
        script = os.path.join(os.path.dirname(sys.executable), "socksgate")
        path = os.path.join(DATA, "sockd.conf")
        done = subprocess.run([script, "convert", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1, done.stderr)
        config = parseConfig(done.stdout, "converted.toml")
        self.assertGreater(len(config.rules), 10)
        self.assertIn(f"{path}:17: mask 255.255.0.255 is not contiguous", done.stderr)
        self.assertNotIn("Traceback", done.stderr)

    def test_missingFile(self) -> None:
        """
        A file that cannot be read: exit 2 and a message, no traceback.
        """
        script = os.path.join(os.path.dirname(sys.executable), "socksgate")
        done = subprocess.run([script, "convert", "/nonexistent/sockd.conf"], capture_output=True, text=True)
        self.assertEqual(done.returncode, 2)
        self.assertIn("/nonexistent/sockd.conf", done.stderr)
        self.assertNotIn("Traceback", done.stderr)
