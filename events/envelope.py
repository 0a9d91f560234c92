"""The CloudEvents 1.0 envelope every Linkway event travels in.

``type`` carries the version (``linkway.referral.accepted.v1``), ``subject`` is the
pseudonymous referral id, and the Kafka key is that same id, so one referral's events
stay in order on one partition.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION: Literal["1.0"] = "1.0"
CONTENT_TYPE: Literal["application/json"] = "application/json"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event with JSON data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=120, pattern=r"^linkway\.[a-z_.]+\.v[0-9]+$")
    subject: str = Field(min_length=1, max_length=64)
    time: datetime
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @property
    def key(self) -> bytes:
        return self.subject.encode()


def new_event(
    type_: str,
    subject: str,
    data: dict[str, Any],
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    return CloudEvent(
        id=event_id or str(uuid4()),
        source=source,
        type=type_,
        subject=subject,
        time=time or datetime.now(UTC),
        data=json.loads(json.dumps(data, default=str)),
    )
