"""A cohort through the whole embedded stack, priced by the default rate card and by a
co-funded copy of it: workflow -> outbox -> relay -> Kafka -> payment consumer -> ledger,
and the ICB's distal feed (a CSV file and the Kafka topic) -> personal-data store match ->
distal outcome -> M7. The claims must be exactly the hand-computed table, delivered once
each however often Kafka delivers them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from api.personal_data import Access, PersonalDataStore, load_keys
from events import topics
from inbound import distal_consumer
from inbound.distal import DistalFeed
from inbound.distal_outcomes import DistalOutcomes
from infra.db import transaction
from infra.settings import PaymentSettings
from messaging.deadletters import REASON_HEADER
from messaging.reader import read, read_all
from pathway import commands as cmd
from pathway import distal
from payments.engine import PaymentEngine
from tests.conftest import free_port, temporal_address
from tests.integration.stack import running_stack
from tests.integration.test_provider_inbound import publish
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
M7 = 36_050  # 2027.1's price: the distal outcome is dated when its window closes, in 2027
M7_COFUNDED = 35_000  # the co-funded contract has one version, 2026.1
PACKAGED = Path(__file__).parents[2] / "payments" / "ratecards"
COFUNDED = "demo-county-cofunded"
NHS = {  # valid check digits; the feed knows people by nothing else
    "improver": "9434765919",
    "no_improvement": "9434765005",
    "disengages": "9434765021",
    "comes_back_too_soon": "9434765048",
    "declined": "9434765056",
}
NOBODY = "9434765013"
FEED = Access("distal-feed:test", "commissioner", "distal_outcome_feed")


def cofunded_card(tmp_path: Path) -> Path:
    """The packaged 2026.1 card as a second contract, paid 70% by the commissioner and 30%
    by the Life Chances Fund, with a cap on the fund's part."""
    text = (PACKAGED / "default.toml").read_text("utf-8")
    text = text.replace('contract_id = "demo-county-sp-2026"', f'contract_id = "{COFUNDED}"')
    text += (
        '\n[payers.commissioner]\nname = "Demo County ICB"\nshare_basis_points = 7000\n'
        '\n[payers.lcf]\nname = "Life Chances Fund"\nshare_basis_points = 3000\n'
        "cap_pence = 100_000_000\n"
    )
    path = tmp_path / "cofunded.toml"
    path.write_text(text, encoding="utf-8")
    return path


def feed_rows(person: str, before: int, after: int, start: str) -> list[dict]:
    """Six months before the referral's month at ``before`` a month, six after at ``after``."""
    months = [distal.add_months(start, n) for n in range(13)]
    counts = [before] * 6 + [9] + [after] * 6  # the referral's own month counts in neither
    return [
        {
            "nhs_number": NHS[person],
            "measure": "gp_appointments",
            "month": m,
            "count": c,
            "row_id": f"{person[:8]}-{m}",
        }
        for m, c in zip(months, counts, strict=True)
    ]


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


async def distal_feed(stack, engine, people: dict[str, str], broker: str) -> list:
    """The ICB's feed for the cohort: improver and no_improvement by CSV; the rest over
    Kafka with a malformed row, an unmatched NHS number, an exact duplicate and a
    corrected row (a month first sent too high, then corrected before the last month).
    GP appointments fall for improver, disengages (after the correction) and
    comes_back_too_soon; rise for no_improvement; declined was never engaged."""
    keys = load_keys(stack.settings)
    store = PersonalDataStore(engine, keys)
    with transaction(engine) as session:  # as the API stores them when a referral is made
        for person, referral_id in people.items():
            store.put(session, referral_id, "north-wellbeing", {"nhs_number": NHS[person]}, FEED)
    today = datetime.now(UTC).date()  # the episodes opened today, in UTC, as the feed counts
    start = distal.add_months(distal.month_of(today), -6)
    closed = distal.windows(today, 6).closes_on
    feed = DistalFeed(
        engine,
        lambda nhs: store.match_nhs_number(nhs, FEED),
        DistalOutcomes(engine, 6, stack.settings.event_source),
        source="cohort",
    )
    csv_rows = feed_rows("improver", 2, 1, start) + feed_rows("no_improvement", 1, 2, start)
    header = "nhs_number,measure,month,count,row_id\n"
    text = header + "".join(
        f"{r['nhs_number']},{r['measure']},{r['month']},{r['count']},{r['row_id']}\n"
        for r in csv_rows
    )
    assert {r.status for r in feed.import_csv(text, today=closed)} == {"stored"}
    first, *rest = feed_rows("disengages", 2, 1, start)[::-1]  # newest month first
    too_high = {**first, "count": 9}  # uncorrected, after (14) would exceed before (12)
    kafka = [too_high, first, first, *rest, *feed_rows("comes_back_too_soon", 3, 0, start)]
    kafka += feed_rows("declined", 3, 0, start)[:2]
    kafka += [{**first, "nhs_number": NOBODY, "row_id": "unmatched-1"}]
    kafka += [{**first, "month": "2027-13", "row_id": "malformed-1"}]
    consumer_broker, handler = distal_consumer.build(
        stack.settings, feed, group_id=f"distal-{uuid.uuid4().hex[:6]}"
    )
    handler.today = closed
    sent = publish(
        broker, topics.DISTAL_ACTIVITY, [(b"icb-1", json.dumps(r).encode()) for r in kafka]
    )
    await consumer_broker.start()
    try:
        deadline = time.monotonic() + 30
        dlq = topics.dead_letter_topic(topics.DISTAL_ACTIVITY)
        while time.monotonic() < deadline:
            dead = await asyncio.to_thread(lambda: list(read(broker, dlq)))
            if len(dead) >= 2 and len(sent) == len(kafka):
                break
            await asyncio.sleep(0.3)
    finally:
        await consumer_broker.stop()
    return dead


