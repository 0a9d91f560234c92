"""Groups of pathway stages, named once: every rule that asks "is the referral at one of
these?" asks it with a group from here. The stages themselves are part of the published
contract (``events.referral.Stage``)."""

from __future__ import annotations

from events.referral import Stage

# An episode under way (not dormant, not in ongoing support after a review).
ACTIVE: tuple[Stage, ...] = (
    "triage",
    "contacting",
    "assessment",
    "planning",
    "supported",
    "review",
)
# An episode that can still be ended by the link worker.
OPEN: tuple[Stage, ...] = (*ACTIVE, "ongoing_support")
# A plan is running: check-ins, reviews and attendance count here.
SUPPORTED: tuple[Stage, ...] = ("supported", "ongoing_support", "review")
# The review timer moves these to review.
AWAITING_REVIEW: tuple[Stage, ...] = ("supported", "ongoing_support")
# A plan can be agreed (first plan) or revised.
PLANNABLE: tuple[Stage, ...] = ("planning", "supported", "ongoing_support")
# Agreeing a plan here starts a new plan cycle rather than revising a running one.
NEW_PLAN_CYCLE: tuple[Stage, ...] = ("planning", "ongoing_support")
