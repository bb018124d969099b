"""
A guard for Twisted's C{poll} and C{epoll} reactors against events of a
descriptor that was closed, and whose number was reused, while the events
of one poll were being handled.

The reactors ask the kernel for the descriptors that are ready, then handle
them one by one, finding each descriptor's object by its number.  If handling
one of them closes another descriptor, and a new socket then gets the same
number (the kernel gives out the lowest free number, so this is common under
load), the rest of the list still holds the old descriptor's events: they are
handed to the new object.  A BIND or UDP relay socket opened at that moment
gets the closed connection's "writable" or "hung up" event: Twisted raises
C{RuntimeError: doWrite called on a tcp.Port} (or C{udp.Port}), or closes the
new socket as if its peer had gone.  (Twisted issues #4759 and #11625 are
this family of faults; event loops such as Redis's check each event against
the registration it was reported for.)

L{guardAgainstDescriptorReuse} makes a reactor remember which object each
descriptor number stood for when the kernel reported it, and skip an event
whose number now stands for another object (or none): the new object's own
events come with the next poll, as the kernel reports them level-triggered.
"""

from __future__ import annotations

from typing import Any

__all__ = ["guardAgainstDescriptorReuse"]


class _RememberingPoller:
    """
    A poller that remembers, for each descriptor it reports, the object
    the reactor had registered for it at that moment.
    """

    def __init__(self, poller: Any, selectables: dict[int, Any]) -> None:
        self._poller = poller
        self._selectables = selectables
        self.reported: dict[int, Any] = {}
        # The calls the reactor makes for every registration change, bound
        # once: a lookup through __getattr__ costs a failed lookup first.
        for name in ("register", "modify", "unregister"):
            if hasattr(poller, name):
                setattr(self, name, getattr(poller, name))

    def poll(self, *arguments: Any) -> Any:
        """
        Poll, and remember the object of each descriptor reported.
        """
        events = self._poller.poll(*arguments)
        selectables = self._selectables
        self.reported = {fd: selectables.get(fd) for fd, _ in events}
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._poller, name)


def guardAgainstDescriptorReuse(reactor: Any) -> bool:
    """
    Guard C{reactor} (a Twisted C{epoll} or C{poll} reactor) against
    handing one descriptor's events to another that took its number during
    the same poll (see the module docstring).  Other reactors (C{select},
    which checks each object itself, and non-POSIX ones) are left as they
    are.  Guarding twice does nothing more.

    @return: whether the reactor is guarded.
    """
    if getattr(reactor, "_socksgateDescriptorGuard", False):
        return True
    poller = getattr(reactor, "_poller", None)
    selectables = getattr(reactor, "_selectables", None)
    handle = getattr(reactor, "_doReadOrWrite", None)
    if poller is None or not isinstance(selectables, dict) or handle is None or not hasattr(poller, "poll"):
        return False
    remembering = _RememberingPoller(poller, selectables)

    def doReadOrWrite(selectable: Any, fd: int, event: int) -> None:
        if remembering.reported.get(fd, selectable) is not selectable:
            # The descriptor reported is closed; its number is another's now.
            return
        handle(selectable, fd, event)

    reactor._poller = remembering
    reactor._doReadOrWrite = doReadOrWrite
    reactor._socksgateDescriptorGuard = True
    return True
