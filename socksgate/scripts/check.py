"""
Load and validate a configuration file and run its [[expect]] checks; with
a request, print the decision and the rule (and its line) that made it.

Exit status: 0 when the file is valid (and the request is permitted), 1
when it is not (or the request is denied).  A destination given by name
is decided as the gateway would before resolving it; when the answer
depends on the address, give --address, or the name is looked up here and
each address decided.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import replace
from ipaddress import ip_address
from typing import TextIO

from ..addresses import withoutScope
from ..config import ConfigError, loadConfig
from ..policy import PERMIT, AccessRequest, reachedAddress
from ..rules import RulePolicy
from ..ruletables import Expectation, decideExpectation, describeDecision, splitHostPort
from ..vocabulary import Command, Version


def addArguments(parser: argparse.ArgumentParser) -> None:
    """
    Add C{check}'s options to C{parser}.
    """
    parser.add_argument("-c", "--config", required=True, help="the configuration file")
    parser.add_argument("--client", help="the client's IP address")
    parser.add_argument("--destination", help="HOST:PORT or [IPv6]:PORT")
    parser.add_argument("--address", help="the address a destination name resolves to")
    # The choices as plain strings: argparse names them with repr() when it
    # refuses one.
    commands, versions = [str(command) for command in Command], [str(version) for version in Version]
    parser.add_argument("--command", default=str(Command.CONNECT), choices=commands)
    parser.add_argument("--user", help="the authenticated or claimed user")
    parser.add_argument("--version", default=str(Version.SOCKS5), choices=versions, help="SOCKS version")
    parser.add_argument("--listener", help="the listen description the request arrives on")


def run(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """
    Carry out C{socksgate check}.
    """
    try:
        config = loadConfig(arguments.config)
    except ConfigError as error:
        print(f"invalid: {error}", file=stdout)
        return 1
    policy = config.policy
    ruleCount = f"{len(config.rules)} rules" if config.rules else "no rules (loopback clients only)"
    print(
        f"valid: {arguments.config}: {ruleCount}, {len(config.expectations)} expectations hold", file=stdout
    )
    if arguments.client is None and arguments.destination is None:
        return 0
    if arguments.client is None or arguments.destination is None:
        print("a request needs both --client and --destination", file=stderr)
        return 1
    try:
        client = ip_address(arguments.client)
        host, port = splitHostPort(arguments.destination)
        address = reachedAddress(ip_address(arguments.address)) if arguments.address else None
    except ValueError as problem:
        print(f"bad request: {problem}", file=stderr)
        return 1
    name = host if isinstance(host, str) else None
    request = AccessRequest(
        client=client,
        clientPort=0,
        listener=arguments.listener or config.server.listen[0],
        version=arguments.version,
        command=arguments.command,
        destinationName=name,
        destinationAddress=address if name else host,
        port=port,
        user=arguments.user,
        auth="userpass" if arguments.user and arguments.version == Version.SOCKS5 else "none",
    )
    decision, depends = decideExpectation(policy, Expectation(0, None, request, PERMIT))
    if not depends:
        print(describeDecision(policy, decision), file=stdout)
        return 0 if decision.permitted else 1
    assert name is not None and isinstance(policy, RulePolicy)
    print(f"{name}: the decision depends on its address; looking it up", file=stdout)
    try:
        found = {
            reachedAddress(ip_address(withoutScope(info[4][0])))
            for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        }
    except (OSError, ValueError) as problem:
        print(f"{name} does not resolve ({problem}): the gateway would answer host unreachable", file=stdout)
        return 1
    permitted = False
    for each in sorted(found, key=lambda a: (a.version, a)):
        verdict = policy.decide(replace(request, destinationAddress=each))
        permitted = permitted or verdict.permitted
        print(f"  {each}: {describeDecision(policy, verdict)}", file=stdout)
    return 0 if permitted else 1
