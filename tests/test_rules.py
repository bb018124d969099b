"""
The rule engine: every field of [[rule]], alone and combined, first match
wins, and decisions for names before and after they are resolved.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import parseConfig
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision
from socksgate.rules import RulePolicy

VERSIONS = ("4", "4a", "5")
COMMANDS = ("connect", "bind", "udp")


def policyFrom(rules: str) -> RulePolicy:
    """
    The policy of a file holding C{rules}.
    """
    policy = parseConfig(rules, "rules.toml").policy
    assert isinstance(policy, RulePolicy)
    return policy


def request(
    client: str = "10.0.0.1",
    name: str | None = None,
    address: str | None = "192.0.2.10",
    port: int = 80,
    version: str = "5",
    command: str = "connect",
    user: str | None = None,
    listener: str = "tcp:1080",
) -> AccessRequest:
    """
    A request with sensible defaults.
    """
    return AccessRequest(
        client=ip_address(client),
        clientPort=40000,
        listener=listener,
        version=version,
        command=command,
        destinationName=name,
        destinationAddress=ip_address(address) if address else None,
        port=port,
        user=user,
        auth="userpass" if user and version == "5" else "none",
    )


class FieldTests(SynchronousTestCase):
    """
    Each field matches what it says and nothing else, for every version
    and command.
    """

    def check(self, rule: str, matching: dict, notMatching: dict) -> None:
        """
        A policy of C{rule} (a permit) permits C{matching} by rule 1 and
        denies C{notMatching} with no rule, for every version and command
        the fields do not fix.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\n' + rule)
        for version in VERSIONS:
            for command in COMMANDS:
                base = {"version": version, "command": command}
                good = request(**{**base, **matching})
                bad = request(**{**base, **notMatching})
                self.assertEqual(policy.decide(good), Decision(PERMIT, 1), (version, command, good))
                self.assertEqual(policy.decide(bad).action, DENY, (version, command, bad))
                self.assertIsNone(policy.decide(bad).rule)

    def test_clientsIPv4(self) -> None:
        """
        clients: a CIDR and a single address.
        """
        self.check('clients = ["10.0.0.0/8", "192.168.1.7"]', {"client": "10.9.8.7"}, {"client": "11.0.0.1"})
        self.check('clients = ["192.168.1.7"]', {"client": "192.168.1.7"}, {"client": "192.168.1.8"})

    def test_clientsIPv6(self) -> None:
        """
        clients: IPv6 addresses and networks.
        """
        self.check('clients = ["2001:db8::/32"]', {"client": "2001:db8::5"}, {"client": "2001:db9::5"})
        self.check('clients = ["::1"]', {"client": "::1"}, {"client": "127.0.0.1"})

    def test_listeners(self) -> None:
        """
        listeners: the endpoint description the request arrived on.
        """
        self.check('listeners = ["tcp:1080"]', {"listener": "tcp:1080"}, {"listener": "tcp:1081"})

    def test_emptyListenersMeansAny(self) -> None:
        """
        listeners = [] matches any listener, as SPEC says.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nlisteners = []\n')
        self.assertEqual(policy.decide(request(listener="unix:/x")).action, PERMIT)

    def test_destinationAddress(self) -> None:
        """
        destinations: an address and a network match the address connected to.
        """
        self.check('destinations = ["192.0.2.10"]', {"address": "192.0.2.10"}, {"address": "192.0.2.11"})
        self.check(
            'destinations = ["2001:db8::/64"]', {"address": "2001:db8::1"}, {"address": "2001:db8:1::1"}
        )

    def test_destinationName(self) -> None:
        """
        destinations: an exact name matches that name only, whatever its
        case or a final dot.
        """
        self.check(
            'destinations = ["www.example.com"]',
            {"name": "WWW.Example.COM.", "address": None},
            {"name": "ftp.example.com", "address": None},
        )

    def test_destinationDomain(self) -> None:
        """
        destinations: .example.com matches the domain and every name below
        it, but not a name that merely ends the same way.
        """
        rule = 'destinations = [".example.com"]'
        self.check(
            rule, {"name": "example.com", "address": None}, {"name": "badexample.com", "address": None}
        )
        self.check(
            rule, {"name": "a.b.example.com", "address": None}, {"name": "example.org", "address": None}
        )

    def test_destinationNameNeverMatchesAddress(self) -> None:
        """
        A name pattern does not match a request that gives an address.
        """
        self.check(
            'destinations = ["www.example.com"]', {"name": "www.example.com"}, {"address": "192.0.2.1"}
        )

    def test_destinationAnything(self) -> None:
        """
        destinations = ["*"] matches names and addresses.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\ndestinations = ["*"]\n')
        self.assertEqual(policy.decide(request(name="x.example", address=None)).action, PERMIT)
        self.assertEqual(policy.decide(request()).action, PERMIT)

    def test_ports(self) -> None:
        """
        ports: single ports (as text or integers) and ranges, inclusive.
        """
        self.check('ports = ["1024-2048"]', {"port": 2048}, {"port": 1023})
        self.check('ports = [443, "80"]', {"port": 443}, {"port": 8080})

    def test_commands(self) -> None:
        """
        commands: only the commands listed.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\ncommands = ["connect"]\n')
        for version in VERSIONS:
            self.assertEqual(policy.decide(request(version=version)).action, PERMIT)
            self.assertEqual(policy.decide(request(version=version, command="bind")).action, DENY)
            self.assertEqual(policy.decide(request(version=version, command="udp")).action, DENY)

    def test_versions(self) -> None:
        """
        versions: 4 and 4a are distinct, so a rule can close the SOCKS4a
        door alone.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nversions = ["4", "5"]\n')
        for command in COMMANDS:
            self.assertEqual(policy.decide(request(version="4", command=command)).action, PERMIT)
            self.assertEqual(policy.decide(request(version="5", command=command)).action, PERMIT)
            self.assertEqual(policy.decide(request(version="4a", command=command)).action, DENY)

    def test_usersNamed(self) -> None:
        """
        users: names match those users only.
        """
        self.check('users = ["alice", "bob"]', {"user": "bob"}, {"user": "mallory"})

    def test_usersAny(self) -> None:
        """
        users = ["*"] matches any authenticated or claimed user, not
        anonymous requests.
        """
        self.check('users = ["*"]', {"user": "anyone"}, {"user": None})

    def test_usersAnonymous(self) -> None:
        """
        users = ["-"] matches anonymous requests only.
        """
        self.check('users = ["-"]', {"user": None}, {"user": "alice"})

    def test_noUsersMeansAnyone(self) -> None:
        """
        A rule without users matches anonymous and named requests alike.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\n')
        self.assertEqual(policy.decide(request(user=None)).action, PERMIT)
        self.assertEqual(policy.decide(request(user="alice")).action, PERMIT)

    def test_messageAndRoute(self) -> None:
        """
        A decision carries its rule's number, message and route.
        """
        policy = policyFrom('[[rule]]\naction = "deny"\nmessage = "closed"\nvia = "direct"\n')
        self.assertEqual(policy.decide(request()), Decision(DENY, 1, "closed", "direct"))

    def test_combined(self) -> None:
        """
        A rule with every field matches only when all of them do.
        """
        rule = """
