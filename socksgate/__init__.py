"""
socksgate: a SOCKS4, SOCKS4a and SOCKS5 gateway built on Twisted.

This module is deliberately empty of imports, so that importing the
sans-I/O wire codec (L{socksgate.wire}) never loads Twisted.
"""
