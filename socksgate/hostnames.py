"""
Host names in the one form the gateway decides and resolves.

A client may spell one host many ways: in capitals, in fullwidth letters,
with the ideographic full stop (U+3002) for a dot, with invisible code
points (a soft hyphen, a zero-width space) inside it, or as the U-label
C{bücher.test} of the A-label C{xn--bcher-kva.test}.  A resolver folds
all of these into one name before it looks it up, so a policy that
compared the raw spelling could be talked past.  L{normalHostname} turns a
spelling into the ASCII name that is then both decided and handed to the
resolver, so the decision and the lookup agree by construction.

The rules:

  - The name is mapped as UTS 46 (non-transitional, without the STD3
    restrictions) maps it: case folded, compatibility forms such as
    fullwidth letters and digits replaced, the dots U+3002, U+FF0E and
    U+FF61 turned into C{.}, ignorable code points (soft hyphen,
    zero-width space, variation selectors ...) removed.  A name that is
    ASCII already is only lower-cased.
  - One final dot is dropped (C{example.com.} is C{example.com}).
  - Each label that is then ASCII must be 1 to 63 letters, digits,
    hyphens and underscores.  Each label that is not is converted to its
    A-label (C{xn--...}) under IDNA 2008, and a label that IDNA 2008 does
    not allow (a joiner out of context, a leading combining mark, a
    symbol, a bidi error) makes the whole name invalid.
  - The result is at most 253 characters.

This module imports only the standard library and the C{idna} package.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address

import idna

__all__ = ["InvalidHostname", "normalHostname", "numericIPv4"]

_ASCII_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_NAME = 253
_NUMERIC = re.compile(r"[0-9a-fA-FxX.]{1,64}")


def numericIPv4(name: str) -> IPv4Address | None:
    """
    The IPv4 address C{name} spells in one of the other numeric forms that
    C{getaddrinfo} (through C{inet_aton}) takes for an address and never
    looks up: fewer than four parts (C{127.1}), hexadecimal (C{0x7f.1}),
    octal (C{0177.0.0.1}) or one number (C{2130706433}).  L{None} for
    anything else.  These are decided as the address, not as names, so
    that a name rule (a C{.1} domain, say) cannot permit what an address
    rule denies.
    """
    if not _NUMERIC.fullmatch(name) or not any(character.isdigit() for character in name):
        return None
    try:
        return IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


class InvalidHostname(ValueError):
    """
    A name that no resolver would look up as a host name: the gateway
    refuses it, as it refuses a name that does not resolve.
    """


def normalHostname(name: str) -> str:
    """
    The ASCII form of host name C{name}, as it is decided and resolved.

    @param name: a host name as a client or a configuration file spells
        it (not an IP address).
    @return: the name lower-cased, without a final dot, with every
        non-ASCII label as its A-label.
    @raise InvalidHostname: it is not a valid host name in any spelling.
    """
    if name.isascii():
        mapped = name.lower()
    else:
        try:
            mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except idna.IDNAError as problem:
            raise InvalidHostname(f"{name!r} is not a valid host name: {problem}") from None
    if mapped.endswith("."):
        mapped = mapped[:-1]
    labels = []
    for label in mapped.split("."):
        if label.isascii():
            if not _ASCII_LABEL.fullmatch(label):
                raise InvalidHostname(f"{name!r} is not a valid host name: bad label {label!r}")
            labels.append(label)
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except (idna.IDNAError, UnicodeError) as problem:
            raise InvalidHostname(f"{name!r} is not a valid host name: {problem}") from None
    normal = ".".join(labels)
    if len(normal) > _MAX_NAME:
        raise InvalidHostname(f"{name!r} is not a valid host name: longer than {_MAX_NAME} characters")
    return normal
