"""The statistics the KPIs use, defined once (docs/reporting.md says the same in words).

- percentiles by the nearest-rank method on the sorted values (the p-th percentile is the
  value at rank ceil(p/100 * n)), so the median of 1, 2, 3, 4 is 2: every reported time is
  one somebody actually waited;
- a mean's 95% confidence interval with Student's t (n - 1 degrees of freedom);
- a proportion's 95% confidence interval by Wilson's score method, which stays inside
  0..1 and behaves for small counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, stdev

Z95 = NormalDist().inv_cdf(0.975)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def t_quantile(df: int) -> float:
    """The 97.5% point of Student's t with ``df`` degrees of freedom (Cornish-Fisher
    expansion about the normal; within 0.002 of tables for df >= 2, exact enough here)."""
    if df == 1:
        return 12.706
    z = Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def mean_ci(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) with a 95% t interval; no interval for fewer than two values."""
    if not values:
        return None, None, None
    mean = fmean(values)
    if len(values) < 2:
        return mean, None, None
    half = t_quantile(len(values) - 1) * stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval for successes out of n, as fractions."""
    if n == 0:
        return None, None
    p = successes / n
    z2 = Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def r(value: float | None, places: int = 1) -> float | None:
    return None if value is None else round(value, places)


def mean_ci_sums(
    n: int, total: int, squares: int
) -> tuple[float | None, float | None, float | None]:
    """``mean_ci`` from a count, the sum and the sum of squares of whole numbers (what a
    database aggregates), exactly: the variance from integers, not from rounded floats."""
    if n == 0:
        return None, None, None
    mean = total / n
    if n < 2:
        return mean, None, None
    variance = max(0, n * squares - total * total) / (n * (n - 1))
    half = t_quantile(n - 1) * math.sqrt(variance) / math.sqrt(n)
    return mean, mean - half, mean + half
