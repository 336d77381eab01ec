"""lsmia.paper.stats: the paired bootstrap and its verdicts on constructed per-class data."""

import numpy as np
import pytest

from lsmia.paper import stats
from lsmia.paper.stats import HOLDS, INCONCLUSIVE, REVERSED, difference


def pairs(effect, seeds=3, classes=16, spread=1.0, noise=0.1, seed=0):
    """Two quantities per (seed, class): a shared class level plus noise, B = A + effect."""
    rng = np.random.default_rng(seed)
    level = rng.normal(0, spread, size=(seeds, classes))
    a = level + rng.normal(0, noise, size=(seeds, classes))
    b = level + rng.normal(0, noise, size=(seeds, classes)) - effect
    return np.stack([a, b], axis=-1)


def test_clear_effect_holds_reversed_effect_is_reversed():
    interval = difference(pairs(0.5))
    assert interval.effect == pytest.approx(0.5, abs=0.05)
    assert 0 < interval.low < interval.effect < interval.high
    assert interval.verdict(">") == HOLDS and interval.verdict("<") == REVERSED
    assert difference(pairs(-0.5)).verdict(">") == REVERSED


def test_no_effect_is_inconclusive_and_a_tie_decides_nothing():
    assert difference(pairs(0.0)).verdict(">") == INCONCLUSIVE
    tie = np.ones((2, 8, 2))
    interval = difference(tie)
    assert (interval.effect, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert interval.verdict(">") == INCONCLUSIVE and interval.verdict("<") == INCONCLUSIVE


def test_pairing_removes_the_shared_class_level():
    """A small effect under a large class spread: paired it is clear, the level would hide it."""
    values = pairs(0.2, spread=5.0, noise=0.05)
    assert difference(values).verdict(">") == HOLDS
    shuffled = values.copy()
    shuffled[..., 1] = np.random.default_rng(1).permutation(values[..., 1], axis=1)
    assert difference(shuffled).verdict(">") == INCONCLUSIVE


def test_interval_is_seeded_narrows_with_classes_and_records_its_basis():
    values = pairs(0.1, noise=0.5)
    assert difference(values) == difference(values)
    assert difference(values, seed=1) != difference(values)
    wide = difference(pairs(0.1, classes=8, noise=0.5))
    narrow = difference(pairs(0.1, classes=512, noise=0.5))
    assert narrow.high - narrow.low < (wide.high - wide.low) / 4
    assert (narrow.n_seeds, narrow.n_classes) == (3, 512)


def test_one_seed_bootstraps_classes_only():
    interval = difference(pairs(0.5, seeds=1))
    assert interval.n_seeds == 1 and interval.verdict(">") == HOLDS


def test_nonlinear_statistic_and_scaling():
    values = np.stack([np.zeros((2, 10)), np.full((2, 10), 0.3), np.full((2, 10), -0.1)], -1)
    interval = stats.paired_bootstrap(values, lambda m: abs(m[..., 1] - m[..., 0])
                                - abs(m[..., 2] - m[..., 0]))
    assert interval.effect == pytest.approx(0.2)
    scaled = interval.scaled(100)
    assert (scaled.effect, scaled.low, scaled.high) == pytest.approx((20, 20, 20))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="seeds×classes×quantities"):
        difference(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        difference(np.full((1, 3, 2), np.nan))
    with pytest.raises(ValueError, match="claimed"):
        stats.Interval(1, 0.5, 1.5, 1, 3).verdict(">=")


@pytest.mark.parametrize(
    "verdicts, expected",
    [
        ((HOLDS, HOLDS), HOLDS),
        ((HOLDS, INCONCLUSIVE), INCONCLUSIVE),
        ((HOLDS, REVERSED), REVERSED),
        ((INCONCLUSIVE, REVERSED), REVERSED),
        ((INCONCLUSIVE, INCONCLUSIVE), INCONCLUSIVE),
    ],
)
def test_an_ordering_holds_only_when_every_pair_holds(verdicts, expected):
    assert stats.combined_verdict(verdicts) == expected
