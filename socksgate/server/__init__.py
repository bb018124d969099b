"""
The SOCKS server: one protocol for SOCKS4, SOCKS4a and SOCKS5 on one
listener, its factory, and the table of open sessions a gateway's
listeners share.

  - L{factory}: L{SOCKSServerFactory}, one listener's settings.
  - L{sessions}: L{SessionTable}, the open sessions and every limit.
  - L{protocol}: L{SOCKSServerProtocol}, which drives the codec, writes the
    replies and hands each checked request to its command.
  - L{handshake}: method selection, logins through the throttle, ident.
  - L{client}: L{ClientConnection}, the narrow handle a command gets.
  - L{commands}: CONNECT, BIND and UDP ASSOCIATE, in one table.
"""

from ..addresses import formatHostPort
from .client import EARLY_DATA_LIMIT, ClientConnection
from .commands import COMMANDS, IMPLEMENTED_COMMANDS
from .factory import SOCKSServerFactory
from .protocol import SOCKSServerProtocol
from .sessions import MAX_ASSOCIATIONS_PER_CLIENT, SessionTable

__all__ = [
    "COMMANDS",
    "EARLY_DATA_LIMIT",
    "IMPLEMENTED_COMMANDS",
    "MAX_ASSOCIATIONS_PER_CLIENT",
    "ClientConnection",
    "SOCKSServerFactory",
    "SOCKSServerProtocol",
    "SessionTable",
    "formatHostPort",
]
