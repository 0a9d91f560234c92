"""Moving a provider handoff between FHIR Task states, and closing the live ones.

Every move raises one ``HandoffStatusChanged``; a move out of a live state also ends the
provider's access to the person (the API serves contact details for live handoffs only)
and stops the timers that chased the provider. When an episode ends, every live handoff
is closed: ``failed`` when the person disengaged, ``cancelled`` otherwise, with the
reason the episode ended.
"""

from __future__ import annotations

from events.handoff import HandoffStatusChanged
from pathway.rules.base import Context, Decision
from pathway.state import ACTIVE_HANDOFF, CaseState, Handoff, clear


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
        clear(state.episode, f"provider_response:{handoff.handoff_id}")
        clear(state.episode, f"waitlist:{handoff.handoff_id}")
    decision.emit(
        ctx,
        HandoffStatusChanged(
            handoff_id=handoff.handoff_id,
            referral_id=state.referral_id,
            episode=state.episode.number,
            provider_id=handoff.provider_id,
            status=status,
            reason_code=reason,
            occurred_at=ctx.now,
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
