"""Every operation of the published OpenAPI document is fuzzed by exactly one schemathesis
module: a route added under a new first path segment lands in the fallback group, and a
group without a module (or a module without a group) fails here."""

from __future__ import annotations

import importlib
from collections import Counter

from tests.integration import fuzzing

MODULES = {
    group: importlib.import_module(f"tests.integration.test_api_schemathesis_{group}")
    for group in fuzzing.GROUPS
}


def test_every_operation_is_fuzzed_by_exactly_one_group_module() -> None:
    everything = fuzzing.labels(fuzzing.load_schema())
    seen: Counter[str] = Counter()
    for group, module in MODULES.items():
        assert group == module.GROUP
        mine = fuzzing.labels(module.schema)
        assert mine, f"the {group} group fuzzes no operation"
        seen.update(mine)
    assert set(seen) == everything, everything ^ set(seen)
    assert not {label for label, n in seen.items() if n != 1}


def test_a_route_under_an_unknown_prefix_falls_to_the_fallback_group() -> None:
    assert fuzzing.FALLBACK in fuzzing.GROUPS
    assert fuzzing.group_of("/fhir/ServiceRequest/{id}") == "fhir"
    assert fuzzing.group_of("/distal/upload") == fuzzing.FALLBACK
    assert fuzzing.group_of("/payments/payer-statements.csv") == "payments"
    assert fuzzing.group_of("/referrals/{referral_id}/notes") == "casework"
    assert fuzzing.group_of("/provider/handoffs") == "providers"
    assert fuzzing.group_of("/providers") == fuzzing.FALLBACK  # a segment, not a string prefix
    # Each segment is named by one group only.
    named = [segment for segments in fuzzing.GROUPS.values() for segment in segments]
    assert len(named) == len(set(named))


def test_the_examples_check_knows_which_operations_take_input() -> None:
    no_input = fuzzing.without_input(fuzzing.load_schema())
    assert "GET /health" in no_input and "POST /referrals" not in no_input
