"""
Twisted plugins of socksgate: the C{twistd socksgate} service maker.
"""

from twisted.application.service import ServiceMaker

socksgate = ServiceMaker(
    "socksgate",
    "socksgate.tap",
    "A SOCKS4, SOCKS4a and SOCKS5 gateway with an access policy",
    "socksgate",
)
