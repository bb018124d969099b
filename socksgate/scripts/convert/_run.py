"""
C{socksgate convert FILE}: the command.
"""

from __future__ import annotations

from typing import TextIO

from ._detect import detectSourceFormat

__all__ = ["run"]


def run(path: str, stdout: TextIO, stderr: TextIO) -> int:
    """
    Convert the file at C{path}: the TOML goes to C{stdout}, each problem to
    C{stderr} as C{PATH:LINE: message}.

    @return: the exit status: 0 when everything was converted exactly, 1
        when some lines were not (the TOML is still written), 2 when the
        file cannot be read or is in none of the formats.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        stderr.write(f"{path}: cannot be read: {error.strerror or error}\n")
        return 2
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    found = detectSourceFormat(text, path)
    if found is None:
        stderr.write(
            f"{path}: not a SOCKS4 sockd.conf, an NEC socks5.conf or a Dante sockd.conf (danted.conf)\n"
        )
        return 2
    conversion = found.convert(text)
    stdout.write(conversion.toml)
    for number, message in conversion.problems:
        stderr.write(f"{path}:{number}: {message}\n")
    return 1 if conversion.problems else 0
