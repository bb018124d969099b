"""
The interfaces that socksgate's parts and embedding applications share.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = [
    "IAccessPolicy",
    "ISOCKSUser",
]


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
            the general-failure reply and is logged, except a
            L{socksgate.vocabulary.RequestRefused}, whose reply is sent
            (L{socksgate.testing_faults.ReplyCodePolicy} answers so).
        @rtype: L{socksgate.policy.Decision} or L{Deferred}
        """


class ISOCKSUser(Interface):
    """
    The avatar of a user who logged in to the gateway: its C{name} is what
    the access policy and the session log see.
    """


class ISession(Interface):
    """
    What serves a granted request once the client has its reply: a relay
    (CONNECT, BIND) or a UDP association.  It receives the events of the
    client's connection, and tells the L{IClientConnection} when it ends
    (C{finish}) and when everything it opened is closed (C{released}).
    """

    bytesOut = Attribute("Bytes the client sent towards the destination (or destinations).")
    bytesIn = Attribute("Bytes that came back to the client.")

    def fromClient(data):
        """
        The client sent C{data}.
        """

    def clientFinished():
        """
        The client shut down its sending side (a FIN).
        """

    def clientLost(reason):
        """
        The client's connection is gone.
        """

    def abort():
        """
        Drop every connection and socket of the session at once.
        """

    def close(why):
        """
        End the session from outside (a time-out, a stopping gateway),
        delivering what is already buffered; C{why} goes to the record.
        """


class IClientConnection(Interface):
    """
    The client connection of one request, as the command that serves it
    sees it: the narrow handle a command gets instead of the protocol.
    """

    transport = Attribute("The client's transport (ITCPTransport).")
    record = Attribute("The request's socksgate.session.SessionRecord.")
    client = Attribute("The client's IP address (unmapped), or None for a UNIX socket.")
    version = Attribute("The SOCKS version of the request: 4 or 5.")
    gateway = Attribute(
        "The gateway's settings for this listener: its SOCKSServerFactory (config, policy, reactor, "
        "resolverFor, bindHost, sessions)."
    )
    gone = Attribute("Whether the client's connection is lost.")

    def reply(code, address=None, port=0):
        """
        Send the reply C{code} (a SOCKS5 ReplyCode; the codec writes the
        SOCKS4 form for a SOCKS4 request) with BND.ADDR and BND.PORT.

        @return: the reply as the session log writes it (the SOCKS5 code,
            or the SOCKS4 CD).
        """

    def refuse(refusal):
        """
        Answer with the reply of C{refusal} (a RequestRefused), record it
        and close the connection.
        """

    def attach(session):
        """
        Hand the client connection's events to C{session} (an ISession)
        from now on; L{None} takes them back (the session failed before it
        started).
        """

    def takeEarlyData():
        """
        The bytes the client sent after its request, which no one has
        relayed yet.
        """

    def finish(outcome, reply, message):
        """
        Emit the session record, once, with its outcome, reply and message.
        """

    def relayEnded(relay, why):
        """
        The relay (a stream or zero-copy relay) of the session ended for
        C{why}: record its byte counts and emit the record (outcome
        C{timeout} with the reason after the idle timeout, else C{closed}).
        """

    def released():
        """
        Every connection and socket of the session is closed: the request
        leaves the gateway's session table.
        """


class ICommand(Interface):
    """
    One SOCKS command (CONNECT, BIND, UDP ASSOCIATE) as the server carries
    it out once the request is checked (versions, commands, ident).
    """

    def start(client, request, message):
        """
        Carry out the request.

        @param client: the L{IClientConnection}.
        @param request: the L{socksgate.policy.AccessRequest}, without a
            destination.
        @param message: the decoded SOCKS4 or SOCKS5 request (its C{host},
            C{port} and C{command}).
        @return: L{None}, or a Deferred that fires once the session has
            started (attached) or failed with the RequestRefused (or any
            other failure) that answers the client.  The server cancels it
            if the client goes away before.
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
