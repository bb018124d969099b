"""
Tests for L{socksgate.scripts.convert._detect}: the table of formats that
C{socksgate convert} reads, and how a file's format is chosen from it, with
made-up formats beside the real ones (so that another format is one more
entry in the table), and the votes of the real formats' own lines.

L{tests.test_convert} checks the real formats' detection on whole files.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from socksgate.scripts.convert import SOCKD, SOCKS5, Conversion, convertSockdConf, convertSocks5Conf
from socksgate.scripts.convert._dante import DANTE as DANTED
from socksgate.scripts.convert._dante import convertDanteConf, isDanteLine
from socksgate.scripts.convert._detect import FORMATS, SourceFormat, detectFormat, detectSourceFormat
from socksgate.scripts.convert._sockd import isSockdLine
from socksgate.scripts.convert._socks5 import isSocks5Line


def convertNothing(text: str) -> Conversion:
    """
    A converter for the made-up formats: no rules, no problems.
    """
    return Conversion("", ())


#: A made-up third format, whose own lines start with C{dante}, and whose
#: files are called C{sockd.conf}, as the SOCKS4 format's are.
DANTE = SourceFormat("dante", "sockd.conf", lambda line: line.startswith("dante"), convertNothing)

#: A made-up format that claims every line starting with C{permit}.
GREEDY = SourceFormat("greedy", "greedy.conf", lambda line: line.startswith("permit"), convertNothing)


class TableTests(SynchronousTestCase):
    """
    L{FORMATS} holds the formats the command reads.
    """

    def test_realFormats(self) -> None:
        """
        The table has the SOCKS4 C{sockd.conf}, the NEC C{socks5.conf} and
        then Dante's C{danted.conf}, each with its file name, converter and
        own lines.
        """
        self.assertEqual(
            FORMATS,
            (
                SourceFormat(SOCKD, "sockd.conf", isSockdLine, convertSockdConf),
                SourceFormat(SOCKS5, "socks5.conf", isSocks5Line, convertSocks5Conf),
                SourceFormat(DANTED, "danted.conf", isDanteLine, convertDanteConf),
            ),
        )


class AnotherFormatTests(SynchronousTestCase):
    """
    A format added to the table is detected as the real ones are.
    """

    formats = (*FORMATS, DANTE)

    def test_votes(self) -> None:
        """
        A file whose lines are the new format's own is in that format,
        whatever its name; the real formats are still recognised.
        """
        text = "dante one\ndante two\n"
        self.assertIs(detectSourceFormat(text, "/etc/socks5.conf", self.formats), DANTE)
        self.assertEqual(detectFormat(text, None, self.formats), "dante")
        self.assertEqual(detectFormat("permit 10.0.0.0 255.0.0.0\n", None, self.formats), SOCKD)
        self.assertEqual(detectFormat("ban 10. -\n", None, self.formats), SOCKS5)
        self.assertIsNone(detectFormat(text))

    def test_mostVotesWin(self) -> None:
        """
        Among three formats, the one with the most votes wins even when the
        others have some too.
        """
        text = "dante one\npermit 10.0.0.0 255.0.0.0\ndante two\nban 10. -\n"
        self.assertEqual(detectFormat(text, "socks5.conf", self.formats), "dante")

    def test_nameBreaksTiesAmongLeaders(self) -> None:
        """
        The file name breaks a tie between the formats with the most votes
        only, in table order: a file name of a format with fewer votes does
        not count.
        """
        tie = "dante one\npermit 10.0.0.0 255.0.0.0\n"
        self.assertEqual(detectFormat(tie, "/etc/sockd.conf", self.formats), SOCKD)
        self.assertEqual(detectFormat(tie, "/etc/sockd.conf", (*FORMATS[1:], DANTE, FORMATS[0])), "dante")
        tieWithoutSOCKS5 = tie + "ban 10. -\ndante three\npermit 10.0.0.0 255.0.0.0\n"
        self.assertIsNone(detectFormat(tieWithoutSOCKS5, "/etc/socks5.conf", self.formats))

    def test_noVotes(self) -> None:
        """
        A file with no votes is in the format its name says when it has no
        other lines, and in none when it has some.
        """
        self.assertEqual(detectFormat("# nothing\n", "socks5.conf", self.formats), SOCKS5)
        self.assertIsNone(detectFormat("something else\n", "sockd.conf", self.formats))

    def test_firstClaimVotes(self) -> None:
        """
        A line that two formats claim votes for the first of them in the
        table only.
        """
        text = "permit 10.0.0.0 255.0.0.0\n"
        self.assertEqual(detectFormat(text, None, (GREEDY, *FORMATS)), "greedy")
        self.assertEqual(detectFormat(text, None, (*FORMATS, GREEDY)), SOCKD)

    def test_noFormats(self) -> None:
        """
        With no formats to choose from, no file is in any.
        """
        self.assertIsNone(detectSourceFormat("permit - - - -\n", "socks5.conf", ()))


class OwnLineTests(SynchronousTestCase):
    """
    L{isSockdLine} and L{isSocks5Line} tell the lines that vote for each
    real format, and no line votes for both.
    """

    sockdLines = (
        "permit 10.0.0.0 255.0.0.0",
        "  deny ?=n 10.0.0.0 255.0.0.0 : /bin/true",
        "permit *=clyde 0.0.0.0 0.0.0.0",
        "#NO_IDENTD: /bin/true",
        "#BAD_ID: /bin/true",
    )
    socks5Lines = (
        "permit - - - -",
        "deny uk cb 10. .example.net",
        "ban 10.",
        "auth - - u",
        "set SOCKS5_BINDINTFC 127.0.0.1",
        "socks5 - - - - 127.0.0.1",
    )
    neither = (
        "",
        "# permit 10.0.0.0 255.0.0.0",
        "permit 10.0.0.0",
        "permit#10.0.0.0 255.0.0.0",
        "permit:10.0.0.0 255.0.0.0",
        "permit - - -",
        "permit x - - -",
        "client pass {",
        "logoutput: syslog",
    )

    def test_sockd(self) -> None:
        """
        C{#NO_IDENTD:} and C{#BAD_ID:} lines, and C{permit} or C{deny} lines
        starting with C{?=}, C{*=} or an address and mask, are SOCKS4
        C{sockd.conf} lines, and not NEC C{socks5.conf} ones.
        """
        for line in self.sockdLines:
            self.assertEqual((isSockdLine(line), isSocks5Line(line)), (True, False), line)

    def test_socks5(self) -> None:
        """
        Lines of socks5.conf's own keywords, and C{permit} or C{deny} lines
        with methods and commands, are NEC C{socks5.conf} lines only.
        """
        for line in self.socks5Lines:
            self.assertEqual((isSockdLine(line), isSocks5Line(line)), (False, True), line)

    def test_neither(self) -> None:
        """
        Blank lines, comments, short or malformed rules and Dante's lines
        vote for neither format.
        """
        for line in self.neither:
            self.assertEqual((isSockdLine(line), isSocks5Line(line)), (False, False), line)
