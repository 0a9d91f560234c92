"""Patch ids for ``workflow.patched``, defined once.

A referral workflow lives for years, so a change to the commands it issues (activities,
timers, their order) must keep old histories replaying: guard the new code with
``workflow.patched(<id>)`` and keep the old path until no running workflow can need it.
Each id is written down here with the date it was introduced and when it can be
deprecated (``workflow.deprecate_patch``) and later removed: not before every workflow
that started before it has continued-as-new past it (a referral continues-as-new at the
latest when its history reaches ``DEFAULT_HISTORY_LIMIT`` events, so wait for the
oldest such run to have done so, and check with a replay of production histories).

No patch is in force yet (carrying a later command's trace into its activity needed
none: it changes only the activity's header, which replay does not compare; see
docs/workflow-versioning.md): the committed replay histories (``tests/replay/histories``)
replay against the workflow as it is. The whole procedure, with the state's schema
versions, is docs/workflow-versioning.md.
"""

from __future__ import annotations

# Example of the form each entry takes:
# REVIEW_REMINDER = "2027-01-15-review-reminder"  # introduced 2027-01-15; deprecate after ...
