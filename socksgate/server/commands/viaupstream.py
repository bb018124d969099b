"""
BIND and UDP ASSOCIATE through an C{[[upstream]]}, the first step with the
failover of CONNECT (L{socksgate.upstreamroute.UpstreamRoute}).

BIND: the gateway asks the upstream's server to BIND for the expected
peer, and announces to the client the address and port of the server's
first reply: the peer connects to the upstream's server, not to the
gateway.  The server's second reply names the peer, who is checked as a
direct BIND checks it; from then on the control connection to the server
carries the peer's bytes (L{socksgate.client.bind}).

UDP ASSOCIATE: the gateway's own relay serves the client
(L{socksgate.udprelay.UDPAssociation}, every destination decided by the
policy as for a direct association), and sends each datagram through one
association of its own with the upstream's server
(L{socksgate.client.udp}), to the address the policy permitted; the
server's datagrams come back to the client with the header naming their
source, if it is a destination the client sent to.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import Any

from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.internet.protocol import DatagramProtocol

from ...addresses import IPAddress, withoutScope
from ...client.udp import SOCKSUDPAssociation
from ...connecting import routeFor
from ...policy import AccessRequest, Decision
from ...udprelay import UDPAssociation
from ...upstreamroute import UpstreamRoute
from ...vocabulary import Outcome, RequestRefused
from ...wire import Host, ReplyCode

__all__ = ["UpstreamDatagrams", "associateViaUpstream", "bindViaUpstream"]


def _route(client: Any, decision: Decision) -> UpstreamRoute:
    """
    The route to the upstream C{decision} names.

    @raise RequestRefused: 0x01, an upstream this gateway does not have.
    """
    gateway = client.gateway
    route = routeFor(
        decision,
        gateway.reactor,
        gateway.config.connectTimeout,
        gateway.bindHost,
        upstreams=gateway.upstreams,
    )
    assert isinstance(route, UpstreamRoute)
    return route


async def bindViaUpstream(
    client: Any,
    request: AccessRequest,
    decision: Decision,
    addresses: list[IPAddress],
    port: int,
    factory: IProtocolFactory,
) -> tuple[IListeningPort, Host, int]:
    """
    Ask the upstream C{decision} routes to to BIND for the peer at
    C{addresses} (all zeros: any) and C{port}; the record names the
    upstream and its server.

    @param client: the client connection (an L{IClientConnection}).
    @param factory: builds the protocol for the peer's connection.
    @return: the server's bound port (its C{stopListening} gives the BIND
        up), and the address and port to announce to the client.
    @raise RequestRefused: the server's refusal, 0x01 when no server
        answered, or 0x01 for an announced address the client's SOCKS
        version cannot carry (SOCKS4: anything but IPv4).
    """
    route = _route(client, decision)
    bound, server = await route.bind(request, addresses, port, factory)
    record = client.record
    record.upstream, record.server = route.upstream.name, server.url
    announced = bound.getHost()
    host: Host
    if hasattr(announced, "hostname"):
        host = announced.hostname.decode("utf-8")
    else:
        host = ip_address(withoutScope(announced.host))
    if client.version == 4 and not isinstance(host, IPv4Address):
        bound.stopListening()
        refusal = RequestRefused(
            ReplyCode.GENERAL_FAILURE,
            Outcome.FAILED,
            f"upstream {route.upstream.name} ({server.url}) listens on {host}, not an IPv4 address",
        )
        refusal.upstream, refusal.server = route.upstream.name, server.url
        raise refusal
    return bound, host, announced.port


class UpstreamDatagrams(DatagramProtocol):
    """
    The protocol of the gateway's association with an upstream's server:
    what the server passes back goes to the client's association.

    @ivar association: the client's association, once it is open.
    """

    noisy = False
    association: UDPAssociation | None = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        A datagram from C{addr} (the source its header names), through the
        server's relay.
        """
        if self.association is not None:
            self.association.fromUpstream(datagram, addr[0], addr[1])

    def stopProtocol(self) -> None:
        """
        The association with the server ended (its control connection
        closed): the client's ends too.
        """
        if self.association is not None:
            self.association.close("the upstream's server ended the UDP association")


async def associateViaUpstream(
    client: Any, decision: Decision
) -> tuple[SOCKSUDPAssociation, UpstreamDatagrams]:
    """
    Make the association with the upstream C{decision} routes to; the
    record names the upstream and its server.

    @return: the association (its C{write} sends through the server) and
        its protocol.
    @raise RequestRefused: the server's refusal, 0x01 when no server
        answered, 0x07 for a SOCKS4 server.
    """
    route = _route(client, decision)
    protocol = UpstreamDatagrams()
    association, server = await route.associate(protocol)
    record = client.record
    record.upstream, record.server = route.upstream.name, server.url
    return association, protocol
