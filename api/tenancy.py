"""Partner organisations (tenants), the role each one's people hold, and which Tier One
partner serves each locality. The file is configuration: production points
``LINKWAY_TENANCY_FILE`` at the commissioner's own; the packaged one is the demo."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEMO_FILE = Path(__file__).parent / "tenancy.toml"

# What a caller may do is decided by its role; which objects it sees, by its partner.
Role = Literal["referrer", "tier_one", "tier_two", "contract_manager", "admin"]
ROLES: tuple[Role, ...] = ("referrer", "tier_one", "tier_two", "contract_manager", "admin")


class Partner(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_.-]{1,64}$")
    role: Role
    name: str
    localities: tuple[str, ...] = ()


class Tenancy(BaseModel):
    commissioner: str
    partners: list[Partner]

    def partner_for_locality(self, locality: str) -> Partner | None:
        return next((p for p in self.partners if locality in p.localities), None)

    def partner(self, partner_id: str) -> Partner | None:
        return next((p for p in self.partners if p.id == partner_id), None)


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Tenancy:
    return Tenancy.model_validate(tomllib.loads(Path(path or DEMO_FILE).read_text()))
