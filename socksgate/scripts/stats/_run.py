"""
C{socksgate stats LOG... [--json] [--html FILE]}: the command.
"""

from __future__ import annotations

import os
from typing import TextIO

from ._format import _plural
from ._html import renderHTML
from ._json import renderJSON
from ._logs import _describeError, _unique
from ._summary import Summary
from ._text import renderText

__all__ = ["run"]


def run(logs: list[str], asJSON: bool, htmlPath: str | None, stdout: TextIO, stderr: TextIO) -> int:
    """
    Summarise the log files C{logs}: text on C{stdout}, or JSON with
    C{asJSON}; with C{htmlPath}, also write the HTML report there.

    @return: the exit status: 0 when every file was read, 1 when one was
        not (or the report could not be written).
    """
    paths = _unique(logs)
    for path in paths:
        try:
            open(path, "rb").close()
        except OSError as problem:
            stderr.write(f"socksgate stats: {path}: cannot be read: {_describeError(problem)}\n")
            return 1
    summary = Summary()
    status = 0
    for path in paths:
        try:
            file = summary.readFile(path)
        except OSError as problem:
            stderr.write(f"socksgate stats: {path}: cannot be read: {_describeError(problem)}\n")
            return 1
        if file.error:
            stderr.write(
                f"socksgate stats: {path}: read error after {file.records} records: {file.error};"
                " the summary counts what was read\n"
            )
            status = 1
    report = summary.asDict()
    if htmlPath is not None:
        try:
            # Names that were not UTF-8 on the wire are logged as lone
            # surrogates (\udcff): they are written as such escapes.
            with open(htmlPath, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(renderHTML(report))
        except OSError as problem:
            stderr.write(f"socksgate stats: {htmlPath}: cannot be written: {_describeError(problem)}\n")
            return 1
    if asJSON:
        output = renderJSON(report)
    elif htmlPath is not None:
        output = f"Wrote {htmlPath}: {_plural(report['sessions']['total'], 'session')}\n"
    else:
        output = renderText(report)
    try:
        stdout.write(output)
        stdout.flush()
    except BrokenPipeError:
        # The reader went away (`socksgate stats --json LOG | head`): stop
        # quietly, and keep the interpreter from failing to flush at exit.
        _discard(stdout)
        return 1
    return status


def _discard(stream: TextIO) -> None:
    """
    Send what is left to write on C{stream}'s file to C{/dev/null}.
    """
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)
