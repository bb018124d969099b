"""
Tests for L{socksgate.service.GatewayService}, with the real reactor on
ephemeral loopback ports: one listener for each description, sharing one
policy and one session table, reloads applied to every listener, and a stop
that closes listeners, then sessions, then the session log.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher
from zope.interface import implementer

from socksgate.accesslog import AccessLogService
from socksgate.config import loadConfig, parseConfig
from socksgate.interfaces import IAccessPolicy
from socksgate.policy import PERMIT, Decision
from socksgate.rules import RulePolicy
from socksgate.service import GatewayService, buildService
from socksgate.testing import startEchoServer

from .helpers import LoopbackTestCase, connectRaw, socks5Connect

#: Two listeners on ephemeral ports of two loopback addresses.
LISTENERS = ("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.2")

SETTINGS = f"""
[server]
listen = {json.dumps(list(LISTENERS))}
connect-timeout = 7.0
"""

PERMIT_LOOPBACK = """
[[rule]]
action = "permit"
clients = ["127.0.0.0/8"]
"""

DENY_ALL = """
[[rule]]
action = "deny"
message = "closed for the night"
"""


@implementer(IAccessPolicy)
class _PermitAll:
    """
    A policy that permits every request.
    """

    def decide(self, request: object) -> Decision:
        """
        Permit.
        """
        return Decision(PERMIT, rule=1, message="given")


async def _port(listener: StreamServerEndpointService) -> int:
    """
    The port a started listening service listens on.
    """
    port = await listener._waitingForPort
    return port.getHost().port


class GatewayServiceTests(LoopbackTestCase):
    """
    L{GatewayService} built from a configuration.
    """

    def start(self, service: GatewayService) -> GatewayService:
        """
        Start C{service}, stopped (every session dropped) at clean-up.
        """
        service.startService()

        async def stop() -> None:
            for protocol in list(service.sessions.open):
                protocol.abortConnection()
            await service.sessions.whenEmpty()
            if service.running:
                await service.stopService()

        self.addCleanup(lambda: Deferred.fromCoroutine(stop()))
        return service

    def writeConfig(self, text: str) -> str:
        """
        Write a configuration file and return its path.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as file:
            file.write(text)
        return path

    async def relay(self, host: str, port: int, echo: int) -> bytes:
        """
        CONNECT through the gateway listening on C{host:port} to the echo
        server on C{echo}, and return the REP of the reply.
        """
        client = await connectRaw(port, host)
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", echo, 1))
        await client.receive(2)
        return (await client.receive(10))[:2]

    async def test_listenerPerDescription(self) -> None:
        """
        Each C{listen} description gets its own factory, named after it,
        and its own listening service; both serve SOCKS.
        """
        service = self.start(buildService(parseConfig(SETTINGS + PERMIT_LOOPBACK), reactor))
        self.assertEqual(list(service.factories), list(LISTENERS))
        for description, factory in service.factories.items():
            self.assertEqual(factory.listener, description)
            self.assertEqual(factory.config.connectTimeout, 7.0)
        listeners = [child for child in service if isinstance(child, StreamServerEndpointService)]
        self.assertEqual([listener.factory for listener in listeners], list(service.factories.values()))
        echo = startEchoServer(self)
        for host, listener in zip(("127.0.0.1", "127.0.0.2"), listeners, strict=True):
            self.assertEqual(await self.relay(host, await _port(listener), echo.port), b"\x05\x00")

    def test_sharedState(self) -> None:
        """
        Every listener's factory shares the service's policy, session
        table and login throttle.
        """
        service = buildService(parseConfig(SETTINGS + PERMIT_LOOPBACK), reactor)
        self.assertIsInstance(service.policy, RulePolicy)
        for factory in service.factories.values():
            self.assertIs(factory.policy, service.policy)
            self.assertIs(factory.sessions, service.sessions)
            self.assertIs(factory.throttle, service.throttle)

    async def test_sessionsCountedOnce(self) -> None:
        """
        A session on either listener is in the one shared table.
        """
        service = self.start(buildService(parseConfig(SETTINGS + PERMIT_LOOPBACK), reactor))
        echo = startEchoServer(self)
        listeners = [child for child in service if isinstance(child, StreamServerEndpointService)]
        await self.relay("127.0.0.1", await _port(listeners[0]), echo.port)
        await self.relay("127.0.0.2", await _port(listeners[1]), echo.port)
        self.assertEqual(len(service.sessions.open), 2)

    async def test_reloadAppliesToEveryFactory(self) -> None:
        """
        A reload gives every listener's factory the new policy and the new
        C{[server]} settings; a CONNECT on either listener is then decided
        by the new rules.
        """
        path = self.writeConfig(SETTINGS + PERMIT_LOOPBACK)
        service = self.start(buildService(loadConfig(path), reactor))
        before = service.policy
        with open(path, "w") as file:
            file.write(SETTINGS.replace("7.0", "9.0") + DENY_ALL)
        self.assertTrue(await service.reload())
        self.assertIsNot(service.policy, before)
        for factory in service.factories.values():
            self.assertIs(factory.policy, service.policy)
            self.assertEqual(factory.config.connectTimeout, 9.0)
        echo = startEchoServer(self)
        listeners = [child for child in service if isinstance(child, StreamServerEndpointService)]
        for host, listener in zip(("127.0.0.1", "127.0.0.2"), listeners, strict=True):
            self.assertEqual(await self.relay(host, await _port(listener), echo.port), b"\x05\x02")

    async def test_givenPolicyStays(self) -> None:
        """
        A policy given to L{buildService} is every factory's, and stays
        when the file is reloaded.
        """
        path = self.writeConfig(SETTINGS + DENY_ALL)
        policy = _PermitAll()
        service = self.start(buildService(loadConfig(path), reactor, policy))
        self.assertTrue(await service.reload())
        self.assertEqual([factory.policy for factory in service.factories.values()], [policy, policy])

    async def test_stopOrder(self) -> None:
        """
        Stopping the service stops the listeners first, then closes the
        open sessions (their records emitted), then stops the session log,
        which has written those records.
        """
        log = os.path.abspath(self.mktemp())
        settings = SETTINGS + "grace-period = 0\n"
        config = parseConfig(settings + PERMIT_LOOPBACK + f"\n[log]\naccess = {json.dumps(log)}\n")
        service = self.start(buildService(config, reactor))
        echo = startEchoServer(self)
        listeners = [child for child in service if isinstance(child, StreamServerEndpointService)]
        [accessLog] = [child for child in service if isinstance(child, AccessLogService)]
        self.assertEqual(await self.relay("127.0.0.1", await _port(listeners[0]), echo.port), b"\x05\x00")
        order: list[str] = []

        def spyListener(listener: StreamServerEndpointService) -> None:
            stop = listener.stopService

            def stopService() -> Any:
                return Deferred.fromCoroutine(_whenDone(stop(), "listener stopped"))

            listener.stopService = stopService  # type: ignore[method-assign]

        async def _whenDone(stopping: Any, what: str) -> None:
            await stopping
            order.append(what)

        for listener in listeners:
            spyListener(listener)
        logStop = accessLog.stopService

        def stopLog() -> Any:
            order.append("access log stopping")
            return logStop()

        accessLog.stopService = stopLog  # type: ignore[method-assign]

        def observer(event: dict) -> None:
            if event.get("log_namespace") == "socksgate.session":
                order.append("session record")

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        await service.stopService()
        self.assertEqual(
            order, ["listener stopped", "listener stopped", "session record", "access log stopping"]
        )
        with open(log) as file:
            [record] = [json.loads(line) for line in file]
        self.assertEqual((record["command"], record["outcome"]), ("connect", "closed"))
        self.assertEqual(len(service.sessions.open), 0)
