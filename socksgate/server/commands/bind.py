"""
BIND (SOCKS4, SOCKS4a, SOCKS5): the gateway listens on behalf of the
client, for one connection from the host the client expects.

  1. The policy decides C{bind} for the expected peer (SOCKS4: DSTIP;
     SOCKS4a and SOCKS5: DST.ADDR, a name resolved first; all zeros: any
     peer).
  2. The gateway listens on an ephemeral port of C{[server] external} (or,
     when that is a wildcard, of the address the client reached it on, if
     that is of the peer's family — IPv4 for SOCKS4, else the expected
     peer's; otherwise of an address of the peer's family that reaches it:
     loopback for a loopback peer, the routing table's source address
     otherwise) and sends the first reply with the address to connect to
     (C{advertise} when set).
  3. A connection from a host other than the expected one, or one the policy
     refuses (it decides C{bind} again for the incoming peer), is closed and
     logged, and the wait goes on.  The first accepted connection closes the
     listening port, gets the second reply (with the peer's address) and is
     relayed as CONNECT is: back-pressure and half-close.
  4. C{bind-timeout} without an accepted connection ends the wait with a
     failure reply (SOCKS5 0x06, SOCKS4 91).  A client that closes, or sends
     its FIN, before a peer connects ends the wait too.

A decision that routes the BIND via an C{[[upstream]]} replaces step 2:
the upstream's server listens (L{socksgate.server.commands.viaupstream});
in step 3 a refused peer ends the session (the server accepts only one).
"""

from __future__ import annotations

import socket
from dataclasses import replace
from ipaddress import ip_address
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ...addresses import (
    LOOPBACK_HOSTS,
    UNSPECIFIED_HOSTS,
    IPAddress,
    formatHostPort,
    hostAddress,
    withoutScope,
)
from ...bandwidth import RuleBandwidth
from ...connecting import DIRECT
from ...interfaces import IClientConnection, ICommand, ISession
from ...latch import AllClosed
from ...outbound import decideOne, permittedAddresses, refusalForFailure
from ...policy import AccessRequest, Decision
from ...ratelimit import checkSessionRate
from ...relay import DestinationProtocol, Relay, makeRelay
from ...splicing import SpliceRelay
from ...vocabulary import Outcome, RequestRefused
from ...wire import ReplyCode, SOCKS4Request, SOCKS5Request
from ..client import EARLY_DATA_LIMIT
from .viaupstream import bindViaUpstream

__all__ = ["BIND", "BindCommand", "BindSession"]

log = Logger()


@implementer(ICommand)
class BindCommand:
    """
    Carries out BIND requests.
    """

    def start(self, client: IClientConnection, request: AccessRequest, message: Any) -> None:
        """
        Start a L{BindSession}; see the module docstring and
        L{ICommand.start}.
        """
        BindSession(client, request, message).start()


#: The BIND command.
BIND = BindCommand()


class _PeerFactory(Factory):
    """
    Builds the protocol of each incoming connection and reports it.
    """

    noisy = False

    def __init__(self, session: BindSession) -> None:
        self.session = session

    def buildProtocol(self, addr: Any) -> DestinationProtocol:
        protocol = DestinationProtocol()
        protocol.factory = self
        protocol.onConnected = self.session.peerArrived
        return protocol


def _addressTowards(expected: set[IPAddress] | None, family: int) -> IPAddress:
    """
    An address of this host, of IP version C{family}, that the expected
    peer can reach: loopback for a loopback peer, else the source address
    the routing table gives for the peer (a UDP socket's C{connect} sends
    nothing), else the unspecified address.
    """
    peers = sorted(address for address in expected or () if address.version == family)
    loopback = ip_address(LOOPBACK_HOSTS[family])
    if not peers or peers[0].is_loopback:
        return loopback if peers else ip_address(UNSPECIFIED_HOSTS[family])
    kind = socket.AF_INET if family == 4 else socket.AF_INET6
    try:
        with socket.socket(kind, socket.SOCK_DGRAM) as probe:
            probe.connect((str(peers[0]), 9))
            return ip_address(withoutScope(probe.getsockname()[0]))
    except OSError:
        return ip_address(UNSPECIFIED_HOSTS[family])


