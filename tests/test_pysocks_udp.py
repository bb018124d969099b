"""
A real UDP client through the gateway: PySocks' C{socksocket} with
C{SOCK_DGRAM}, which asks for UDP ASSOCIATE, sends its datagrams to the
relay and reads the answers' SOCKS UDP header.

PySocks blocks, so it runs in a thread while the reactor serves it.
"""

from __future__ import annotations

import socket
from typing import Any

import socks
from twisted.internet.threads import deferToThread

from socksgate.testing import StaticResolver, startGateway

from .helpers import LoopbackTestCase, collectSessions
from .test_udprelay import UDPEcho, openUDP


def exchange(
    gatewayPort: int, destinations: list[tuple[str, int]], payload: bytes
) -> list[tuple[bytes, Any]]:
    """
    Send C{payload} to each destination through the gateway with PySocks,
    reading each answer, then close.

    @return: each answer's payload and the sender PySocks reports.
    """
    client = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    client.set_proxy(socks.SOCKS5, "127.0.0.1", gatewayPort)
    client.settimeout(10)
    answers = []
    try:
        # Bound before the first datagram: the association is made here,
        # from a loopback address.
        client.bind(("127.0.0.1", 0))
        for destination in destinations:
            client.sendto(payload, destination)
            answers.append(client.recvfrom(65535))
    finally:
        client.close()
    return answers


class PySocksUDPTests(LoopbackTestCase):
    """
    PySocks as a UDP client of the gateway.
    """

    async def test_echoByAddressAndName(self) -> None:
        """
        PySocks echoes datagrams off a UDP echo server by IPv4 address and
        by a name it leaves to the gateway (C{rdns}), and reads answers
        from the echo server's address; the gateway's record counts them.
        """
        records = collectSessions(self)
        resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
        gateway = startGateway(self, resolver=resolver)
        echo = openUDP(self, UDPEcho())
        destinations = [("127.0.0.1", echo.port), ("echo.test", echo.port), ("127.0.0.1", echo.port)]
        answers = await deferToThread(exchange, gateway.port, destinations, b"hello pysocks")
        self.assertEqual(answers, [(b"hello pysocks", ("127.0.0.1", echo.port))] * 3)
        self.assertEqual(echo.payloads, [b"hello pysocks"] * 3)
        self.assertEqual(resolver.asked, ["echo.test"])
        await gateway.sessions.whenEmpty()
        [record] = records
        self.assertEqual((record["command"], record["outcome"]), ("udp", "closed"))
        self.assertEqual((record["datagrams_out"], record["datagrams_in"]), (3, 3))
        self.assertEqual(record["bytes_in"], 3 * len(b"hello pysocks"))
