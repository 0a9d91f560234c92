"""A commissioner's pathway configuration: every duration and threshold, never a constant.

Profiles are TOML files; the packaged ``default`` matches the seed papers and ``demo``
runs the whole pathway in seconds. ``LINKWAY_PATHWAY_PROFILE`` names a packaged profile
or a path to a commissioner's own file.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pathway import durations

PROFILES_DIR = Path(__file__).parent / "profiles"
WAITLIST_BANDS = ("under_1_month", "1_to_3_months", "over_3_months")


class PathwayConfigError(ValueError):
    pass


class PathwayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    first_contact_due: str = "5 working days"
    contact_attempts: int = Field(default=3, ge=1, le=20)
    provider_response_due: str = "10 days"
    # None (no failing) is the default so that referrals started before this setting
    # existed carry on unchanged: their histories replay with the timers they had.
    provider_fail_after_escalation: str | None = Field(
        default=None,
        description="After the provider-response escalation, fail a still unanswered handoff.",
    )
    midpoint_checkin_after: str = "6 weeks"
    review_after: str = "3 months"
    followup_after: str = Field(
        default="6 months", description="Sustained-outcome follow-up, from the plan agreed."
    )
    disengage_consecutive_dna: int = Field(default=3, ge=1, le=50)
    disengage_no_attendance: str = "28 days"
    connection_sessions: int = Field(default=3, ge=1, le=100)
    # Distal outcomes compare this many whole calendar months before the referral's month
    # with as many after it (pathway/distal.py).
    distal_window_months: int = Field(default=6, ge=1, le=24)
    max_waitlist_band: str = "1_to_3_months"
    support_levels: tuple[str, ...] = ("1", "2", "3")
    bank_holidays: tuple[date, ...] = ()

    @field_validator(
        "first_contact_due",
        "provider_response_due",
        "provider_fail_after_escalation",
        "midpoint_checkin_after",
        "review_after",
        "followup_after",
        "disengage_no_attendance",
    )
    @classmethod
    def _is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            durations.parse(value)
        return value

    @field_validator("max_waitlist_band")
    @classmethod
    def _is_band(cls, value: str) -> str:
        if value not in WAITLIST_BANDS:
            raise ValueError(f"must be one of {', '.join(WAITLIST_BANDS)}")
        return value

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(self.bank_holidays)


def load(profile: str) -> PathwayConfig:
    path = Path(profile) if profile.endswith(".toml") else PROFILES_DIR / f"{profile}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))
        raise PathwayConfigError(f"no pathway profile {profile!r} (packaged: {known})")
    try:
        raw = tomllib.loads(path.read_text())
        return PathwayConfig.model_validate({"profile": path.stem, **raw})
    except (tomllib.TOMLDecodeError, ValidationError, durations.DurationError) as exc:
        raise PathwayConfigError(f"pathway profile {path.name}: {exc}") from None
