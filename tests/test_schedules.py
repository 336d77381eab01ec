"""α schedules: the paper's warm-up, its generalisation, none and linear; recipe checking."""

import pytest

from lsmia.training import alpha_at, check_recipe

ALPHA = -0.05


@pytest.mark.parametrize("epoch, expected", [
    (0, 0.0), (49, 0.0), (50, ALPHA / 50), (74, ALPHA * 25 / 50), (75, ALPHA), (99, ALPHA),
])
def test_paper_schedule_for_100_epochs(epoch, expected):
    assert alpha_at("paper", ALPHA, epoch, 100) == pytest.approx(expected)
    assert alpha_at("paper", ALPHA, epoch, 100, milestones=[75, 90]) == pytest.approx(expected)


def test_paper_schedule_generalises_with_and_without_milestones():
    # 16 epochs, LR drop at 12: zero for 0–7, ramp α·(e − 7)/8 for 8–11, α from 12
    values = [alpha_at("paper", -0.1, epoch, 16, milestones=[12, 14]) for epoch in range(16)]
    assert values[:8] == [0.0] * 8
    assert values[8:12] == pytest.approx([-0.1 * k / 8 for k in (1, 2, 3, 4)])
    assert values[12:] == [-0.1] * 4
    # without milestones the jump is at round(0.75 · 10) = 8 (7.5 rounds to the even 8)
    values = [alpha_at("paper", -0.1, epoch, 10) for epoch in range(10)]
    assert values == pytest.approx([0, 0, 0, 0, 0, -0.02, -0.04, -0.06, -0.1, -0.1])


def test_none_and_linear_schedules():
    assert [alpha_at("none", 0.1, epoch, 5) for epoch in range(5)] == [0.1] * 5
    assert [alpha_at("linear", 0.1, epoch, 5) for epoch in range(5)] == pytest.approx(
        [0.0, 0.025, 0.05, 0.075, 0.1])
    assert alpha_at("linear", 0.1, 0, 1) == 0.1


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match=r"'cosine'.*\['paper', 'none', 'linear'\]"):
        alpha_at("cosine", 0.1, 0, 10)
    with pytest.raises(ValueError, match="epoch: expected an integer in 0..9"):
        alpha_at("none", 0.1, 10, 10)
    with pytest.raises(ValueError, match="num_epochs"):
        alpha_at("none", 0.1, 0, 0)


def _recipe(**changes):
    recipe = {"alpha": 0.1, "epochs": 3, "batch_size": 8, "optimizer": {"name": "adam", "lr": 1e-3},
              "lr_schedule": {"name": "none"}, "augment": {}}
    recipe.update(changes)
    return recipe


def test_check_recipe_fills_defaults():
    checked = check_recipe(_recipe())
    assert checked["alpha_schedule"] == "none" and checked["eval_batch_size"] == 8
    assert checked["optimizer"]["betas"] == [0.9, 0.999]
    assert checked["augment"]["flip"] is False and checked["seed"] == 42


@pytest.mark.parametrize("changes, message", [
    ({"alpha": 1.5}, "recipe.alpha"),
    ({"alpha_schedule": "cosine"}, "recipe.alpha_schedule"),
    ({"epochs": -1}, "recipe.epochs"),
    ({"optimizer": {"name": "rmsprop", "lr": 1e-3}}, "recipe.optimizer.name"),
    ({"optimizer": {"name": "adam"}}, r"recipe.optimizer: missing keys \['lr'\]"),
    ({"lr_schedule": {"name": "none", "steps": 3}}, r"unknown keys \['steps'\]"),
    ({"learning_rate": 0.1}, r"unknown keys \['learning_rate'\]"),
])
def test_check_recipe_names_bad_keys(changes, message):
    with pytest.raises(ValueError, match=message):
        check_recipe(_recipe(**changes))
