"""
The C{twistd socksgate} command line.
"""

from __future__ import annotations

from twisted.python import usage

from .config import Config, ConfigError, loadConfig
from .service import GatewayService, buildService


class Options(usage.Options):
    """
    Options of C{twistd socksgate}.
    """

    synopsis = "[options]"
    longdesc = (
        "A SOCKS4, SOCKS4a and SOCKS5 gateway. With no options it listens on "
        "127.0.0.1:1080 and serves clients on loopback only."
    )
    optParameters = [
        ["config", "c", None, "The TOML configuration file."],
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
        try:
            config = loadConfig(self["config"]) if self["config"] else Config()
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None
        if self["listen"]:
            config = config.withListen(tuple(self["listen"]))
        self["configuration"] = config


def makeService(options: Options) -> GatewayService:
    """
    Build the gateway from the parsed options.
    """
    return buildService(options["configuration"])
