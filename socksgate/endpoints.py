"""
Checking endpoint descriptions (C{listen}, C{--listen}, C{--status})
before anything listens, so that a typo is a configuration error that
names the file and the key, not a traceback at start.
"""

from __future__ import annotations

import re

from twisted.internet.endpoints import serverFromString

# A reactor that only records: building an endpoint from a description
# reads its arguments (and, for ssl:, its certificate) without listening.
from twisted.internet.testing import MemoryReactor

from .tlsfiles import tlsFilesProblem

__all__ = ["endpointProblem", "statusEndpoint"]

_UNKNOWN_KEYWORD = re.compile(r"unexpected keyword argument '([^']+)'")
_NOT_A_NUMBER = re.compile(r"invalid literal for int\(\) with base 10: ('[^']*')")


def endpointProblem(description: str) -> str | None:
    """
    What is wrong with the server endpoint C{description}, in words, or
    L{None} when Twisted can build it.

    A C{systemd:} description can only be checked where systemd passed the
    sockets; elsewhere (C{socksgate check} on another machine) its index is
    not looked up.
    """
    kind, _, rest = description.partition(":")
    kind = kind.lower()
    if kind == "haproxy":
        inner = endpointProblem(rest)
        return None if inner is None else f"{description!r}: behind haproxy: {inner}"
    if kind == "ssl":
        files = tlsFilesProblem(description)
        if files is not None:
            return f"{description!r}: {files}"
    try:
        endpoint = serverFromString(MemoryReactor(), description)
    except ModuleNotFoundError as missing:
        return (
            f"{description!r}: {kind}: listeners need the {missing.name} package (pip install 'twisted[tls]')"
        )
    except IndexError:
        if kind == "systemd":
            return None
        return f"{description!r}: an argument is missing"
    except TypeError as problem:
        unknown = _UNKNOWN_KEYWORD.search(str(problem))
        if unknown is not None:
            return f"{description!r}: {kind}: has no parameter {unknown.group(1)!r}"
        return f"{description!r}: {problem}"
    except ValueError as problem:
        if str(problem).startswith("Unknown endpoint type"):
            return (
                f"{description!r}: unknown endpoint type {kind!r} "
                "(tcp, tcp6, ssl, unix, systemd, or haproxy: before one of them)"
            )
        number = _NOT_A_NUMBER.search(str(problem))
        if number is not None:
            return f"{description!r}: {number.group(1)} is not a number"
        return f"{description!r}: {problem}"
    except Exception as problem:  # noqa: BLE001 -- every parser's own error, in words
        return f"{description!r}: {problem}"
    port = getattr(endpoint, "_port", None)
    if isinstance(port, int) and not 0 <= port <= 65535:
        return f"{description!r}: port {port} is not between 0 and 65535"
    return None


def statusEndpoint(description: str) -> str:
    """
    The server endpoint description of a status endpoint: a bare port
    number (C{"9180"}) means that port on loopback only
    (C{"tcp:9180:interface=127.0.0.1"}); anything else is a Twisted server
    endpoint description and is used as it is.
    """
    description = description.strip()
    if description.isdigit():
        return f"tcp:{description}:interface=127.0.0.1"
    return description
