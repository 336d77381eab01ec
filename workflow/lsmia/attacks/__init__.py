"""Plug & Play Attack (PPA): three cached stages over a pluggable generator prior."""

from lsmia.attacks.generators import Generator, ProceduralFacePrior, load_generator
from lsmia.attacks.optimise import optimise_stage
from lsmia.attacks.poincare import poincare_loss
from lsmia.attacks.sample import sample_stage
from lsmia.attacks.select import save_grid, select_stage
from lsmia.attacks.stylegan2 import StyleGAN2Prior
from lsmia.resumable import Preempted

__all__ = [
    "Generator", "ProceduralFacePrior", "StyleGAN2Prior", "load_generator", "poincare_loss",
    "sample_stage", "optimise_stage", "select_stage", "save_grid", "Preempted",
]
