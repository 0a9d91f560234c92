"""The directory's data in the shape of Open Referral UK / HSDS 3.0: organization, service,
location, service_at_location, eligibility (on the service, as HSDS 3.0 has it) and
categories as taxonomy terms on service attributes.

Field names are HSDS's own (``organization``, ``service_at_locations``...), so a file
exported from an Open Referral directory imports as it is; fields Linkway does not keep
are ignored. One field is Linkway's extension: ``capacity``, whether a service takes new
people now (open), only onto a waiting list (with the expected wait's band), or not at
all (closed, with the reason a link worker is shown when prescribing).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.ids import Code, Id
from infra.text import Line, Prose
from pathway.config import WAITLIST_BANDS

# Organization ids name provider topics (linkway.handoffs.<id>), so they follow the topic
# rule; other ids are ``events.ids.Id``. Every text is a ``Line`` or ``Prose`` with a
# maximum length: the tables' columns are no longer, and no control character (a NUL
# cannot be stored in PostgreSQL) gets as far as the database.
PROVIDER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ProviderId = Field(min_length=1, max_length=63, pattern=PROVIDER_ID_PATTERN)
Text = Field(default=None, max_length=2000)

TAXONOMY = "linkway-categories"
# The default category vocabulary: what social prescribing link workers prescribe most.
CATEGORIES: dict[str, str] = {
    "exercise": "Exercise and physical activity",
    "befriending": "Befriending",
    "debt_advice": "Debt and money advice",
    "carers_support": "Carers' support",
    "mental_health": "Mental health and wellbeing",
    "arts": "Arts and creativity",
    "gardening": "Gardening and nature",
    "peer_support": "Peer support groups",
}

ServiceStatus = Literal["active", "inactive", "defunct", "temporarily closed"]
WaitlistBand = Literal["under_1_month", "1_to_3_months", "over_3_months"]
assert tuple(WaitlistBand.__args__) == WAITLIST_BANDS  # type: ignore[attr-defined]


class Model(BaseModel):
    # HSDS files carry many fields Linkway does not keep: ignore them, do not fail.
    model_config = ConfigDict(extra="ignore")


class Capacity(BaseModel):
    """Linkway's extension: can the service take a new person now?"""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "waitlist", "closed"] = "open"
    waitlist_band: WaitlistBand | None = None
    reason: Line | None = Field(
        default=None, max_length=200, description="Why it is closed: shown to link workers."
    )

    @model_validator(mode="after")
    def _band_and_reason(self) -> Capacity:
        if (self.status == "waitlist") != (self.waitlist_band is not None):
            raise ValueError("a waitlist_band is given exactly when the status is waitlist")
        if self.status == "closed" and not self.reason:
            raise ValueError("a closed service needs a reason")
        return self


class TaxonomyTerm(Model):
    id: Id | None = None
    code: Code
    name: Line = Field(min_length=1, max_length=200)
    taxonomy: Line = Field(default=TAXONOMY, min_length=1, max_length=64)


class Attribute(Model):
    """HSDS links a service to a classification through an attribute."""

    taxonomy_term: TaxonomyTerm


class Address(Model):
    address_1: Line | None = Field(default=None, max_length=200)
    city: Line | None = Field(default=None, max_length=100)
    postal_code: Line | None = Field(default=None, max_length=16)
    country: Line = Field(default="GB", max_length=2)


class Location(Model):
    id: Id
    name: Line | None = Field(default=None, max_length=200)
    description: Prose | None = Text
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    addresses: list[Address] = Field(default_factory=list, max_length=1)


class ServiceAtLocation(Model):
    id: Id
    location: Location


class Service(Model):
    id: Id
    organization_id: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=PROVIDER_ID_PATTERN
    )
    name: Line = Field(min_length=1, max_length=200)
    description: Prose | None = Text
    url: Line | None = Field(default=None, max_length=500)
    status: ServiceStatus = "active"
    eligibility_description: Prose | None = Text
    minimum_age: int | None = Field(default=None, ge=0, le=130)
    maximum_age: int | None = Field(default=None, ge=0, le=130)
    attributes: list[Attribute] = Field(default_factory=list, max_length=50)
    service_at_locations: list[ServiceAtLocation] = Field(default_factory=list, max_length=50)
    capacity: Capacity | None = Field(
        default=None,
        description="Linkway extension. Absent: open if the status is active, else closed.",
    )

    @property
    def categories(self) -> list[str]:
        return [a.taxonomy_term.code for a in self.attributes]

    def effective_capacity(self) -> Capacity:
        """An HSDS status other than active closes the service, whatever its capacity says."""
        if self.status != "active":
            return Capacity(status="closed", reason=f"the service is {self.status}")
        return self.capacity or Capacity()


class Organization(Model):
    id: str = ProviderId
    name: Line = Field(min_length=1, max_length=200)
    description: Prose | None = Text
    website: Line | None = Field(default=None, max_length=500)
    services: list[Service] = Field(default_factory=list, max_length=500)


class Directory(Model):
    """An HSDS JSON file: organizations with their services nested, and/or services that
    name their ``organization_id``."""

    organizations: list[Organization] = Field(default_factory=list, max_length=2000)
    services: list[Service] = Field(default_factory=list, max_length=5000)


def category(code: str) -> Attribute:
    """An attribute for one of the default categories."""
    return Attribute(taxonomy_term=TaxonomyTerm(id=code, code=code, name=CATEGORIES[code]))
