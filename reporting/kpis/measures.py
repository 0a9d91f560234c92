"""Wellbeing measures: completeness, change from baseline to review, improvement."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, cast

import sqlalchemy as sa

from pathway.measures import Change, MeasureError, Registry, Scores
from reporting import stats
from reporting.kpis.view import (
    MEA,
    TITLES,
    Table,
    View,
)


def _headline(
    registry: Registry, instrument: str, raw: dict[str, Any], derived: dict[str, Any]
) -> float | None:
    """The one number an instrument's change is measured on, if it has one (a summed
    scale: its total, or its converted metric score where change is on that)."""
    try:
        inst = registry.get(instrument)
    except MeasureError:
        return None
    if inst.scoring != "sum":
        return None
    value = raw.get("total") if inst.change_on == "total" else derived.get(inst.change_on)
    return float(value) if isinstance(value, int | float) else None


Pair = tuple[
    str, str, str, str, str, str, str
]  # instrument, then each side's version, raw, derived


class Compared:
    """Each distinct pair of baseline and review scores compared once per request (the
    instruments' own rule, ``pathway.measures``): many episodes share the same scores."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.seen: dict[Pair, tuple[float | None, bool] | None] = {}

    def __call__(self, pair: Pair) -> tuple[float | None, bool] | None:
        """(change in the headline score, improved), or None when not comparable."""
        if pair not in self.seen:
            self.seen[pair] = self._compare(pair)
        return self.seen[pair]

    def _compare(self, pair: Pair) -> tuple[float | None, bool] | None:
        instrument, b_version, b_raw, b_derived, r_version, r_raw, r_derived = pair
        base_raw, base_derived = json.loads(b_raw), json.loads(b_derived)
        review_raw, review_derived = json.loads(r_raw), json.loads(r_derived)
        try:
            change: Change = self.registry.compare(
                Scores(instrument, b_version, base_raw, base_derived),
                Scores(instrument, r_version, review_raw, review_derived),
            )
        except MeasureError:
            return None  # different versions, or not a known instrument: not comparable
        before = _headline(self.registry, instrument, base_raw, base_derived)
        after = _headline(self.registry, instrument, review_raw, review_derived)
        delta = None if before is None or after is None else after - before
        return delta, change.improved


def _pair_columns() -> tuple[sa.FromClause, sa.FromClause, list[Any]]:
    base, review = MEA.alias("base"), MEA.alias("review")
    columns = [
        base.c.instrument,
        base.c.version,
        base.c.raw,
        base.c.derived,
        review.c.version,
        review.c.raw,
        review.c.derived,
    ]
    return base, review, columns


def _pairs_from(base: sa.FromClause, review: sa.FromClause) -> Any:
    return base.join(
        review,
        sa.and_(
            review.c.referral_id == base.c.referral_id,
            review.c.episode == base.c.episode,
            review.c.instrument == base.c.instrument,
            review.c.timepoint == "review",
        ),
    )


def _changes(v: View) -> dict[str, list[tuple[float | None, bool]]]:
    """Per instrument, each episode's (change, improved) from baseline to review; the
    database groups episodes with the same scores, each group compared once."""
    base, review, columns = _pair_columns()
    q = (
        sa.select(*columns, sa.func.count())
        .select_from(_pairs_from(base, review))
        .where(base.c.timepoint == "baseline", v.of_episode(base))
        .group_by(*columns)
    )
    compared = Compared(v.ctx.registry)
    out: dict[str, list[tuple[float | None, bool]]] = defaultdict(list)
    for *pair, n in sorted(tuple(r) for r in v.rows(q)):
        found = compared(cast(Pair, tuple(pair)))
        if found is not None:
            out[pair[0]].extend([found] * n)
    return out


def improved_by_episode(v: View) -> dict[tuple[str, int], list[str]]:
    """Per episode in the view, the instruments meaningfully improved at review."""
    base, review, columns = _pair_columns()
    q = (
        sa.select(base.c.referral_id, base.c.episode, *columns)
        .select_from(_pairs_from(base, review))
        .where(base.c.timepoint == "baseline", v.of_episode(base))
    )
    compared = Compared(v.ctx.registry)
    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    for referral_id, episode, *pair in sorted(tuple(r) for r in v.rows(q)):
        found = compared(cast(Pair, tuple(pair)))
        if found is not None and found[1]:
            out[referral_id, episode].append(pair[0])
    return out


def measures(v: View) -> Table:
    q = (
        sa.select(MEA.c.instrument, MEA.c.timepoint, sa.func.count())
        .where(v.of_episode(MEA))
        .group_by(MEA.c.instrument, MEA.c.timepoint)
    )
    have: dict[str, Counter[str]] = defaultdict(Counter)
    for instrument, timepoint, n in v.rows(q):
        have[instrument][timepoint] = n
    changes = _changes(v)
    rows = []
    for instrument in sorted(have):
        c, pairs = have[instrument], changes.get(instrument, [])
        deltas = [d for d, _ in pairs if d is not None]
        mean, low, high = stats.mean_ci(deltas)
        improved = sum(1 for _, i in pairs if i)
        p_low, p_high = stats.wilson(improved, len(pairs))
        rows.append(
            {
                "instrument": instrument,
                "baseline": c["baseline"],
                "review": c["review"],
                "followup": c["followup"],
                "pct_reviewed": stats.pct(c["review"], c["baseline"]),
                "pct_followed_up": stats.pct(c["followup"], c["baseline"]),
                "paired": len(pairs),
                "mean_change": stats.r(mean, 2),
                "mean_change_ci_low": stats.r(low, 2),
                "mean_change_ci_high": stats.r(high, 2),
                "improved": improved,
                "pct_improved": stats.pct(improved, len(pairs)),
                "pct_improved_ci_low": None if p_low is None else round(100 * p_low, 1),
                "pct_improved_ci_high": None if p_high is None else round(100 * p_high, 1),
            }
        )
    return Table(
        "measures",
        TITLES["measures"],
        [
            "instrument",
            "baseline",
            "review",
            "followup",
            "pct_reviewed",
            "pct_followed_up",
            "paired",
            "mean_change",
            "mean_change_ci_low",
            "mean_change_ci_high",
            "improved",
            "pct_improved",
            "pct_improved_ci_low",
            "pct_improved_ci_high",
        ],
        rows,
        counts=("baseline", "review", "followup", "paired", "improved"),
        derived={
            "pct_reviewed": "review",
            "pct_followed_up": "followup",
            "mean_change": "paired",
            "mean_change_ci_low": "paired",
            "mean_change_ci_high": "paired",
            "pct_improved": "improved",
            "pct_improved_ci_low": "improved",
            "pct_improved_ci_high": "improved",
        },
        group_by=("instrument",),
    )


def measure_change_distribution(v: View) -> Table:
    rows: list[dict[str, Any]] = []
    for instrument, pairs in sorted(_changes(v).items()):
        counts = Counter(d for d, _ in pairs if d is not None)
        rows.extend(
            {"instrument": instrument, "change": change, "episodes": n}
            for change, n in sorted(counts.items())
        )
    return Table(
        "measure_change_distribution",
        TITLES["measure_change_distribution"],
        ["instrument", "change", "episodes"],
        rows,
        counts=("episodes",),
        group_by=("instrument",),
    )
