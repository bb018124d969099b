"""
Send a line to a destination through a SOCKS server and print the answer.

    python socks_client.py 'socks5:host=echo.example:port=7:proxy=tcp\\:127.0.0.1\\:1080' hello

The first argument is any client endpoint description; socksgate's
C{socks5:}, C{socks4a:} and C{socks4:} plugins make the SOCKS ones.
"""

import sys

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import react

from socksgate.client.errors import SOCKSError


class PrintFirstAnswer(Protocol):
    """
    Print the first bytes that come back, then close.
    """

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        print("answer:", data.decode("utf-8", "replace").strip())
        self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        self.done.callback(None)


async def main(reactor, description: str, line: str) -> None:
    endpoint = clientFromString(reactor, description)
    try:
        protocol = await endpoint.connect(Factory.forProtocol(PrintFirstAnswer))
    except SOCKSError as error:
        print(f"refused: {error} (code {error.code})")
        return
    print("connected to", protocol.transport.getPeer())
    protocol.transport.write(line.encode("utf-8") + b"\n")
    await protocol.done


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, sys.argv[1], sys.argv[2])))
