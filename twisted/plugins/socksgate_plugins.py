"""
Twisted plugins of socksgate: the C{twistd socksgate} service maker.
"""

from typing import Any

from twisted.application.service import ServiceMaker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.strcred import ICheckerFactory
from twisted.plugin import IPlugin
from zope.interface import implementer

socksgate = ServiceMaker(
    "socksgate",
    "socksgate.tap",
    "A SOCKS4, SOCKS4a and SOCKS5 gateway with an access policy",
    "socksgate",
)


@implementer(ICheckerFactory, IPlugin)
class HtpasswdCheckerFactory:
    """
    The C{htpasswd:FILE} checker of C{--auth}: users from an Apache
    htpasswd file of bcrypt hashes (L{socksgate.htpasswd.HtpasswdChecker}).
    """

    authType = "htpasswd"
    authHelp = """
Users and passwords from an Apache htpasswd file with bcrypt hashes, as
'htpasswd -B' and 'socksgate passwd' write them.  A file with any other
kind of hash (MD5 $apr1$, {SHA}, crypt, plain text) is refused, with its
line named.  The file is read again whenever it changes, so users added or
changed take effect without a restart.
"""
    argStringFormat = "Location of an htpasswd file with bcrypt hashes (htpasswd -B)."
    credentialInterfaces = (IUsernamePassword,)

    def generateChecker(self, argstring: str = "") -> Any:
        """
        Read the htpasswd file named by C{argstring}.

        @raise ValueError: when no file is named, or it cannot be used
            (L{socksgate.htpasswd.HtpasswdError}, naming file, line and
            problem).
        """
        if not argstring.strip():
            raise ValueError(f"{self.authType!r} requires a file name: htpasswd:FILE")
        from socksgate.htpasswd import HtpasswdChecker

        return HtpasswdChecker(argstring)


htpasswdCheckerFactory = HtpasswdCheckerFactory()
