"""The schemathesis run of ``test_api_schemathesis.py`` (hostile strings, chunked bodies
and all) against PostgreSQL, where a NUL in a string is an error rather than a miss: no
5xx on any operation, and a shorter stateful run (calls chained by the links). A sample
of the cases (5 examples per operation plus the coverage cases) keeps CI quick; SQLite
gets the full run.

Its own module so that the SQLite run's API and worker have stopped before this one
starts: both workers would poll the same task queue, and a referral made here could be
recorded in the other's database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import settings

from tests.conftest import scratch_postgres
from tests.integration.stack import ThreadedApi
from tests.integration.test_api_schemathesis import (
    FUZZ,
    run_case,
    run_chained,
    schema,
    seed_referrals,
    serve,
)

pytestmark = pytest.mark.integration
EXAMPLES = 5


@pytest.fixture(scope="module")
def pg_api(dev_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApi]:
    with scratch_postgres() as url:
        data_dir = tmp_path_factory.mktemp("schemathesis-pg")
        with serve(dev_env, data_dir, database_url=url) as running:
            yield running


@pytest.fixture(scope="module")
def pg_referral_ids(pg_api: ThreadedApi) -> list[str]:
    return seed_referrals(pg_api)


@schema.parametrize()
@settings(FUZZ, max_examples=EXAMPLES)
def test_api_conforms_to_its_openapi_on_postgresql(
    case: schemathesis.Case, pg_api: ThreadedApi, pg_referral_ids: list[str]
) -> None:
    run_case(case, pg_api, pg_referral_ids)


def test_chained_calls_follow_the_links_without_a_server_error_on_postgresql(
    pg_api: ThreadedApi,
) -> None:
    run_chained(pg_api, scenarios=8)