async def test_cohort_earns_exactly_the_hand_computed_claims(
    dev_env, own_broker, tmp_path, database_url
):
    broker = own_broker
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        from infra.db import get_engine

        engine = get_engine(stack.settings)
        cards = PaymentSettings(rate_cards=f"{PACKAGED},{cofunded_card(tmp_path)}")
        payments = PaymentEngine.from_settings(engine, cards, tmp_path)
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
            dead = await distal_feed(stack, engine, people, broker)
            expected = {
                (people["improver"], 1, "M1"): M1,
                (people["improver"], 1, "M2"): M2,
                (people["improver"], 1, "M3"): M3,
                (people["improver"], 1, "M4"): M4,
                (people["no_improvement"], 1, "M1"): M1,
                (people["disengages"], 1, "M1"): M1,
                (people["comes_back_too_soon"], 1, "M1"): M1,
                (people["improver"], 1, "M7"): M7,
                (people["disengages"], 1, "M7"): M7,
                (people["comes_back_too_soon"], 1, "M7"): M7,  # episode 2: re-entry too soon
            }
            # facts stated (not every fact earns a claim): 10 from the pathway, 5 distal
            outcome_count = 4 + 3 + 1 + 2 + 5
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                outcomes = await asyncio.to_thread(read_all, broker, topics.OUTCOMES)
                ours = [v for k, v in outcomes if k and k.decode() in people.values()]
                claims = payments.claims(limit=1000).items
                mine = [c for c in claims if c.referral_id in people.values()]
                if len(ours) >= outcome_count and len(mine) >= 2 * len(expected):
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
        if c.status == "claimed" and c.contract_id != COFUNDED
    }
    assert got == expected
    cofunded = {
        (c.referral_id, c.episode, c.metric): c.amount_pence
        for c in claims
        if c.status == "claimed" and c.contract_id == COFUNDED
    }
    assert cofunded == {k: M7_COFUNDED if k[2] == "M7" else v for k, v in expected.items()}
    statements = payments.statements(contract_id="demo-county-sp-2026")
    assert {s.partner_id for s in statements} == {"north-wellbeing"}
    assert sum(s.total.claimed_pence for s in statements) == sum(expected.values())
    assert sum(expected.values()) == 220_000 + 3 * M7
    # Co-funded: each payer's statement is its share, and together they are the total.
    by_payer: dict[str, int] = {}
    for statement in payments.payer_statements(contract_id=COFUNDED):
        by_payer[statement.payer_id] = (
            by_payer.get(statement.payer_id, 0) + statement.total.claimed_pence
        )
    total = sum(cofunded.values())
    assert by_payer == {"commissioner": total * 7 // 10, "lcf": total * 3 // 10}
    partner_total = sum(s.total.claimed_pence for s in payments.statements(contract_id=COFUNDED))
    assert sum(by_payer.values()) == partner_total == total
    # The feed's bad rows are dead-lettered redacted: no NHS number anywhere, no key.
    reasons = sorted(dict(h)[REASON_HEADER].decode() for _, _, h in dead)
    assert [r.split(":")[0] for r in reasons] == ["malformed", "unmatched"]
    assert all(key is None for key, _, _ in dead)
    assert not any(number.encode() in value for _, value, _ in dead for number in NHS.values())
    assert NOBODY.encode() not in b"".join(value for _, value, _ in dead)
    verified = payments.verify()
    assert verified.ok
