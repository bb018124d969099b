"""
The factory of one listener: the settings its protocols read (the
configuration, the policy, the resolver, the source address of outgoing
connections), shared with the gateway's other listeners through one
L{SessionTable} and one L{LoginThrottle}.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from twisted.internet.interfaces import IHostnameResolver
from twisted.internet.protocol import Factory

from ..addresses import IPAddress
from ..auth import LoginThrottle, PasswordAuthenticator
from ..bandwidth import BandwidthLimits
from ..config import AuthConfig, ServerConfig
from ..interfaces import IAccessPolicy
from ..lookups import LookupLimit, gatewayResolver
from ..policy import LoopbackOnlyPolicy
from ..upstreams import UpstreamTable
from .protocol import SOCKSServerProtocol
from .sessions import SessionTable

__all__ = ["SOCKSServerFactory"]


class SOCKSServerFactory(Factory):
    """
    Serves SOCKS4, SOCKS4a and SOCKS5 on one listener.

    @ivar reactor: the reactor for connections and timers.
    @ivar config: the C{[server]} settings.
    @ivar policy: the L{IAccessPolicy} consulted for every request.
    @ivar listener: the description of the endpoint this factory serves,
        given to the policy and the session log.
    @ivar resolver: the L{IHostnameResolver} for destination names (by
        default L{gatewayResolver}'s, in a thread pool of its own).
    @ivar lookups: the L{LookupLimit} on lookups under way per client.
    @ivar sessions: the L{SessionTable}, shared by a gateway's listeners.
    @ivar bindHost: the source address of outgoing connections, or L{None}.
    @ivar auth: the C{[auth]} settings: SOCKS5 methods, checker, ident.
    @ivar throttle: the L{LoginThrottle} every login goes through, shared
        by a gateway's listeners.
    @ivar upstreams: the C{[[upstream]]}s that rules route sessions
        C{via}, and their servers' state, shared by a gateway's listeners.
    """

    protocol = SOCKSServerProtocol  # type: ignore[assignment]

    #: Where the identd of SOCKS4 clients listens (RFC 1413), and how long
    #: an answer may take.
    identPort = 113
    identTimeout = 5.0

    def __init__(
        self,
        reactor: Any = None,
        config: ServerConfig | None = None,
        policy: IAccessPolicy | None = None,
        listener: str = "",
        resolver: IHostnameResolver | None = None,
        sessions: SessionTable | None = None,
        auth: AuthConfig | None = None,
        throttle: LoginThrottle | None = None,
        bandwidth: BandwidthLimits | None = None,
        upstreams: UpstreamTable | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.reactor = reactor
        self.listener = listener
        self.resolver = resolver if resolver is not None else gatewayResolver(reactor)
        self.lookups = LookupLimit(self.resolver)
        self.sessions = sessions if sessions is not None else SessionTable()
        self.throttle = throttle if throttle is not None else LoginThrottle(reactor)
        #: The buckets of the rules that set C{bandwidth} (shared by the
        #: gateway's listeners).
        self.bandwidth = bandwidth if bandwidth is not None else BandwidthLimits(reactor)
        self.upstreams = upstreams if upstreams is not None else UpstreamTable(reactor)
        self.configure(
            config if config is not None else ServerConfig(),
            policy if policy is not None else LoopbackOnlyPolicy(),
            auth,
        )

    def configure(self, config: ServerConfig, policy: IAccessPolicy, auth: AuthConfig | None = None) -> None:
        """
        Use C{config}, C{policy} and C{auth} for requests from now on (a
        reload); sessions already under way keep what they were given (open
        UDP associations decide their destinations by the new policy).
        """
        self.auth = auth if auth is not None else AuthConfig()
        self.authenticator = PasswordAuthenticator(self.auth.checker) if self.auth.checker else None
        external = ip_address(config.external)
        self.bindHost: IPAddress | None = None if external.is_unspecified else external
        self.config = config
        self.policy = policy

    def resolverFor(self, client: IPAddress | None) -> IHostnameResolver:
        """
        The resolver for the requests of C{client}: L{resolver}, with at
        most L{socksgate.lookups.LOOKUPS_PER_CLIENT} lookups under way for
        that address.
        """
        return self.lookups.forClient(client)

    def buildProtocol(self, addr: Any) -> SOCKSServerProtocol:
        """
        Build the protocol for one client connection.
        """
        return self.protocol(self)
