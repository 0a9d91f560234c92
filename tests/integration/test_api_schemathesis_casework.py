"""Schemathesis on the casework routes: referrals and their casework commands, the
caseload, activity summaries.

The run, its checks and its hostile inputs are in ``tests/integration/fuzzing.py``; this
module fuzzes exactly the operations ``fuzzing.group_of`` puts in "casework", on its own API.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis

from tests.integration.fuzzing import (
    CHAINED,
    FUZZ,
    Chained,
    Fuzzer,
    check_examples,
    fuzzer,
    group_schema,
    run_case,
    run_chained,
)

pytestmark = pytest.mark.integration
GROUP = "casework"
schema = group_schema(GROUP)
CALLS: Counter[str] = Counter()
__all__ = ["fuzzer"]  # the module-scoped fixture: this module's own API


@schema.parametrize()
@FUZZ
def test_casework_conforms_to_the_openapi(case: schemathesis.Case, fuzzer: Fuzzer) -> None:
    run_case(case, fuzzer, CALLS)


def test_chained_calls_follow_the_links_without_a_server_error(fuzzer: Fuzzer) -> None:
    run_chained(fuzzer)
    print(f"\nstateful calls on a referral made in the same scenario: {dict(CHAINED)}")
    assert Chained.made, "no scenario made a referral"
    assert sum(CHAINED.values()) >= 5, CHAINED  # the links were followed


def test_every_casework_operation_got_at_least_100_examples() -> None:
    """Runs after the fuzzing above (same module, declared after it)."""
    check_examples(schema, CALLS)
