"""
Building a running gateway from a configuration: the service that
C{twistd socksgate} starts, and that embedding applications can start
themselves.
"""

from __future__ import annotations

from typing import Any

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.interfaces import IHostnameResolver

from .config import Config
from .interfaces import IAccessPolicy
from .policy import LoopbackOnlyPolicy
from .server import SessionTable, SOCKSServerFactory


class GatewayService(MultiService):
    """
    A gateway: one listening service for each listener, sharing one
    policy and one L{SessionTable}.

    @ivar config: the configuration in force.
    @ivar policy: the access policy.
    @ivar sessions: the open sessions of every listener.
    @ivar factories: the L{SOCKSServerFactory} of each listener, by its
        endpoint description.
    """

    def __init__(
        self,
        config: Config,
        reactor: Any,
        policy: IAccessPolicy,
        resolver: IHostnameResolver | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.policy = policy
        self.sessions = SessionTable()
        self.factories: dict[str, SOCKSServerFactory] = {}
        for description in config.server.listen:
            factory = SOCKSServerFactory(reactor, config.server, policy, description, resolver, self.sessions)
            self.factories[description] = factory
            strports.service(description, factory, reactor=reactor).setServiceParent(self)


def buildService(
    config: Config | None = None,
    reactor: Any = None,
    policy: IAccessPolicy | None = None,
    resolver: IHostnameResolver | None = None,
) -> GatewayService:
    """
    Build the gateway's service.

    @param config: the configuration; the defaults when L{None}.
    @param reactor: the reactor; the global one when L{None}.
    @param policy: the access policy; by default, loopback clients only.
    @param resolver: the name resolver for destinations; the reactor's
        when L{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    return GatewayService(
        config if config is not None else Config(),
        reactor,
        policy if policy is not None else LoopbackOnlyPolicy(),
        resolver,
    )
