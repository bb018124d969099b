"""
A real MIT Kerberos realm for the GSS-API tests, and a SOCKS5 client that
authenticates with GSS-API through L{socksgate.gssclient}.

The realm (C{EXAMPLE.TEST}) is made by C{k5test}, which drives Debian's
C{kdb5_util}, C{kadmin.local}, C{krb5kdc} and C{kinit} in a temporary
directory: its own C{krb5.conf} and C{kdc.conf}, its KDC on a free loopback
port, the keytab of the gateway's C{rcmd/localhost} and credential caches
for C{alice} and C{bob}.  Nothing of the system's Kerberos configuration is
read or touched: the processes get C{KRB5_CONFIG}, C{KRB5_KDC_PROFILE},
C{KRB5CCNAME} and C{KRB5_KTNAME} for it, and this process's own library
the same while each test runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from socksgate.gssclient import ClientNegotiated, GSSAPIClientNegotiator, initiatorContext
from socksgate.gssstream import MessageProtection
from socksgate.wire import ProtectionLevel

try:
    import gssapi  # noqa: F401
    import k5test
except ImportError as missing:
    UNAVAILABLE: str | None = f"GSS-API tests need the gssapi and k5test packages: {missing}"
else:
    UNAVAILABLE = None
if UNAVAILABLE is None and shutil.which("krb5kdc", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
    UNAVAILABLE = "GSS-API tests need MIT Kerberos' KDC (Debian krb5-kdc, krb5-admin-server, krb5-user)"

REALM = "EXAMPLE.TEST"
SERVICE_PRINCIPAL = "rcmd/localhost"

#: The variables this process's Kerberos library reads, set while a realm runs.
_ENVIRONMENT = ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5RCACHEDIR", "KRB5CCNAME", "KRB5_KTNAME")


def _freeLoopbackPort() -> int:
    """
    A loopback port free for both UDP and TCP right now (the KDC listens
    on both).
    """
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def _startRealm() -> Any:
    """
    A k5test realm whose KDC listens on a free loopback port; a KDC that
    lost a race for its port is tried again on another, a few times.
    """
    for attempt in range(5):
        port = _freeLoopbackPort()
        listen = f"127.0.0.1:{port}"
        try:
            return k5test.K5Realm(
                realm=REALM,
                portbase=port,
                create_user=False,
                create_host=False,
                get_creds=False,
                krb5_conf={
                    "libdefaults": {"rdns": "false", "dns_canonicalize_hostname": "false"},
                    "realms": {"$realm": {"kdc": listen}},
                },
                kdc_conf={"realms": {"$realm": {"kdc_listen": listen, "kdc_tcp_listen": listen}}},
            )
        except Exception:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


class KerberosRealm:
    """
    A running test realm.

    @ivar keytab: the gateway's keytab (C{rcmd/localhost}).
    @ivar ccaches: the credential cache of each user, by name.
    @ivar env: the environment for a child process acting as C{alice}.
    """

    def __init__(self) -> None:
        self._realm = _startRealm()
        try:
            realm = self._realm
            self.directory = realm.tmpdir
            realm.addprinc(SERVICE_PRINCIPAL)
            self.keytab = os.path.join(self.directory, "gateway.keytab")
            realm.extract_keytab(SERVICE_PRINCIPAL, self.keytab)
            self.ccaches = {}
            for user in ("alice", "bob"):
                realm.addprinc(f"{user}@{REALM}", f"{user}-password")
                ccache = os.path.join(self.directory, f"{user}.ccache")
                realm.kinit(f"{user}@{REALM}", f"{user}-password", flags=["-c", ccache])
                self.ccaches[user] = ccache
        except BaseException:
            self._realm.stop()
            raise
        self.env = dict(os.environ, **realm.env)
        self.env.update(KRB5CCNAME=self.ccaches["alice"], KRB5_KTNAME=self.keytab)

    def activate(self, testCase: Any) -> None:
        """
        Point this process's Kerberos library at the realm while
        C{testCase} runs: its configuration, and no default keytab or
        credential cache (the gateway and the clients name theirs).
        """
        saved = {name: os.environ.get(name) for name in _ENVIRONMENT}

        def restore() -> None:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        testCase.addCleanup(restore)
        os.environ.update(
            {name: self.env[name] for name in ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5RCACHEDIR")}
        )
        os.environ["KRB5_KTNAME"] = os.path.join(self.directory, "no-default.keytab")
        os.environ["KRB5CCNAME"] = "FILE:" + os.path.join(self.directory, "no-default.ccache")

    def addKeytab(self, principal: str, name: str) -> str:
        """
        Make another service principal and a keytab holding only its key.
        """
        path = os.path.join(self.directory, name)
        self._realm.addprinc(principal)
        self._realm.extract_keytab(principal, path)
        return path

    def stop(self) -> None:
        """
        Stop the KDC and remove the directory.
        """
        self._realm.stop()


_shared: KerberosRealm | None = None


def sharedRealm() -> KerberosRealm:
    """
    The realm of this test run: made on first use (about half a second),
    stopped when the process exits.
    """
    global _shared
    if _shared is None:
        _shared = KerberosRealm()
        atexit.register(_shared.stop)
    return _shared


@implementer(IHalfCloseableProtocol)
class Recorder(Protocol):
    """
    One side of a recording forwarder: what the client sends is recorded
    as it reaches the gateway.
    """

    peer: Recorder | None = None

    def __init__(self, record: bytearray | None) -> None:
        self.record = record
        self.buffered = b""

    def connectionMade(self) -> None:
        if self.peer is not None and self.buffered:
            self.transport.write(self.buffered)

    def dataReceived(self, data: bytes) -> None:
        if self.record is not None:
            self.record += data
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        elif self.peer is not None:
            self.peer.buffered += data

    def readConnectionLost(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseWriteConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


def startRecordingForwarder(testCase: Any, port: int) -> tuple[int, bytearray]:
    """
    Listen on loopback and forward every connection to C{port}, recording
    the bytes clients send: exactly what the gateway receives.

    @return: the forwarder's port and the recording.
    """
    recording = bytearray()

    class Forward(Factory):
        def buildProtocol(self, addr: Any) -> Protocol:
            inbound = Recorder(recording)
            outbound = Recorder(None)
            inbound.peer, outbound.peer = outbound, inbound
            connector = ClientFactory.forProtocol(lambda: outbound)
            reactor.connectTCP("127.0.0.1", port, connector)
            return inbound

    listening = reactor.listenTCP(0, Forward(), interface="127.0.0.1")
    testCase.addCleanup(listening.stopListening)
    return listening.getHost().port, recording


class GSSAPISOCKSClient(Protocol):
    """
    A SOCKS5 client that offers only GSS-API, negotiates with
    L{GSSAPIClientNegotiator}, sends a CONNECT (sealed at integrity or
    confidentiality), then C{payload} (and a FIN if C{finish}), and
    collects what comes back (unsealed) until the gateway closes.

    @ivar reply: the SOCKS5 reply (its first two octets), once received.
    @ivar received: what came back after the reply.
    @ivar ended: fires with the client once the connection is closed.
    """

    def __init__(
        self,
        service: str,
        ccache: str,
        level: ProtectionLevel,
        request: bytes,
        payload: bytes,
        nec: bool = False,
        finish: bool = True,
    ) -> None:
        self.service, self.ccache, self.level, self.nec = service, ccache, level, nec
        self.finish = finish
        self.request, self.payload = request, payload
        self.stage = "method"
        self.buffer = b""
        self.reply: bytes | None = None
        self.received = b""
        self.failure: Exception | None = None
        self.protection: MessageProtection | None = None
        self.negotiator: GSSAPIClientNegotiator | None = None
        self.ended: Deferred[GSSAPISOCKSClient] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"\x05\x01\x01")

    def _send(self, data: bytes) -> None:
        self.transport.write(self.protection.seal(data) if self.protection else data)

    def dataReceived(self, data: bytes) -> None:
        if self.stage == "method":
            self.buffer += data
            if len(self.buffer) < 2:
                return
            method, rest = self.buffer[:2], self.buffer[2:]
            self.buffer = b""
            if method != b"\x05\x01":
                self.failure = ValueError(f"method selection {method!r}")
                self.transport.loseConnection()
                return
            self.stage = "gssapi"
            context = initiatorContext(self.service, self.ccache)
            self.negotiator = GSSAPIClientNegotiator(
                reactor, context, self.transport.write, self.level, self.nec
            )
            self.negotiator.start().addCallbacks(self._negotiated, self._refused)
            if rest:
                self.negotiator.dataReceived(rest)
        elif self.stage == "gssapi":
            assert self.negotiator is not None
            self.negotiator.dataReceived(data)
        else:
            self._relayed(data)

    def _negotiated(self, result: ClientNegotiated) -> None:
        self.protection = result.protection
        self.stage = "request"
        self._send(self.request)
        if result.trailing:
            self._relayed(result.trailing)

    def _refused(self, failure: Failure) -> None:
        self.failure = failure.value
        self.transport.loseConnection()

    def _relayed(self, data: bytes) -> None:
        if self.protection is not None:
            data = self.protection.unseal(data)
        if self.stage == "request":
            self.buffer += data
            if len(self.buffer) < 10:
                return
            self.reply, data = self.buffer[:10], self.buffer[10:]
            self.buffer = b""
            self.stage = "relay"
            if self.reply[1] != 0:
                return
            self._send(self.payload)
            if self.finish:
                self.transport.loseWriteConnection()
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.ended.callback(self)