@implementer(ISession)
class BindSession:
    """
    One BIND request, from the first reply until the relay takes over.

    While it waits it is the session of the client connection (an
    L{ISession}): bytes the client sends early are kept (the client is no
    longer read past L{EARLY_DATA_LIMIT}) and relayed once the peer is
    accepted.
    """

    bytesOut = bytesIn = 0
    _viaUpstream = False

    def __init__(self, client: IClientConnection, accessRequest: AccessRequest, request: Any) -> None:
        self.client = client
        self.accessRequest = accessRequest
        self.request: SOCKS4Request | SOCKS5Request = request
        self.relay: Relay | SpliceRelay | None = None
        self._expected: set[IPAddress] | None = None
        self._listening: IListeningPort | None = None
        self._timer: IDelayedCall | None = None
        self._starting: Deferred[None] | None = None
        self._early = bytearray()
        self._bandwidth: RuleBandwidth | None = None
        self._clientFinished = False
        self._over = False
        # Released once the client connection and the listening port (and,
        # after a peer is accepted, the relay instead of the client) close.
        self._closing = AllClosed(client.released, "client")

    def start(self) -> None:
        """
        Decide, listen and send the first reply.
        """
        self.client.attach(self)
        self._starting = Deferred.fromCoroutine(self._begin())
        self._starting.addErrback(self._startFailed)

    async def _begin(self) -> None:
        client, factory = self.client, self.client.gateway
        policy = factory.policy
        host = self.request.host
        address = host if not isinstance(host, str) else None
        if address is not None and address.is_unspecified:
            addresses = [address]
            decision = await decideOne(policy.decide, replace(self.accessRequest, destinationAddress=address))
            if not decision.permitted:
                raise RequestRefused(
                    ReplyCode.NOT_ALLOWED, Outcome.DENIED, decision.message or "denied", decision
                )
        else:
            addresses, decision = await permittedAddresses(
                factory.reactor, factory.resolverFor(client.client), policy.decide,
                self.accessRequest, host, factory.config.connectTimeout,
            )  # fmt: skip
            self._expected = set(addresses)
        checkSessionRate(client, policy, self.accessRequest, decision)
        self._decision = decision
        self._bandwidth = factory.bandwidth.forDecision(factory.policy, decision)
        if decision.route != DIRECT:
            self._viaUpstream = True
            self._listening, announce, port = await bindViaUpstream(
                client, self.accessRequest, decision, addresses, self.request.port, _PeerFactory(self)
            )
            self._closing.add("port")
        else:
            announce, listenOn = self._addresses()
            try:
                self._listening = factory.reactor.listenTCP(0, _PeerFactory(self), interface=listenOn)
                self._closing.add("port")
            except CannotListenError as problem:
                raise RequestRefused(
                    ReplyCode.GENERAL_FAILURE, Outcome.FAILED, f"cannot listen: {problem}"
                ) from None
            port = self._listening.getHost().port
        record = client.record
        record.rule, record.message = decision.rule, decision.message
        record.bind = formatHostPort(announce, port)
        client.reply(ReplyCode.SUCCEEDED, announce, port)
        self._timer = factory.reactor.callLater(factory.config.bindTimeout, self._timedOut)

    def _addresses(self) -> tuple[IPAddress, str]:
        """
        The address to announce in the first reply, and the one to listen on.
        """
        factory = self.client.gateway
        config = factory.config
        listenOn = factory.bindHost
        if listenOn is None:
            local = hostAddress(self.client.transport.getHost())
            family = self._peerFamily(local)
            if local is not None and local.version == family:
                listenOn = local
            else:
                listenOn = _addressTowards(self._expected, family)
        announce = ip_address(config.advertise) if config.advertise else listenOn
        return announce, str(listenOn)

    def _peerFamily(self, local: IPAddress | None) -> int:
        """
        The IP version the peer will connect with: 4 for SOCKS4 (its reply
        carries an IPv4 address), else the expected peer's, else that of
        the address the client reached the gateway on.
        """
        if self.client.version == 4:
            return 4
        if self._expected:
            return min(address.version for address in self._expected)
        return local.version if local is not None else 4

    def _startFailed(self, failure: Failure) -> None:
        if self._over or failure.check(CancelledError):
            return
        self._over = True
        self.client.refuse(refusalForFailure(failure))

    def peerArrived(self, peer: DestinationProtocol) -> None:
        """
        A connection came in: accept it if it is the expected host and the
        policy permits it, else close it and go on waiting.
        """
        transport = peer.transport
        if self._over or self.relay is not None:
            transport.abortConnection()
            return
        if self._viaUpstream:
            # The server's second reply: it listens no more, and the control
            # connection is the peer's (stopping the port now would close it).
            self._listening = None
            self._closing.closed("port")
        where = transport.getPeer()
        address = hostAddress(where)
        if address is None:  # Through an upstream, whose second reply named no address.
            self._refusePeer(peer, f"the upstream's server named the peer {where}, not by its address")
            return
        if self._expected is not None and address not in self._expected:
            self._refusePeer(peer, f"{formatHostPort(address, where.port)} is not the expected host")
            return
        checked = replace(
            self.accessRequest, destinationName=None, destinationAddress=address, port=where.port
        )
        deciding = Deferred.fromCoroutine(decideOne(self.client.gateway.policy.decide, checked))
        deciding.addCallback(self._peerDecided, peer, address, where.port)
        deciding.addErrback(
            lambda failure: self._refusePeer(peer, f"the access policy failed: {failure.value}")
        )

    def _peerDecided(
        self, decision: Decision, peer: DestinationProtocol, address: IPAddress, port: int
    ) -> None:
        if not decision.permitted:
            self._refusePeer(peer, f"denied by the policy: {decision.message or decision.rule}")
        elif self._over or self.relay is not None:
            peer.transport.abortConnection()
        else:
            self._accept(peer, address, port)

    def _refusePeer(self, peer: DestinationProtocol, why: str) -> None:
        record = self.client.record
        log.warn(
            "BIND session {session}: refused a connection: {why}",
            session=record.session if record else None,
            why=why,
        )
        peer.transport.abortConnection()
        if self._viaUpstream and not self._over:
            # The upstream's server accepted its one connection: no other comes.
            self._over = True
            self._cancelTimer()
            self._stopListening()
            self.client.refuse(RequestRefused(ReplyCode.NOT_ALLOWED, Outcome.DENIED, why))

    def _accept(self, peer: DestinationProtocol, address: IPAddress, port: int) -> None:
        client = self.client
        record = client.record
        self._cancelTimer()
        # The relay has the client connection now: it is released with it.
        self._closing.add("relay")
        self._closing.closed("client")
        self._stopListening()
        record.reply = client.reply(ReplyCode.SUCCEEDED, address, port)
        record.peer = record.remote = formatHostPort(address, port)
        gateway = client.gateway
        self.relay = relay = makeRelay(
            client.transport, peer.transport, self._relayEnded, gateway.reactor,
            gateway.config.idleTimeout, self._relayClosed, self._bandwidth,
        )  # fmt: skip
        peer.relay = relay
        client.attach(relay)
        early = client.takeEarlyData() + bytes(self._early)
        self._early.clear()
        relay.start(early, self._clientFinished)

    def _relayEnded(self, why: str) -> None:
        assert self.relay is not None
        self.client.relayEnded(self.relay, why)

    def _relayClosed(self) -> None:
        self._closing.closed("relay")

    def _timedOut(self) -> None:
        self._timer = None
        if self._over:
            return
        self._over = True
        self._stopListening()
        seconds = self.client.gateway.config.bindTimeout
        self.client.refuse(
            RequestRefused(
                ReplyCode.TTL_EXPIRED, "timeout", f"no connection within bind-timeout ({seconds:g} s)"
            )
        )

    # The client connection's events while waiting.

    def fromClient(self, data: bytes) -> None:
        """
        Keep what the client sends before the peer is accepted.
        """
        self._early += data
        if len(self._early) > EARLY_DATA_LIMIT:
            self.client.transport.pauseProducing()

    def clientFinished(self) -> None:
        """
        The client sent its FIN before any peer connected: it has left (a
        client still interested in the peer keeps its connection open), so
        the wait ends.
        """
        self._clientFinished = True
        self.client.transport.loseConnection()
        self._end("client closed before a peer connected")

    def clientLost(self, reason: Any) -> None:
        """
        The client went away while waiting: stop everything.
        """
        self._closing.closed("client")
        self._end("client closed before a peer connected")

    def abort(self) -> None:
        """
        Drop the client connection and stop waiting.
        """
        self.client.transport.abortConnection()
        self._end("aborted")

    def close(self, why: str) -> None:
        """
        End the wait from outside (a shutdown) for C{why}: the listening
        port and the client connection are closed, as L{Relay.close} closes
        a relayed session's.
        """
        self.client.transport.loseConnection()
        self._end(why)

    def _end(self, why: str) -> None:
        if not self._over:
            self._over = True
            if self._starting is not None:
                self._starting.cancel()
            self.client.finish(Outcome.FAILED, None, why)
        self._cancelTimer()
        self._stopListening()

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stopListening(self) -> None:
        listening, self._listening = self._listening, None
        if listening is None:
            return

        def stopped(result: object) -> None:
            self._closing.closed("port")

        # A port the reactor has closed already (at shutdown it closes
        # every socket, in no order we choose) answers None, not a Deferred.
        maybeDeferred(listening.stopListening).addBoth(stopped)
