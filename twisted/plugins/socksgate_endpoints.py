"""
Twisted plugins of socksgate: the C{socks5:}, C{socks4a:} and C{socks4:}
client endpoint descriptions (L{socksgate.client.parsers}).
"""

from socksgate.client.parsers import SOCKS4aClientParser, SOCKS4ClientParser, SOCKS5ClientParser

socks5 = SOCKS5ClientParser()
socks4a = SOCKS4aClientParser()
socks4 = SOCKS4ClientParser()
