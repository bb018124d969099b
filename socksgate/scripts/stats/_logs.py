"""
Reading session logs: plain, rotated or gzip'd (recognised by its magic
bytes), line by line in bounded memory.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ._limits import MAX_LINE

__all__ = ["GZIP_MAGIC", "FileSummary", "openLog", "readLines"]

GZIP_MAGIC = b"\x1f\x8b"


_DECODER = json.JSONDecoder()


@dataclass
class FileSummary:
    """
    What was read from one log file.

    @ivar path: the file's name, as given.
    @ivar compressed: whether it is gzip'd.
    @ivar records: the records read from it.
    @ivar malformed: its malformed lines.
    @ivar error: why it could not be read to its end, or C{None}.
    """

    path: str
    compressed: bool = False
    records: int = 0
    malformed: int = 0
    error: str | None = None


def openLog(path: str) -> tuple[IO[bytes], bool]:
    """
    Open a log file for reading, decompressing it when it starts with
    gzip's magic bytes.

    @return: the binary stream of its lines, and whether it is gzip'd.
    @raise OSError: when it cannot be opened.
    """
    stream = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        compressed = stream.peek(2)[:2] == GZIP_MAGIC
    except BaseException:
        stream.close()
        raise
    if compressed:
        return gzip.GzipFile(fileobj=stream, mode="rb"), True  # type: ignore[return-value]
    return stream, False


def readLines(
    stream: IO[bytes],
    file: FileSummary,
    addRecord: Callable[[Any], str | None],
    noteMalformed: Callable[[str, int, str], None],
) -> None:
    """
    Decode every line of a binary stream, on behalf of C{file}, and give
    each record to C{addRecord} (which returns C{None}, or why the record
    is malformed); every malformed line goes to C{noteMalformed(path,
    line number, reason)}.  Blank lines are skipped; a line longer than
    L{MAX_LINE} is malformed and skipped without being kept in memory.

    @raise OSError, EOFError: when the stream breaks (a truncated or
        corrupt gzip file raises these).
    """
    readline = stream.readline
    decode = _DECODER.decode
    number = 0
    records = 0
    try:
        while True:
            line = readline(MAX_LINE)
            if not line:
                break
            number += 1
            if len(line) == MAX_LINE and not line.endswith(b"\n"):
                while True:
                    rest = readline(MAX_LINE)
                    if not rest or rest.endswith(b"\n"):
                        break
                reason = f"longer than {MAX_LINE} bytes"
            else:
                try:
                    record = decode(line.decode("utf-8"))
                except (ValueError, RecursionError):
                    if not line.strip():
                        continue
                    reason = "not JSON"
                else:
                    reason = addRecord(record)
                    if reason is None:
                        records += 1
                        continue
            file.malformed += 1
            noteMalformed(file.path, number, reason)
    finally:
        file.records += records


def _describeError(problem: BaseException) -> str:
    if isinstance(problem, OSError) and problem.strerror:
        return problem.strerror
    if isinstance(problem, EOFError):
        return "the compressed file is truncated"
    return str(problem) or type(problem).__name__


def _unique(paths: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique
