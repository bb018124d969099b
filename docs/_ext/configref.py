"""
The configuration reference, rendered from L{socksgate.configschema}: the
schema the configuration checker uses, so the reference cannot drift from
what the checker accepts.

A page that holds a line C{<!-- configref -->} (or C{<!-- configref 3 -->}
for tables at heading level 3) gets, in its place, every
table and key of the file, each with its type, default, reload behaviour,
description and an example that loads (C{tests/test_configschema.py} loads
each).  docs/reference/configuration.md and the man page socksgate.toml(5)
both hold it.
"""

from __future__ import annotations

import re
from typing import Any

from socksgate.configschema import TABLES, Key, Table, tomlValue

#: The line replaced by the reference; a number after the name is the
#: heading level of its tables (2 when left out).
#: C{nolabels} leaves out the targets (C{server-listen}...), which only the
#: reference page defines.
MARKER = re.compile(r"^<!-- configref(?: (\d))?( nolabels)? -->$", re.MULTILINE)


def renderKey(table: Table, key: Key, level: int, labels: bool = True) -> str:
    """
    One key: a heading with a target C{TABLE-KEY}, its facts, its example.
    """
    example = f"{table.header}\n{key.name} = {key.example}\n" + (key.context + "\n" if key.context else "")
    if table.name == "rule" and key.name != "action":
        example += 'action = "permit"\n'
    default = tomlValue(key.default)
    return (
        (f"({table.name}-{key.name})=\n" if labels else "")
        + f"{'#' * level} `{key.name}`\n\n"
        + f"{key.doc}\n\n"
        f"- type: {key.kind}\n"
        f"- default: `{default}`\n"
        f"- {key.reload}\n\n"
        f"```toml\n{example}```\n"
    )


def renderTable(table: Table, level: int, labels: bool = True) -> str:
    """
    One table: its heading, what it is for, the guide to read, its keys.
    """
    array = " (an array of tables: write the header once for each)" if table.array else ""
    parts = [
        (f"({table.name}-table)=\n" if labels else "")
        + f"{'#' * level} `{table.header}`\n\n{table.doc}{array} "
        + (
            f"The guide: [{table.page}.md](../{table.page}.md).\n"
            if labels
            else f"The guide: {table.page}.md.\n"
        )
    ]
    parts.extend(renderKey(table, key, level + 1, labels) for key in table.keys)
    return "\n".join(parts)


def render(level: int = 2, labels: bool = True) -> str:
    """
    The whole reference, in Markdown (MyST), its tables at heading C{level}.
    """
    return "\n".join(renderTable(table, level, labels) for table in TABLES)


def _sourceRead(app: Any, docname: str, source: list[str]) -> None:
    rendered = MARKER.sub(lambda match: render(int(match.group(1) or 2), not match.group(2)), source[0])
    if rendered != source[0]:
        _RENDERED.add(docname)
    source[0] = rendered


#: The pages that hold the reference: read again at every build, since the
#: schema they come from is not one of their sources.
_RENDERED: set[str] = set()


def _outdated(app: Any, env: Any, added: Any, changed: Any, removed: Any) -> list[str]:
    return sorted(_RENDERED & set(env.found_docs))


def setup(app: Any) -> dict[str, Any]:
    """
    Register the C{source-read} handler that renders the reference.
    """
    app.connect("source-read", _sourceRead)
    app.connect("env-get-outdated", _outdated)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
