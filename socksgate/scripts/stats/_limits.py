"""
The format identifier of C{--json} and the limits that bound the memory
and the output of C{socksgate stats}.
"""

from __future__ import annotations

__all__ = [
    "CAPACITY",
    "CATEGORY_CAPACITY",
    "FORMAT",
    "MALFORMED_EXAMPLES",
    "MAX_CHART_HOURS",
    "MAX_HOURS",
    "MAX_KEY",
    "MAX_LINE",
    "SMALL_CAPACITY",
    "TOP",
]


#: The identifier and version of the C{--json} structure.
FORMAT = "socksgate-stats/1"


#: How many users, clients and destinations the tables list.
TOP = 10


#: The most distinct keys each user, client and destination counter keeps.
CAPACITY = 10_000


#: The most distinct (rule, message) denials and (outcome, reply) failures kept.
SMALL_CAPACITY = 1_000


#: The most distinct commands, versions and authentication methods kept;
#: the rest are counted as C{"(other)"}.
CATEGORY_CAPACITY = 64


#: The most distinct hours kept (more than eleven years).
MAX_HOURS = 100_000


#: The longest line read; a longer one is malformed and skipped.
MAX_LINE = 1 << 20


#: The longest user, client, destination or message counted: longer ones
#: are cut (SOCKS names have at most 255 bytes), which bounds the memory of
#: each key kept.
MAX_KEY = 300


#: How many malformed lines are reported by file and line number.
MALFORMED_EXAMPLES = 5


#: Past this many hours between the first and the last record, the HTML
#: charts show days instead of hours.
MAX_CHART_HOURS = 24 * 31
