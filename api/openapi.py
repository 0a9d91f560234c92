"""The API reference, published as docs/api/openapi.json and checked for drift in CI."""

from __future__ import annotations

import json
from pathlib import Path

from api.app import create_app

OPENAPI = Path("docs/api/openapi.json")


def rendered() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def write_openapi(root: Path) -> list[Path]:
    path = root / OPENAPI
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rendered())
    return [path]


def check_openapi(root: Path) -> list[str]:
    path = root / OPENAPI
    if not path.exists() or path.read_text() != rendered():
        return [str(OPENAPI)]
    return []
