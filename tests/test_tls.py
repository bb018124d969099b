"""
C{ssl:} listeners: SOCKS5 over TLS for CONNECT, BIND and the control
connection of UDP ASSOCIATE, in-process through L{buildService} with a
Twisted TLS client, and C{twistd socksgate} with socat's TLS in front of
curl; every session ends with a clean TLS close, and twistd's log stays
free of tracebacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from socksgate.tap import Options
from socksgate.testing import startEchoServer, startSourceServer

from .haproxy_helpers import startProxiedGateway, waitForRecords
from .helpers import CollectingProcess, LoopbackTestCase, collectSessions, socks5Connect, startProcess
from .test_bind import connectFrom, socks5Bind
from .test_udprelay import UDPEcho, UDPPeer, associateRequest, openUDP, toIPv4
from .tls_helpers import TLSClient, connectTLS, tlsListener, writeCertificate

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]

#: The size of the files relayed.
MEGABYTE = 1024 * 1024


async def heldBack(service: Any, source: Any) -> None:
    """
    Wait (at most ten seconds, in 200 steps) until the one session of
    C{service} has paused its destination because its client's TCP
    connection (under TLS) is full, and the destination C{source} has sent
    nothing since the last look: the client's kernel buffers are full too.
    """
    [protocol] = service.sessions.open
    socket = protocol.transport.transport
    sent = -1
    for _ in range(200):
        if socket.producerPaused and source.paused and source.sent == sent:
            return
        sent = source.sent
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("the destination was never held back")


class TLSListenerTests(LoopbackTestCase):
    """
    A gateway built by L{buildService} with one C{ssl:} listener, used by
    a SOCKS5 client over TLS that checks the gateway's certificate.
    """

    async def startTLSGateway(self) -> int:
        """
        Start the gateway with a fresh test certificate and collect its
        records in C{self.records}.

        @return: the port of its C{ssl:} listener.
        """
        self.records = collectSessions(self)
        gateway = await startProxiedGateway(self, listener=tlsListener(writeCertificate(self.mktemp())))
        self.service = gateway.service
        return gateway.port

    async def connectThrough(self, port: int, destination: int) -> TLSClient:
        """
        Connect over TLS to the gateway on C{port} and CONNECT to
        C{localhost:destination}; check the success reply.
        """
        client = await connectTLS(port)
        client.transport.write(socks5Connect(b"localhost", destination))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        self.assertEqual((await client.receive(10))[:2], b"\x05\x00")
        return client

    async def test_connectDestinationCloses(self) -> None:
        """
        A destination that sends 1 MB and closes: the client gets every
        byte, then the gateway's TLS close_notify (its connection ends
        with L{ConnectionDone}, not a TLS session cut short under it), and
        the record counts the bytes.
        """
        port = await self.startTLSGateway()
        source = startSourceServer(self, MEGABYTE)
        client = await self.connectThrough(port, source.port)
        received = await client.receiveAll()
        await client.closed
        self.assertEqual(len(received), MEGABYTE)
        self.assertIsNotNone(client.reason)
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        [record] = await waitForRecords(self.records, 1)
        self.assertEqual((record["command"], record["bytes_in"]), ("connect", MEGABYTE))

    async def test_connectClientCloses(self) -> None:
        """
        Bytes pass both ways to an echo server; the client's TLS close
        ends the session, outcome C{closed}.
        """
        port = await self.startTLSGateway()
        echo = startEchoServer(self)
        client = await self.connectThrough(port, echo.port)
        client.transport.write(b"over TLS")
        self.assertEqual(await client.receive(8), b"over TLS")
        client.transport.loseConnection()
        await client.closed
        [record] = await waitForRecords(self.records, 1)
        self.assertEqual((record["bytes_out"], record["bytes_in"]), (8, 8))
        self.assertEqual(record["outcome"], "closed")

    async def test_clientLeavesMidTransfer(self) -> None:
        """
        A client that drops its connection while a destination is still
        sending (8 MB): the session ends and both connections close.
        """
        port = await self.startTLSGateway()
        source = startSourceServer(self, 8 * MEGABYTE)
        client = await self.connectThrough(port, source.port)
        self.assertEqual(len(await client.receive(65536)), 65536)
        client.transport.abortConnection()
        await client.closed
        await self.service.sessions.whenEmpty()
        await source.connections[0].closed
        [record] = await waitForRecords(self.records, 1)
        self.assertLess(record["bytes_in"], 8 * MEGABYTE)

    async def test_clientClosesWhileBackedUp(self) -> None:
        """
        A client that reads nothing until the destination (which never
        stops sending) is held back by the gateway, then closes its TLS session
        (close_notify) and reads on: the gateway closes the client's
        connection and the destination's, instead of resuming the
        destination for a TLS session that has ended.
        """
        port = await self.startTLSGateway()
        source = startSourceServer(self, 2**40)
        client = await self.connectThrough(port, source.port)
        client.transport.pauseProducing()
        await heldBack(self.service, source.connections[0])
        client.transport.loseConnection()
        client.transport.resumeProducing()
        await client.closed
        # Without the fix the destination stays open: fail, don't hang.
        await source.connections[0].closed.addTimeout(10, reactor)
        await self.service.sessions.whenEmpty()
        [record] = await waitForRecords(self.records, 1)
        self.assertEqual(record["outcome"], "closed")

    async def test_bind(self) -> None:
        """
        SOCKS5 BIND over TLS: both replies, bytes both ways with the peer,
        and the peer's close reaches the client as a clean TLS close.
        """
        port = await self.startTLSGateway()
        client = await connectTLS(port)
        client.transport.write(socks5Bind())
        self.assertEqual(await client.receive(2), b"\x05\x00")
        first = await client.receive(10)
        self.assertEqual(first[:4], b"\x05\x00\x00\x01")
        peer = await connectFrom("127.0.0.1", int.from_bytes(first[8:10], "big"))
        self.assertEqual((await client.receive(10))[:2], b"\x05\x00")
        peer.transport.write(b"from the peer")
        self.assertEqual(await client.receive(13), b"from the peer")
        client.transport.write(b"from the client")
        self.assertEqual(await peer.receive(15), b"from the client")
        peer.transport.loseConnection()
        await client.closed
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        [record] = await waitForRecords(self.records, 1)
        self.assertEqual(record["command"], "bind")

    async def test_udpAssociate(self) -> None:
        """
        UDP ASSOCIATE with its control connection over TLS: a datagram
        reaches a UDP echo server through the relay and its answer comes
        back; closing the control connection ends the association.
        """
        port = await self.startTLSGateway()
        echo = openUDP(self, UDPEcho())
        peer = openUDP(self, UDPPeer())
        control = await connectTLS(port)
        control.transport.write(associateRequest())
        self.assertEqual(await control.receive(2), b"\x05\x00")
        reply = await control.receive(10)
        self.assertEqual(reply[:4], b"\x05\x00\x00\x01")
        relay = ("127.0.0.1", int.from_bytes(reply[8:10], "big"))
        peer.send(toIPv4(echo.port) + b"ping", relay)
        data, sender = await peer.next()
        self.assertEqual((data, sender), (toIPv4(echo.port) + b"ping", relay))
        control.transport.loseConnection()
        await control.closed
        [record] = await waitForRecords(self.records, 1)
        self.assertEqual(record["command"], "udp")
        await self.service.sessions.whenEmpty()


def serveFile(testCase: LoopbackTestCase, content: bytes) -> str:
    """
    Serve C{content} at C{/file} of a twisted.web server on loopback,
    stopped with the test.

    @return: its URL, with the name C{localhost}.
    """
    root = Resource()
    root.putChild(b"file", Data(content, "application/octet-stream"))
    site = Site(root)
    site.noisy = False
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    testCase.addCleanup(listening.stopListening)
    return f"http://localhost:{listening.getHost().port}/file"


def endProcess(transport: Any, process: CollectingProcess) -> Deferred[Any]:
    """
    Kill a child process of the test unless it has ended, and wait until
    it has (a clean-up: the reactor is left with none of its pipes).
    """
    if not process.ended.called:
        transport.signalProcess("KILL")
    return process.ended


async def waitForText(path: str, pattern: bytes) -> re.Match[bytes]:
    """
    Wait (at most ten seconds, in 200 steps) until the file C{path} holds
    a match of C{pattern}; fail if it never does.
    """
    text = b""
    for _ in range(200):
        if os.path.exists(path):
            with open(path, "rb") as stream:
                text = stream.read()
            match = re.search(pattern, text)
            if match is not None:
                return match
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"{pattern!r} never appeared in {path}: {text!r}")


class TwistdTLSTests(LoopbackTestCase):
    """
    C{twistd socksgate --listen ssl:...} as administrators run it, used by
    curl through socat's C{OPENSSL:} client and by a Twisted TLS client.
    """

    timeout = 90

    async def startTwistd(self) -> tuple[int, str, str]:
        """
        Start twistd with an C{ssl:} listener, its log in a file
        (C{--logfile}) and a session log, in a fresh directory.

        @return: the listener's port, and the paths of twistd's log and the
            session log.
        """
        directory = os.path.abspath(self.mktemp())
        certificate = writeCertificate(directory)
        logFile = os.path.join(directory, "twistd.log")
        accessLog = os.path.join(directory, "access.log")
        self.transport, self.process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", f"--logfile={logFile}", "socksgate",
                      "--listen", tlsListener(certificate), "--access-log", accessLog],
            b"",
        )  # fmt: skip
        self.addCleanup(endProcess, self.transport, self.process)
        match = await waitForText(logFile, rb"\(TLS\) starting on (\d+)")
        return int(match.group(1)), logFile, accessLog

    async def startSocat(self, port: int) -> int:
        """
        Start socat listening on loopback, wrapping each connection in TLS
        to C{port} (C{OPENSSL:127.0.0.1:PORT,verify=0}), killed with the
        test.

        @return: the port socat listens on.
        """
        transport, process = await startProcess(
            self,
            ["socat", "-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1,fork,reuseaddr",
             f"OPENSSL:127.0.0.1:{port},verify=0"],
            b"listening on ",
        )  # fmt: skip
        self.addCleanup(endProcess, transport, process)
        match = re.search(rb"listening on AF=2 127\.0\.0\.1:(\d+)", process.output)
        assert match is not None, process.output
        return int(match.group(1))

    async def curl(self, proxy: int, url: str, *options: str) -> bytes:
        """
        Fetch C{url} with curl through the SOCKS5 proxy on C{proxy}
        (names sent unresolved); fail unless curl succeeds.
        """
        out, err, code = await getProcessOutputAndValue(
            "curl", ["--silent", "--show-error", "--max-time", "30", "--socks5-hostname",
                     f"127.0.0.1:{proxy}", *options, url],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        return out

    async def test_sessionsLeaveTheLogClean(self) -> None:
        """
        Through socat's TLS: curl fetches 1 MB over HTTP/1.1 (curl closes
        first) and over HTTP/1.0 (the web server closes first), both with
        the right digest, and a curl that stops reading mid-transfer
        (16 MB) is dropped; a Twisted TLS client gets 1 MB from a server
        that closes, with a clean TLS close.  After SIGTERM, twistd's
        output and log file hold no "Unhandled Error" or "Traceback", and
        the session log has the four sessions.
        """
        content = os.urandom(MEGABYTE)
        url = serveFile(self, content)
        bigURL = serveFile(self, os.urandom(16 * MEGABYTE))
        source = startSourceServer(self, MEGABYTE)
        port, logFile, accessLog = await self.startTwistd()
        socatPort = await self.startSocat(port)
        digest = hashlib.sha256(content).hexdigest()
        self.assertEqual(hashlib.sha256(await self.curl(socatPort, url)).hexdigest(), digest)
        fetched = await self.curl(socatPort, url, "--http1.0")
        self.assertEqual(hashlib.sha256(fetched).hexdigest(), digest)
        out, err, code = await getProcessOutputAndValue(
            "sh", ["-c", f'curl --silent --socks5-hostname 127.0.0.1:{socatPort} '
                         f'"{bigURL}" | head -c 65536 | wc -c'],
            env=dict(os.environ, ALL_PROXY="", NO_PROXY=""),
        )  # fmt: skip
        self.assertEqual(out.strip(), b"65536", err)

        client = await connectTLS(port)
        client.transport.write(socks5Connect(b"localhost", source.port))
        received = await client.receiveAll()
        await client.closed
        self.assertEqual(len(received), 12 + MEGABYTE)

        await waitForText(accessLog, rb"(?s)(\n.*){4}")
        self.transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await self.process.ended, (None, signal.SIGTERM), self.process.output)
        with open(logFile, "rb") as stream:
            log = stream.read()
        self.assertIn(b"Server Shut Down.", log)
        for text in (log, self.process.output):
            self.assertNotIn(b"Unhandled Error", text)
            self.assertNotIn(b"Traceback", text)
        with open(accessLog, "rb") as stream:
            records = [json.loads(line) for line in stream.read().splitlines()]
        self.assertEqual(len(records), 4)
        self.assertEqual({record["reply"] for record in records}, {0})
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)


class WorkersTests(SynchronousTestCase):
    """
    C{--workers N} with an C{ssl:} listener.
    """

    def test_refused(self) -> None:
        """
        A good C{ssl:} listener (its files check out) is still refused with
        several workers, with a usage error that names it and says which
        listeners workers share; with one worker it is accepted.
        """
        listen = ["--listen", tlsListener(writeCertificate(self.mktemp()))]
        error = self.assertRaises(SystemExit, Options().parseOptions, [*listen, "--workers", "2"])
        self.assertIn(f"--workers 2: the listener {listen[1]} cannot be shared", str(error))
        self.assertIn("worker processes share tcp:, tcp6:, unix: and systemd: listeners", str(error))
        options = Options()
        options.parseOptions([*listen, "--workers", "1"])
        self.assertEqual(options["configuration"].server.listen, (listen[1],))
