"""Schema versions of what a referral workflow carries for years, and the upcasters that
bring an earlier version's stored form up to today's.

A referral's state (``CaseState``) and the workflow input that carries it across
continue-as-new (``workflows.models.ReferralInput``) are stored by Temporal as JSON and
read back by whichever worker version picks the workflow up next, possibly years later.
So each records its ``schema_version``, and reading stored JSON runs the upcasters from
that version to the current one, one step at a time. They are pure functions of the
stored dict (no I/O, no clock), so a test can run every step without a server.

To change the shape (rename, split, re-type a field; adding one with a default needs no
new version): bump the ``*_VERSION`` below, write ``upcast_<thing>_vN_vN1`` and add it to
its table, and commit a JSON fixture of the old shape under ``tests/workflow/states/``.
Never edit an upcaster once released: stored states of that version may still exist.
Only stored JSON is upcast: a model built in code is already current.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

STATE_VERSION = 3
INPUT_VERSION = 2

Stored = dict[str, Any]
Upcaster = Callable[[Stored], Stored]


class UnknownSchemaVersion(ValueError):
    """Stored data of a version this code cannot read: newer than it knows (a worker
    older than the one that wrote it), or not a version at all."""


def upcast_state_v1_v2(stored: Stored) -> Stored:
    """Version 1 is the state as it was before it carried a version (up to 2026-12):
    the same fields; version 2 records its version."""
    return {**stored, "schema_version": 2}


def upcast_state_v2_v3(stored: Stored) -> Stored:
    """Version 2 is the state before structured goals (up to 2026-12): a plan had only a
    goal count. Version 3 holds the goals; a plan agreed before has that many goals of
    category ``unspecified``, in progress, so check-ins and reviews can update them."""
    episode = dict(stored.get("episode") or {})
    if "goals" not in episode:
        count = episode.get("goal_count") or 0
        episode["goals"] = [
            {"number": n, "category": "unspecified", "status": "in_progress"}
            for n in range(1, count + 1)
        ]
    return {**stored, "episode": episode, "schema_version": 3}


def upcast_input_v1_v2(stored: Stored) -> Stored:
    """Version 1 is ``ReferralInput`` before it carried a version (up to 2026-12); its
    state, if any, is upcast by the state's own table."""
    return {**stored, "schema_version": 2}


# From version N (key) to N + 1; one entry for every version below the current one.
STATE_UPCASTERS: Mapping[int, Upcaster] = {1: upcast_state_v1_v2, 2: upcast_state_v2_v3}
INPUT_UPCASTERS: Mapping[int, Upcaster] = {1: upcast_input_v1_v2}


def upcast_state(stored: Stored) -> Stored:
    return upcast(stored, STATE_UPCASTERS, STATE_VERSION, "a referral's state")


def upcast_input(stored: Stored) -> Stored:
    return upcast(stored, INPUT_UPCASTERS, INPUT_VERSION, "a referral workflow's input")


def upcast(stored: Stored, upcasters: Mapping[int, Upcaster], current: int, what: str) -> Stored:
    """``stored`` brought from its version (absent: 1, written before versions) to
    ``current``, one upcaster at a time."""
    version = stored.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnknownSchemaVersion(f"{what} has schema_version {version!r}; want 1 to {current}")
    if version > current:
        # Only a worker older than the one that wrote it gets here (a rollback): it
        # must not guess, and the workflow task is retried until a newer worker takes it.
        raise UnknownSchemaVersion(
            f"{what} is at schema version {version}, newer than the {current} this worker "
            "reads: run the newer worker (do not roll workers back past a state change)"
        )
    while version < current:
        stored = upcasters[version](stored)
        if stored.get("schema_version") != version + 1:
            raise AssertionError(f"the upcaster from version {version} must give {version + 1}")
        version += 1
    return stored
