"""Moving a provider handoff between FHIR Task states, and closing the live ones.

The states are the Gravity SDOH Clinical Care Task states. Who moves a handoff where:

=====================  ===========================================  =====================
to                     by                                           from
=====================  ===========================================  =====================
requested              the link worker's plan                       (new)
accepted               the provider (accept)                        requested, on-hold
rejected               the provider (reject, with a reason)         requested, on-hold
on-hold                the provider (waitlist, with the band)       requested
in-progress            the provider (start), or its first           requested, accepted,
                       attendance report (which may also follow     on-hold; attendance
                       a rejection: the person did go)              also rejected
completed              the provider (complete, with what was        any live, rejected
                       delivered)
failed                 the pathway: no response some time after     requested
                       the escalation; the episode ends disengaged  any live
cancelled              the link worker (with a reason); a revised   any live
                       plan that drops it; consent withdrawn; the
                       episode ending any other way
=====================  ===========================================  =====================

Every move raises one ``HandoffStatusChanged`` (referral lifecycle topic) and its copy
``HandoffUpdated`` on the provider's own topic; a move out of a live state also ends the
provider's access to the person (the API serves contact details for live handoffs only)
and stops the timers that chased the provider.
"""

from __future__ import annotations

from events.handoff import HandoffStatusChanged, HandoffUpdated
from pathway import commands as cmd
from pathway.rules.base import Conflict, Context, Decision, Rejected
from pathway.state import ACTIVE_HANDOFF, CaseState, Handoff, clear

# Timers that chase a provider about one handoff; they end when the handoff stops being live.
_PROVIDER_TIMERS = ("provider_response", "provider_failed", "waitlist")


def move(
    state: CaseState,
    decision: Decision,
    ctx: Context,
    handoff: Handoff,
    status: str,
    reason: str | None,
) -> None:
    handoff.status, handoff.reason_code = status, reason
    if status != "on-hold":
        # The band describes a wait still running; keeping it after the handoff moves on
        # would make the final state depend on whether the waitlist answer came first.
        handoff.waitlist_band = None
    if status not in ACTIVE_HANDOFF:
        for timer in _PROVIDER_TIMERS:
            clear(state.episode, f"{timer}:{handoff.handoff_id}")
    common = {
        "handoff_id": handoff.handoff_id,
        "referral_id": state.referral_id,
        "episode": state.episode.number,
        "provider_id": handoff.provider_id,
        "status": status,
        "reason_code": reason,
        "occurred_at": ctx.now,
    }
    decision.emit(ctx, HandoffStatusChanged(**common))
    decision.emit(
        ctx,
        HandoffUpdated(
            **common,
            delivered_code=handoff.delivered_code if status == "completed" else None,
            sessions_delivered=handoff.sessions_delivered if status == "completed" else None,
        ),
    )


def close_live(state: CaseState, decision: Decision, ctx: Context, reason: str) -> list[str]:
    """Close every live handoff of the episode; returns the ids closed."""
    status = "failed" if reason == "disengaged" else "cancelled"
    closed = []
    for handoff in state.episode.handoffs.values():
        if handoff.status in ACTIVE_HANDOFF:
            move(state, decision, ctx, handoff, status, reason)
            closed.append(handoff.handoff_id)
    return closed


def cancel(state: CaseState, c: cmd.CancelHandoff, ctx: Context) -> Decision:
    """A link worker cancels one live handoff of the current episode, with a reason."""
    ep = state.episode
    handoff = ep.handoffs.get(c.handoff_id)
    if handoff is None:
        raise Rejected(f"episode {ep.number} has no handoff {c.handoff_id}")
    if handoff.status not in ACTIVE_HANDOFF:
        raise Conflict(f"handoff {c.handoff_id} is already {handoff.status}; only a live one")
    decision = Decision(state)
    move(state, decision, ctx, handoff, "cancelled", c.reason_code)
    return decision


def cancel_dropped(
    state: CaseState, decision: Decision, ctx: Context, kept: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """A revised plan lists every prescription the person should have. A live handoff
    whose (provider, service) is in it carries on (no second handoff is made for it); one
    whose (provider, service) is not is cancelled, reason ``plan_revised``. Returns the
    (provider, service) pairs that are already live, so the plan makes no new handoff."""
    live = set()
    for handoff in state.episode.handoffs.values():
        if handoff.status not in ACTIVE_HANDOFF:
            continue
        pair = (handoff.provider_id, handoff.service_id)
        if pair in kept and pair not in live:
            live.add(pair)
        else:
            move(state, decision, ctx, handoff, "cancelled", "plan_revised")
    return live


def no_response(state: CaseState, decision: Decision, ctx: Context, handoff_id: str) -> None:
    """The provider still has not answered some time after the escalation: failed."""
    handoff = state.episode.handoffs.get(handoff_id)
    if handoff is not None and handoff.status == "requested":
        clear(state.episode, f"provider_response:{handoff_id}")
        move(state, decision, ctx, handoff, "failed", "no_response")
