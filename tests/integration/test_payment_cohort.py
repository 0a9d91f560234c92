"""A cohort through the whole embedded stack, priced by the default rate card: workflow ->
outbox -> relay -> Kafka -> payment consumer -> ledger. The claims must be exactly the
hand-computed table, delivered once each however often Kafka delivers them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from events import topics
from infra.settings import PaymentSettings
from messaging.reader import read_all
from pathway import commands as cmd
from payments.engine import PaymentEngine
from tests.conftest import free_port, temporal_address
from tests.integration.stack import running_stack
from tests.workflow.helpers import (
    WEMWBS_HIGH,
    WEMWBS_LOW,
    command,
    contact_assess_and_plan,
    now,
    start_referral,
    state_of,
    to_supported,
    wemwbs,
)
from workers import payments as payments_worker
from workflows import TASK_QUEUE
from workflows.referral import ReferralWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

M1, M2, M3, M4 = 25_000, 30_000, 50_000, 40_000  # the default rate card's prices (pence)


async def attend(handle, sessions: int, status: str = "attended") -> None:
    handoff = next(iter((await state_of(handle)).episode.handoffs.values()))
    for day in range(1, sessions + 1):
        await handle.signal(
            ReferralWorkflow.attendance_reported,
            cmd.AttendanceRecorded(
                event_id=uuid.uuid4().hex,
                handoff_id=handoff.handoff_id,
                provider_id=handoff.provider_id,
                occurred_at=now(),
                session_date=date(2026, 10, day),
                status=status,
            ),
        )


async def review(handle, answers: dict[str, int], decision: str = "ongoing_support") -> None:
    await handle.execute_update(
        ReferralWorkflow.record_review,
        command(
            cmd.RecordReview,
            decision=decision,
            measures=[wemwbs(answers)],
            early_reason_code="test_cohort",
        ),
    )


async def followup(handle, answers: dict[str, int]) -> None:
    await handle.execute_update(
        ReferralWorkflow.record_followup,
        command(cmd.RecordFollowup, measures=[wemwbs(answers)], early_reason_code="test_cohort"),
    )


async def improver(client) -> str:
    """Engages, attends 3 sessions, improves at review and sustains it: M1 M2 M3 M4."""
    handle = await start_referral(client, TASK_QUEUE)
    await to_supported(handle)
    await attend(handle, 3)
    await review(handle, WEMWBS_HIGH)
    await followup(handle, WEMWBS_HIGH)
    return (await state_of(handle)).referral_id


async def no_improvement(client) -> str:
    """Engages, attends once, no change at review or follow-up: M1 only."""
    handle = await start_referral(client, TASK_QUEUE)
    await to_supported(handle)
    await attend(handle, 1)
    await review(handle, WEMWBS_LOW)
    await followup(handle, WEMWBS_LOW)
    return (await state_of(handle)).referral_id


async def disengages(client) -> str:
    """Engages, misses three sessions, the link worker ends the episode: M1 only."""
    handle = await start_referral(client, TASK_QUEUE)
    await to_supported(handle)
    await attend(handle, 3, status="did_not_attend")
    await handle.execute_update(
        ReferralWorkflow.end_episode, command(cmd.EndEpisode, reason_code="disengaged")
    )
    return (await state_of(handle)).referral_id


async def comes_back_too_soon(client) -> str:
    """Engages, withdraws, is referred again within the 180-day exclusion window and
    engages again: the second engagement earns nothing. M1 once."""
    handle = await start_referral(client, TASK_QUEUE)
    await to_supported(handle)
    await handle.execute_update(
        ReferralWorkflow.end_episode, command(cmd.EndEpisode, reason_code="withdrawn")
    )
    await handle.execute_update(
        ReferralWorkflow.reenter, command(cmd.ReEnter, source="gp", referrer_org_id="gp-2")
    )
    await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
    await contact_assess_and_plan(handle)
    return (await state_of(handle)).referral_id


async def declined(client) -> str:
    """Declined at triage: nothing."""
    handle = await start_referral(client, TASK_QUEUE)
    await handle.execute_update(
        ReferralWorkflow.decline_referral, command(cmd.DeclineReferral, reason_code="not_eligible")
    )
    return (await state_of(handle)).referral_id


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of the cohort's own: the payment engine reads the outcomes topic from its
    start, and the statements and caps it checks must hold only the cohort's outcomes, not
    those of every test (or the other database's run) that shared the session's broker."""
    from ops.devstack import start_broker

    port = free_port()
    child = start_broker("127.0.0.1", port, tmp_path_factory.mktemp("cohort-broker"))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        child.stop()


async def test_cohort_earns_exactly_the_hand_computed_claims(
    dev_env, own_broker, tmp_path, database_url
):
    broker = own_broker
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        from infra.db import get_engine

        engine = get_engine(stack.settings)
        payments = PaymentEngine.from_settings(engine, PaymentSettings(), tmp_path)
        consumer = payments_worker.build(
            stack.settings, engine, payments, group_id=f"payments-{uuid.uuid4().hex[:6]}"
        )
        await consumer.start()
        try:
            client = dev_env.client
            people = {
                "improver": await improver(client),
                "no_improvement": await no_improvement(client),
                "disengages": await disengages(client),
                "comes_back_too_soon": await comes_back_too_soon(client),
                "declined": await declined(client),
            }
            expected = {
                (people["improver"], 1, "M1"): M1,
                (people["improver"], 1, "M2"): M2,
                (people["improver"], 1, "M3"): M3,
                (people["improver"], 1, "M4"): M4,
                (people["no_improvement"], 1, "M1"): M1,
                (people["disengages"], 1, "M1"): M1,
                (people["comes_back_too_soon"], 1, "M1"): M1,
            }
            outcome_count = 4 + 3 + 1 + 2  # facts stated; not every fact earns a claim
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                outcomes = await asyncio.to_thread(read_all, broker, topics.OUTCOMES)
                ours = [v for k, v in outcomes if k and k.decode() in people.values()]
                claims = payments.claims(limit=1000).items
                mine = [c for c in claims if c.referral_id in people.values()]
                if len(ours) >= outcome_count and len(mine) >= len(expected):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # anything extra would arrive now
            claims = [
                c for c in payments.claims(limit=1000).items if c.referral_id in people.values()
            ]
        finally:
            await consumer.stop()

    got = {
        (c.referral_id, c.episode, c.metric): c.amount_pence
        for c in claims
        if c.status == "claimed"
    }
    assert got == expected
    statements = payments.statements()
    assert {s.partner_id for s in statements} == {"north-wellbeing"}
    assert sum(s.total.claimed_pence for s in statements) == sum(expected.values()) == 220_000
    verified = payments.verify()
    assert verified.ok
