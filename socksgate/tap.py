"""
The C{twistd socksgate} command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from twisted.application.service import IService, MultiService
from twisted.cred import strcred
from twisted.cred.credentials import IUsernamePassword
from twisted.internet.error import CannotListenError
from twisted.python import usage

import twisted

from . import __version__
from .accesslog import AccessLogError, checkAccessLog
from .config import ConfigError, loadConfig, parseConfig
from .endpoints import endpointProblem, statusEndpoint
from .service import buildService
from .workers import SHAREABLE, WorkersService, sharedDescription


def _refuse(problem: str) -> SystemExit:
    """
    What stops twistd on a configuration problem: the problem alone, on
    standard error, and exit status 1 (a L{usage.UsageError} would print
    the whole C{--help} first).
    """
    return SystemExit(f"twistd socksgate: {problem}")


def workerCount(value: str) -> int:
    """
    The value of C{--workers}: a positive number, or C{auto} for one
    worker per core (C{os.cpu_count()}).

    @raise ValueError: anything else, with the reason.
    """
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--workers {value}: give a number of processes, or auto") from None
    if count < 1:
        raise ValueError(f"--workers {value}: give at least 1 process (or auto: one per core)")
    return count


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
        ["workers", None, "1", "Processes sharing the listening ports; auto: one per core."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["arguments"] = []

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options}, and keep them: worker processes parse the same.
        """
        if options is not None:
            self["arguments"] = list(options)
        super().parseOptions(options)

    def opt_listen(self, description: str) -> None:
        """
        A Twisted server endpoint description to listen on (may be
        repeated); default tcp:1080:interface=127.0.0.1.
        """
        self["listen"].append(description)

    opt_l = opt_listen

    def opt_version(self) -> None:
        """
        Print socksgate's version and exit.
        """
        print(f"socksgate {__version__} (Twisted {twisted.__version__})")
        raise SystemExit(0)

    def postOptions(self) -> None:
        """
        Load the configuration file, so that its errors stop twistd.
        """
        try:
            self["workers"] = workerCount(str(self["workers"]))
        except ValueError as error:
            raise _refuse(str(error)) from None
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
            raise _refuse(str(error)) from None
        for option, description in [("--listen", item) for item in self["listen"]] + [
            ("--status", statusEndpoint(self["status"] or ""))
        ]:
            problem = description and endpointProblem(description)
            if problem:
                raise _refuse(f"{option}: {problem}")
        if self["listen"]:
            config = config.withListen(tuple(self["listen"]))
        config = config.withLog(access=self["access-log"], status=self["status"])
        if config.log.access:
            try:
                checkAccessLog(config.log)
            except AccessLogError as error:
                raise _refuse(str(error)) from None
        if self["workers"] > 1:
            for description in config.server.listen:
                kind = sharedDescription(description).partition(":")[0].lower()
                if kind not in SHAREABLE:
                    raise _refuse(
                        f"--workers {self['workers']}: the listener {description} cannot be shared; "
                        "worker processes share tcp:, tcp6:, unix: and systemd: listeners "
                        "(and haproxy: over them)"
                    )
        self["configuration"] = config


class _TwistdService(MultiService):
    """
    The gateway under twistd: a listener that cannot be opened (a port in
    use, an address not on this host) stops twistd with one line that says
    so, not a traceback.
    """

    def privilegedStartService(self) -> None:
        """
        Open the listeners and the session log (before twistd drops to
        C{--uid}/C{--gid}), or stop twistd with the reason.
        """
        try:
            super().privilegedStartService()
        except CannotListenError as error:
            where = f"{error.interface or '*'}:{error.port}"
            reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
            raise _refuse(f"cannot listen on {where}: {reason}") from None
        except AccessLogError as error:
            raise _refuse(str(error)) from None


def makeService(options: Options) -> IService:
    """
    Build the gateway from the parsed options: one process, or with
    C{--workers N} (N > 1) the parent of N worker processes.
    """
    parent = _TwistdService()
    if options["workers"] > 1:
        from twisted.internet import reactor

        WorkersService(
            options["configuration"],
            reactor,
            options["workers"],
            options["arguments"],
            authChecker=options["authChecker"],
        ).setServiceParent(parent)
    else:
        buildService(options["configuration"], authChecker=options["authChecker"]).setServiceParent(parent)
    return parent
