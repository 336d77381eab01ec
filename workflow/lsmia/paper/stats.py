"""Paired statistics of the claims check: a percentile bootstrap over classes within seeds.

Every attack metric the claims compare is a mean over attacked classes, and every recipe is
attacked on the same classes with the same seeds. A claim therefore compares recipes *paired* on
(seed, class): ``values[s, c, k]`` is quantity ``k`` (a recipe, or a stage combination) for seed
``s`` and class ``c``. The effect is a statistic of the per-quantity means over seeds and classes
(equal weight per seed, then per class); its 95 % interval comes from resampling the classes with
replacement independently within each seed (the seeds are kept: they are few, and each is a full
replicate of training and attack). With one seed the interval covers the variation over classes
only, not over training runs.

A verdict is read off the interval, never off two numbers: ``holds`` when it lies strictly on the
claimed side of zero, ``reversed`` when it lies strictly on the other side, else ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

HOLDS, REVERSED, INCONCLUSIVE = "holds", "reversed", "inconclusive"
LEVEL = 0.95
RESAMPLES = 4000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """An effect, its confidence interval, and what it rests on."""

    effect: float
    low: float
    high: float
    n_seeds: int
    n_classes: int

    def verdict(self, claimed: str) -> str:
        """``claimed`` is ``">"`` (the effect is claimed positive) or ``"<"`` (negative)."""
        if claimed not in (">", "<"):
            raise ValueError(f"claimed: expected '>' or '<', got {claimed!r}")
        if self.low > 0:
            return HOLDS if claimed == ">" else REVERSED
        if self.high < 0:
            return HOLDS if claimed == "<" else REVERSED
        return INCONCLUSIVE

    def scaled(self, factor: float) -> Interval:
        return Interval(self.effect * factor, self.low * factor, self.high * factor,
                        self.n_seeds, self.n_classes)


def paired_bootstrap(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Effect and percentile interval of ``statistic`` over ``values`` (``S×C×K``: seeds, classes,
    quantities). ``statistic`` maps an array ``…×K`` of per-quantity means to ``…`` (vectorised
    over the resamples). Deterministic for a given ``seed``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or 0 in values.shape:
        raise ValueError(f"values: expected a non-empty seeds×classes×quantities array, got shape "
                         f"{values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values: contain NaN or infinite entries")
    seeds, classes, _ = values.shape
    effect = float(statistic(values.mean(axis=(0, 1))))
    rng = np.random.default_rng(seed)
    means = np.zeros((resamples, values.shape[2]))
    for per_seed in values:  # how often each class is drawn, per resample: a multinomial
        counts = rng.multinomial(classes, np.full(classes, 1 / classes), size=resamples)
        means += counts @ per_seed / (classes * seeds)
    distribution = statistic(means)
    tail = (1 - level) / 2
    low, high = np.quantile(distribution, [tail, 1 - tail])
    return Interval(effect, float(low), float(high), seeds, classes)


def difference(values: np.ndarray, **kwargs) -> Interval:
    """Paired difference of quantity 0 minus quantity 1 (``values`` ``S×C×2``)."""
    return paired_bootstrap(values, lambda means: means[..., 0] - means[..., 1], **kwargs)


def combined_verdict(verdicts: Sequence[str]) -> str:
    """A claim made of several comparisons that must all hold (``A > B > C``): ``holds`` when every
    one holds, ``reversed`` when any is reversed, else ``inconclusive``."""
    if not verdicts:
        raise ValueError("combined_verdict: no comparisons")
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == REVERSED for v in verdicts):
        return REVERSED
    return INCONCLUSIVE
