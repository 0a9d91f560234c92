"""The directory's repository: HSDS-shaped objects in, HSDS-shaped objects out.

Callers hand it a session and own the transaction (``infra.db.transaction``), so an
import or an admin change commits as one unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from directory import hsds
from directory.errors import DirectoryError, UnknownOrganization
from directory.tables import (
    LocationRow,
    OrganizationRow,
    ServiceAtLocationRow,
    ServiceCategoryRow,
    ServiceRow,
)


class DirectoryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # Reads ---------------------------------------------------------------------------------

    def organization(self, organization_id: str) -> hsds.Organization | None:
        row = self.session.get(OrganizationRow, organization_id)
        if row is None:
            return None
        return _organization(row, self.services(organization_id=organization_id))

    def organizations(self) -> list[hsds.Organization]:
        rows = self.session.exec(select(OrganizationRow).order_by(col(OrganizationRow.id)))
        services: dict[str, list[hsds.Service]] = defaultdict(list)
        for service in self.services():
            services[service.organization_id or ""].append(service)
        return [_organization(row, services[row.id]) for row in rows]

    def provider_ids(self) -> list[str]:
        return list(self.session.exec(select(OrganizationRow.id).order_by(col(OrganizationRow.id))))

    def service(self, service_id: str) -> hsds.Service | None:
        row = self.session.get(ServiceRow, service_id)
        return None if row is None else self._services([row])[0]

    def services(
        self,
        *,
        category: str | None = None,
        organization_id: str | None = None,
        capacity: str | None = None,
    ) -> list[hsds.Service]:
        stmt = select(ServiceRow).order_by(col(ServiceRow.organization_id), col(ServiceRow.id))
        if organization_id is not None:
            stmt = stmt.where(ServiceRow.organization_id == organization_id)
        if category is not None:
            tagged = select(ServiceCategoryRow.service_id).where(
                ServiceCategoryRow.code == category
            )
            stmt = stmt.where(col(ServiceRow.id).in_(tagged))
        found = self._services(list(self.session.exec(stmt)))
        if capacity is not None:
            found = [s for s in found if s.effective_capacity().status == capacity]
        return found

    def _services(self, rows: list[ServiceRow]) -> list[hsds.Service]:
        ids = [r.id for r in rows]
        terms: dict[str, list[hsds.Attribute]] = defaultdict(list)
        for term in self.session.exec(
            select(ServiceCategoryRow)
            .where(col(ServiceCategoryRow.service_id).in_(ids))
            .order_by(col(ServiceCategoryRow.code))
        ):
            terms[term.service_id].append(
                hsds.Attribute(
                    taxonomy_term=hsds.TaxonomyTerm(
                        id=term.code, code=term.code, name=term.name, taxonomy=term.taxonomy
                    )
                )
            )
        places: dict[str, list[hsds.ServiceAtLocation]] = defaultdict(list)
        for link, location in self.session.exec(
            select(ServiceAtLocationRow, LocationRow)
            .where(col(ServiceAtLocationRow.service_id).in_(ids))
            .where(ServiceAtLocationRow.location_id == LocationRow.id)
            .order_by(col(ServiceAtLocationRow.id))
        ):
            places[link.service_id].append(
                hsds.ServiceAtLocation(id=link.id, location=_location(location))
            )
        return [_service(row, terms[row.id], places[row.id]) for row in rows]

    # Writes --------------------------------------------------------------------------------

    def save_organization(self, organization: hsds.Organization) -> None:
        """Create or replace an organization, then each service nested in it."""
        row = self.session.get(OrganizationRow, organization.id) or OrganizationRow(
            id=organization.id, name=organization.name
        )
        row.name, row.description = organization.name, organization.description
        row.website, row.updated_at = organization.website, datetime.now(UTC)
        self.session.add(row)
        self.session.flush()
        for service in organization.services:
            self.save_service(service.model_copy(update={"organization_id": organization.id}))

    def save_service(self, service: hsds.Service) -> None:
        """Create or replace a service with its categories and locations."""
        if not service.organization_id or not self.session.get(
            OrganizationRow, service.organization_id
        ):
            raise UnknownOrganization(
                "a service's organization_id names no organization in the directory; "
                "add the organization first"
            )
        row = self.session.get(ServiceRow, service.id) or ServiceRow(
            id=service.id, organization_id=service.organization_id, name=service.name
        )
        for field in ServiceRow.model_fields:
            if field in hsds.Service.model_fields and field not in ("id", "capacity"):
                setattr(row, field, getattr(service, field))
        _set_capacity(row, service.capacity)
        self.session.add(row)
        for table in (ServiceCategoryRow, ServiceAtLocationRow):
            self.session.execute(delete(table).where(col(table.service_id) == service.id))
        self.session.flush()
        for code, term in {
            a.taxonomy_term.code: a.taxonomy_term for a in service.attributes
        }.items():
            self.session.add(
                ServiceCategoryRow(
                    service_id=service.id, code=code, name=term.name, taxonomy=term.taxonomy
                )
            )
        ids = [place.id for place in service.service_at_locations]
        if len(set(ids)) != len(ids):
            raise DirectoryError("a service lists a service_at_location id twice")
        for place in service.service_at_locations:
            owner = self.session.get(ServiceAtLocationRow, place.id)
            if owner is not None:
                raise DirectoryError(
                    "a service_at_location id already belongs to another service; "
                    "each has its own id"
                )
            self._save_location(place.location)
            self.session.add(
                ServiceAtLocationRow(
                    id=place.id, service_id=service.id, location_id=place.location.id
                )
            )
        self.session.flush()

    def set_capacity(self, service_id: str, capacity: hsds.Capacity) -> hsds.Service | None:
        row = self.session.get(ServiceRow, service_id)
        if row is None:
            return None
        _set_capacity(row, capacity)
        self.session.add(row)
        self.session.flush()
        return self._services([row])[0]

    def _save_location(self, location: hsds.Location) -> None:
        row = self.session.get(LocationRow, location.id) or LocationRow(id=location.id)
        address = location.addresses[0] if location.addresses else hsds.Address()
        for field, value in [
            *location.model_dump(include={"name", "description", "latitude", "longitude"}).items(),
            *address.model_dump().items(),
        ]:
            setattr(row, field, value)
        self.session.add(row)


def _set_capacity(row: ServiceRow, capacity: hsds.Capacity | None) -> None:
    row.capacity = capacity.status if capacity else None
    row.waitlist_band = capacity.waitlist_band if capacity else None
    row.capacity_reason = capacity.reason if capacity else None
    row.updated_at = datetime.now(UTC)


def _organization(row: OrganizationRow, services: Iterable[hsds.Service]) -> hsds.Organization:
    return hsds.Organization(
        id=row.id,
        name=row.name,
        description=row.description,
        website=row.website,
        services=list(services),
    )


def _service(
    row: ServiceRow, attributes: list[hsds.Attribute], places: list[hsds.ServiceAtLocation]
) -> hsds.Service:
    capacity = None
    if row.capacity:
        capacity = hsds.Capacity.model_validate(
            {
                "status": row.capacity,
                "waitlist_band": row.waitlist_band,
                "reason": row.capacity_reason,
            }
        )
    return hsds.Service.model_validate(
        {
            **row.model_dump(
                exclude={"capacity", "waitlist_band", "capacity_reason", "updated_at"}
            ),
            "attributes": attributes,
            "service_at_locations": places,
            "capacity": capacity,
        }
    )


def _location(row: LocationRow) -> hsds.Location:
    address = hsds.Address(
        address_1=row.address_1,
        city=row.city,
        postal_code=row.postal_code,
        country=row.country or "GB",
    )
    return hsds.Location(
        id=row.id,
        name=row.name,
        description=row.description,
        latitude=row.latitude,
        longitude=row.longitude,
        addresses=[address] if (row.address_1 or row.city or row.postal_code) else [],
    )