clients = ["10.0.0.0/8"]
listeners = ["tcp:1080"]
destinations = [".example.com", "192.0.2.0/24"]
ports = ["443"]
commands = ["connect"]
versions = ["5"]
users = ["alice"]
"""
        policy = policyFrom('[[rule]]\naction = "permit"\n' + rule)
        good = {"client": "10.1.1.1", "name": "www.example.com", "address": "198.51.100.1",
                "port": 443, "user": "alice"}  # fmt: skip
        self.assertEqual(policy.decide(request(**good)).action, PERMIT)
        for field, other in [
            ("client", "11.1.1.1"), ("listener", "tcp:1081"), ("name", "www.example.org"),
            ("port", 80), ("command", "bind"), ("version", "4a"), ("user", "bob"),
        ]:  # fmt: skip
            self.assertEqual(policy.decide(request(**{**good, field: other})).action, DENY, field)


class OrderTests(SynchronousTestCase):
    """
    First match wins; no match denies.
    """

    def test_firstMatchWins(self) -> None:
        """
        An earlier deny wins over a later permit, and the other way round.
        """
        policy = policyFrom(
            '[[rule]]\naction = "deny"\nports = ["23"]\nmessage = "no telnet"\n[[rule]]\naction = "permit"\n'
        )
        self.assertEqual(policy.decide(request(port=23)), Decision(DENY, 1, "no telnet"))
        self.assertEqual(policy.decide(request(port=22)), Decision(PERMIT, 2))

    def test_noMatchDenies(self) -> None:
        """
        A request no rule matches is denied, with no rule named.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nclients = ["10.0.0.0/8"]\n')
        decision = policy.decide(request(client="192.168.0.1"))
        self.assertEqual((decision.action, decision.rule), (DENY, None))

    def test_noRulesMeansLoopbackOnly(self) -> None:
        """
        A file without rules keeps SPEC's default: loopback clients only.
        """
        policy = parseConfig("[server]\n", "x.toml").policy
        self.assertEqual(policy.decide(request(client="127.0.0.1")).action, PERMIT)
        self.assertEqual(policy.decide(request(client="10.0.0.1")).action, DENY)


