"""Training: the (negative) label-smoothing loss, α schedules, calibration and the trainer."""

from .calibration import expected_calibration_error
from .losses import label_smoothing_loss
from .recipe import build_model, check_recipe
from .schedules import SCHEDULES, alpha_at
from .trainer import Preempted, clear_checkpoint, evaluate, train

__all__ = [
    "label_smoothing_loss",
    "alpha_at",
    "SCHEDULES",
    "expected_calibration_error",
    "check_recipe",
    "build_model",
    "train",
    "evaluate",
    "Preempted",
    "clear_checkpoint",
]
