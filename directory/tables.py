"""The directory's tables (HSDS's own, prefixed ``directory_``). The directory is public
information about organisations and their services: it holds no personal data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class OrganizationRow(SQLModel, table=True):
    """A Tier Two provider organisation: its id is the provider id in handoffs."""

    __tablename__ = "directory_organizations"

    id: str = Field(primary_key=True, max_length=63)
    name: str = Field(max_length=200)
    description: str | None = None
    website: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=_now)


class ServiceRow(SQLModel, table=True):
    __tablename__ = "directory_services"

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(foreign_key="directory_organizations.id", index=True)
    name: str = Field(max_length=200)
    description: str | None = None
    url: str | None = Field(default=None, max_length=500)
    status: str = Field(default="active", max_length=32)
    eligibility_description: str | None = None
    minimum_age: int | None = None
    maximum_age: int | None = None
    # Linkway's extension: open | waitlist | closed, as the admin last set it.
    capacity: str | None = Field(default=None, max_length=16)
    waitlist_band: str | None = Field(default=None, max_length=16)
    capacity_reason: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(default_factory=_now)


class LocationRow(SQLModel, table=True):
    __tablename__ = "directory_locations"

    id: str = Field(primary_key=True, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address_1: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=16)
    country: str | None = Field(default=None, max_length=2)


class ServiceAtLocationRow(SQLModel, table=True):
    __tablename__ = "directory_service_at_locations"

    id: str = Field(primary_key=True, max_length=64)
    service_id: str = Field(foreign_key="directory_services.id", index=True)
    location_id: str = Field(foreign_key="directory_locations.id")


class ServiceCategoryRow(SQLModel, table=True):
    __tablename__ = "directory_service_categories"

    service_id: str = Field(foreign_key="directory_services.id", primary_key=True)
    code: str = Field(primary_key=True, max_length=64, index=True)
    name: str = Field(max_length=200)
    taxonomy: str = Field(max_length=64)
