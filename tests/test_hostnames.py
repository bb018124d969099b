"""
Host names in the one form the gateway decides and resolves
(L{socksgate.hostnames}), and the addresses a destination really reaches
(L{socksgate.policy.reachedAddress}).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import parseConfig
from socksgate.hostnames import InvalidHostname, normalHostname
from socksgate.outbound import RequestRefused, destinationFor, literalAddress, permittedAddresses
from socksgate.policy import AccessRequest, reachedAddress
from socksgate.testing import StaticResolver
from socksgate.wire import ReplyCode


class NormalHostnameTests(SynchronousTestCase):
    """
    Every spelling of a name that a resolver folds into one host gives one
    ASCII name; a name that is no host name in any spelling is refused.
    """

    def test_ascii(self) -> None:
        """
        An ASCII name is lower-cased and loses one final dot; underscores
        and hyphens are kept.
        """
        self.assertEqual(normalHostname("Blocked.TEST."), "blocked.test")
        self.assertEqual(normalHostname("_sip._tcp.Ex-ample.test"), "_sip._tcp.ex-ample.test")
        self.assertEqual(normalHostname("XN--BCHER-KVA.test"), "xn--bcher-kva.test")

    def test_fullwidth(self) -> None:
        """
        Fullwidth letters are the ASCII letters they stand for.
        """
        self.assertEqual(normalHostname("ｂｌｏｃｋｅｄ.ｔｅｓｔ"), "blocked.test")
        self.assertEqual(normalHostname("ＢＬＯＣＫＥＤ.test"), "blocked.test")

    def test_unicodeDots(self) -> None:
        """
        U+3002, U+FF0E and U+FF61 separate labels as C{.} does, also as
        the final dot.
        """
        for dot in "\u3002\uff0e\uff61":
            self.assertEqual(normalHostname(f"blocked{dot}test"), "blocked.test")
            self.assertEqual(normalHostname(f"blocked.test{dot}"), "blocked.test")

    def test_ignorable(self) -> None:
        """
        A soft hyphen, a zero-width space or a variation selector inside
        a name is removed.
        """
        for invisible in "\u00ad\u200b\ufe0f":
            self.assertEqual(normalHostname(f"bl{invisible}ocked.test"), "blocked.test")

    def test_uLabel(self) -> None:
        """
        A U-label becomes its A-label, in any case and beside ASCII labels
        with underscores.
        """
        self.assertEqual(normalHostname("bücher.test"), "xn--bcher-kva.test")
        self.assertEqual(normalHostname("BÜCHER.Test"), "xn--bcher-kva.test")
        self.assertEqual(normalHostname("_sip.bücher。test"), "_sip.xn--bcher-kva.test")

    def test_nonTransitional(self) -> None:
        """
        IDNA 2008 (UTS 46 non-transitional): C{ß} is a letter of its own,
        not C{ss}; a decomposed accent is composed first.
        """
        self.assertEqual(normalHostname("faß.de"), "xn--fa-hia.de")
        self.assertEqual(normalHostname("e\u0301.test"), normalHostname("\u00e9.test"))

    def test_digitsInUnicode(self) -> None:
        """
        Fullwidth digits and dots spell an IPv4 address, which the gateway
        then decides as that address.
        """
        self.assertEqual(normalHostname("１２７．０．０．１"), "127.0.0.1")
        self.assertEqual(destinationFor("１２７．０．０．１"), IPv4Address("127.0.0.1"))

    def test_garbage(self) -> None:
        """
        Empty labels, labels of more than 63 characters, names of more
        than 253, ASCII punctuation (also fullwidth), a joiner out of
        context, a leading combining mark, a bidi error and a name of
        nothing but ignorable code points are all refused.
        """
        for name in [
            "",
            ".",
            "a..b",
            "..",
            "x" * 64 + ".test",
            ".".join(["x" * 60] * 5),
            "foo!.test",
            "ｆｏｏ！.test",
            "a/b",
            "a@b",
            "a\u200db.test",
            "\u0301x.test",
            "\u0661.\u05d0",
            "\u00ad",
            "ü" * 70 + ".test",
        ]:
            with self.assertRaises(InvalidHostname, msg=repr(name)):
                normalHostname(name)

    def test_refusedWithHostUnreachable(self) -> None:
        """
        An invalid name is refused with 0x04 and outcome C{failed}, before
        any policy or resolver sees it.
        """
        with self.assertRaises(RequestRefused) as caught:
            destinationFor("a\u200db.test")
        self.assertEqual(
            (caught.exception.reply, caught.exception.outcome), (ReplyCode.HOST_UNREACHABLE, "failed")
        )


class ReachedAddressTests(SynchronousTestCase):
    """
    A destination is decided as the address it really reaches.
    """

    def test_unspecified(self) -> None:
        """
        0.0.0.0 reaches 127.0.0.1, :: reaches ::1, ::ffff:0.0.0.0 is
        0.0.0.0 and so 127.0.0.1; a scoped :: is :: too.
        """
        self.assertEqual(reachedAddress(IPv4Address("0.0.0.0")), IPv4Address("127.0.0.1"))
        self.assertEqual(reachedAddress(IPv6Address("::")), IPv6Address("::1"))
        self.assertEqual(reachedAddress(IPv6Address("::ffff:0.0.0.0")), IPv4Address("127.0.0.1"))
        self.assertEqual(reachedAddress(ip_address("::%1")), IPv6Address("::1"))

    def test_others(self) -> None:
        """
        Other addresses are themselves, IPv4-mapped ones unmapped.
        """
        for text in ["10.1.2.3", "0.0.0.1", "2001:db8::1", "::1"]:
            self.assertEqual(reachedAddress(ip_address(text)), ip_address(text))
        self.assertEqual(reachedAddress(IPv6Address("::ffff:10.1.2.3")), IPv4Address("10.1.2.3"))

    def test_literals(self) -> None:
        """
        An unspecified address sent as a name is decided as what it
        reaches, bracketed or not.
        """
        self.assertEqual(literalAddress("0.0.0.0"), IPv4Address("127.0.0.1"))
        self.assertEqual(literalAddress("[::]"), IPv6Address("::1"))

    def test_numericForms(self) -> None:
        """
        The numeric forms C{inet_aton} takes are addresses, not names:
        short, hexadecimal, octal and single-number spellings; names made of
        hexadecimal letters only are still names.
        """
        for spelling in ("127.1", "0x7f.1", "0177.0.0.1", "2130706433", "0x7F000001"):
            self.assertEqual(literalAddress(spelling), IPv4Address("127.0.0.1"), spelling)
        self.assertEqual(literalAddress("0"), IPv4Address("127.0.0.1"))
        self.assertEqual(literalAddress("10.1"), IPv4Address("10.0.0.1"))
        for name in ("deadbeef", "cafe.be", "08", "1.2.3.4.5", "a1"):
            self.assertIsNone(literalAddress(name), name)


RULES = """
[[rule]]
action = "deny"
destinations = ["blocked.test", ".bücher.test", "xn--fa-hia.de"]

