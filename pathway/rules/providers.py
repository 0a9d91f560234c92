"""Partner facts from Tier Two providers: responses to handoffs and attendance.

Facts are applied so that duplicates, late arrivals and out-of-order arrivals give the
same final state as the in-order run: attendance implies acceptance, a late acceptance
after attendance changes nothing, and the did-not-attend streak is computed over
session dates, not arrival order. A fact that names no handoff of this episode is
recorded as seen and ignored: a partner's nonsense never fails the workflow.
"""

from __future__ import annotations

import uuid

from events.handoff import HandoffAttendanceRecorded
from events.referral import ActionDue
from pathway import commands as cmd
from pathway import stages
from pathway.config import WAITLIST_BANDS
from pathway.rules import handoffs, outcomes
from pathway.rules.base import Context, Decision, due, lifecycle
from pathway.state import (
    MAX_RECENT_SESSIONS,
    CaseState,
    Episode,
    Handoff,
    Session,
    add_evidence,
    clear,
)

# Attendance moves a handoff forward from any of these; a terminal status stays put.
# A rejection followed by attendance means the person did go: the sessions are the
# stronger fact, so attendance moves a rejected handoff on whatever order they arrive in.
_BEFORE_IN_PROGRESS = ("requested", "accepted", "on-hold", "rejected")
# A provider may report completion from any of these (the same reasoning: the service was
# delivered); a cancelled or failed handoff stays so, since the provider was told to stop.
_COMPLETABLE = (*_BEFORE_IN_PROGRESS, "in-progress")


def responded(state: CaseState, fact: cmd.ProviderResponded, ctx: Context) -> Decision:
    decision = Decision(state)
    handoff = _handoff(state, fact)
    if handoff is None:
        return decision
    ep = state.episode
    if fact.decision == "accept" and handoff.status in ("requested", "on-hold"):
        handoffs.move(state, decision, ctx, handoff, "accepted", None)
    elif fact.decision == "start" and handoff.status in ("requested", "accepted", "on-hold"):
        handoffs.move(state, decision, ctx, handoff, "in-progress", None)
    elif fact.decision == "reject" and handoff.status in ("requested", "on-hold"):
        handoffs.move(state, decision, ctx, handoff, "rejected", fact.reason_code or "unspecified")
    elif fact.decision == "waitlist" and handoff.status == "requested":
        handoff.waitlist_band = fact.waitlist_band
        band = fact.waitlist_band or "unspecified"
        handoffs.move(state, decision, ctx, handoff, "on-hold", f"waitlist_{band}")
        limit = WAITLIST_BANDS.index(state.config.max_waitlist_band)
        if fact.waitlist_band and WAITLIST_BANDS.index(fact.waitlist_band) > limit:
            _escalate(ep, f"waitlist:{handoff.handoff_id}")
            decision.emit(
                ctx,
                lifecycle(
                    state,
                    ctx,
                    ActionDue,
                    action="provider_response",
                    due_at=ctx.now,
                    handoff_id=handoff.handoff_id,
                ),
            )
    elif fact.decision == "complete" and handoff.status in _COMPLETABLE:
        handoff.delivered_code = fact.delivered_code
        handoff.sessions_delivered = fact.sessions_delivered
        handoffs.move(state, decision, ctx, handoff, "completed", None)
    if handoff.status != "requested":
        clear(ep, f"provider_response:{handoff.handoff_id}")
        clear(ep, f"provider_failed:{handoff.handoff_id}")
    if handoff.status != "on-hold":
        # The waitlist escalation lasts as long as the wait: an answer that ends it must
        # resolve it too, or the final state would depend on which answer came first.
        clear(ep, f"waitlist:{handoff.handoff_id}")
    return decision


def attendance(state: CaseState, fact: cmd.AttendanceRecorded, ctx: Context) -> Decision:
    decision = Decision(state)
    handoff = _handoff(state, fact)
    if handoff is None:
        return decision
    ep = state.episode
    clear(ep, f"provider_response:{handoff.handoff_id}")
    clear(ep, f"provider_failed:{handoff.handoff_id}")
    if handoff.status in _BEFORE_IN_PROGRESS:
        handoffs.move(state, decision, ctx, handoff, "in-progress", None)
    clear(ep, f"waitlist:{handoff.handoff_id}")
    # One session per handoff per date: a second report for it is a correction, so the
    # counts follow the latest status instead of counting the session twice.
    earlier = next(
        (
            s
            for s in ep.recent_sessions
            if s.handoff_id == handoff.handoff_id and s.session_date == fact.session_date
        ),
        None,
    )
    if earlier is not None:
        if earlier.status == fact.status:
            return decision
        if earlier.status == "attended":
            handoff.attended -= 1
            ep.attended_sessions -= 1
        ep.recent_sessions.remove(earlier)
    ep.recent_sessions.append(
        Session(session_date=fact.session_date, status=fact.status, handoff_id=handoff.handoff_id)
    )
    ep.recent_sessions.sort(key=lambda s: (s.session_date, s.handoff_id, s.status))
    del ep.recent_sessions[:-MAX_RECENT_SESSIONS]
    if fact.status == "attended":
        handoff.attended += 1
        ep.attended_sessions += 1
        add_evidence(ep, "attendance", fact.event_id)
        if ep.stage in stages.SUPPORTED:
            # "No attendance for N days" counts from when Linkway last heard of one.
            clear(ep, "disengagement")
            ep.deadlines["disengagement"] = due(
                state, ctx.now, state.config.disengage_no_attendance
            )
        outcomes.connection(state, decision, ctx)
    # The flag follows the streak by session date, so a late report of an earlier
    # attended session neither clears it nor raises the action a second time.
    if _dna_streak(state) < state.config.disengage_consecutive_dna:
        ep.disengaged = False
        clear(ep, "disengagement_risk")
    elif not ep.disengaged:
        ep.disengaged = True
        _escalate(ep, "disengagement_risk")
        decision.emit(ctx, lifecycle(state, ctx, ActionDue, action="disengagement", due_at=ctx.now))
    return decision


# Names the attendance event raised for a provider's fact: uuid5 of the fact's event id.
ATTENDANCE_EVENT_NAMESPACE = uuid.UUID("0b6a3c52-7d1e-4f0a-9c1b-5e2d8a7f4c30")


def attendance_recorded(
    state: CaseState, fact: cmd.AttendanceRecorded
) -> tuple[str, HandoffAttendanceRecorded]:
    """The lifecycle event for an attendance report that changed the episode, with an id
    derived from the fact's: the same fact always raises the same event."""
    event_id = str(uuid.uuid5(ATTENDANCE_EVENT_NAMESPACE, fact.event_id))
    return event_id, HandoffAttendanceRecorded(
        handoff_id=fact.handoff_id,
        referral_id=state.referral_id,
        episode=state.episode.number,
        provider_id=fact.provider_id,
        session_date=fact.session_date,
        status=fact.status,
        occurred_at=fact.occurred_at,
    )


def _escalate(episode: Episode, action: str) -> None:
    """An escalation is an action due on the link worker's caseload until it is resolved."""
    if action not in episode.overdue:
        episode.overdue.append(action)


def _dna_streak(state: CaseState) -> int:
    streak = 0
    for session in reversed(state.episode.recent_sessions):
        if session.status == "did_not_attend":
            streak += 1
        elif session.status == "attended":
            break
    return streak


def _handoff(state: CaseState, fact: cmd.PartnerFact) -> Handoff | None:
    handoff = state.episode.handoffs.get(fact.handoff_id)
    if handoff is None or handoff.provider_id != fact.provider_id:
        return None
    return handoff
