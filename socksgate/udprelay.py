"""
UDP ASSOCIATE (RFC 1928, section 7): a UDP relay for one client, alive as
long as its TCP control connection.

Each association has its own UDP socket, on the C{external} address (or,
when that is the unspecified address, on the address the client reached
the gateway on, so that the reply's BND.ADDR is one the client can use).
The client sends its datagrams there with the SOCKS UDP header; the relay
checks every destination with the access policy (command C{"udp"}) and
sends the payload on from the same socket.  A datagram to the other IP
family leaves from a second socket, opened when first needed, on the
loopback address of that family when the first socket is on loopback, and
on its unspecified address otherwise; with a specific C{external} address,
only destinations of its family are reachable.

What the relay accepts:

 - from the client only: its address is the TCP client's, or DST.ADDR of
   the request when that is an IP address other than all zeros; its port
   is DST.PORT when not zero, else the source port of the first datagram
   from that address with a well-formed header.  Anything else arriving
   is dropped silently;
 - datagrams with FRAG 0 and a well-formed header (others are dropped);
 - answers from an address and port the client has sent to (the last
   L{REMEMBERED_DESTINATIONS} of them), passed back with the SOCKS UDP
   header naming the sender; anything else is dropped, so the relay
   cannot be used to reflect or amplify traffic.

Policy decisions, and the addresses a name resolves to, are cached for
each association for L{DECISION_CACHE_SECONDS} (at most
L{DECISION_CACHE_SIZE} destinations), refusals too.  While a destination
is being decided (a name resolving, a policy answering with a Deferred),
up to L{QUEUED_PER_DESTINATION} datagrams wait for it, for at most
L{DESTINATIONS_DECIDING} destinations at once; more are dropped.  A name
must resolve within C{connect-timeout}.

The gateway's L{socksgate.server.SessionTable} limits the associations of
a client address (see L{socksgate.server.commands.udp}).

The association ends when the control connection closes (or half-closes),
or after C{udp-idle-timeout} seconds without a datagram relayed either way
(datagrams that are dropped do not keep it alive).  Its session record
then has outcome C{"closed"}, the datagrams and payload bytes relayed each
way, and the datagrams denied by the policy and dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from errno import ECONNREFUSED
from ipaddress import IPv6Address, ip_address
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IHostnameResolver
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .addresses import LOOPBACK_HOSTS, UNSPECIFIED_HOSTS, IPAddress, addressText, unmapped, withoutScope
from .bandwidth import Allowance, RuleBandwidth
from .interfaces import IAccessPolicy, IClientConnection, ISession
from .latch import AllClosed
from .outbound import permittedAddresses, refusalForFailure
from .policy import AccessRequest
from .udpsockets import RelaySocket
from .vocabulary import Outcome
from .wire import MalformedMessage, UDPDatagram, parseUDPDatagram

__all__ = [
    "DECISION_CACHE_SECONDS",
    "DECISION_CACHE_SIZE",
    "DESTINATIONS_DECIDING",
    "QUEUED_PER_DESTINATION",
    "REMEMBERED_DESTINATIONS",
    "UDPAssociation",
]

#: How long a destination's decision (and the addresses of a name) is kept.
DECISION_CACHE_SECONDS = 30.0

#: Destinations whose decisions an association keeps at most.
DECISION_CACHE_SIZE = 256

#: Datagrams kept for a destination while it is being decided.
QUEUED_PER_DESTINATION = 4

#: Destinations an association decides at once at most.
DESTINATIONS_DECIDING = 16

#: Destinations (address and port) an association accepts answers from:
#: the ones the client sent to most recently.
REMEMBERED_DESTINATIONS = 1024

#: The largest datagram read from a relay socket: more than any UDP
#: datagram outside IPv6 jumbograms, so nothing is ever cut short.
MAX_DATAGRAM_SIZE = 65536

#: The length of a SOCKS UDP header by its ATYP byte, less the name's
#: length for a domain name (ATYP 3), whose length byte follows.
_HEADER_LENGTHS = {1: 10, 3: 7, 4: 22}

#: A destination as the client names it: an address or a name, and a port.
_Destination = tuple[Any, int]

#: A cached decision: when it expires, the permitted addresses (each with
#: its text), and the counter for datagrams when there are none.
_Decided = tuple[float, list[tuple[IPAddress, str]], str]


@implementer(ISession)
class UDPAssociation:
    """
    The relay of one UDP ASSOCIATE: its sockets, the client's address, the
    destinations decided and the counters.

    It is the session (an L{ISession}) of the control connection.

    @ivar datagramsOut: datagrams relayed from the client to destinations.
    @ivar datagramsIn: datagrams relayed from destinations to the client.
    @ivar bytesOut: their payload bytes, client to destinations.
    @ivar bytesIn: their payload bytes, destinations to client.
    @ivar denied: datagrams to destinations the policy refuses.
    @ivar dropped: datagrams dropped for any other reason: from strangers,
        fragments, malformed headers, unreachable or unresolvable
        destinations, full queues.
    @ivar onReleased: called once every socket and the control connection
        are closed, before the control connection is released.
    @ivar upstream: the association with an C{[[upstream]]}'s server that
        carries the datagrams (L{socksgate.server.commands.viaupstream}),
        or L{None}: they are sent directly.
    """

    log = Logger()

    def __init__(
        self,
        control: IClientConnection,
        accessRequest: AccessRequest,
        clientAddress: IPAddress,
        clientPort: int,
        policyInForce: Callable[[], IAccessPolicy],
        resolver: IHostnameResolver,
        reactor: Any,
        idleTimeout: float,
        resolveTimeout: float,
        bindHost: IPAddress | None = None,
    ) -> None:
        self.control = control
        self.datagramsOut = self.datagramsIn = self.bytesOut = self.bytesIn = 0
        self.denied = self.dropped = 0
        self.onReleased: Callable[[], None] | None = None
        self.upstream: Any = None
        self._request = accessRequest
        self._clientHost = str(clientAddress)
        self._clientPort = clientPort
        self._policyInForce = policyInForce
        self._policy = policyInForce()
        self._resolver = resolver
        self._reactor = reactor
        self._idleTimeout = idleTimeout
        self._resolveTimeout = resolveTimeout
        self._bindHost = bindHost
        self._main: RelaySocket | None = None
        self._mainInterface = ""
        self._sockets: dict[int, RelaySocket | None] = {}
        self._decisions: OrderedDict[_Destination, _Decided] = OrderedDict()
        # The header bytes of the client's well-formed datagrams (FRAG 0,
        # a port) -> the destination they name, so that a header seen
        # before is not parsed again.
        self._headers: dict[bytes, _Destination] = {}
        self._queued: dict[_Destination, list[bytes]] = {}
        self._deciding: dict[_Destination, Deferred[Any]] = {}
        # (address as text, port) -> the SOCKS UDP header of its answers
        self._destinations: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._idleCall: IDelayedCall | None = None
        self._lastActivity = 0.0
        self._ended = False
        self._connectionClosed = False
        self._closing = AllClosed(self._released, "sockets", "control")
        self._allowances: tuple[Allowance, Allowance] | None = None

    def limitBandwidth(self, bandwidth: RuleBandwidth | None) -> None:
        """
        Count the payload bytes against the buckets of the rule that
        permitted the association: a datagram that finds its direction's
        bucket empty is dropped (counted in C{dropped}), never queued.
        """
        if bandwidth is not None:
            self._allowances = (Allowance(bandwidth.outgoing), Allowance(bandwidth.incoming))

    def listen(self, interface: str) -> tuple[IPAddress, int]:
        """
        Open the socket the client sends to, on C{interface}.

        @return: its address and port.
        @raise error.CannotListenError: it cannot be opened.
        """
        main = self._main = RelaySocket(self, True)
        port = self._reactor.listenUDP(0, main, interface=interface, maxPacketSize=MAX_DATAGRAM_SIZE)
        local = port.getHost()
        address = unmapped(ip_address(withoutScope(local.host)))
        self._mainInterface = interface
        self._sockets[address.version] = main
        return address, local.port

    def start(self) -> None:
        """
        Start the idle timer.
        """
        if self._idleTimeout:
            self._lastActivity = self._reactor.seconds()
            self._idleCall = self._reactor.callLater(self._idleTimeout, self._checkIdle)

    # The session methods of the control connection.

    def fromClient(self, data: bytes) -> None:
        """
        Bytes on the control connection after the reply mean nothing:
        ignore them.
        """

    def clientFinished(self) -> None:
        """
        The client half-closed the control connection: end.
        """
        self.close("client closed")

    def clientLost(self, reason: Failure) -> None:
        """
        The control connection is gone: end.
        """
        self._connectionClosed = True
        self.close("client closed")
        self._closing.closed("control")

    def abort(self) -> None:
        """
        Close the sockets and drop the control connection at once.
        """
        self._end("aborted", abort=True)

    def close(self, why: str) -> None:
        """
        End the association from outside (a shutdown), or for C{why}.
        """
        self._end(why, abort=False)

    # Datagrams.

    def datagramReceived(self, relaySocket: RelaySocket, data: bytes, host: str, port: int) -> None:
        """
        Relay one datagram that arrived on C{relaySocket} from C{host:port}.
        """
        if self._ended:
            return
        if self._policyInForce() is not self._policy:
            self._policyChanged()
        if ":" in host:
            host = addressText(host)
        if relaySocket.main and host == self._clientHost and port == (self._clientPort or port):
            self._fromClient(data, port)
            return
        header = self._destinations.get((host, port))
        if header is not None:
            self._toClient(header, data)
            return
        self.dropped += 1

    def _fromClient(self, data: bytes, sourcePort: int) -> None:
        # The header's length, when the datagram is long enough to say.
        length = _HEADER_LENGTHS.get(data[3], 0) if len(data) > 4 else 0
        if length == 7:
            length += data[4]
        key = self._headers.get(data[:length]) if length else None
        if key is not None:
            payload = data[length:]
        else:
            try:
                datagram = parseUDPDatagram(data)
            except MalformedMessage:
                self.dropped += 1
                return
            if datagram.fragment or not datagram.port:
                self.dropped += 1
                return
            host = datagram.host
            if isinstance(host, IPv6Address):
                host = unmapped(host)
            key = (host, datagram.port)
            payload = datagram.data
            if length and len(data) - len(payload) == length:
                headers = self._headers
                if len(headers) >= DECISION_CACHE_SIZE:
                    headers.clear()
                headers[data[:length]] = key
        if not self._clientPort:
            self._clientPort = sourcePort
        now = self._reactor.seconds()
        if self._idleCall is not None:
            self._lastActivity = now
        cached = self._decisions.get(key)
        if cached is not None:
            expires, addresses, counter = cached
            if expires > now:
                if addresses:
                    self._send(addresses, key[1], payload)
                else:
                    self._count(counter)
                return
            del self._decisions[key]
        queued = self._queued.get(key)
        if queued is not None:
            if len(queued) < QUEUED_PER_DESTINATION:
                queued.append(payload)
            else:
                self.dropped += 1
            return
        if len(self._queued) >= DESTINATIONS_DECIDING:
            self.dropped += 1
            return
        self._queued[key] = [payload]
        self._startDeciding(key)

    def _startDeciding(self, key: _Destination) -> None:
        """
        Decide destination C{key}, whose datagrams wait in C{_queued},
        with the policy in force.
        """
        policy = self._policy
        deciding = Deferred.fromCoroutine(
            permittedAddresses(
                self._reactor,
                self._resolver,
                policy.decide,
                replace(self._request, port=key[1]),
                key[0],
                self._resolveTimeout,
            )
        )
        deciding.addCallbacks(self._decided, self._refused, (key, policy), None, (key, policy))
        deciding.addErrback(self._failed)
        if key in self._queued:
            self._deciding[key] = deciding

    def _policyChanged(self) -> None:
        """
        A reload brought another policy: forget every decision of the old
        one and the destinations whose answers it let back; destinations
        being decided are decided again.
        """
        self._policy = self._policyInForce()
        self._decisions.clear()
        self._destinations.clear()

    def _decidedByOldPolicy(self, key: _Destination, policy: IAccessPolicy) -> bool:
        """
        Whether a decision for C{key} came from a policy replaced since it
        was asked; if so, it is asked again of the policy in force.
        """
        if self._policyInForce() is not self._policy:
            self._policyChanged()
        if policy is self._policy:
            return False
        self._startDeciding(key)
        return True

    def _decided(self, result: tuple[list[IPAddress], Any], key: _Destination, policy: IAccessPolicy) -> None:
        self._deciding.pop(key, None)
        if self._ended or self._decidedByOldPolicy(key, policy):
            return
        queued = self._queued.pop(key, [])
        # An IPv4-mapped address would reach an IPv4 host that the policy
        # has not decided about as such: never use one.
        addresses = [(address, str(address)) for address in result[0] if unmapped(address) == address]
        self._remember(key, addresses, "dropped")
        for data in queued:
            self._send(addresses, key[1], data)

    def _refused(self, failure: Failure, key: _Destination, policy: IAccessPolicy) -> None:
        self._deciding.pop(key, None)
        if self._ended or self._decidedByOldPolicy(key, policy):
            return
        queued = self._queued.pop(key, [])
        refusal = refusalForFailure(failure)
        counter = "denied" if refusal.outcome == "denied" else "dropped"
        self.log.debug(
            "UDP datagrams to {destination} {counter}: {reason}",
            destination=f"{key[0]}:{key[1]}",
            counter=counter,
            reason=refusal.reason,
        )
        self._remember(key, [], counter)
        for _ in queued:
            self._count(counter)

    def _failed(self, failure: Failure) -> None:
        self.log.failure("unexpected error in a UDP association", failure)

    def _remember(self, key: _Destination, addresses: list[tuple[IPAddress, str]], counter: str) -> None:
        decisions = self._decisions
        decisions[key] = (self._reactor.seconds() + DECISION_CACHE_SECONDS, addresses, counter)
        decisions.move_to_end(key)
        while len(decisions) > DECISION_CACHE_SIZE:
            decisions.popitem(last=False)

    def _count(self, counter: str) -> None:
        if counter == "denied":
            self.denied += 1
        else:
            self.dropped += 1

    def _send(self, addresses: list[tuple[IPAddress, str]], port: int, payload: bytes) -> None:
        """
        Send C{payload} to the first of C{addresses} that a socket of the
        association can reach.
        """
        if self._allowances is not None and not self._allowances[0].admit(len(payload)):
            self.dropped += 1
            return
        if self.upstream is not None and addresses:
            address, text = addresses[0]
            self.upstream.write(payload, (text, port))
            self._sent(address, (text, port), payload)
            return
        sockets = self._sockets
        for address, text in addresses:
            version = address.version
            relaySocket = sockets[version] if version in sockets else self._socketFor(version)
            if relaySocket is None:
                continue
            destination = (text, port)
            try:
                relaySocket.sendTo(payload, destination)
            except OSError as failure:
                # An unconnected socket's ECONNREFUSED (an earlier
                # datagram's ICMP answer) is ignored, as Twisted's write
                # ignores it.
                if failure.errno != ECONNREFUSED:
                    break
            except (error.MessageLengthError, error.InvalidAddressError):
                break
            self._sent(address, destination, payload)
            return
        self.dropped += 1

    def _sent(self, address: IPAddress, destination: tuple[str, int], payload: bytes) -> None:
        """
        C{payload} went to C{destination}: count it, and accept answers
        from there.
        """
        self.datagramsOut += 1
        self.bytesOut += len(payload)
        destinations = self._destinations
        if destination in destinations:
            destinations.move_to_end(destination)
        else:
            destinations[destination] = UDPDatagram(address, destination[1], b"").toBytes()
            if len(destinations) > REMEMBERED_DESTINATIONS:
                destinations.popitem(last=False)

    def fromUpstream(self, data: bytes, host: str, port: int) -> None:
        """
        Relay a datagram from C{host:port} that the upstream's server passed
        back: to the client if it is a destination the client sent to,
        else dropped.
        """
        if self._ended:
            return
        header = self._destinations.get((addressText(host), port))
        if header is None:
            self.dropped += 1
            return
        self._toClient(header, data)

    def _socketFor(self, version: int) -> RelaySocket | None:
        """
        The socket that sends to addresses of IP C{version}, opened when
        first needed; L{None} if there cannot be one.
        """
        if version in self._sockets:
            return self._sockets[version]
        relaySocket: RelaySocket | None = None
        if self._bindHost is None:
            mainAddress = ip_address(withoutScope(self._mainInterface))
            table = LOOPBACK_HOSTS if mainAddress.is_loopback else UNSPECIFIED_HOSTS
            relaySocket = RelaySocket(self, False)
            try:
                self._reactor.listenUDP(
                    0, relaySocket, interface=table[version], maxPacketSize=MAX_DATAGRAM_SIZE
                )
            except error.CannotListenError as failure:
                self.log.warn(
                    "cannot open an IPv{version} UDP socket: {failure}", version=version, failure=str(failure)
                )
                relaySocket = None
        self._sockets[version] = relaySocket
        return relaySocket

    def _toClient(self, header: bytes, data: bytes) -> None:
        main = self._main
        assert main is not None
        if self._allowances is not None and not self._allowances[1].admit(len(data)):
            self.dropped += 1
            return
        try:
            main.sendTo(header + data, (self._clientHost, self._clientPort))
        except OSError as failure:
            if failure.errno != ECONNREFUSED:
                self.dropped += 1
                return
        except (error.MessageLengthError, error.InvalidAddressError):
            self.dropped += 1
            return
        self.datagramsIn += 1
        self.bytesIn += len(data)
        if self._idleCall is not None:
            self._lastActivity = self._reactor.seconds()

    # The end.

    def _touch(self) -> None:
        if self._idleCall is not None:
            self._lastActivity = self._reactor.seconds()

    def _checkIdle(self) -> None:
        self._idleCall = None
        idle = self._reactor.seconds() - self._lastActivity
        if idle >= self._idleTimeout:
            self.close(f"no datagram for {self._idleTimeout:g} seconds")
        else:
            self._idleCall = self._reactor.callLater(self._idleTimeout - idle, self._checkIdle)

    def _end(self, why: str, abort: bool) -> None:
        if self._ended:
            if abort and not self._connectionClosed:
                self.control.transport.abortConnection()
            return
        self._ended = True
        if self._idleCall is not None:
            self._idleCall.cancel()
            self._idleCall = None
        for deciding in list(self._deciding.values()):
            deciding.cancel()
        self._deciding.clear()
        self._queued.clear()
        for allowance in self._allowances or ():
            allowance.cancel()
        record = self.control.record
        record.bytes_out, record.bytes_in = self.bytesOut, self.bytesIn
        record.datagrams_out, record.datagrams_in = self.datagramsOut, self.datagramsIn
        record.datagrams_denied, record.datagrams_dropped = self.denied, self.dropped
        self.control.finish(Outcome.CLOSED, 0, why)
        # A socket the reactor has closed already (at shutdown it closes
        # every socket, in no order we choose) has no transport left.
        stopping = [
            maybeDeferred(relaySocket.transport.stopListening)
            for relaySocket in self._sockets.values()
            if relaySocket is not None and relaySocket.transport is not None
        ]
        DeferredList(stopping, consumeErrors=True).addCallback(self._socketsClosed)
        if self.upstream is not None:
            self.upstream.loseConnection()
        if not self._connectionClosed:
            transport = self.control.transport
            if abort:
                transport.abortConnection()
            else:
                transport.loseConnection()

    def _socketsClosed(self, result: object) -> None:
        self._closing.closed("sockets")

    def _released(self) -> None:
        if self.onReleased is not None:
            self.onReleased()
        self.control.released()