[[rule]]
action = "permit"
"""

#: Names to spell in many ways, some of them denied by RULES.
_NAMES = st.sampled_from(
    ["blocked.test", "www.blocked.test", "xn--bcher-kva.test", "shop.xn--bcher-kva.test",
     "xn--fa-hia.de", "open.test", "fass.de", "blocked.tes"]
)  # fmt: skip
_VARIANT_STEPS = st.lists(
    st.sampled_from(["upper", "fullwidth", "dots", "softHyphen", "zeroWidthSpace", "uLabel", "finalDot"]),
    max_size=4,
)
#: A-labels and their U-labels, worked out by hand from RFC 3492.
_U_LABELS = {"xn--bcher-kva": "bücher", "xn--fa-hia": "faß"}
_FULLWIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}


def spell(name: str, steps: list[str], position: int) -> str:
    """
    Another spelling of ASCII C{name} that a resolver takes for the same
    host, made by C{steps}; C{position} picks where invisible code points
    go.
    """
    for step in steps:
        if step == "uLabel":
            for aLabel, uLabel in _U_LABELS.items():
                name = name.replace(aLabel, uLabel)
        elif step == "upper":
            # Not str.upper() alone: "ß".upper() is "SS", another host.
            name = "".join(character if character == "ß" else character.upper() for character in name)
        elif step == "fullwidth":
            name = "".join(_FULLWIDTH.get(character, character) for character in name)
        elif step == "dots":
            name = name.replace(".", "\u3002", 1).replace(".", "\uff0e", 1).replace(".", "\uff61")
        elif step == "finalDot" and not name.endswith((".", "\u3002", "\uff0e", "\uff61")):
            name += "."
        else:
            invisible = "\u00ad" if step == "softHyphen" else "\u200b"
            where = 1 + position % (len(name) - 1)
            name = name[:where] + invisible + name[where:]
    return name


class SameHostSameDecisionTests(SynchronousTestCase):
    """
    Any spelling of a name gets the decision its ASCII form gets, and the
    resolver is asked for that ASCII form.
    """

    def setUp(self) -> None:
        self.policy = parseConfig(RULES, "names.toml").policy

    def decide(self, host: str) -> tuple[str, list[str]]:
        """
        Decide C{host} as CONNECT does; return the outcome and the names
        the resolver was asked.
        """
        resolver = StaticResolver(default=["127.0.0.1"])
        request = AccessRequest(IPv4Address("127.0.0.1"), 1, "test", "5", "connect", None, None, 80)
        deciding = Deferred.fromCoroutine(
            permittedAddresses(Clock(), resolver, self.policy.decide, request, host, 5.0)
        )
        result: list[object] = []
        deciding.addBoth(result.append)
        [outcome] = result
        if isinstance(outcome, tuple):
            return "permit", resolver.asked
        refusal = outcome.value  # type: ignore[attr-defined]
        return refusal.outcome, resolver.asked

    @given(_NAMES, _VARIANT_STEPS, st.integers(min_value=0, max_value=1000))
    def test_everySpelling(self, name: str, steps: list[str], position: int) -> None:
        """
        A spelling made of case changes, fullwidth letters, Unicode dots,
        soft hyphens, zero-width spaces, U-labels for A-labels and a final
        dot is decided as the name itself, and the resolver (if asked) is
        asked for the name itself.
        """
        variant = spell(name, steps, position)
        if "ß" not in variant:
            # The generator is honest: getaddrinfo's IDNA 2003 codec folds
            # the spelling into the name too (it folds ß into ss).
            self.assertEqual(variant.encode("idna").lower().rstrip(b"."), name.encode("ascii"))
        self.assertEqual(normalHostname(variant), name)
        self.assertEqual(self.decide(variant), self.decide(name))
        outcome, asked = self.decide(variant)
        self.assertEqual(asked, [name] if outcome == "permit" else [])

    def test_denied(self) -> None:
        """
        The spellings of the denied names in the report are denied, and
        never resolved.
        """
        for spelling in [
            "ｂｌｏｃｋｅｄ.ｔｅｓｔ",
            "blocked\u3002test",
            "blocked\uff0etest",
            "blocked\uff61test",
            "bl\u00adocked.test",
            "bl\u200bocked.test",
            "shop.bücher.test",
            "faß.de",
        ]:
            self.assertEqual(self.decide(spelling), ("denied", []), spelling)

    def test_ruleNamesNormalised(self) -> None:
        """
        A rule's names and domains are kept in the normal form: a rule
        for C{.bücher.test} holds C{.xn--bcher-kva.test}.
        """
        patterns = self.policy.rules[0].destinations
        self.assertEqual(patterns.names, frozenset({"blocked.test", "xn--fa-hia.de"}))
        self.assertEqual(patterns.domains, (".xn--bcher-kva.test",))
