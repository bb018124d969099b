"""
C{socksgate convert FILE}: the access rules of an older SOCKS server, as
socksgate's C{[[rule]]} tables.

Three formats are read, told apart by their content (the file name breaks a
tie), each described in its module:

  - the SOCKS4 C{sockd.conf} of CSTC/NEC sockd 4.x (C{_sockd});
  - the NEC SOCKS5 C{socks5.conf} (C{_socks5});
  - Dante 1.4's C{sockd.conf}, Debian's C{danted.conf} (C{_dante}).

How it converts, and why, in every format:

  - One rule per source rule, in the same order: first match wins and no
    match denies, in every format as in socksgate.  Each rule is preceded
    by a comment quoting its line, and its C{message} names the line
    (C{"sockd.conf line 12"}).  Dante's server settings become C{[server]}
    and C{[auth]} keys.
  - Every line that is not converted exactly is reported with its number,
    and marked in the output.  What is written instead fails closed: a
    deny rule is widened (a non-contiguous mask becomes the CIDR of its
    leading one bits; a restriction socksgate cannot express is dropped);
    a permit rule is narrowed (a userlist keeps its names and loses its
    files) or, when nothing narrower exists, left out as a comment.  The
    result may refuse what the original allowed, never the reverse.
  - A line that the original server ignored as invalid is reported and
    left out.
  - "Any address" (C{0.0.0.0 0.0.0.0}, C{-}, Dante's C{0/0}) leaves the
    key out, so the rule also covers IPv6 and destinations given by name.
  - Service names are looked up on this host (C{getservbyname}).

One module per job: C{_output} (the converted rules, their TOML and the
problems reported), C{_addresses} (addresses and ports, as the formats
write them), C{_sockd}, C{_socks5} and C{_dante} (the readers), C{_detect} (the table
of formats and telling them apart) and C{_run} (the command).  Another
format is one more reader module and one entry in C{_detect.FORMATS}.
"""

from ._dante import DANTE, convertDanteConf
from ._detect import detectFormat
from ._output import Conversion
from ._run import run
from ._sockd import SOCKD, convertSockdConf
from ._socks5 import SOCKS5, convertSocks5Conf

__all__ = [
    "DANTE",
    "SOCKD",
    "SOCKS5",
    "Conversion",
    "convertDanteConf",
    "convertSockdConf",
    "convertSocks5Conf",
    "detectFormat",
    "run",
]
