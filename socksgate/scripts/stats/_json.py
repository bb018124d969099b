"""
The summary as the JSON document C{--json} prints.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["renderJSON"]


def renderJSON(report: dict[str, Any]) -> str:
    """
    The summary (as L{socksgate.scripts.stats.Summary.asDict} gives it) as
    indented JSON, one document ending with a newline.
    """
    return json.dumps(report, indent=2) + "\n"
