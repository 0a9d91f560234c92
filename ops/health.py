"""Is anything stuck, and where? One set of readings for the operator's three views:
``linkway status`` (checks with a verdict), the gauges the relay exports (dashboards
and alerts), and each process's readiness.

Readings come from the shared state every process leaves behind, not from the process
itself, so any replica (or the operator's shell) can take them:

- the relay is making progress while the oldest unpublished outbox row stays young, and
  one relay holds the publishing lease;
- a consumer group is making progress while its lag stays small (its committed offsets
  keep up with the log);
- a worker is alive while it polls the task queue;
- the pathway's own picture: referrals by stage, and the actions that are overdue.

Thresholds are the ones docs/production.md recommends for alerts.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from activities.readmodel import ReferralRow
from events import topics
from infra.settings import Settings
from messaging import lease, outbox
from messaging.lag import group_lag
from reporting.project import TOPICS as REPORTING_TOPICS
from workers import payments, providers, reporting

# The relay publishes within a second when healthy; a minute means it is stuck or the
# broker is away.
RELAY_STALLED_AFTER_SECONDS = 60.0
# A consumer that keeps up has a lag of a few messages; thousands means it has stopped
# or cannot keep up.
CONSUMER_LAG_LIMIT = 1_000
# A worker polls the task queue continuously; one not seen for a minute is gone.
WORKER_SEEN_WITHIN_SECONDS = 60.0
CHECK_SECONDS = 10.0
CONSUMER_GROUPS = {
    providers.GROUP_ID: [topics.PROVIDER_RESPONSES, topics.PROVIDER_ATTENDANCE],
    payments.GROUP_ID: [topics.OUTCOMES, topics.REFERRALS],
    reporting.GROUP_ID: list(REPORTING_TOPICS),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# --- readings ---------------------------------------------------------------------------


def outbox_backlog(engine: Engine, now: datetime | None = None) -> tuple[int, float]:
    """Unpublished rows, and the age in seconds of the oldest (0 when there is none)."""
    with Session(engine) as session:
        count, oldest = outbox.backlog(session)
    if oldest is None:
        return count, 0.0
    if oldest.tzinfo is None:  # SQLite hands back what it stored, without the zone
        oldest = oldest.replace(tzinfo=UTC)
    return count, max(((now or datetime.now(UTC)) - oldest).total_seconds(), 0.0)


def referrals_by_stage(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(ReferralRow.stage, func.count()).group_by(col(ReferralRow.stage))
        ).all()
    return {stage: int(count) for stage, count in rows}


def overdue_actions(engine: Engine) -> dict[str, int]:
    """Referrals with an overdue action, by action (first contact, provider response...)."""
    with Session(engine) as session:
        lists = session.exec(
            select(ReferralRow.overdue).where(col(ReferralRow.overdue) != "[]")
        ).all()
    return dict(Counter(action for overdue in lists for action in json.loads(overdue)))


def consumer_lag(settings: Settings) -> dict[str, int]:
    return group_lag(settings, CONSUMER_GROUPS)


# --- gauges -------------------------------------------------------------------------------


def register_gauges(
    engine: Engine, settings: Settings, active: Callable[[], bool] = lambda: True
) -> None:
    """Observable gauges over the shared state, read at each export. Registered by every
    relay, reported only by the active one (``active()``): so each reading once, however
    many replicas run."""
    meter = metrics.get_meter("linkway.ops")

    def backlog(_: CallbackOptions) -> Iterable[Observation]:
        if not active():
            return []
        count, _age = outbox_backlog(engine)
        return [Observation(count)]

    def oldest(_: CallbackOptions) -> Iterable[Observation]:
        if not active():
            return []
        return [Observation(outbox_backlog(engine)[1])]

    def stages(_: CallbackOptions) -> Iterable[Observation]:
        if not active():
            return []
        return [Observation(n, {"stage": s}) for s, n in referrals_by_stage(engine).items()]

    def overdue(_: CallbackOptions) -> Iterable[Observation]:
        if not active():
            return []
        return [Observation(n, {"action": a}) for a, n in overdue_actions(engine).items()]

    def lag(_: CallbackOptions) -> Iterable[Observation]:
        if not active():
            return []
        try:
            readings = consumer_lag(settings)
        except Exception:  # the broker is away: no reading, rather than a wrong one
            return []
        return [Observation(n, {"group": g}) for g, n in readings.items()]

    meter.create_observable_gauge(
        "linkway.outbox.backlog", [backlog], unit="{event}", description="Unpublished rows"
    )
    meter.create_observable_gauge(
        "linkway.outbox.oldest_age",
        [oldest],
        unit="s",
        description="Age of the oldest unpublished outbox row",
    )
    meter.create_observable_gauge(
        "linkway.referrals", [stages], unit="{referral}", description="Referrals by stage"
    )
    meter.create_observable_gauge(
        "linkway.actions.overdue",
        [overdue],
        unit="{referral}",
        description="Referrals with an overdue action, by action",
    )
    meter.create_observable_gauge(
        "linkway.consumer.lag",
        [lag],
        unit="{message}",
        description="Messages not yet committed by each consumer group",
    )


# --- checks -------------------------------------------------------------------------------


def check_database(engine: Engine) -> Check:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("database", False, f"unreachable ({type(exc).__name__})")
    return Check("database", True, "reachable")


def check_relay(engine: Engine) -> Check:
    try:
        count, age = outbox_backlog(engine)
    except Exception as exc:
        return Check("relay", False, f"outbox unreadable ({type(exc).__name__})")
    ok = age < RELAY_STALLED_AFTER_SECONDS
    return Check("relay", ok, f"{count} unpublished, oldest {age:.0f}s")


def check_consumers(settings: Settings) -> list[Check]:
    try:
        lag = consumer_lag(settings)
    except Exception as exc:
        return [Check("consumers", False, f"broker unreachable ({type(exc).__name__})")]
    return [
        Check(f"consumer {group}", lag.get(group, 0) <= CONSUMER_LAG_LIMIT, f"lag {lag.get(group)}")
        for group in CONSUMER_GROUPS
    ]


async def check_temporal(settings: Settings, task_queue: str) -> list[Check]:
    """The frontend answers, and some worker polled the task queue recently."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from infra import temporal

    try:
        # An operator waits for the answer: a frontend that does not answer in this long
        # is as good as down.
        client = await asyncio.wait_for(temporal.connect(settings), CHECK_SECONDS)
        await asyncio.wait_for(client.service_client.check_health(), CHECK_SECONDS)
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except Exception as exc:
        return [Check("temporal", False, f"unreachable ({type(exc).__name__})")]
    now = datetime.now(UTC).timestamp()
    recent = [
        p
        for p in described.pollers
        if now - p.last_access_time.ToSeconds() < WORKER_SEEN_WITHIN_SECONDS
    ]
    return [
        Check("temporal", True, "reachable"),
        Check("workers", bool(recent), f"{len(recent)} polling {task_queue}"),
    ]


def check_relay_lease(engine: Engine) -> Check:
    """Which relay publishes: the lease's holder, its fencing token and how long it has
    held it. Fails when no relay holds it (none runs, or the active one died and no
    standby took over)."""
    try:
        with engine.connect() as conn:
            state = lease.read_state(conn)
    except Exception as exc:
        return Check("relay lease", False, f"unreadable ({type(exc).__name__})")
    if state is None:
        return Check("relay lease", False, "no relay has ever held it")
    if state.expires_in < 0:
        return Check(
            "relay lease", False, f"lapsed {-state.expires_in:.0f}s ago: no relay is active"
        )
    return Check(
        "relay lease",
        True,
        f"held by {state.holder} (token {state.token}) for {state.held_for:.0f}s",
    )


async def status(settings: Settings, engine: Engine, task_queue: str) -> list[Check]:
    checks = [check_database(engine), check_relay(engine), check_relay_lease(engine)]
    checks += await check_temporal(settings, task_queue)
    checks += await asyncio.to_thread(check_consumers, settings)
    return checks
