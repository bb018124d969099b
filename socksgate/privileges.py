"""
Running as an unprivileged user: what is loaded before twistd drops to
C{--uid}/C{--gid}, and what to tell an administrator when a file cannot be
read or written afterwards.

twistd opens the listeners (L{twisted.application.service.IService.privilegedStartService}), then
drops its privileges, then starts the services.  Whatever the gateway
would otherwise load later, the first time a request needs it, is loaded
by L{preload} instead, while the process can still read every file.
"""

from __future__ import annotations

import grp
import importlib
import os
import pwd

from .hostnames import normalHostname

__all__ = ["PRELOADED", "preload", "readAdvice", "writeAdvice"]

#: Modules that the gateway would import the first time a request needs
#: them: the standard library's C{idna} codec, which C{socket.getaddrinfo}
#: (Twisted's name resolution) and C{str.encode("idna")} look up on first
#: use, and the C{idna} package's UTS 46 table, which it imports the first
#: time a name that is not ASCII is mapped.
PRELOADED = ("encodings.idna", "idna.uts46data")


def preload() -> None:
    """
    Import the modules of L{PRELOADED}, and encode a name as a request
    would (so that the codec registry has the C{idna} codec), so that no
    request needs to read a module file after the drop of privileges.
    """
    for name in PRELOADED:
        importlib.import_module(name)
    "localhost".encode("idna")
    normalHostname("b\u00fccher.example")


def _names() -> tuple[str, str]:
    """
    The names of the process's effective user and group (their numbers
    when they have no name).
    """
    uid, gid = os.geteuid(), os.getegid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def readAdvice(path: str) -> str:
    """
    What to change so that this process can read C{path}: the sentence
    for a log line about a file it cannot read.
    """
    user, group = _names()
    return (
        f"the gateway runs as user {user} (uid {os.geteuid()}): chown/chmod {path} so that user {user} "
        f"can read it, or keep it readable by group {group}"
    )


def writeAdvice(directory: str) -> str:
    """
    What to change so that this process can create and rename files in
    C{directory}: the sentence for a log line about a log file it cannot
    reopen or rotate.
    """
    user, group = _names()
    return (
        f"the gateway runs as user {user} (uid {os.geteuid()}): chown/chmod {directory} so that user "
        f"{user} (or group {group}) can write it"
    )
