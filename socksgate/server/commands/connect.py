"""
CONNECT: decide, resolve and connect (L{socksgate.outbound}), answer with
the outgoing connection's local address, and relay.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from zope.interface import implementer

from ...addresses import formatHostPort, withoutScope
from ...interfaces import IClientConnection, ICommand
from ...outbound import openConnection
from ...policy import AccessRequest, Decision
from ...ratelimit import checkSessionRate
from ...rawconnect import RawConnection
from ...relay import DestinationProtocol, makeRelay, splicesFrom
from ...splicing import canSplice
from ...wire import ReplyCode

__all__ = ["CONNECT", "ConnectCommand"]


@implementer(ICommand)
class ConnectCommand:
    """
    Carries out CONNECT requests.
    """

    def start(self, client: IClientConnection, request: AccessRequest, message: Any) -> Deferred[None]:
        """
        Connect to the destination the policy permits (within its rule's
        C{sessions-per-second}), then relay; see L{ICommand.start}.
        """
        gateway = client.gateway
        policy = gateway.policy
        connecting = openConnection(
            gateway.reactor,
            gateway.resolverFor(client.client),
            policy.decide,
            request,
            message.host,
            gateway.config.connectTimeout,
            gateway.bindHost,
            splicesFrom(client.transport, gateway.reactor),
            lambda decision: checkSessionRate(client, policy, request, decision),
            gateway.upstreams,
        )
        return connecting.addCallback(self._connected, client, policy)

    def _connected(
        self, result: tuple[DestinationProtocol, Decision], client: IClientConnection, policy: Any
    ) -> None:
        destination, decision = result
        gateway = client.gateway
        if (
            isinstance(destination, RawConnection)
            and not client.gone
            and not canSplice(client.transport, destination, gateway.reactor)
        ):
            # The client's transport can no longer be spliced: the stream
            # relay carries the session over a Twisted transport.
            destination = destination.adopt(_DESTINATIONS)  # type: ignore[assignment]
        transport = destination.transport
        if client.gone:
            transport.loseConnection()
            return
        record = client.record
        local, remote = transport.getHost(), transport.getPeer()
        record.rule, record.message = decision.rule, decision.message
        # Through an upstream, the peer is the destination as it was asked
        # for: an address, or a name (a HostnameAddress).
        remoteHost = remote.host if hasattr(remote, "host") else remote.hostname.decode("ascii")
        record.remote = formatHostPort(remoteHost, remote.port)
        # Only a DestinationProtocol (not a RawConnection) can come through an upstream.
        record.upstream = getattr(destination, "upstream", None)
        record.server = getattr(destination, "server", None)
        record.reply = client.reply(ReplyCode.SUCCEEDED, ip_address(withoutScope(local.host)), local.port)

        def ended(why: str) -> None:
            client.relayEnded(relay, why)

        relay = makeRelay(
            client.transport, transport, ended, gateway.reactor, gateway.config.idleTimeout, client.released,
            gateway.bandwidth.forDecision(policy, decision),
        )  # fmt: skip
        destination.relay = relay
        client.attach(relay)
        relay.start(client.takeEarlyData())


_DESTINATIONS = Factory.forProtocol(DestinationProtocol)

#: The CONNECT command.
CONNECT = ConnectCommand()
