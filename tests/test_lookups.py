"""
Name lookups and bcrypt checks cannot starve each other (each has a thread
pool of its own, apart from the reactor's), and one client address cannot
hold more than a few lookups under way.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

import bcrypt
from twisted.cred.credentials import UsernamePassword
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase

from socksgate import htpasswd as htpasswdModule
from socksgate.htpasswd import BCRYPT_THREADS, HtpasswdChecker
from socksgate.lookups import LOOKUPS_PER_CLIENT, NAME_THREADS, LookupLimit, gatewayResolver
from socksgate.outbound import resolve
from socksgate.testing import startEchoServer, startGateway

from .helpers import LoopbackTestCase, RawClient, collectSessions, socks5Connect
from .test_udprelay import HeldResolver

#: Names whose lookups the stand-in getaddrinfo holds until released.
NEVER = ".never.test"


class Gate:
    """
    Holds the threads that enter it until released, counting them.
    """

    def __init__(self) -> None:
        self.entered = 0
        self._lock = threading.Lock()
        self._open = threading.Event()

    def hold(self) -> None:
        """
        Count this thread in, and wait (at most 30 s) to be released.
        """
        with self._lock:
            self.entered += 1
        self._open.wait(30)

    def release(self) -> None:
        """
        Let every held thread go.
        """
        self._open.set()


async def waitUntil(condition: Callable[[], bool]) -> None:
    """
    Let the reactor run until C{condition} holds (ten seconds at most).
    """
    for _ in range(500):
        if condition():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("the condition never held")


class PoolTests(LoopbackTestCase):
    """
    bcrypt checks and name lookups run in pools of their own.
    """

    def htpasswdFile(self) -> str:
        """
        An htpasswd file with alice's bcrypt hash (cost 4, to be quick).
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as stream:
            stream.write(b"alice:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(4)) + b"\n")
        return path

    async def test_bcryptDespiteStuckLookups(self) -> None:
        """
        With every name thread held by a lookup that never answers (and
        more waiting), a bcrypt check completes, and so does work in the
        reactor's own pool.
        """
        gate = Gate()
        self.addCleanup(gate.release)
        realGetaddrinfo = socket.getaddrinfo

        def getaddrinfo(host: Any, *rest: Any) -> Any:
            if str(host).endswith(NEVER):
                gate.hold()
                raise socket.gaierror(socket.EAI_NONAME, "no such name")
            return realGetaddrinfo(host, *rest)

        self.patch(socket, "getaddrinfo", getaddrinfo)
        resolver = gatewayResolver(reactor)
        lookups = [
            resolve(resolver, reactor, f"host{number}{NEVER}", 60).addErrback(lambda failure: None)
            for number in range(NAME_THREADS + 4)
        ]
        await waitUntil(lambda: gate.entered == NAME_THREADS)

        checker = HtpasswdChecker(self.htpasswdFile(), reactor)
        checked = checker.requestAvatarId(UsernamePassword(b"alice", b"secret"))
        self.assertEqual(await checked.addTimeout(10, reactor), "alice")
        self.assertEqual(await deferToThread(lambda: "free").addTimeout(10, reactor), "free")
        self.assertEqual(gate.entered, NAME_THREADS)
        gate.release()
        for lookup in lookups:
            await lookup

    async def test_lookupsDespiteStuckBcrypt(self) -> None:
        """
        With every bcrypt thread held by a check (and more waiting), a name
        lookup completes.
        """
        gate = Gate()
        self.addCleanup(gate.release)

        def checkpw(password: bytes, hashed: bytes) -> bool:
            gate.hold()
            return False

        self.patch(htpasswdModule.bcrypt, "checkpw", checkpw)
        checker = HtpasswdChecker(self.htpasswdFile(), reactor)
        # More checks than the reactor's pool has threads, too.
        count = BCRYPT_THREADS + reactor.getThreadPool().max + 4
        checks = [
            checker.requestAvatarId(UsernamePassword(b"alice", b"guess")).addErrback(lambda failure: None)
            for _ in range(count)
        ]
        await waitUntil(lambda: gate.entered >= BCRYPT_THREADS)

        addresses = await resolve(gatewayResolver(reactor), reactor, "localhost", 10)
        self.assertTrue(any(address.is_loopback for address in addresses), addresses)
        self.assertEqual(gate.entered, BCRYPT_THREADS)
        gate.release()
        for check in checks:
            await check


class PerClientTests(LoopbackTestCase):
    """
    A client address may have at most L{LOOKUPS_PER_CLIENT} lookups under
    way; other clients are not affected.
    """

    async def connect(self, port: int, bindHost: str, name: bytes, echoPort: int) -> RawClient:
        """
        Send a SOCKS5 CONNECT to C{name} from C{bindHost}.
        """
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(bindHost, 0))
        client = await connectProtocol(endpoint, RawClient())
        self.addCleanup(lambda: client.closed.called or client.transport.abortConnection())
        client.transport.write(socks5Connect(name, echoPort))
        return client

    async def test_limit(self) -> None:
        """
        The lookup beyond the limit gets 0x01 at once, with a record that
        says why; a client on another address is still looked up; once the
        lookups complete, the client may look up again.
        """
        echo = startEchoServer(self)
        records = collectSessions(self)
        resolver = HeldResolver(["127.0.0.1"])
        gateway = startGateway(self, resolver=resolver)
        held = [
            await self.connect(gateway.port, "127.0.0.1", b"held%d.test" % number, echo.port)
            for number in range(LOOKUPS_PER_CLIENT)
        ]
        await waitUntil(lambda: len(resolver.asked) == LOOKUPS_PER_CLIENT)

        refused = await self.connect(gateway.port, "127.0.0.1", b"one-more.test", echo.port)
        self.assertEqual(await refused.receiveAll(), b"\x05\x00\x05\x01\x00\x01" + b"\x00" * 6)
        self.assertEqual(
            (records[-1]["outcome"], records[-1]["reply"], records[-1]["message"]),
            ("failed", 1, f"{LOOKUPS_PER_CLIENT} name lookups already under way for 127.0.0.1"),
        )
        other = await self.connect(gateway.port, "127.0.0.2", b"other.test", echo.port)
        await waitUntil(lambda: "other.test" in resolver.asked)

        resolver.answer()
        for client in held + [other]:
            self.assertEqual((await client.receive(12))[:4], b"\x05\x00\x05\x00")
            client.transport.loseConnection()
            await client.closed
        self.assertEqual(gateway.factory.lookups.underWay(ip_address("127.0.0.1")), 0)
        again = await self.connect(gateway.port, "127.0.0.1", b"again.test", echo.port)
        await waitUntil(lambda: "again.test" in resolver.asked)
        resolver.answer()
        self.assertEqual((await again.receive(12))[:4], b"\x05\x00\x05\x00")


class LookupLimitTests(SynchronousTestCase):
    """
    L{LookupLimit} on its own.
    """

    def test_countedUntilComplete(self) -> None:
        """
        A lookup counts until the resolver completes it, even when the
        request that asked for it has given up waiting.
        """
        held = HeldResolver(["127.0.0.1"])
        limit = LookupLimit(held, perClient=1)
        client = ip_address("192.0.2.1")
        clock = Clock()
        waiting: Deferred[Any] = resolve(limit.forClient(client), clock, "slow.test", 1)
        failures: list[Any] = []
        waiting.addErrback(failures.append)
        clock.advance(2)
        self.assertEqual(len(failures), 1)
        self.assertEqual(limit.underWay(client), 1)
        held.answer()
        self.assertEqual(limit.underWay(client), 0)
