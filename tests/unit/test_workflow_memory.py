"""What keeps a cached referral small in the worker (docs/benchmarks.md, P4): the
workflow module is passed through the sandbox, so it must stay deterministic without
the sandbox's proxies; and equal pathway configurations are held once."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from pathway.config import load
from pathway.state import CaseState
from tests.unit.pathway_fixtures import at_stage
from workers.worker import build_worker
from workflows import sandbox
from workflows.models import NewReferral, ReferralInput

ROOT = Path(__file__).resolve().parents[2]
# What a passed-through workflow module may import: deterministic helpers, the SDK (time
# and ids come from ``temporalio.workflow``) and the pure core.
DETERMINISTIC = {"__future__", "contextlib", "itertools", "typing", "temporalio"}
PURE_CORE = {"events", "pathway", "workflows"}


def test_every_passed_through_workflow_module_imports_only_deterministic_things() -> None:
    for module in sandbox.PASSED_THROUGH:
        path = ROOT / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [(node.module, alias.name) for alias in node.names]
            else:
                continue
            for name, member in names:
                top = name.split(".")[0]
                if name == "datetime":  # durations only; the time is workflow.now()
                    assert member == "timedelta", f"{module} imports datetime.{member}"
                else:
                    assert top in DETERMINISTIC | PURE_CORE, f"{module} imports {name}"


def test_the_worker_runs_the_workflow_in_that_sandbox() -> None:
    passed = sandbox.RUNNER.restrictions.passthrough_modules
    assert set(sandbox.PASSED_THROUGH) <= passed
    assert "workflow_runner=RUNNER" in inspect.getsource(build_worker)


def test_equal_configurations_decoded_from_inputs_are_one_instance() -> None:
    config = load("default")
    new = NewReferral(
        referral_id="r-1",
        partner_id="p",
        locality="l",
        source="gp",
        referrer_org_id="o",
        reason_codes=[],
        consent_to_share=True,
        config=config,
    )
    payload = ReferralInput(new=new).model_dump_json()
    first = ReferralInput.model_validate_json(payload)
    second = ReferralInput.model_validate_json(payload)
    assert first.new is not None and second.new is not None
    assert first.new.config is second.new.config
    assert first.new.config == config

    other = config.model_copy(update={"contact_attempts": config.contact_attempts + 1})
    changed = NewReferral.model_validate_json(
        new.model_copy(update={"config": other}).model_dump_json()
    )
    assert changed.config is not first.new.config
    assert changed.config.contact_attempts == config.contact_attempts + 1


def test_a_decoded_state_holds_the_shared_configuration() -> None:
    """As continue-as-new hands a state back: decoded, equal, its configuration shared."""
    state = at_stage("supported").state
    stored = state.model_dump_json()
    again = CaseState.model_validate_json(stored)
    assert again == state
    assert again.config is CaseState.model_validate_json(stored).config
