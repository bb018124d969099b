"""
A policy that answers late: it asks a (simulated) directory service for
the groups of the requesting user, as an LDAP lookup would, and returns a
Deferred.  Requests it has no opinion on go to the rules of a file.

    python examples/directory_policy.py [ENDPOINT] [RULES.toml]

SOCKS4 clients claim a user in USERID: members of "staff" may reach
loopback destinations; users the directory does not know are refused with
the general-failure reply (the lookup failed), and the failure is logged.
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from zope.interface import implementer

from socksgate.config import Config, loadConfig
from socksgate.interfaces import IAccessPolicy
from socksgate.policy import DENY, PERMIT, AccessRequest, Decision
from socksgate.service import buildService

log = Logger()


class Directory:
    """
    Stands for an LDAP directory: answers after a network round trip.
    """

    groups = {"alice": ["staff"], "bob": ["visitors"]}

    def groupsOf(self, user: str) -> Deferred[list[str]]:
        def lookUp() -> list[str]:
            if user not in self.groups:
                raise LookupError(f"no such user in the directory: {user}")
            return self.groups[user]

        return deferLater(reactor, 0.01, lookUp)


@implementer(IAccessPolicy)
class DirectoryPolicy:
    """
    Staff may reach loopback; other known users may not; anonymous
    requests are decided by C{fallback}.
    """

    def __init__(self, directory: Directory, fallback: IAccessPolicy) -> None:
        self.directory = directory
        self.fallback = fallback

    def decide(self, request: AccessRequest) -> Decision | Deferred[Decision]:
        if request.user is None:
            return self.fallback.decide(request)

        def withGroups(groups: list[str]) -> Decision:
            address = request.destinationAddress
            if "staff" in groups and (address is None or address.is_loopback):
                return Decision(PERMIT, message=f"{request.user} is staff")
            return Decision(DENY, message=f"{request.user} is not staff")

        return self.directory.groupsOf(request.user).addCallback(withGroups)


def main(argv: list[str]) -> None:
    """
    Start the gateway with the directory policy and run until interrupted.
    """
    listen = argv[1] if len(argv) > 1 else "tcp:1080:interface=127.0.0.1"
    config = loadConfig(argv[2]) if len(argv) > 2 else Config()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    policy = DirectoryPolicy(Directory(), config.policy)
    service = buildService(config.withListen((listen,)), reactor, policy)
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    log.info("directory-policy gateway listening on {listen}", listen=listen)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
