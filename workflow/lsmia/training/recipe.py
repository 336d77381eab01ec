"""A resolved training recipe: checked, defaults filled, turned into optimiser and LR schedule.

A recipe is the ``training`` section of the config merged with one ``recipes`` entry
(``lsmia.config.resolve_recipe``). Keys: alpha, alpha_schedule, epochs, batch_size, eval_batch_size,
optimizer {name: adam|sgd, lr, betas, momentum, weight_decay, nesterov}, lr_schedule {name:
multistep|cosine|none, milestones, gamma, min_lr}, augment {resize, crop_scale, crop_ratio, jitter,
flip}, training_set_size, seed, defence, init (used by the caller, not by the trainer), precision
(fp32 | bf16), aux_loss_weight (Inception-v3's auxiliary head).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from lsmia.runtime import PRECISIONS

from .schedules import SCHEDULES

REQUIRED = ("alpha", "epochs", "batch_size", "optimizer", "lr_schedule", "augment")
DEFAULTS = {"alpha_schedule": "none", "eval_batch_size": None, "training_set_size": None,
            "seed": 42, "defence": None, "init": None, "precision": "fp32",
            "aux_loss_weight": 1.0}
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("multistep", "cosine", "none")
OPTIMIZER_DEFAULTS = {"betas": [0.9, 0.999], "momentum": 0.0, "weight_decay": 0.0,
                      "nesterov": False}
LR_DEFAULTS = {"milestones": [], "gamma": 0.1, "min_lr": 0.0}
AUGMENT_DEFAULTS = {"resize": None, "crop_scale": [1.0, 1.0], "crop_ratio": [1.0, 1.0],
                    "jitter": None, "flip": False}


def check_recipe(recipe: Mapping) -> dict:
    """A copy of ``recipe`` with defaults filled; ``ValueError`` naming any bad key or value."""
    checked = _with_defaults(recipe, "recipe", DEFAULTS, REQUIRED)
    checked["optimizer"] = _section(recipe, "optimizer", OPTIMIZER_DEFAULTS, ("name", "lr"))
    checked["lr_schedule"] = _section(recipe, "lr_schedule", LR_DEFAULTS, ("name",))
    checked["augment"] = _section(recipe, "augment", AUGMENT_DEFAULTS, ())
    if not isinstance(checked["alpha"], (int, float)) or not checked["alpha"] <= 1:
        raise ValueError(f"recipe.alpha: expected a number ≤ 1, got {checked['alpha']!r}")
    if checked["alpha_schedule"] not in SCHEDULES:
        raise ValueError(f"recipe.alpha_schedule: {checked['alpha_schedule']!r} is not one of "
                         f"{list(SCHEDULES)}")
    _integer(checked, "epochs", minimum=0)
    _integer(checked, "batch_size", minimum=1)
    if checked["eval_batch_size"] is None:
        checked["eval_batch_size"] = checked["batch_size"]
    _integer(checked, "eval_batch_size", minimum=1)
    _integer(checked, "seed", minimum=None)
    weight = checked["aux_loss_weight"]
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise ValueError(f"recipe.aux_loss_weight: expected a number ≥ 0, got {weight!r}")
    if checked["training_set_size"] is not None:
        _integer(checked, "training_set_size", minimum=1)
    if checked["precision"] not in PRECISIONS:
        raise ValueError(f"recipe.precision: {checked['precision']!r} is not one of "
                         f"{list(PRECISIONS)}")
    if checked["optimizer"]["name"] not in OPTIMIZERS:
        raise ValueError(f"recipe.optimizer.name: {checked['optimizer']['name']!r} is not one of "
                         f"{list(OPTIMIZERS)}")
    if checked["lr_schedule"]["name"] not in LR_SCHEDULES:
        raise ValueError(f"recipe.lr_schedule.name: {checked['lr_schedule']['name']!r} is not one "
                         f"of {list(LR_SCHEDULES)}")
    return checked


def _section(recipe: Mapping, key: str, defaults: dict, required: tuple[str, ...]) -> dict:
    return _with_defaults(recipe[key], f"recipe.{key}", defaults, required)


def _with_defaults(value, where: str, defaults: dict, required: tuple[str, ...]) -> dict:
    """A copy of the mapping ``value`` with ``defaults`` filled; errors name ``where``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    missing = [name for name in required if name not in value]
    unknown = sorted(set(value) - set(defaults) - set(required))
    if missing or unknown:
        raise ValueError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return {**copy.deepcopy(defaults), **copy.deepcopy(dict(value))}


def _integer(recipe: dict, key: str, minimum: int | None) -> None:
    value = recipe[key]
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None
                                                                  and value < minimum):
        bound = f" ≥ {minimum}" if minimum is not None else ""
        raise ValueError(f"recipe.{key}: expected an integer{bound}, got {value!r}")


def build_optimizer(parameters, optimizer: Mapping) -> torch.optim.Optimizer:
    """Adam (``lr``, ``betas``, ``weight_decay``) or SGD (``lr``, ``momentum``, ``weight_decay``,
    ``nesterov``) from a checked ``recipe["optimizer"]``."""
    if optimizer["name"] == "adam":
        return torch.optim.Adam(parameters, lr=optimizer["lr"], betas=tuple(optimizer["betas"]),
                                weight_decay=optimizer["weight_decay"])
    return torch.optim.SGD(parameters, lr=optimizer["lr"], momentum=optimizer["momentum"],
                           weight_decay=optimizer["weight_decay"], nesterov=optimizer["nesterov"])


def build_lr_scheduler(optimizer: torch.optim.Optimizer, lr_schedule: Mapping,
                       epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: MultiStepLR, cosine annealing to ``min_lr`` over ``epochs``, or a
    constant learning rate."""
    if lr_schedule["name"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(lr_schedule["milestones"]),
                                                    gamma=lr_schedule["gamma"])
    if lr_schedule["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                          eta_min=lr_schedule["min_lr"])
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def lr_milestones(recipe: Mapping) -> list[int] | None:
    """The learning-rate milestones the ``paper`` α schedule jumps at (multistep schedules only)."""
    schedule = recipe["lr_schedule"]
    if schedule["name"] == "multistep" and schedule["milestones"]:
        return sorted(int(epoch) for epoch in schedule["milestones"])
    return None


def build_model(arch: str, num_classes: int, recipe: Mapping, *, pretrained=None,
                arch_kwargs: Mapping | None = None) -> torch.nn.Module:
    """The model a recipe trains: seeded initialisation (``recipe["seed"]``), optional pre-trained
    weights, wrapped by the recipe's defence (if any) exactly as ``load_model`` rebuilds it."""
    from lsmia.defenses import wrap_defence
    from lsmia.models import create_model
    from lsmia.runtime import seed_everything

    seed_everything(recipe.get("seed", DEFAULTS["seed"]))
    model = create_model(arch, num_classes, pretrained=pretrained, **dict(arch_kwargs or {}))
    return wrap_defence(model, recipe.get("defence"))
