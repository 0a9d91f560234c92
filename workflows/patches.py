"""Patch ids for ``workflow.patched``, defined once.

A referral workflow lives for years, so a change to the commands it issues (activities,
timers, their order) must keep old histories replaying: guard the new code with
``workflow.patched(<id>)`` and keep the old path until no running workflow can need it.
Each id is written down here with the date it was introduced and when it can be
deprecated (``workflow.deprecate_patch``) and later removed: not before every workflow
that started before it has continued-as-new past it (a referral continues-as-new at the
latest when its history reaches ``DEFAULT_HISTORY_LIMIT`` events, so wait for the
oldest such run to have done so, and check with a replay of production histories).

The committed replay histories (``tests/replay/histories``) recorded before a patch
replay its old path (carrying a later command's trace into its activity needed no patch:
it changes only the activity's header, which replay does not compare); the whole
procedure, with the state's schema versions, is docs/workflow-versioning.md.
"""

from __future__ import annotations

# A run continues as new at ``HISTORY_BOUND`` events (or its input's lower
# ``history_limit``) rather than at 10,000: a worker that has the referral out of cache
# replays at most that many. Introduced 2026-12-03; deprecate once every run that started
# before it has continued as new (at the latest at 10,000 events) or closed.
HISTORY_BOUND = "2026-12-03-history-bound"
