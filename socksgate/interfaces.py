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
