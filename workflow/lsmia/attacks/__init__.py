"""Plug & Play Attack (PPA): three cached stages over a pluggable generator prior.

Importing a prior's module registers it (``generators.register_prior``); the priors are imported
here, so ``load_generator`` knows every kind.
"""

from lsmia.attacks.generators import PRIORS, Generator, load_generator, register_prior
from lsmia.attacks.optimise import optimise_stage
from lsmia.attacks.poincare import poincare_loss
from lsmia.attacks.procedural import ProceduralFacePrior
from lsmia.attacks.sample import sample_stage
from lsmia.attacks.select import save_grid, select_stage
from lsmia.attacks.stylegan2 import StyleGAN2Prior
from lsmia.resumable import Preempted

__all__ = [
    "PRIORS", "Generator", "ProceduralFacePrior", "StyleGAN2Prior", "load_generator",
    "register_prior", "poincare_loss", "sample_stage", "optimise_stage", "select_stage",
    "save_grid", "Preempted",
]
