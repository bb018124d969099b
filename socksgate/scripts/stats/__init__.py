"""
C{socksgate stats LOG... [--json] [--html FILE]}: an executive summary of
session logs (one JSON object a line, see SPEC's I{Session log}).

Every C{LOG} is read in turn: plain, rotated (C{access.log.1}, ...) or
compressed with gzip (recognised by its magic bytes, whatever its name);
C{socksgate stats /var/log/socksgate/access.log*} reads a whole rotation.
A file named twice is read once.  The summary has the sessions (granted,
denied, failed, error, timeout), the bytes each way, the busiest users,
clients (by address, without the port) and destinations (the top
L{TOP} by sessions and by bytes), the denials by rule and message, the
failures and errors by outcome and reply code, and the sessions and bytes
by hour (UTC, each session counted in the hour its request arrived).

Output: text for the terminal by default; C{--json} prints the structure
that L{Summary.asDict} documents (C{"format": "socksgate-stats/1"}); C{--html
FILE} writes a single self-contained page (inline CSS and SVG charts, no
external resource).

The summary streams: memory does not grow with the size of the logs.
Users, clients and destinations are counted with the Space-Saving
algorithm (L{TopCounter}): at most L{CAPACITY} distinct keys each, exact
while there are no more than that, and otherwise an over-estimate by at
most (total / capacity) for each key kept, every key above that share being
kept.  The other tables have caps of their own (L{SMALL_CAPACITY},
L{CATEGORY_CAPACITY}, L{MAX_HOURS}); a line is read up to L{MAX_LINE}
bytes, and names and messages are cut to L{MAX_KEY} characters.

A line that is not a JSON object with a valid C{time} and C{outcome} (and
well-typed other fields) is counted as malformed; the first
L{MALFORMED_EXAMPLES} are reported with their file and line number.
Blank lines are skipped.

Exit status: 0 when every file was read; 1 when one could not be opened
(nothing else is printed), could not be read to its end (the summary of
what was read is printed, and names the file), or when the HTML report
could not be written.
One module per job: C{_logs} (reading plain, rotated and gzip'd logs),
C{_topcounter} (Space-Saving), C{_fields} and C{_summary} (the summary),
C{_text}, C{_json} and C{_html} (the outputs; C{_charts} draws the HTML
report's SVG charts, and its style and script are the package data in
C{report/}), C{_limits} (the caps above) and C{_run} (the command).
"""

from ._fields import OUTCOMES, REPLY_MEANINGS
from ._format import formatBytes
from ._html import renderHTML
from ._json import renderJSON
from ._limits import (
    CAPACITY,
    CATEGORY_CAPACITY,
    FORMAT,
    MALFORMED_EXAMPLES,
    MAX_CHART_HOURS,
    MAX_HOURS,
    MAX_KEY,
    MAX_LINE,
    SMALL_CAPACITY,
    TOP,
)
from ._logs import GZIP_MAGIC, FileSummary, openLog
from ._run import run
from ._summary import Summary, summariseFiles
from ._text import renderText
from ._topcounter import TopCounter

__all__ = [
    "CAPACITY",
    "CATEGORY_CAPACITY",
    "FORMAT",
    "GZIP_MAGIC",
    "MALFORMED_EXAMPLES",
    "MAX_CHART_HOURS",
    "MAX_HOURS",
    "MAX_KEY",
    "MAX_LINE",
    "OUTCOMES",
    "REPLY_MEANINGS",
    "SMALL_CAPACITY",
    "TOP",
    "FileSummary",
    "Summary",
    "TopCounter",
    "formatBytes",
    "openLog",
    "renderHTML",
    "renderJSON",
    "renderText",
    "run",
    "summariseFiles",
]
