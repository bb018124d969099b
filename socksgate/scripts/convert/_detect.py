"""
Telling the formats apart: the table of the formats C{socksgate convert}
reads, and L{detectSourceFormat}, which picks one for a file by its content.

A new format is a module of its own that gives its name, a converter and a
test of its own lines, and one entry in L{FORMATS}.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._dante import DANTE, convertDanteConf, isDanteLine
from ._output import Conversion
from ._sockd import SOCKD, convertSockdConf, isSockdLine
from ._socks5 import SOCKS5, convertSocks5Conf, isSocks5Line

__all__ = ["FORMATS", "SourceFormat", "detectFormat", "detectSourceFormat"]


@dataclass(frozen=True)
class SourceFormat:
    """
    One format that C{socksgate convert} reads.

    @ivar name: the format's name, as L{detectFormat} returns it.
    @ivar fileName: what a file's name holds when it is in this format
        (C{"sockd.conf"}), which breaks a tie in the format's favour.
    @ivar isOwnLine: whether a line is one that only this format holds: each
        such line is a vote for it.  No line should be the own line of two
        formats; if one is, the first of them in the table gets its vote.
    @ivar convert: converts the text of a whole file in this format.
    """

    name: str
    fileName: str
    isOwnLine: Callable[[str], bool]
    convert: Callable[[str], Conversion]


#: The formats C{socksgate convert} reads, in the order in which ties over
#: a line (and then over a file's name) are broken.
FORMATS: tuple[SourceFormat, ...] = (
    SourceFormat(SOCKD, SOCKD, isSockdLine, convertSockdConf),
    SourceFormat(SOCKS5, SOCKS5, isSocks5Line, convertSocks5Conf),
    SourceFormat(DANTE, DANTE, isDanteLine, convertDanteConf),
)


def detectFormat(text: str, path: str | None = None, formats: Sequence[SourceFormat] = FORMATS) -> str | None:
    """
    Which format C{text} is in: L{SOCKD}, L{SOCKS5}, L{DANTE} (the name of one of
    C{formats}), or L{None} when it is in none of them; see
    L{detectSourceFormat}.
    """
    found = detectSourceFormat(text, path, formats)
    return None if found is None else found.name


def detectSourceFormat(
    text: str, path: str | None = None, formats: Sequence[SourceFormat] = FORMATS
) -> SourceFormat | None:
    """
    Which of C{formats} C{text} is in, or L{None} when it is in none of them.

    Each line that is one of a format's own lines votes for it, and the
    format with the most votes wins.  Between formats with as many votes,
    the file name (C{sockd.conf}, C{socks5.conf}, C{danted.conf}) breaks
    the tie.  A file with other lines and no votes is in no format.

    @param path: the file's path, of which only the last part is used.
    @param formats: the formats to choose from.
    """
    votes = {each.name: 0 for each in formats}
    others = 0
    for line in text.splitlines():
        voted = next((each for each in formats if each.isOwnLine(line)), None)
        if voted is not None:
            votes[voted.name] += 1
        elif line.split("#", 1)[0].split():
            others += 1
    top = max(votes.values(), default=0)
    leaders = [each for each in formats if votes[each.name] == top]
    if len(leaders) == 1:
        return leaders[0]
    if others and not top:
        return None
    name = os.path.basename(path or "")
    for each in leaders:
        if each.fileName in name:
            return each
    return None
