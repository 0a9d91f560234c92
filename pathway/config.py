"""A commissioner's pathway configuration: every duration and threshold, never a constant.

Profiles are TOML files; the packaged ``default`` matches the seed papers and ``demo``
runs the whole pathway in seconds. ``LINKWAY_PATHWAY_PROFILE`` names a packaged profile
or a path to a commissioner's own file.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pathway import durations

PROFILES_DIR = Path(__file__).parent / "profiles"
WAITLIST_BANDS = ("under_1_month", "1_to_3_months", "over_3_months")
REFERRAL_SOURCES = (
    "gp",
    "primary_care",
    "social_care",
    "hospital",
    "mental_health",
    "community",
    "voluntary",
    "housing",
    "self",
)
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class PathwayConfigError(ValueError):
    pass


class LevelSettings(BaseModel):
    """What one support level changes: its own durations (unset: the profile's), and
    whether it is the short signposting path (information and signposting only, no
    provider handoffs, a signpost check ``check_after`` the plan instead of a review)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signposting_only: bool = False
    check_after: str = "4 weeks"
    midpoint_checkin_after: str | None = None
    review_after: str | None = None
    followup_after: str | None = None

    @field_validator("check_after", "midpoint_checkin_after", "review_after", "followup_after")
    @classmethod
    def _is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            durations.parse(value)
        return value


class PathwayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> PathwayConfig:
        """Shared, not copied: it is frozen and nothing changes it in place, and every rule
        deep-copies the case's state (which holds it) before deciding."""
        return self

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
    # Reporting only (docs/reporting.md): the referral sources the commissioner counts
    # (any other is reported as an unknown source) and the referrals expected each month.
    referral_sources: tuple[str, ...] = REFERRAL_SOURCES
    referral_trajectory: dict[str, int] = Field(
        default_factory=dict,
        description="Referrals expected per calendar month, 'YYYY-MM' = count (the trajectory).",
    )
    bank_holidays: tuple[date, ...] = ()
    # Per support level (key: the level): its durations and whether it is the short path.
    levels: dict[str, LevelSettings] = Field(default_factory=dict)
    # The commissioner's goal categories, besides the Well-being Star's areas.
    goal_categories: tuple[str, ...] = ()
    # People a link worker can start in a year (Hertfordshire plans 200-250).
    annual_caseload_capacity: int = Field(default=250, ge=1, le=10_000)

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

    @field_validator("referral_trajectory")
    @classmethod
    def _is_trajectory(cls, value: dict[str, int]) -> dict[str, int]:
        for month, expected in value.items():
            if not _MONTH.match(month):
                raise ValueError(f"trajectory months are 'YYYY-MM', not {month!r}")
            if not 0 <= expected <= 1_000_000:
                raise ValueError(f"the trajectory for {month} must be 0 to 1000000 referrals")
        return dict(sorted(value.items()))

    @field_validator("max_waitlist_band")
    @classmethod
    def _is_band(cls, value: str) -> str:
        if value not in WAITLIST_BANDS:
            raise ValueError(f"must be one of {', '.join(WAITLIST_BANDS)}")
        return value

    @field_validator("levels")
    @classmethod
    def _known_levels(
        cls, value: dict[str, LevelSettings], info: ValidationInfo
    ) -> dict[str, LevelSettings]:
        unknown = set(value) - set(info.data.get("support_levels", ()))
        if unknown:
            raise ValueError(f"levels names unknown support levels: {', '.join(sorted(unknown))}")
        return value

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(self.bank_holidays)

    def level(self, support_level: str | None) -> LevelSettings:
        return self.levels.get(support_level or "", _FULL)

    def duration(self, name: str, support_level: str | None) -> str:
        """A plan duration (midpoint_checkin_after, review_after, followup_after) for a
        support level: the level's own if the profile sets one, else the profile's."""
        own: str | None = getattr(self.level(support_level), name)
        return own if own is not None else str(getattr(self, name))


_FULL = LevelSettings()

# Equal configurations decoded from workflow inputs, held once (see ``shared``). A
# profile changes a few times a year, so a handful of entries; bounded all the same.
_SHARED: dict[str, PathwayConfig] = {}
_SHARED_MAX = 64


def shared(config: PathwayConfig) -> PathwayConfig:
    """One instance per distinct configuration: every referral carries its pathway's
    configuration (in its workflow input, in its state), and a worker caching a thousand
    referrals decoded as many equal copies of it from their inputs (about 6 KiB each).
    The configuration is frozen and nothing changes it in place, so an equal instance
    can stand for it; which instance a referral holds changes nothing it decides."""
    key = config.model_dump_json()
    found = _SHARED.get(key)
    if found is not None:
        return found
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[key] = config
    return config


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
