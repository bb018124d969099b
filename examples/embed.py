"""
Embedding socksgate in a Twisted application, with a policy of its own.

    python examples/embed.py [ENDPOINT]

listens on ENDPOINT (default tcp:1080:interface=127.0.0.1) and permits
loopback clients to reach loopback destinations only, on ports above 1023.
The policy is a plain object with a C{decide} method; it could as well look
the request up in a database and return a Deferred.
"""

from __future__ import annotations

import sys

from twisted.application.service import Application
from twisted.internet import reactor
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from zope.interface import implementer

from socksgate.config import Config
from socksgate.interfaces import IAccessPolicy
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision, isLoopback
from socksgate.service import buildService

log = Logger()


@implementer(IAccessPolicy)
class LocalUnprivilegedPolicy:
    """
    Loopback clients to loopback destinations on unprivileged ports.
    """

    def decide(self, request: AccessRequest) -> Decision:
        """
        Decide one request (called again for each address of a name).
        """
        if not isLoopback(request.client):
            return Decision(DENY, 1, "client is not local")
        if request.port < 1024:
            return Decision(DENY, 2, "privileged port")
        address = request.destinationAddress
        if address is not None and not address.is_loopback:
            return Decision(DENY, 3, "destination is not local")
        return Decision(PERMIT, 4, "local and unprivileged")


def main(argv: list[str]) -> None:
    """
    Start the gateway and run until interrupted.
    """
    listen = argv[1] if len(argv) > 1 else "tcp:1080:interface=127.0.0.1"
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    service = buildService(Config().withListen((listen,)), reactor, LocalUnprivilegedPolicy())
    application = Application("embedded-socksgate")
    service.setServiceParent(application)
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    log.info("embedded gateway listening on {listen}", listen=listen)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
