"""Partner organisations (tenants) and which Tier One partner serves each locality."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

DEMO_FILE = Path(__file__).parent / "tenancy.toml"


class Partner(BaseModel):
    id: str
    role: str
    name: str
    localities: list[str] = []


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
