"""
SOCKS client endpoints: L{SOCKS5ClientEndpoint}, L{SOCKS4aClientEndpoint}
and L{SOCKS4ClientEndpoint} connect through a SOCKS server reached over
any other client endpoint, and fail with the errors of
L{socksgate.client.errors}.  Their string forms (C{socks5:}, C{socks4a:},
C{socks4:}) are Twisted endpoint plugins.
"""

from .endpoints import SOCKS4aClientEndpoint, SOCKS4ClientEndpoint, SOCKS5ClientEndpoint
from .gssapiauth import GSSAPIClientOptions
from .protocol import SOCKSClientProtocol

__all__ = [
    "GSSAPIClientOptions",
    "SOCKS4ClientEndpoint",
    "SOCKS4aClientEndpoint",
    "SOCKS5ClientEndpoint",
    "SOCKSClientProtocol",
]
