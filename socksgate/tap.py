"""
The C{twistd socksgate} command line.
"""

from __future__ import annotations

from twisted.cred import strcred
from twisted.cred.credentials import IUsernamePassword
from twisted.python import usage

from .accesslog import AccessLogError, checkAccessLog
from .config import ConfigError, loadConfig, parseConfig
from .service import GatewayService, buildService


class Options(usage.Options, strcred.AuthOptionMixin):
    """
    Options of C{twistd socksgate}.  C{--auth} takes a credentials checker
    as every twistd plugin does (C{--help-auth} lists the kinds); it enables
    username/password for SOCKS5.
    """

    supportedInterfaces = (IUsernamePassword,)

    synopsis = "[options]"
    longdesc = (
        "A SOCKS4, SOCKS4a and SOCKS5 gateway. With no options it listens on "
        "127.0.0.1:1080 and serves clients on loopback only."
    )
    optParameters = [
        ["config", "c", None, "The TOML configuration file."],
        ["access-log", None, None, "The session log: one JSON object a line (- for standard output)."],
        ["status", None, None, "Serve the status page and Prometheus /metrics on this endpoint."],
        ["workers", None, 1, "Processes sharing the listening ports (only 1 in this version).", int],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        A Twisted server endpoint description to listen on (may be
        repeated); default tcp:1080:interface=127.0.0.1.
        """
        self["listen"].append(description)

    opt_l = opt_listen

    def postOptions(self) -> None:
        """
        Load the configuration file, so that its errors stop twistd.
        """
        if self["workers"] != 1:
            raise usage.UsageError(
                f"--workers {self['workers']}: this version runs one process; "
                "several worker processes are not supported yet"
            )
        checkers = self.get("credCheckers", [])
        if len(checkers) > 1:
            raise usage.UsageError("give --auth once: socksgate checks passwords with one checker")
        authChecker = (checkers[0], "--auth") if checkers else None
        self["authChecker"] = authChecker
        try:
            if self["config"]:
                config = loadConfig(self["config"], authChecker)
            else:
                config = parseConfig("", "(no configuration file)", authChecker)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None
        if self["listen"]:
            config = config.withListen(tuple(self["listen"]))
        config = config.withLog(access=self["access-log"], status=self["status"])
        if config.log.access:
            try:
                checkAccessLog(config.log)
            except AccessLogError as error:
                raise usage.UsageError(str(error)) from None
        self["configuration"] = config


def makeService(options: Options) -> GatewayService:
    """
    Build the gateway from the parsed options.
    """
    return buildService(options["configuration"], authChecker=options["authChecker"])
