"""Statistics of the benchmark report: paired differences with t confidence intervals and p-values, Holm's
correction over a report's comparisons, learning-curve summaries and the converged fine-tuning budget.

Every method is run on the same labeled subset, initialisation seed and atlases per seed, so methods are compared
through per-seed differences (a paired design): the spread of which images happen to be labeled, which is larger
than the effects measured here, cancels out of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["paired_difference", "holm", "curve_area", "steps_to_reach", "curve_value", "mean_curve",
           "converged_step"]


def paired_difference(values: Sequence[float], reference: Sequence[float], level: float = 0.95) -> dict:
    """Mean of ``values[i] - reference[i]`` with its two-sided ``level`` t confidence interval and the two-sided p-value
    of the same paired t test (mean difference 0).

    Returns:
        ``{"mean", "low", "high", "n", "p", "diffs", "excludes_zero"}``; with one pair the interval is unbounded
        (``low = -inf``, ``high = inf``) and ``p`` is NaN; with identical differences ``p`` is 0 (or 1 if they are 0).
    """
    from scipy.stats import t

    if len(values) != len(reference) or not values:
        raise ValueError(f"paired_difference needs equally many values and references, got {len(values)} and "
                         f"{len(reference)}")
    diffs = [float(v) - float(r) for v, r in zip(values, reference)]
    n = len(diffs)
    mean = sum(diffs) / n
    if n == 1:
        low, high, p = -math.inf, math.inf, math.nan
    else:
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) / math.sqrt(n)
        half = float(t.ppf(0.5 + level / 2, n - 1)) * se
        low, high = mean - half, mean + half
        p = 2 * float(t.sf(abs(mean) / se, n - 1)) if se > 0 else float(mean == 0)
    return {"mean": mean, "low": low, "high": high, "n": n, "p": p, "diffs": diffs,
            "excludes_zero": bool(low > 0 or high < 0)}


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down correction: which hypotheses are rejected with family-wise error ``alpha``.

    The ``i``-th smallest of ``m`` p-values is compared with ``alpha / (m - i)`` (``i`` from 0) until the first that is
    larger; it and every larger one are kept. NaN p-values (a single pair, no test) are kept and not counted in ``m``.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p == p)
    rejected = [False] * len(pvalues)
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (len(tested) - rank):
            break
        rejected[i] = True
    return rejected


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


def curve_value(curve: Sequence[Sequence[float]], step: float) -> float:
    """The curve's value at ``step``, linearly interpolated between measured steps (the first / last measured value
    before / after them)."""
    pts = sorted((float(s), float(v)) for s, v in curve)
    if step <= pts[0][0]:
        return pts[0][1]
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if step <= s1:
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
    return pts[-1][1]


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """Pointwise mean of learning curves measured at the same steps (runs of one label fraction)."""
    steps = [[float(s) for s, _ in c] for c in curves]
    if not curves or any(s != steps[0] for s in steps):
        raise ValueError(f"mean_curve needs curves measured at the same steps, got steps {steps}")
    return [[s, sum(float(c[i][1]) for c in curves) / len(curves)] for i, s in enumerate(steps[0])]


def converged_step(curve: Sequence[Sequence[float]], rise: float = 0.01, window: float = 0.25) -> int | None:
    """The smallest measured step ``B`` from which on the curve has stopped rising: for ``B`` and every later measured
    step ``s``, ``value(s) - value((1 - window) * s) < rise`` (the rise over the last ``window`` of ``s`` steps,
    :func:`curve_value`). ``None`` when the last step still rises that much (not converged within the curve).

    Every later step is checked, not only ``B``, so a plateau followed by another climb is not taken for convergence.
    ``rise`` is in the curve's unit (Dice in [0, 1]: 0.01 = one Dice point).
    """
    pts = sorted((float(s), float(v)) for s, v in curve)
    flat = [curve_value(pts, s) - curve_value(pts, (1 - window) * s) < rise for s, _ in pts]
    if not flat or not flat[-1]:
        return None
    first = len(flat) - 1
    while first > 0 and flat[first - 1]:
        first -= 1
    return int(pts[first][0])
