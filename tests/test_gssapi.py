"""
SOCKS5 GSS-API (RFC 1961) against a real MIT Kerberos realm of the tests'
own (see L{tests.gssapi_helpers}): curl, socksgate's own client at
integrity and confidentiality, principals in rules, forged tokens, and a
wrong keytab at start.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.protocol import ClientFactory
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from socksgate.config import parseConfig
from socksgate.gssauth import agreeLevel
from socksgate.gssclient import ProtectionLevelRefused
from socksgate.testing import startEchoServer, startGateway, startSinkServer
from socksgate.wire import ProtectionLevel

from .gssapi_helpers import (
    REALM,
    UNAVAILABLE,
    GSSAPISOCKSClient,
    KerberosRealm,
    sharedRealm,
    startRecordingForwarder,
)
from .helpers import LoopbackTestCase, RawClient, collectSessions, connectRaw, socks5Connect

CONTENT = b"a file fetched through a Kerberos-authenticated gateway\n" * 200


def startFileServer(testCase: LoopbackTestCase) -> int:
    """
    A web server on loopback serving L{CONTENT} at C{/file}, stopped with
    the test.

    @return: its port.
    """
    root = Resource()
    root.putChild(b"file", Data(CONTENT, "application/octet-stream"))
    site = Site(root)
    site.noisy = False
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    testCase.addCleanup(listening.stopListening)
    return listening.getHost().port


class GSSAPITestCase(LoopbackTestCase):
    """
    A test realm for the whole class, and gateways that use it.
    """

    realm: KerberosRealm

    if UNAVAILABLE:
        skip = UNAVAILABLE

    def setUp(self) -> None:
        self.realm = sharedRealm()
        self.realm.activate(self)

    def gateway(self, levels: list[str], rules: str = "", service: str = "rcmd") -> object:
        """
        A gateway that asks for GSS-API with the realm's keytab, accepting
        C{levels}; its rules permit loopback clients unless C{rules} says
        otherwise.
        """
        levelList = ", ".join(f'"{level}"' for level in levels)
        rules = rules or '[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\n'
        text = (
            f'[auth]\nmethods = ["gssapi"]\ngssapi-keytab = "{self.realm.keytab}"\n'
            f'gssapi-service = "{service}"\ngssapi-protection = [{levelList}]\n{rules}'
        )
        return startGateway(self, config=parseConfig(text, "gssapi.toml"))

    async def client(
        self,
        port: int,
        level: ProtectionLevel,
        user: str = "alice",
        payload: bytes = b"",
        destination: int = 0,
        nec: bool = False,
        finish: bool = True,
    ) -> GSSAPISOCKSClient:
        """
        Run socksgate's GSS-API client through the gateway to an echo
        server (or C{destination}), sending C{payload} (and a FIN, if
        C{finish}); C{nec} sends the level as a bare octet.
        """
        if not destination:
            destination = startEchoServer(self).port
        client = GSSAPISOCKSClient(
            "rcmd@localhost",
            self.realm.ccaches[user],
            level,
            socks5Connect(b"127.0.0.1", destination)[3:],
            payload,
            nec,
            finish=finish,
        )
        reactor.connectTCP("127.0.0.1", port, ClientFactory.forProtocol(lambda: client))
        return await client.ended


#: The oldest curl checked to finish a SOCKS5 GSS-API handshake: curl 7
#: (Debian 12 has 7.88.1) and 8.14 (its backport) cannot, with any server:
#: their SOCKS code sets C{allow_gssapi} only in the call that sends the
#: greeting, so a method selection read in a later call fails with "SOCKS5
#: GSSAPI per-message authentication is not supported", and one read in the
#: same call falls through, once the negotiation succeeded, to
#: "Undocumented SOCKS5 mode attempted to be used by server".
CURL_MINIMUM = (8, 21)

_BUILD_CURL = "bash .ci/build-curl, then SOCKSGATE_GSSAPI_CURL=$PWD/.ci/curl/bin/curl"


def findCurl(environ: dict[str, str] | None = None) -> tuple[str, str | None]:
    """
    The curl the curl tests run: C{SOCKSGATE_GSSAPI_CURL} (what C{.ci/run}
    builds), else the curl on C{PATH} if it is at least L{CURL_MINIMUM}
    and has GSS-API.

    @return: the program, and why the tests are skipped (else L{None}).
    """
    environ = os.environ if environ is None else environ
    program = environ.get("SOCKSGATE_GSSAPI_CURL") or "curl"
    try:
        output = subprocess.run([program, "--version"], capture_output=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return program, f"no curl to run ({program}: {error}); build one: {_BUILD_CURL}"
    words = output.split()
    version = tuple(int(part) for part in words[1].split(b".")[:2] if part.isdigit())
    if b"GSS-API" not in output:
        return program, f"{program} has no GSS-API; build one: {_BUILD_CURL}"
    if version < CURL_MINIMUM:
        found = words[1].decode()
        return program, (
            f"curl {found} cannot finish a SOCKS5 GSS-API handshake (see CURL_MINIMUM); "
            f"build one: {_BUILD_CURL}"
        )
    return program, None


CURL, CURL_SKIP = findCurl()


class CurlTests(GSSAPITestCase):
    """
    curl (8.21) authenticates with GSS-API and asks for confidentiality
    (the strongest level its context offers), but relays only without
    per-message protection: a gateway for curl accepts only C{none} and
    answers curl's request with it (RFC 1961 lets the server choose).
    """

    if CURL_SKIP and not UNAVAILABLE:
        skip = CURL_SKIP

    async def curl(self, port: int, webPort: int, *options: str) -> tuple[bytes, bytes, int]:
        """
        Fetch the web server's file (or from C{webPort}) with curl through
        the gateway at C{localhost:port} with GSS-API, as C{alice}.
        """
        return await getProcessOutputAndValue(
            CURL,
            ["--silent", "--show-error", "--max-time", "20", "--socks5-hostname", f"localhost:{port}",
             *options, f"http://localhost:{webPort}/file"],
            env=dict(self.realm.env, ALL_PROXY="", NO_PROXY=""),
        )  # fmt: skip

    async def fetch(self, *options: str) -> None:
        """
        curl fetches the file intact through a gateway that accepts only
        C{none}; the record names alice's principal and C{gssapi}, and the
        gateway logs that it agreed to none where curl asked for
        confidentiality.
        """
        webPort = startFileServer(self)
        gateway = self.gateway(["none"])
        records = collectSessions(self)
        agreed = collectLog(self, "GSS-API: ")
        out, err, code = await self.curl(gateway.port, webPort, "--socks5-gssapi", *options)
        self.assertEqual((code, err), (0, b""))
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(CONTENT).hexdigest())
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["reply"]) for r in records],
            [("closed", "gssapi", f"alice@{REALM}", 0)],
        )
        self.assertEqual(
            agreed,
            [f"GSS-API: alice@{REALM} asked for protection confidentiality; the gateway agreed to none"],
        )

    async def test_curlGSSAPI(self) -> None:
        """
        C{curl --socks5-gssapi}: the level messages wrapped (RFC 1961).
        """
        await self.fetch()

    async def test_curlGSSAPINEC(self) -> None:
        """
        C{curl --socks5-gssapi --socks5-gssapi-nec}: the level messages as
        bare octets (the NEC exchange).
        """
        await self.fetch("--socks5-gssapi-nec")

    async def test_curlCannotRelayProtected(self) -> None:
        """
        With C{none} not accepted (the default levels), the gateway agrees
        to the confidentiality curl asks for, and curl fails ("SOCKS5
        GSS-API protection not yet implemented"), in both forms, but only
        after sending its request in clear: the gateway refuses that
        request as not protected, relays nothing, and the record says so.
        """
        sink = startSinkServer(self)
        gateway = self.gateway(["integrity", "confidentiality"])
        records = collectSessions(self)
        for options in (["--socks5-gssapi"], ["--socks5-gssapi", "--socks5-gssapi-nec"]):
            out, err, code = await self.curl(gateway.port, sink.port, *options)
            self.assertEqual((out, code), (b"", 97))
            self.assertIn(b"SOCKS5 GSS-API protection not yet implemented", err)
        await gateway.sessions.whenEmpty()
        self.assertEqual(sink.connections, [])
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["reply"], r["message"]) for r in records],
            [("error", "gssapi", f"alice@{REALM}", None, CLEAR_REQUEST)] * 2,
        )


#: What the gateway says of a SOCKS5 request in clear where it must be sealed.
CLEAR_REQUEST = "GSS-API protection failed: GSS-API message version 5, not 1"


def collectLog(testCase: LoopbackTestCase, prefix: str) -> list[str]:
    """
    Collect the text of the log events, emitted while the test runs, that
    start with C{prefix}.
    """
    texts: list[str] = []

    def observer(event: dict) -> None:
        text = formatEvent(event)
        if text.startswith(prefix):
            texts.append(text)

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return texts


class AgreeLevelTests(TestCase):
    """
    The level the gateway answers a client's level message with.
    """

    def test_accepted(self) -> None:
        """
        A level the gateway accepts is agreed to as asked.
        """
        for level in (ProtectionLevel.NONE, ProtectionLevel.INTEGRITY, ProtectionLevel.CONFIDENTIALITY):
            self.assertIs(agreeLevel(level, set(ProtectionLevel) - {ProtectionLevel.SELECTIVE}), level)

    def test_strongestAccepted(self) -> None:
        """
        Any other level is answered with the strongest level accepted:
        curl's confidentiality with none, when only none is accepted; none
        with confidentiality; selective (never accepted) likewise.
        """
        none, integrity, confidentiality = (
            ProtectionLevel.NONE,
            ProtectionLevel.INTEGRITY,
            ProtectionLevel.CONFIDENTIALITY,
        )
        self.assertIs(agreeLevel(confidentiality, {none}), none)
        self.assertIs(agreeLevel(confidentiality, {none, integrity}), integrity)
        self.assertIs(agreeLevel(none, {integrity, confidentiality}), confidentiality)
        self.assertIs(agreeLevel(ProtectionLevel.SELECTIVE, {none, integrity}), integrity)


class NoProtectionTests(GSSAPITestCase):
    """
    socksgate's client at level 0 (C{none}), in the two forms curl sends
    it: wrapped (C{--socks5-gssapi}) and bare (C{--socks5-gssapi-nec}).
    """

    async def fetch(self, nec: bool) -> None:
        """
        Fetch the web server's file at level 0: intact, and the record
        names alice's principal.
        """
        webPort = startFileServer(self)
        gateway = self.gateway(["none"])
        records = collectSessions(self)
        request = b"GET /file HTTP/1.0\r\nHost: localhost\r\n\r\n"
        client = await self.client(
            gateway.port, ProtectionLevel.NONE, payload=request, destination=webPort, nec=nec
        )
        self.assertIsNone(client.failure)
        self.assertEqual(client.reply[:2], b"\x05\x00")
        body = client.received.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(CONTENT).hexdigest())
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["reply"]) for r in records],
            [("closed", "gssapi", f"alice@{REALM}", 0)],
        )

    async def test_wrappedLevel(self) -> None:
        """
        The RFC 1961 exchange: the level octet wrapped.
        """
        await self.fetch(nec=False)

    async def test_necLevel(self) -> None:
        """
        The NEC exchange: the level octet bare, answered bare.
        """
        await self.fetch(nec=True)

    async def test_noneNotAccepted(self) -> None:
        """
        With C{none} not accepted (the default levels), level 0 is answered
        in both forms with the strongest level accepted, confidentiality;
        socksgate's client does not take it and closes, so nothing is
        relayed and the record says the client closed during the handshake.
        """
        gateway = self.gateway(["integrity", "confidentiality"])
        sink = startSinkServer(self)
        records = collectSessions(self)
        for nec in (False, True):
            client = await self.client(
                gateway.port, ProtectionLevel.NONE, payload=b"x", destination=sink.port, nec=nec
            )
            self.assertIsInstance(client.failure, ProtectionLevelRefused)
            self.assertEqual(
                str(client.failure), "the gateway agreed to protection confidentiality, not none"
            )
            self.assertIsNone(client.reply)
        await gateway.sessions.whenEmpty()
        self.assertEqual(sink.connections, [])
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["message"]) for r in records],
            [("error", "gssapi", f"alice@{REALM}", "client closed during the handshake")] * 2,
        )


class ClientTests(GSSAPITestCase):
    """
    socksgate's own GSS-API client, with per-message protection.
    """

    async def checkProtected(self, level: ProtectionLevel) -> bytearray:
        """
        Relay through a recording forwarder at C{level}: the echo comes
        back intact, the record names the principal.

        @return: what the gateway received.
        """
        gateway = self.gateway(["integrity", "confidentiality"])
        port, recording = startRecordingForwarder(self, gateway.port)
        records = collectSessions(self)
        payload = b"secret payload that only alice and the gateway may read " * 3000
        client = await self.client(port, level, payload=payload)
        self.assertIsNone(client.failure)
        self.assertEqual(client.reply[:2], b"\x05\x00")
        self.assertEqual(client.received, payload)
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["auth"], r["user"], r["bytes_out"], r["bytes_in"]) for r in records],
            [("closed", "gssapi", f"alice@{REALM}", len(payload), len(payload))],
        )
        # After greeting (3 bytes) and the context token, every byte is in
        # RFC 1961 messages; the request's plaintext is not on the wire.
        self.assertEqual(bytes(recording[:4]), b"\x05\x01\x01\x01")
        self.assertIn(b"\x01\x03", bytes(recording))
        return recording

    async def test_confidentiality(self) -> None:
        """
        At confidentiality, neither the request nor the payload is on the
        wire in clear.
        """
        recording = await self.checkProtected(ProtectionLevel.CONFIDENTIALITY)
        self.assertNotIn(b"secret payload", bytes(recording))
        self.assertNotIn(b"127.0.0.1", bytes(recording))

    async def test_integrity(self) -> None:
        """
        At integrity, the payload travels in wrapped tokens (readable, with
        their checksums): what the gateway receives is not the plaintext.
        """
        recording = await self.checkProtected(ProtectionLevel.INTEGRITY)
        self.assertIn(b"secret payload", bytes(recording))
        self.assertGreater(len(recording), 3000 * 56)

    async def test_levelNotAccepted(self) -> None:
        """
        A level the gateway does not accept is answered with the strongest
        level it accepts; the client refuses that one, and nothing is
        relayed.
        """
        gateway = self.gateway(["none", "integrity"])
        sink = startSinkServer(self)
        records = collectSessions(self)
        client = await self.client(gateway.port, ProtectionLevel.CONFIDENTIALITY, destination=sink.port)
        self.assertEqual(
            str(client.failure), "the gateway agreed to protection integrity, not confidentiality"
        )
        self.assertIsNone(client.reply)
        self.assertEqual(sink.connections, [])
        await gateway.sessions.whenEmpty()
        self.assertEqual([(r["outcome"], r["reply"]) for r in records], [("error", None)])

    async def test_principalDenied(self) -> None:
        """
        Rules name principals: alice is permitted, bob is denied with
        0x02, and his principal is in the record.
        """
        rules = (
            '[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\nusers = ["alice@EXAMPLE.TEST"]\n'
            '[[rule]]\naction = "deny"\nmessage = "not alice"\n'
        )
        gateway = self.gateway(["confidentiality"], rules)
        records = collectSessions(self)
        alice = await self.client(gateway.port, ProtectionLevel.CONFIDENTIALITY, payload=b"hi")
        bob = await self.client(gateway.port, ProtectionLevel.CONFIDENTIALITY, user="bob", payload=b"hi")
        self.assertEqual((alice.reply[:2], alice.received), (b"\x05\x00", b"hi"))
        self.assertEqual((bob.reply[:2], bob.received), (b"\x05\x02", b""))
        await gateway.sessions.whenEmpty()
        self.assertEqual(
            [(r["outcome"], r["user"], r["reply"], r["rule"]) for r in records],
            [("closed", f"alice@{REALM}", 0, 1), ("denied", f"bob@{REALM}", 2, 2)],
        )


class ForgedTokenTests(GSSAPITestCase):
    """
    Tokens that are not what they claim are refused, and nothing is
    relayed.
    """

    async def test_garbageToken(self) -> None:
        """
        A context token of garbage gets the abort message (C{01 ff}) and a
        close; the record says the negotiation failed, without the token.
        """
        gateway = self.gateway(["none", "integrity", "confidentiality"])
        records = collectSessions(self)
        client = await connectRaw(gateway.port)
        garbage = b"\x60\x13not a kerberos token"
        client.transport.write(b"\x05\x01\x01" + b"\x01\x01" + len(garbage).to_bytes(2, "big") + garbage)
        self.assertEqual(await client.receiveAll(), b"\x05\x01\x01\xff")
        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual(
            (record["outcome"], record["auth"], record["user"], record["reply"]),
            ("denied", "gssapi", None, 255),
        )
        self.assertIn("GSS-API negotiation failed", record["message"])
        self.assertNotIn("kerberos token", record["message"])

    async def test_replayedToken(self) -> None:
        """
        alice's context token replayed by someone else is refused (the
        Kerberos replay cache) with the abort message; nothing is relayed.
        (The request that would follow needs alice's session key anyway:
        see L{test_tamperedRequest}.)
        """
        gateway = self.gateway(["integrity"])
        port, recording = startRecordingForwarder(self, gateway.port)
        sink = startSinkServer(self)
        await self.client(port, ProtectionLevel.INTEGRITY, destination=sink.port, payload=b"x")
        length = int.from_bytes(recording[5:7], "big")
        contextMessage = bytes(recording[3 : 7 + length])
        self.assertEqual(contextMessage[:2], b"\x01\x01")
        await gateway.sessions.whenEmpty()
        connections = len(sink.connections)
        records = collectSessions(self)
        attacker: RawClient = await connectRaw(gateway.port)
        attacker.transport.write(b"\x05\x01\x01" + contextMessage + b"\x01\x02\x00\x01\x01")
        answer = await attacker.receiveAll()
        # The method selection, Kerberos' error token perhaps, then the abort.
        self.assertEqual((answer[:2], answer[-2:]), (b"\x05\x01", b"\x01\xff"))
        await gateway.sessions.whenEmpty()
        self.assertEqual(len(sink.connections), connections)
        self.assertEqual([(r["outcome"], r["user"], r["reply"]) for r in records], [("denied", None, 255)])
        self.assertIn("Request is a replay", records[0]["message"])

    async def test_tamperedRequest(self) -> None:
        """
        A sealed request changed on the way fails its integrity check: the
        connection is closed, the record says why, nothing is relayed.
        """
        gateway = self.gateway(["integrity"])
        sink = startSinkServer(self)
        records = collectSessions(self)
        request = socks5Connect(b"127.0.0.1", sink.port)[3:]
        client = TamperingClient(
            "rcmd@localhost", self.realm.ccaches["alice"], ProtectionLevel.INTEGRITY, request, b"x"
        )
        reactor.connectTCP("127.0.0.1", gateway.port, ClientFactory.forProtocol(lambda: client))
        await client.ended
        self.assertIsNone(client.reply)
        await gateway.sessions.whenEmpty()
        self.assertEqual(sink.connections, [])
        self.assertEqual(
            [(r["outcome"], r["user"], r["destination"]) for r in records],
            [("error", f"alice@{REALM}", None)],
        )
        self.assertIn("GSS-API protection failed: a token failed its check", records[0]["message"])


class TamperingClient(GSSAPISOCKSClient):
    """
    A client whose sealed request has one byte of its plaintext changed
    (the last byte of the first message: the port's low octet).
    """

    def _send(self, data: bytes) -> None:
        assert self.protection is not None
        sealed = bytearray(self.protection.seal(data))
        sealed[-1] ^= 0x01
        self.transport.write(bytes(sealed))


class StartTests(GSSAPITestCase):
    """
    The keytab is checked when the gateway starts.
    """

    async def test_wrongKeytab(self) -> None:
        """
        A keytab without the service's key stops twistd with status 1 and
        one line naming the key and the keytab, without a traceback.
        """
        other = self.realm.addKeytab("other/localhost", "other.keytab")
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as stream:
            stream.write(f'[auth]\nmethods = ["gssapi"]\ngssapi-keytab = "{other}"\n')
        directory = self.mktemp()
        os.makedirs(directory)
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "-n",
                "--pidfile=",
                "socksgate",
                "-c",
                path,
            ],
            env=self.realm.env,
            path=directory,
        )
        self.assertEqual(code, 1, out + err)
        lines = [line for line in (out + err).decode().splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"{path}:3: [auth] gssapi-keytab: no key for 'rcmd' in '{other}'", lines[0])
        self.assertNotIn("Traceback", lines[0])
