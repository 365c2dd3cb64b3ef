"""Statistics of the benchmark report: paired differences with t confidence intervals, learning-curve summaries.

Every method is run on the same labeled subset, initialisation seed and atlases per seed, so methods are compared
through per-seed differences (a paired design): the spread of which images happen to be labeled, which is larger
than the effects measured here, cancels out of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["paired_difference", "curve_area", "steps_to_reach"]


def paired_difference(values: Sequence[float], reference: Sequence[float], level: float = 0.95) -> dict:
    """Mean of ``values[i] - reference[i]`` with its two-sided ``level`` t confidence interval.

    Returns:
        ``{"mean", "low", "high", "n", "diffs", "excludes_zero"}``; with one pair the interval is unbounded
        (``low = -inf``, ``high = inf``).
    """
    from scipy.stats import t

    if len(values) != len(reference) or not values:
        raise ValueError(f"paired_difference needs equally many values and references, got {len(values)} and "
                         f"{len(reference)}")
    diffs = [float(v) - float(r) for v, r in zip(values, reference)]
    n = len(diffs)
    mean = sum(diffs) / n
    if n == 1:
        low, high = -math.inf, math.inf
    else:
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
        half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "diffs": diffs,
            "excludes_zero": bool(low > 0 or high < 0)}


def curve_area(curve: Sequence[Sequence[float]]) -> float:
    """Normalised area under a learning curve ``[(step, value), ...]``: the trapezoid area over the measured
    steps divided by their span, i.e. the curve's average value (in the value's unit). One point: its value."""
    pts = sorted((float(s), float(v)) for s, v in curve)
    if not pts:
        return math.nan
    if len(pts) == 1 or pts[-1][0] == pts[0][0]:
        return pts[-1][1]
    area = sum((s1 - s0) * (v0 + v1) / 2 for (s0, v0), (s1, v1) in zip(pts, pts[1:]))
    return area / (pts[-1][0] - pts[0][0])


def steps_to_reach(curve: Sequence[Sequence[float]], target: float) -> int | None:
    """First measured step whose value is at least ``target``; ``None`` if the curve never gets there."""
    for step, value in sorted((float(s), float(v)) for s, v in curve):
        if value >= target:
            return int(step)
    return None
