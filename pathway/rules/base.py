"""What every rule shares: the context it runs in, its decision, and how it raises events.

A rule is a pure function ``(state, message, context) -> Decision``. It never mutates the
state it was given (the workflow's validator runs the same rule and throws the result
away), and it gets time and ids from the context so that it is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from events.catalogue import EventData
from events.referral import MeasureScores, ReferralEvent
from pathway import durations
from pathway.state import CaseState, Measurement


class Rejected(ValueError):
    """The command's data is invalid; ``str()`` says why, for a link worker."""


class Conflict(Rejected):
    """The command does not fit the referral as it is now (stage, or a stale version)."""


@dataclass
class Context:
    now: datetime
    new_id: Callable[[], str]


@dataclass
class Decision:
    state: CaseState
    events: list[tuple[str, EventData]] = field(default_factory=list)

    def emit(self, ctx: Context, data: EventData) -> str:
        event_id = ctx.new_id()
        self.events.append((event_id, data))
        return event_id


R = TypeVar("R", bound=ReferralEvent)


def lifecycle(state: CaseState, ctx: Context, cls: type[R], **fields: Any) -> R:
    """Build a referral lifecycle event with the fields every one of them carries."""
    return cls(
        referral_id=state.referral_id,
        episode=state.episode.number,
        partner_id=state.partner_id,
        locality=state.locality,
        stage=state.episode.stage,
        occurred_at=ctx.now,
        **fields,
    )


def due(state: CaseState, start: datetime, duration: str) -> datetime:
    return durations.add(start, duration, state.config.holidays)


def require_stage(state: CaseState, action: str, *stages: str) -> None:
    stage = state.episode.stage
    if stage not in stages:
        allowed = " or ".join(s.replace("_", " ") for s in stages)
        raise Conflict(
            f"cannot {action}: the referral is at {stage.replace('_', ' ')} "
            f"(episode {state.episode.number}); this needs it to be at {allowed}"
        )


def scores(m: Measurement) -> MeasureScores:
    return MeasureScores(
        measurement_id=m.measurement_id,
        instrument=m.instrument,
        version=m.version,
        raw=m.raw,
        derived=m.derived,
        administered_at=m.administered_at,
    )
