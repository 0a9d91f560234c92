"""The activity and time log: every contact or session a link worker has with or for the
person, logged as a fact and never edited in place. A correction repeats every field
(the latest counts); a deletion names the activity and why. The note, if any, is a case
note in the personal-data store; the command and the event carry only its id or that
there is one.

An activity can be logged at any stage (admin on a dormant case still takes time), for
a start no earlier than the case was opened and no later than now.
"""

from __future__ import annotations

from datetime import timedelta

from events.casework import ActivityCorrected, ActivityDeleted, ActivityLogged
from pathway import commands as cmd
from pathway.rules.base import Conflict, Context, Decision, Rejected, lifecycle
from pathway.state import MAX_ACTIVITIES, CaseState, remember_activity

# Clocks differ a little between a link worker's device and the server.
CLOCK_SKEW = timedelta(minutes=5)


def log(state: CaseState, c: cmd.LogActivity, ctx: Context) -> Decision:
    _check_time(state, c, ctx)
    decision = Decision(state)
    # The request id names the activity: the caller knows it, and it is unique.
    activity_id = c.request_id
    if activity_id in state.activities:
        raise Conflict(f"activity {activity_id} is already logged")
    remember_activity(state, activity_id)
    decision.emit(ctx, _facts(state, ctx, ActivityLogged, activity_id, c))
    return decision


def correct(state: CaseState, c: cmd.CorrectActivity, ctx: Context) -> Decision:
    _known(state, c.activity_id)
    _check_time(state, c, ctx)
    decision = Decision(state)
    decision.emit(ctx, _facts(state, ctx, ActivityCorrected, c.activity_id, c))
    return decision


def delete(state: CaseState, c: cmd.DeleteActivity, ctx: Context) -> Decision:
    _known(state, c.activity_id)
    del state.activities[c.activity_id]
    decision = Decision(state)
    decision.emit(
        ctx,
        lifecycle(
            state, ctx, ActivityDeleted, activity_id=c.activity_id, reason_code=c.reason_code
        ),
    )
    return decision


def _known(state: CaseState, activity_id: str) -> None:
    if activity_id not in state.activities:
        raise Conflict(
            f"no activity {activity_id} on this case to change: it was deleted, never "
            f"logged here, or is older than the last {MAX_ACTIVITIES} activities"
        )


def _check_time(state: CaseState, c: cmd.ActivityFields, ctx: Context) -> None:
    started = c.started_at
    if started.tzinfo is None:
        raise Rejected("started_at needs a time zone (e.g. 2027-01-11T09:00:00Z)")
    opened = state.past_episodes[0].opened_at if state.past_episodes else state.episode.opened_at
    if started < opened - timedelta(days=1):
        raise Rejected(f"started_at is before the case was opened ({opened:%d %b %Y})")
    if started > ctx.now + CLOCK_SKEW:
        raise Rejected("started_at is in the future: log an activity once it has happened")


def _facts(
    state: CaseState,
    ctx: Context,
    cls: type[ActivityLogged] | type[ActivityCorrected],
    activity_id: str,
    c: cmd.ActivityFields,
) -> ActivityLogged | ActivityCorrected:
    return lifecycle(
        state,
        ctx,
        cls,
        activity_id=activity_id,
        link_worker_id=c.link_worker_id or c.actor_id,  # type: ignore[attr-defined]
        activity_type=c.activity_type,
        direct=c.direct,
        started_at=c.started_at,
        minutes=c.minutes,
        note_recorded=c.note_id is not None,
    )
