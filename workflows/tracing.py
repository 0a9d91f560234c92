"""Whose trace the work a command causes belongs to, without any tracing library here.

The workflow persists from its main loop, not from the handler that took the command, so
the activity that records a command's transition (and the outbox rows, the relay's send
and the consumers after it) would run in the trace of the workflow's start: the
referral's first request. To put that work in the trace of the request that sent the
command, the worker's interceptor (``workers.tracing``) and the workflow pass the
caller's trace carrier (W3C ``traceparent``, from the update's or signal's Temporal
header) through two context variables:

- ``CALLER``: set by the interceptor while an update's or signal's handler runs; the
  workflow keeps it with the pending batch (the batch's last command wins);
- ``PERSISTING_FOR``: set by the workflow while it starts the activity for that batch;
  the interceptor makes it the parent of the activity's ``StartActivity`` span, whose
  context the activity's header carries.

A carrier is only header text (trace and span ids, never data). Neither variable changes
the commands the workflow issues: the activity, its input and its order are as before,
and Temporal does not compare headers on replay. The workflow imports this module
passed through its sandbox, so the interceptor and the workflow share these variables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

Carrier = dict[str, str]

CALLER: ContextVar[Carrier | None] = ContextVar("linkway_caller_trace", default=None)
PERSISTING_FOR: ContextVar[Carrier | None] = ContextVar("linkway_persisting_for", default=None)


def caller() -> Carrier | None:
    """The trace carrier of the update or signal whose handler is running, if any."""
    return CALLER.get()


@contextlib.contextmanager
def persisting_for(carrier: Carrier | None) -> Iterator[None]:
    """While the workflow starts the activity for a batch, whose trace it joins (None:
    the workflow's own, as for a batch only deadlines made)."""
    token = PERSISTING_FOR.set(carrier)
    try:
        yield
    finally:
        PERSISTING_FOR.reset(token)


@contextlib.contextmanager
def handling_for(carrier: Carrier | None) -> Iterator[None]:
    """While an update's or signal's handler runs (used by the worker's interceptor)."""
    token = CALLER.set(carrier)
    try:
        yield
    finally:
        CALLER.reset(token)
