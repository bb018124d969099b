"""
UDP ASSOCIATE: decided when it is requested, then served by a
L{socksgate.udprelay.UDPAssociation} on a socket of its own.

The policy decides the association with no destination and port 0 (see
L{socksgate.interfaces.IAccessPolicy}): a client that may send datagrams
to no destination is refused with 0x02.  Every datagram's destination is
then decided with the policy in force when it is sent.  A client address
holds at most L{MAX_ASSOCIATIONS_PER_CLIENT} associations (the
L{SessionTable} counts them); one more gets 0x01.  A decision that routes
the association via an C{[[upstream]]} first makes one with the upstream's
server (L{socksgate.server.commands.viaupstream}).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred
from zope.interface import implementer

from ...addresses import LOOPBACK_HOSTS, UNSPECIFIED_HOSTS, hostAddress, unmapped
from ...client.udp import SOCKSUDPAssociation
from ...connecting import DIRECT
from ...interfaces import IClientConnection, ICommand
from ...outbound import decideOne
from ...policy import AccessRequest, Decision
from ...ratelimit import checkSessionRate
from ...udprelay import UDPAssociation
from ...vocabulary import Outcome, RequestRefused
from ...wire import ReplyCode, SOCKS5Request
from ..sessions import SessionTable
from .viaupstream import UpstreamDatagrams, associateViaUpstream

__all__ = ["UDP_ASSOCIATE", "UDPAssociateCommand"]


@implementer(ICommand)
class UDPAssociateCommand:
    """
    Carries out UDP ASSOCIATE requests.
    """

    def start(
        self, client: IClientConnection, request: AccessRequest, message: SOCKS5Request
    ) -> Deferred[None]:
        """
        Decide the association, then open it and answer with the relay's
        address and port; see the module docstring and L{ICommand.start}.

        @param message: the request; DST.ADDR and DST.PORT say where the
            client will send from (zeros: not known).
        """
        association = replace(request, destinationName=None, destinationAddress=None, port=0)
        policy = client.gateway.policy
        deciding = Deferred.fromCoroutine(decideOne(policy.decide, association))
        return deciding.addCallback(self._decided, client, request, message, policy)

    def _decided(
        self,
        decision: Decision,
        client: IClientConnection,
        request: AccessRequest,
        message: SOCKS5Request,
        policy: Any,
    ) -> Deferred[None] | None:
        if not decision.permitted:
            raise RequestRefused(
                ReplyCode.NOT_ALLOWED, Outcome.DENIED, decision.message or "denied by policy", decision
            )
        if client.gone:
            return None
        checkSessionRate(client, policy, request, decision)
        if decision.route == DIRECT:
            self._open(decision, client, request, message, None)
            return None
        opening = Deferred.fromCoroutine(associateViaUpstream(client, decision))
        return opening.addCallback(self._openVia, decision, client, request, message)

    def _openVia(
        self,
        via: tuple[SOCKSUDPAssociation, UpstreamDatagrams],
        decision: Decision,
        client: IClientConnection,
        request: AccessRequest,
        message: SOCKS5Request,
    ) -> None:
        """
        The association with the upstream's server is made: open the
        client's, which sends through it (or close it, if the client's
        cannot be opened).
        """
        upstream, protocol = via
        try:
            protocol.association = self._open(decision, client, request, message, upstream)
        finally:
            if protocol.association is None:
                upstream.loseConnection()

    def _open(
        self,
        decision: Decision,
        client: IClientConnection,
        request: AccessRequest,
        message: SOCKS5Request,
        upstream: SOCKSUDPAssociation | None,
    ) -> UDPAssociation | None:
        """
        Open the client's association and answer with its relay's address;
        through C{upstream}, if not L{None}.

        @return: the association, or L{None} if the client has gone.
        """
        if client.gone:
            return None
        # The record's message says why the association ended.
        client.record.rule = decision.rule
        gateway = client.gateway
        config = gateway.config
        declared = message.host if isinstance(message.host, (IPv4Address, IPv6Address)) else None
        if declared is not None and declared.is_unspecified:
            declared = None
        tcpClient = client.client
        clientAddress = unmapped(declared) if declared is not None else tcpClient
        if clientAddress is None:
            raise RequestRefused(
                ReplyCode.GENERAL_FAILURE,
                Outcome.ERROR,
                "no client address to accept datagrams from: DST.ADDR must give it",
            )
        sessions: SessionTable = gateway.sessions
        refusal = sessions.admitAssociation(tcpClient)
        if refusal:
            raise RequestRefused(ReplyCode.GENERAL_FAILURE, Outcome.DENIED, refusal)
        association = UDPAssociation(
            client,
            request,
            clientAddress,
            message.port,
            lambda: gateway.policy,
            gateway.resolverFor(tcpClient),
            gateway.reactor,
            config.udpIdleTimeout,
            config.connectTimeout,
            gateway.bindHost,
        )
        association.onReleased = lambda: sessions.releaseAssociation(tcpClient)
        association.upstream = upstream
        association.limitBandwidth(gateway.bandwidth.forDecision(gateway.policy, decision))
        try:
            relayHost, relayPort = association.listen(_interfaceFor(client, gateway.bindHost, clientAddress))
        except error.CannotListenError as failure:
            sessions.releaseAssociation(tcpClient)
            raise RequestRefused(
                ReplyCode.GENERAL_FAILURE, Outcome.FAILED, f"cannot open a UDP relay socket: {failure}"
            ) from None
        advertised = ip_address(config.advertise) if config.advertise else relayHost
        client.reply(ReplyCode.SUCCEEDED, advertised, relayPort)
        client.attach(association)
        association.start()
        return association


def _interfaceFor(client: IClientConnection, bindHost: Any, clientAddress: Any) -> str:
    """
    The address the association's socket listens on: C{external} when it
    is set, else the address the client reached the gateway on (with its
    scope for a link-local IPv6 address), else (a UNIX socket) loopback or
    the unspecified address of the client's family.
    """
    if bindHost is not None:
        return str(bindHost)
    localHost = client.transport.getHost()
    local = hostAddress(localHost)
    if local is None:
        table = LOOPBACK_HOSTS if clientAddress.is_loopback else UNSPECIFIED_HOSTS
        return table[clientAddress.version]
    if "%" in localHost.host and local.version == 6:
        return localHost.host  # a link-local address needs its scope
    return str(local)


#: The UDP ASSOCIATE command.
UDP_ASSOCIATE = UDPAssociateCommand()
