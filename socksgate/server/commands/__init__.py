"""
The SOCKS commands, each an L{ICommand} found in one table.

  - L{connect}: CONNECT, relayed by the stream relay.
  - L{bind}: BIND, the gateway listening for one connection.
  - L{udp}: UDP ASSOCIATE, decided, then served by a UDP association
    (L{socksgate.udprelay}).
"""

from ...interfaces import ICommand
from ...vocabulary import Command
from .bind import BIND
from .connect import CONNECT
from .udp import UDP_ASSOCIATE

__all__ = ["COMMANDS", "IMPLEMENTED_COMMANDS"]

#: The command that carries out each kind of request.
COMMANDS: dict[Command, ICommand] = {
    Command.CONNECT: CONNECT,
    Command.BIND: BIND,
    Command.UDP: UDP_ASSOCIATE,
}

#: Commands this version can carry out.
IMPLEMENTED_COMMANDS = frozenset(COMMANDS)
