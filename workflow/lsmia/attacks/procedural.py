"""The demo's generator prior: the procedural face renderer of ``lsmia.data.synthetic``."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from lsmia.attacks.generators import register_prior
from lsmia.attacks.latents import broadcast_w, draw_z, truncate


class ProceduralFacePrior:
    """The demo's public face renderer (``lsmia.data.synthetic.FaceModel``) as a generator prior.

    w = concat(identity code, nuisance code), one style layer, mapping = identity, mean w = 0, so
    truncation gives ψ·z. The attacker knows only this N(0, I) distribution, never the private
    identity codes of the target's training set. Its z is drawn as StyleGAN2's is (``draw_z``), so
    a seed means the same draw for both priors.
    """

    num_ws = 1

    def __init__(self, image_size: int, device: torch.device):
        from lsmia.data.synthetic import FaceModel

        if int(image_size) < 8:
            raise ValueError(f"procedural prior: image_size must be at least 8, got {image_size}")
        self.model = FaceModel()
        self.image_size = int(image_size)
        self.device = torch.device(device)
        self.identity_dim = self.model.identity_dim
        self.w_dim = self.model.identity_dim + self.model.nuisance_dim

    def sample_w(
        self, n: int, seed: int, psi: float = 1.0, cutoff: int | None = None, draw: str = "numpy"
    ) -> torch.Tensor:
        z = draw_z(n, self.w_dim, seed, draw)[:, None]
        return truncate(z, torch.zeros(self.w_dim), psi, cutoff).to(self.device)

    def synthesise(self, w: torch.Tensor) -> torch.Tensor:
        w = broadcast_w(w, self.num_ws)[:, 0]
        identity, nuisance = w[:, : self.identity_dim], w[:, self.identity_dim :]
        return self.model.render(identity, nuisance, self.image_size)


@register_prior("procedural", required=("image_size",))
def procedural_prior(spec: Mapping, device: torch.device) -> ProceduralFacePrior:
    """``{kind: procedural, image_size}``."""
    return ProceduralFacePrior(int(spec["image_size"]), device)
