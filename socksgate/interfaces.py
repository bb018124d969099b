"""
The interfaces that socksgate's parts and embedding applications share.
"""

from __future__ import annotations

from zope.interface import Interface


class IAccessPolicy(Interface):
    """
    Decides whether a SOCKS request may proceed.

    The gateway asks once before it resolves a host name, with
    C{request.destinationAddress} set to L{None}: a policy denies there only
    if it would deny every address the name could resolve to (a client
    network that is refused outright, say), so that the name is never
    looked up.  Then it asks once for each address the name resolves to,
    with both the name and the address in hand, and tries only the
    permitted addresses.  A request for an IP address is asked about once.

    A UDP ASSOCIATE is asked about when the client requests it, with no
    destination (C{destinationName} and C{destinationAddress} both
    L{None}) and port 0: a policy permits it if the client may send
    datagrams to some destination, and denies it (0x02) if to none.  Every
    datagram's destination is then asked about on its own, with the policy
    in force at the time (a reload applies to open associations too).
    Port 0 of a BIND or UDP request means any port: the peer's port is not
    known yet (the peer is asked about again, with its address and port,
    when it connects).
    """

    def decide(request):
        """
        Decide one request.

        @param request: the request.
        @type request: L{socksgate.policy.AccessRequest}

        @return: the decision, or a L{Deferred} that fires with it.  A
            failure (raised or in the Deferred) refuses the request with
            the general-failure reply and is logged.
        @rtype: L{socksgate.policy.Decision} or L{Deferred}
        """


class ISOCKSUser(Interface):
    """
    The avatar of a user who logged in to the gateway: its C{name} is what
    the access policy and the session log see.
    """


class IRoute(Interface):
    """
    How a permitted CONNECT reaches its destination: straight
    (L{socksgate.connecting.DirectRoute}) or, later, through an upstream
    SOCKS server.  L{socksgate.connecting.routeFor} picks the route that a
    decision's C{route} names.
    """

    def connect(request, addresses, port):
        """
        Connect to the destination.

        @param request: the permitted request: with the destination's
            name (and no address) when the client asked for a name, with
            its address when it gave one.
        @type request: L{socksgate.policy.AccessRequest}

        @param addresses: the addresses the policy permitted, in the
            resolver's order, each tried until one connects.
        @type addresses: L{list} of L{ipaddress.IPv4Address} or
            L{ipaddress.IPv6Address}

        @param port: the destination port.
        @type port: L{int}

        @return: a L{Deferred} that fires with the connected
            L{socksgate.relay.DestinationProtocol}, its transport paused
            until a relay takes it, or fails with the last attempt's
            failure; cancelling it stops every attempt.
        @rtype: L{Deferred}
        """
