"""The schemathesis run of the ``test_api_schemathesis_<group>.py`` modules (hostile
strings, chunked bodies and all; see ``tests/integration/fuzzing.py``) against PostgreSQL,
where a NUL in a string is an error rather than a miss: no 5xx on any operation of the
document, and a shorter stateful run (calls chained by the links). A sample of the
cases (5 examples per operation plus the coverage cases) keeps CI quick; SQLite gets the full run.

Its own module with its own API and worker: under ``--dist loadfile`` a module's tests
run on one pytest-xdist worker, whose other modules' APIs have stopped (module scope)
before this one starts: two workers on one dev server would poll the same task queue,
and a referral made here could be recorded in the other's database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import settings

from tests.conftest import scratch_postgres
from tests.integration.fuzzing import (
    FUZZ,
    Fuzzer,
    fuzzer_on,
    load_schema,
    run_case,
    run_chained,
    serve,
)

pytestmark = pytest.mark.integration
EXAMPLES = 5
schema = load_schema()
CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def pg_fuzzer(dev_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    with scratch_postgres() as url:
        data_dir = tmp_path_factory.mktemp("schemathesis-pg")
        with serve(dev_env, data_dir, database_url=url) as api:
            yield from fuzzer_on(api)


@schema.parametrize()
@settings(FUZZ, max_examples=EXAMPLES)
def test_api_conforms_to_its_openapi_on_postgresql(
    case: schemathesis.Case, pg_fuzzer: Fuzzer
) -> None:
    run_case(case, pg_fuzzer, CALLS)


def test_chained_calls_follow_the_links_without_a_server_error_on_postgresql(
    pg_fuzzer: Fuzzer,
) -> None:
    run_chained(pg_fuzzer, scenarios=8)
