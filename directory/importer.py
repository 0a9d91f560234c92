"""Importing an HSDS JSON file, and the demo directory the embedded default starts with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from directory import hsds
from directory.errors import DirectoryFileError
from directory.repository import DirectoryRepository
from directory.tables import OrganizationRow
from infra.db import transaction

DEMO_FILE = Path(__file__).parent / "demo.json"


@dataclass(frozen=True)
class ImportResult:
    organizations: int
    services: int


def parse(raw: bytes | str | dict[str, Any]) -> hsds.Directory:
    """Validate an HSDS document; ``DirectoryFileError`` names the first field at fault."""
    try:
        body = raw if isinstance(raw, dict) else json.loads(raw)
        return hsds.Directory.model_validate(body)
    except json.JSONDecodeError as exc:
        raise DirectoryFileError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise DirectoryFileError(f"{where}: {err['msg']}") from None


def import_directory(session: Session, directory: hsds.Directory) -> ImportResult:
    """Create or replace everything the document holds, in the caller's transaction: an
    organization first, then its services, then services listed on their own."""
    repo = DirectoryRepository(session)
    for organization in directory.organizations:
        repo.save_organization(organization)
    for service in directory.services:
        repo.save_service(service)
    services = sum(len(o.services) for o in directory.organizations) + len(directory.services)
    return ImportResult(organizations=len(directory.organizations), services=services)


def import_file(engine: Engine, path: Path) -> ImportResult:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DirectoryFileError(f"cannot read {path}: {exc.strerror}") from None
    directory = parse(raw)
    with transaction(engine) as session:
        return import_directory(session, directory)


def seed_demo(engine: Engine) -> ImportResult | None:
    """Load ``demo.json`` into an empty directory (the embedded default); a directory that
    already has organizations is left alone, so an admin's changes survive restarts."""
    with Session(engine) as session:
        if session.exec(select(OrganizationRow.id).limit(1)).first() is not None:
            return None
    return import_file(engine, DEMO_FILE)
