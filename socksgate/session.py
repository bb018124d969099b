"""
The session record: one for every request, emitted from this one place as
a L{twisted.logger} event in the C{socksgate.session} namespace.

Granted sessions are emitted when they end, refused ones at once.  The
event's C{record} key holds the record as a dict with the fields of the
session log (see SPEC), ready to be written as a JSON line.

The record belongs to the session log, not to twistd's text log: an event
has a text (a C{log_format}) only when it is sampled, the first one and
then at most one every L{TEXT_LINE_INTERVAL} seconds (L{TextLineSampler}),
and that text says how many records were left out of the text since the
last line.  Formatting a line and writing it for every session was the
largest single cost of a short session.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from random import getrandbits

from twisted.logger import Logger

from .timestamps import isoNow

__all__ = [
    "TEXT_LINE_INTERVAL",
    "SessionRecord",
    "TextLineSampler",
    "emitSession",
    "newSessionID",
]

log = Logger(namespace="socksgate.session")


def newSessionID() -> str:
    """
    A random identifier for a session, unique enough to grep a log for: 8
    hexadecimal digits.  It is no secret, so it comes from L{random} (no
    system call per session) rather than L{secrets}.
    """
    return f"{getrandbits(32):08x}"


@dataclass(slots=True)
class SessionRecord:
    """
    What the session log says about one request.

    C{time} is when the request arrived (ISO 8601, UTC); C{started} is the
    same instant in the reactor's clock, used for C{duration}.  The BIND
    and UDP fields appear in the record only when they are set.
    C{version}, C{command} and C{outcome} take the members of
    L{socksgate.vocabulary} (or their strings).
    """

    session: str
    listener: str
    client: str
    started: float
    time: str = ""
    version: str | None = None
    auth: str = "none"
    user: str | None = None
    ident: str | None = None
    command: str | None = None
    destination: str | None = None
    remote: str | None = None
    # The [[upstream]] and its server that carried (or failed) the session;
    # null when direct.
    upstream: str | None = None
    server: str | None = None
    outcome: str | None = None
    reply: int | None = None
    rule: int | None = None
    message: str = ""
    bytes_out: int = 0
    bytes_in: int = 0
    duration: float = 0.0
    # BIND: the address announced in the first reply, and the peer that
    # connected (second reply).
    bind: str | None = None
    peer: str | None = None
    # UDP ASSOCIATE: datagrams relayed each way, denied by the policy, and
    # dropped (fragments, malformed, from strangers).
    datagrams_out: int | None = None
    datagrams_in: int | None = None
    datagrams_denied: int | None = None
    datagrams_dropped: int | None = None
    # A request refused by a rule's sessions-per-second: which limit
    # ("client", "user" or "table"; see socksgate.ratelimit).
    limit: str | None = None

    def __post_init__(self) -> None:
        if not self.time:
            self.time = isoNow()

    def asDict(self) -> dict[str, object]:
        """
        The record as the session log writes it: the vocabulary's members
        as the plain strings they stand for, so that every observer sees
        the same record whichever was set.
        """
        record = {name: _plain(getattr(self, name)) for name in _LOGGED_FIELDS}
        for name in _COMMAND_FIELDS:
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        return record


def _plain(value: object) -> object:
    """
    C{value}, or the string a vocabulary member stands for.
    """
    return str(value) if isinstance(value, StrEnum) else value


#: Fields that only BIND or UDP sessions (or rate-limited requests) have:
#: left out of other records.
_COMMAND_FIELDS = (
    "bind", "peer", "datagrams_out", "datagrams_in", "datagrams_denied", "datagrams_dropped", "limit",
)  # fmt: skip
#: The fields of every record, in SPEC's order (time first).
_LOGGED_FIELDS = ("time",) + tuple(
    field.name
    for field in fields(SessionRecord)
    if field.name not in ("started", "time") and field.name not in _COMMAND_FIELDS
)


#: Seconds between two session records that have a text (see
#: L{TextLineSampler}).
TEXT_LINE_INTERVAL = 60.0


class TextLineSampler:
    """
    Chooses the session events that carry a text, for twistd's text log and
    any observer that formats events: the first one, then the first one
    after at least L{TEXT_LINE_INTERVAL} seconds (in the clock of the
    records) since the last one with a text.  A clock that went back
    counts as the interval being over.

    @ivar left: records without a text since the last one with a text.
    """

    __slots__ = ("_last", "interval", "left")

    def __init__(self, interval: float = TEXT_LINE_INTERVAL) -> None:
        self.interval = interval
        self.left = 0
        self._last: float | None = None

    def sample(self, now: float) -> int | None:
        """
        Whether the record emitted at C{now} gets a text.

        @return: L{None} for no text, else how many records were left
            without one since the last record with a text.
        """
        last = self._last
        if last is not None and last <= now < last + self.interval:
            self.left += 1
            return None
        self._last = now
        left, self.left = self.left, 0
        return left


_sampler = TextLineSampler()

_TEXT = (
    "session {record[session]} {record[outcome]}: {record[client]} "
    "{record[command]} {record[destination]} reply={record[reply]} {record[message]}"
    " ({left} more since the last session line; the session log has every record)"
)


def emitSession(record: SessionRecord, now: float, sampler: TextLineSampler | None = None) -> None:
    """
    Emit C{record}, finished at C{now} (in the clock of C{record.started}).

    @param sampler: chooses whether the event has a text; by default the
        process's one.
    """
    record.duration = round(max(0.0, now - record.started), 3)
    left = (sampler or _sampler).sample(now)
    if left is None:
        log.info(record=record.asDict())
    else:
        log.info(_TEXT, record=record.asDict(), left=left)