class UnresolvedNameTests(SynchronousTestCase):
    """
    Before a name is resolved, the engine says whether the answer can
    depend on the address; a name every address of which is denied is
    refused without a lookup.
    """

    def test_denyByClientDoesNotDepend(self) -> None:
        """
        A client denied outright is denied whatever the address.
        """
        policy = policyFrom(
            '[[rule]]\naction = "deny"\nclients = ["192.168.0.0/16"]\n'
            '[[rule]]\naction = "permit"\ndestinations = ["203.0.113.0/24"]\n'
        )
        decision, depends = policy.decideUnresolved(
            request(client="192.168.1.1", name="x.test", address=None)
        )
        self.assertEqual((decision.action, decision.rule, depends), (DENY, 1, False))

    def test_addressPermitDepends(self) -> None:
        """
        A permit by address pattern makes the answer depend on the address.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\ndestinations = ["203.0.113.0/24"]\n')
        decision, depends = policy.decideUnresolved(request(name="x.test", address=None))
        self.assertTrue(depends)
        self.assertEqual(decision.action, PERMIT)

    def test_addressDenyThenPermitDepends(self) -> None:
        """
        deny 127.0.0.0/8 then permit everything: a name may resolve to
        127.0.0.1, so the answer depends on the address.
        """
        policy = policyFrom(
            '[[rule]]\naction = "deny"\ndestinations = ["127.0.0.0/8"]\n[[rule]]\naction = "permit"\n'
        )
        self.assertTrue(policy.decideUnresolved(request(name="x.test", address=None))[1])
        self.assertEqual(policy.decide(request(name="x.test", address="127.0.0.1")), Decision(DENY, 1))
        self.assertEqual(policy.decide(request(name="x.test", address="192.0.2.1")), Decision(PERMIT, 2))

    def test_onlyDenialsDoNotDepend(self) -> None:
        """
        When every rule that could match denies, the name is denied
        without resolving it.
        """
        policy = policyFrom(
            '[[rule]]\naction = "deny"\ndestinations = ["127.0.0.0/8"]\n'
            '[[rule]]\naction = "permit"\nclients = ["10.0.0.0/8"]\n'
        )
        decision, depends = policy.decideUnresolved(
            request(client="192.168.0.1", name="x.test", address=None)
        )
        self.assertEqual((decision.action, depends), (DENY, False))

    def test_namePermitBeforeNetworkDeny(self) -> None:
        """
        permit .corp.example before deny 10.0.0.0/8 lets internal names
        through without depending on their addresses.
        """
        policy = policyFrom(
            '[[rule]]\naction = "permit"\ndestinations = [".corp.example"]\n'
            '[[rule]]\naction = "deny"\ndestinations = ["10.0.0.0/8"]\n'
            '[[rule]]\naction = "permit"\n'
        )
        self.assertEqual(
            policy.decideUnresolved(request(name="intranet.corp.example", address=None)),
            (Decision(PERMIT, 1), False),
        )
        self.assertEqual(policy.decide(request(name="intranet.corp.example", address="10.1.1.1")).rule, 1)
        self.assertEqual(policy.decide(request(name="public.example", address="10.1.1.1")).rule, 2)


class IndexTests(SynchronousTestCase):
    """
    Large policies decide quickly on the first-match path.
    """

    def test_manyRules(self) -> None:
        """
        With 10,000 rules, a request that matches the third is decided by
        it, and one for a command no rule allows is denied.
        """
        rules = "".join(
            '[[rule]]\naction = "permit"\ncommands = ["connect"]\n'
            f'clients = ["10.{i // 256}.{i % 256}.0/24"]\n'
            for i in range(10000)
        )
        policy = policyFrom(rules)
        self.assertEqual(policy.decide(request(client="10.0.2.9")).rule, 3)
        self.assertEqual(policy.decide(request(client="10.0.2.9", command="udp")).rule, None)


def linearDecision(policy: RulePolicy, subject: AccessRequest) -> Decision:
    """
    The decision by plain first-match over every rule, without any index:
    the reference the indexed engine must agree with.
    """
    for rule in policy.rules:
        if rule.versions is not None and subject.version not in rule.versions:
            continue
        if rule.commands is not None and subject.command not in rule.commands:
            continue
        if not rule.matchesAllButDestination(subject):
            continue
        patterns = rule.destinations
        address = subject.destinationAddress
        if (
            patterns.anything
            or (subject.destinationName is not None and patterns.matchesName(subject.destinationName))
            or (address is not None and any(address in network for network in patterns.networks))
        ):
            return rule.decision()
    return Decision(DENY, None, "no rule matched")


class IndexAgreesTests(SynchronousTestCase):
    """
    The client index of large policies changes the speed, never the answer.
    """

    @settings(max_examples=60, deadline=None, database=None)
    @given(
        networks=st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([8, 16, 24, 32])), min_size=40
        ),
        clients=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=20),
        withAnyClient=st.lists(st.booleans(), min_size=40, max_size=40),
    )
    def test_agreesWithLinearScan(self, networks, clients, withAnyClient) -> None:
        """
        For random policies of 40 or more rules (mixing client networks of
        every prefix length, rules for any client, permits and denies) and
        random clients, the indexed decision equals the plain scan's.
        """
        rules = []
        for number, (second, third, length) in enumerate(networks):
            action = "permit" if number % 3 else "deny"
            network = str(ip_network(f"10.{second}.{third}.{number % 4}/{length}", strict=False))
            anyClient = withAnyClient[number % len(withAnyClient)] and number % 7 == 0
            clients_ = "" if anyClient else f'clients = ["{network}"]\n'
            rules.append(f'[[rule]]\naction = "{action}"\n{clients_}ports = ["{1000 + number % 5}"]\n')
        policy = policyFrom("".join(rules))
        for second, third in clients:
            for port in range(1000, 1006):
                subject = request(client=f"10.{second}.{third}.{port % 4}", port=port)
                self.assertEqual(policy.decide(subject), linearDecision(policy, subject))


class AnyDestinationTests(SynchronousTestCase):
    """
    A request with no destination yet (UDP ASSOCIATE) or port 0 (BIND for
    a peer whose port is not known, UDP) is permitted by the first rule
    that may permit some destination or port, and denied when none may.
    """

    def association(self, client: str = "10.0.0.1") -> AccessRequest:
        """
        A UDP ASSOCIATE as the gateway asks about it.
        """
        return request(client=client, address=None, port=0, command="udp")

    def test_restrictedPermit(self) -> None:
        """
        A permit for some destinations and ports permits the association,
        naming the rule.
        """
        policy = policyFrom(
            '[[rule]]\naction = "permit"\ndestinations = ["192.0.2.53"]\nports = ["53"]\ncommands = ["udp"]\n'
        )
        self.assertEqual(policy.decide(self.association()), Decision(PERMIT, 1))

    def test_clientNotPermitted(self) -> None:
        """
        A client no rule matches is denied, whatever the destinations.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nclients = ["192.168.0.0/16"]\n')
        self.assertEqual(policy.decide(self.association()).action, DENY)

    def test_restrictedDenyThenPermit(self) -> None:
        """
        A deny for some destinations or ports does not decide the
        association: the permit after it does.
        """
        policy = policyFrom(
            '[[rule]]\naction = "deny"\nports = ["25"]\n'
            '[[rule]]\naction = "deny"\ndestinations = ["10.0.0.0/8"]\n'
            '[[rule]]\naction = "permit"\n'
        )
        self.assertEqual(policy.decide(self.association()), Decision(PERMIT, 3))

    def test_denyEverything(self) -> None:
        """
        A deny of every destination and port for the client decides.
        """
        policy = policyFrom('[[rule]]\naction = "deny"\ncommands = ["udp"]\n[[rule]]\naction = "permit"\n')
        self.assertEqual(policy.decide(self.association()), Decision(DENY, 1))

    def test_bindPortZero(self) -> None:
        """
        A BIND whose DST.PORT is 0 is permitted by a rule for
        C{ports = ["1-65535"]}, as SPEC's example writes it.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nports = ["1-65535"]\n')
        self.assertEqual(policy.decide(request(port=0, command="bind")), Decision(PERMIT, 1))

    def test_connectPortZero(self) -> None:
        """
        Port 0 means any port only for BIND and UDP: a CONNECT to port 0
        is decided as port 0.
        """
        policy = policyFrom('[[rule]]\naction = "permit"\nports = ["1-65535"]\n')
        self.assertEqual(policy.decide(request(port=0)).action, DENY)
