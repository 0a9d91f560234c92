"""Schemathesis on the service routes: funds, equality monitoring, the dashboard, audit,
health probes, and (the fallback group) any route whose first path segment no other
group names.

The run, its checks and its hostile inputs are in ``tests/integration/fuzzing.py``; this
module fuzzes exactly the operations ``fuzzing.group_of`` puts in "service", on its own API.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis

from tests.integration.fuzzing import FUZZ, Fuzzer, check_examples, fuzzer, group_schema, run_case

pytestmark = pytest.mark.integration
GROUP = "service"
schema = group_schema(GROUP)
CALLS: Counter[str] = Counter()
__all__ = ["fuzzer"]  # the module-scoped fixture: this module's own API


@schema.parametrize()
@FUZZ
def test_service_conforms_to_the_openapi(case: schemathesis.Case, fuzzer: Fuzzer) -> None:
    run_case(case, fuzzer, CALLS)


def test_every_service_operation_got_at_least_100_examples() -> None:
    """Runs after the fuzzing above (same module, declared after it)."""
    check_examples(schema, CALLS)
