"""The layering written in docs/architecture.md, checked on every import in the tree.

Each package may import only the packages its row allows, which keeps the graph free of
cycles; the pure core (the published contract, the pathway's rules and the workflow
definitions) imports no I/O library at all, so its tests need no server; and ``infra``
is plumbing that imports nothing else of Linkway. Imports inside functions count too: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Who may import whom (docs/architecture.md draws the same picture).
PURE_CORE = ("events", "pathway", "workflows")
BELOW_SERVICES = {*PURE_CORE, "infra", "messaging"}
ALLOWED: dict[str, set[str]] = {
    "events": set(),
    "infra": set(),
    "providerkit": set(),  # the provider tool ships alone: it speaks the contract, imports none
    "pathway": {"events"},
    "workflows": {"events", "pathway"},
    "messaging": {"events", "infra"},
    "activities": BELOW_SERVICES,
    "directory": {"events", "pathway", "infra"},
    "payments": {"events", "pathway", "infra", "messaging"},
    # The Well-being Action Fund: grants against a budget, beside the payment engine.
    "fund": {"events", "infra", "messaging"},
    # Equality monitoring's categories, suppression and IMD lookup: pure, and data.
    "equality": set(),
    # Read models from the topics, the KPIs and exports; priced against the rate cards.
    "reporting": {"events", "pathway", "infra", "messaging", "payments"},
    "inbound": BELOW_SERVICES | {"activities"},
    "api": BELOW_SERVICES
    | {"activities", "directory", "payments", "inbound", "fund", "equality", "reporting"},
    "workers": BELOW_SERVICES | {"activities", "payments", "inbound", "reporting"},
    # A migration is frozen once committed, so it imports nothing of Linkway: a model that
    # changes later must not change what an old migration does.
    "migrations": set(),
}
ALLOWED["ops"] = set(ALLOWED) - {"providerkit"}
# The benchmarks drive every layer, like ops, and use ops's server supervisor.
ALLOWED["bench"] = set(ALLOWED) - {"providerkit"}
IO_LIBRARIES = frozenset(
    {
        "sqlalchemy",
        "sqlmodel",
        "kafka",
        "aiokafka",
        "faststream",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "psycopg",
        "opentelemetry",
    }
)


def packages() -> list[str]:
    return sorted(
        p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"
    )


def imports(package: str) -> Iterator[tuple[str, str]]:
    """(module file, imported top-level name) for every import in a package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                yield str(path.relative_to(ROOT)), name.split(".")[0]


def test_every_package_has_a_row_in_the_layering() -> None:
    assert set(packages()) == set(ALLOWED)


def test_the_layering_itself_has_no_cycle() -> None:
    seen: set[str] = set()
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in seen - done, f"cycle: {' -> '.join((*path, package))}"
        if package in done:
            return
        seen.add(package)
        for dependency in ALLOWED[package]:
            visit(dependency, (*path, package))
        done.add(package)

    for package in ALLOWED:
        visit(package, ())


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_its_row_allows(package: str) -> None:
    ours = set(ALLOWED)
    wrong = sorted(
        f"{where} imports {name}"
        for where, name in imports(package)
        if name in ours and name != package and name not in ALLOWED[package]
    )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", PURE_CORE)
def test_the_pure_core_imports_no_io_library(package: str) -> None:
    wrong = sorted(
        f"{where} imports {name}" for where, name in imports(package) if name in IO_LIBRARIES
    )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ("events", "pathway"))
def test_the_contract_and_the_rules_do_not_import_temporal(package: str) -> None:
    wrong = sorted(
        f"{where} imports {name}" for where, name in imports(package) if name == "temporalio"
    )
    assert not wrong, "\n".join(wrong)


def test_the_workflow_module_loads_without_pulling_in_io_libraries() -> None:
    """What the workflow sandbox re-imports must not drag a database or broker client in
    through a transitive import (the layering above checks direct ones)."""
    import subprocess
    import sys

    code = (
        "import sys, workflows.referral; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(IO_LIBRARIES)!r}); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
