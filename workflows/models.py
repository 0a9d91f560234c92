"""What the referral workflow and its activity exchange with the outside world: the
workflow's input and command result, and the activity's input and result. Plain
pydantic models (the pure core): the workflow, the activity, the worker and the API all
import them from here, and none of them has to import the others.

Each is one model, so a field can be added later with a default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator, model_validator

from pathway.config import PathwayConfig, shared
from pathway.state import CaseState, EpisodeSummary
from pathway.versions import INPUT_VERSION, upcast_input
from pathway.views import ReferralView

# Well under the server's 50k-event limit; a test lowers it to exercise continue-as-new.
# Runs started before ``patches.HISTORY_BOUND`` continue as new at this many events.
DEFAULT_HISTORY_LIMIT = 10_000
# Runs started since continue as new at this many events (or a lower ``history_limit``):
# a cache miss (a worker restart, a referral evicted from the cache) replays the whole
# run, so its length is what a query or command waits for. Continuing as new costs one
# new run carrying the state; a referral's whole pathway is far under it.
HISTORY_BOUND_EVENTS = 250


class NewReferral(BaseModel):
    referral_id: str
    partner_id: str
    locality: str
    source: str
    referrer_org_id: str
    reason_codes: list[str]
    consent_to_share: bool
    config: PathwayConfig

    @field_validator("config", mode="after")
    @classmethod
    def _shared_config(cls, config: PathwayConfig) -> PathwayConfig:
        # Every new referral's input carries its configuration: the workflow's state then
        # holds the worker's one instance of it, not a copy per cached referral.
        return shared(config)


class OutgoingEvent(BaseModel):
    """An event the workflow raised, waiting for the activity to stage it in the outbox."""

    event_id: str
    type: str
    topic: str
    occurred_at: datetime
    data: dict[str, Any]


class ReferralInput(BaseModel):
    """Either a new referral, or what continue-as-new carries over: the state, and the
    events (and version) not yet persisted, so a steady stream of signals cannot hold
    continue-as-new back.

    Stored by Temporal as JSON for as long as the referral lives, so it carries its
    ``schema_version`` and is upcast when read (``pathway.versions``), as is its state."""

    schema_version: int = INPUT_VERSION
    new: NewReferral | None = None
    state: CaseState | None = None
    pending: list[OutgoingEvent] = []
    persisted_version: int = 0
    history_limit: int = DEFAULT_HISTORY_LIMIT

    @model_validator(mode="before")
    @classmethod
    def _upcast_stored(cls, data: Any, info: ValidationInfo) -> Any:
        # Temporal decodes the input with validate_json; built in code, it is current.
        if info.mode == "json" and isinstance(data, dict):
            return upcast_input(data)
        return data


class CommandResult(BaseModel):
    referral_id: str
    version: int
    episode: int
    stage: str


class RecordTransitionInput(BaseModel):
    view: ReferralView
    episodes: list[EpisodeSummary]
    events: list[OutgoingEvent]


class RecordTransitionResult(BaseModel):
    events_written: int
