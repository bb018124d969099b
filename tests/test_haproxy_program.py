"""
The C{haproxy:} listener behind Debian's real HAProxy, which sends a v2
PROXY header (C{send-proxy-v2}) for every connection it passes on.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from .haproxy_helpers import (
    PROXIED_LISTENER,
    startHalfCloseEcho,
    startHAProxy,
    startProxiedGateway,
    waitForRecords,
)
from .helpers import LoopbackTestCase, RawClient, collectSessions, freePort, socks5Connect

#: The client's own loopback address: HAProxy's connections to the
#: gateway come from 127.0.0.1, so the two cannot be confused.
CLIENT_HOST = "127.0.0.5"

#: Only the client's address may use the gateway.
ONLY_CLIENT = f"""
[[rule]]
action = "permit"
clients = ["{CLIENT_HOST}"]
listeners = ["{PROXIED_LISTENER}"]
"""

HAPROXY_CONFIG = """\
global
    maxconn 100

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen socks
    bind 127.0.0.1:{port}
    server gateway 127.0.0.1:{gatewayPort} send-proxy-v2
"""


class HAProxyProgramTests(LoopbackTestCase):
    """
    A SOCKS client, HAProxy in TCP mode, the gateway's C{haproxy:}
    listener, and a destination: all on loopback.
    """

    timeout = 60

    async def test_halfClosedEchoThroughHAProxy(self) -> None:
        """
        20 MB sent through HAProxy and the gateway to a destination that
        echoes until the client's FIN all come back after that FIN; the
        policy permitted the client's own address (not HAProxy's), and the
        session record names the client's address and port as HAProxy saw
        them.
        """
        records = collectSessions(self)
        gateway = await startProxiedGateway(self, ONLY_CLIENT)
        echoPort, _ = startHalfCloseEcho(self)
        port = freePort()
        await startHAProxy(self, HAPROXY_CONFIG.format(port=port, gatewayPort=gateway.port), port)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(CLIENT_HOST, 0))
        client = await connectProtocol(endpoint, RawClient())
        local = client.transport.getHost()
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echoPort, atyp=1))
        self.assertEqual(await client.receive(2), b"\x05\x00")
        self.assertEqual((await client.receive(10))[:2], b"\x05\x00")
        payload = os.urandom(20_000_000)
        client.transport.write(payload)
        client.transport.loseWriteConnection()
        echoed = await client.receiveAll()
        self.assertEqual(len(echoed), len(payload))
        self.assertTrue(echoed == payload, "the echo differs")
        await client.closed
        [record] = [record for record in await waitForRecords(records, 1) if record["command"]]
        self.assertEqual(
            (record["client"], record["outcome"], record["bytes_out"], record["bytes_in"]),
            (f"{CLIENT_HOST}:{local.port}", "closed", len(payload), len(payload)),
        )
