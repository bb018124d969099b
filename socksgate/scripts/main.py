"""
The C{socksgate} console command: the administrator's tools::

    socksgate check -c FILE [--client IP] [--destination HOST:PORT] ...
    socksgate convert FILE
    socksgate passwd FILE USER
    socksgate stats [--json | --html FILE] LOG...
    socksgate connect [--route FILE | --proxy URL] HOST PORT
    socksgate --version
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import __version__
from . import check, connect


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socksgate", description="socksgate's administration tools.")
    parser.add_argument("--version", action="version", version=f"socksgate {__version__}")
    commands = parser.add_subparsers(dest="tool", required=True, metavar="COMMAND")
    check.addArguments(
        commands.add_parser(
            "check",
            help="validate a configuration file and explain the decision for a request",
            description=check.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    convert = commands.add_parser(
        "convert",
        help="convert a SOCKS4 sockd.conf, an NEC socks5.conf or a Dante sockd.conf (danted.conf)"
        " into socksgate's TOML; lines not converted exactly are reported on standard error",
    )
    convert.add_argument("file", help="the sockd.conf, socks5.conf or danted.conf to convert")
    passwd = commands.add_parser(
        "passwd",
        help="add or change a user in an htpasswd file (bcrypt); the password is read from the "
        "terminal or standard input",
    )
    passwd.add_argument("file", help="the htpasswd file (created if missing)")
    passwd.add_argument("user", help="the user name")
    stats = commands.add_parser(
        "stats",
        help="summarise access logs (rotated and gzip'd ones too): text, --json, or --html FILE",
    )
    stats.add_argument("logs", nargs="+", metavar="LOG", help="access log files")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    connect.addArguments(
        commands.add_parser(
            "connect",
            help="connect to HOST PORT through a routing table or a proxy and relay standard input and "
            "output (an OpenSSH ProxyCommand)",
            description=connect.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return parser


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """
    Run the command; return its exit status.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    arguments = _parser().parse_args(argv)
    if arguments.tool == "check":
        return check.run(arguments, stdout, stderr)
    if arguments.tool == "stats":
        from .stats import run as stats

        return stats(arguments.logs, arguments.json, arguments.html, stdout, stderr)
    if arguments.tool == "connect":
        return connect.run(arguments, stderr)
    if arguments.tool == "passwd":
        from .passwd import run as passwd

        return passwd(arguments.file, arguments.user, sys.stdin, stdout, stderr)
    from .convert import run as convert

    return convert(arguments.file, stdout, stderr)


def console() -> None:
    """
    The console script's entry point.
    """
    sys.exit(main())


if __name__ == "__main__":
    console()
