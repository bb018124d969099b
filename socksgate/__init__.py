"""
socksgate: a SOCKS4, SOCKS4a and SOCKS5 gateway built on Twisted.

This module is deliberately empty of imports, so that importing the
sans-I/O wire codec (L{socksgate.wire}) never loads Twisted.
"""

#: The version of socksgate (setup.cfg reads it from here).
__version__ = "0.1.0"
