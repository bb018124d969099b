"""
Protocol numbers of SOCKS4, SOCKS4a, SOCKS5 and RFC 1929.
"""

from __future__ import annotations

from enum import IntEnum

#: The longest host name a SOCKS5 address or a SOCKS4a request may carry.
MAX_HOSTNAME_LENGTH = 255

#: The longest SOCKS4 USERID socksgate accepts.
MAX_USERID_LENGTH = 255


class Command(IntEnum):
    """
    The request commands; SOCKS4 has only CONNECT and BIND.
    """

    CONNECT = 0x01
    BIND = 0x02
    UDP_ASSOCIATE = 0x03


class AddressType(IntEnum):
    """
    SOCKS5 ATYP values.
    """

    IPV4 = 0x01
    DOMAIN_NAME = 0x03
    IPV6 = 0x04


class ReplyCode(IntEnum):
    """
    SOCKS5 REP values (RFC 1928, section 6).
    """

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class SOCKS4ReplyCode(IntEnum):
    """
    SOCKS4 CD values of a reply.
    """

    GRANTED = 90
    REJECTED = 91
    IDENTD_UNREACHABLE = 92
    IDENTD_MISMATCH = 93


class Method(IntEnum):
    """
    SOCKS5 authentication methods.
    """

    NO_AUTHENTICATION = 0x00
    GSSAPI = 0x01
    USERNAME_PASSWORD = 0x02
    NO_ACCEPTABLE_METHODS = 0xFF


class AuthStatus(IntEnum):
    """
    RFC 1929 STATUS values (any non-zero value is a failure).
    """

    SUCCESS = 0x00
    FAILURE = 0x01
