"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

Code = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
Ref = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


def nhs_number_is_valid(number: str) -> bool:
    """The NHS number's modulus 11 check digit."""
    if len(number) != 10 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(number[9])


class Person(BaseModel):
    """Personal data: stored encrypted in the personal-data store, never sent anywhere."""

    model_config = ConfigDict(extra="forbid")

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    nhs_number: str | None = Field(default=None, description="10 digits, check digit valid")
    date_of_birth: date | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: EmailStr | None = None
    address: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=4000)

    @field_validator("nhs_number")
    @classmethod
    def _check_digit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(" ", "").replace("-", "")
        if not nhs_number_is_valid(digits):
            raise ValueError("is not a valid NHS number (10 digits with a valid check digit)")
        return digits


class ReferralRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locality: str = Ref
    source: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_.-]+$",
        description="gp, social_care, mental_health, hospital, fire_service, voluntary, self",
    )
    referrer_org_id: str = Ref
    reason_codes: list[str] = Field(default_factory=list, max_length=20)
    consent_to_share: bool
    person: Person


class ReferralCreated(BaseModel):
    referral_id: str
    episode: int
    stage: str
    reentry: bool = Field(description="true when the person already had a case")


class ReferralStatus(BaseModel):
    referral_id: str
    version: int
    episode: int
    stage: str
    locality: str
    partner_id: str
    link_worker_id: str | None
    support_level: str | None
    consent_to_share: bool
    opened_at: datetime
    next_due_at: datetime | None
    next_due_action: str | None
    deadlines: dict[str, datetime]
    actions_due: list[str]
    attended_sessions: int
    outcomes: list[str]


class CommandAccepted(BaseModel):
    referral_id: str
    version: int
    episode: int
    stage: str
