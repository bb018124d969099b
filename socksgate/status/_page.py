"""
The status page: C{page/index.html} with C{page/status.css} and
C{page/status.js} (package data) put inline, read once at import, and the
Content-Security-Policy that lets exactly that style and script run.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files

__all__ = ["PAGE", "PAGE_POLICY"]


def _asset(name: str) -> str:
    """
    The text of C{page/NAME}, a data file of this package.
    """
    return files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def _inline(template: str, tag: str, source: str) -> str:
    """
    C{template} with its one empty C{<tag></tag>} element filled with
    C{source}.

    @raise ValueError: when the template has no such element or several,
        or when C{source} would end the element early.
    """
    empty = f"<{tag}></{tag}>"
    if template.count(empty) != 1 or f"</{tag}" in source.lower():
        raise ValueError(f"the status page cannot take its {tag} inline")
    return template.replace(empty, f"<{tag}>{source}</{tag}>")


def _sourceHash(source: str) -> str:
    """
    The CSP source expression (C{'sha256-...'}) that allows the inline
    element whose text is C{source}.
    """
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


_STYLE = _asset("status.css")
_SCRIPT = _asset("status.js")

#: The page, as served.
PAGE = _inline(_inline(_asset("index.html"), "style", _STYLE), "script", _SCRIPT).encode()

#: The page loads nothing from anywhere: only its own inline style and
#: script (by their hashes), which may only fetch from this server.
PAGE_POLICY = (
    f"default-src 'none'; script-src {_sourceHash(_SCRIPT)}; style-src {_sourceHash(_STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
).encode()
