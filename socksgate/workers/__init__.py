"""
C{--workers N}: N processes serving the same listening sockets.

The parent (L{WorkersService}, the C{twistd} process) opens each listening
socket once and passes it to every worker, which adopts it
(C{adoptStreamPort}): one accept queue per listener, which every worker
takes from.  Workers send the parent every event they log, as one JSON
line over a pipe; the parent writes the one session log and serves the
status page of the whole gateway from them.  See C{docs/configuration.md}.

One module per job: C{_delay} (the restart back-off), C{_pipe} (the
event pipe, both ends), C{_reports} (what the parent knows of each
worker), C{_child} (a worker process) and C{_parent} (the parent).
"""

from ._delay import RestartDelay
from ._parent import SHAREABLE, WorkersService, sharedDescription

__all__ = ["SHAREABLE", "RestartDelay", "WorkersService", "sharedDescription"]
