"""MID: mutual-information regularisation through a variational information bottleneck.

Wang, Zhang & Jia, "Improving robustness to model inversion attacks via mutual information
regularization", AAAI 2021. A linear encoder maps the base model's penultimate features to the mean
and standard deviation of a K-dimensional Gaussian code; the classifier reads a sampled code while
training and the mean code otherwise. The training loss adds β·KL(N(μ, σ²) ‖ N(0, I)).

As in the reference implementation, σ = softplus(s − 5) for the encoder's raw output s, and
K defaults to half the penultimate width. Unlike it (it samples at test time too), evaluation and
attacks use the mean code, so the eval-mode model is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .registry import check_number, register_defence

STD_OFFSET = 5.0  # σ = softplus(s − 5): codes start almost deterministic, as in the reference code
MIN_STD = 1e-8  # keeps log σ finite when softplus underflows


def kl_to_standard_normal(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` summed over code dimensions, averaged over the batch."""
    if mu.shape != std.shape or mu.dim() != 2:
        raise ValueError(
            f"expected μ and σ of the same N×K shape, got {tuple(mu.shape)} and {tuple(std.shape)}"
        )
    mu, std = mu.float(), std.float().clamp_min(MIN_STD)
    per_dimension = 0.5 * (mu.square() + std.square() - 1.0) - std.log()
    return per_dimension.sum(dim=1).mean()


def linear_classifier(model: nn.Module) -> nn.Linear:
    """The base model's final linear layer (``get_classifier()``), checked."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(classifier, nn.Linear):
        raise TypeError(
            f"a defence needs a base model whose get_classifier() is an nn.Linear, "
            f"got {type(classifier).__name__} from {type(model).__name__}"
        )
    return classifier


def mid_settings(cfg: Mapping) -> dict:
    """``beta`` ≥ 0 and ``bottleneck_dim`` (a positive integer, or ``None``: half the width)."""
    dim = cfg.get("bottleneck_dim")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(
            f"defence 'mid': key 'bottleneck_dim' must be a positive integer, got {dim!r}"
        )
    return {"beta": check_number("mid", "beta", cfg["beta"]), "bottleneck_dim": dim}


@register_defence("mid", required={"beta"}, optional={"bottleneck_dim"}, settings=mid_settings)
class MIDModel(nn.Module):
    """A base model whose classifier reads a variational bottleneck code of its pre-logits."""

    def __init__(self, base: nn.Module, beta: float, bottleneck_dim: int | None = None):
        super().__init__()
        head = linear_classifier(base)
        in_features, num_classes = head.in_features, head.out_features
        self.beta = float(beta)
        self.bottleneck_dim = int(bottleneck_dim) if bottleneck_dim else max(1, in_features // 2)
        self.num_classes = num_classes
        if hasattr(base, "reset_classifier"):
            base.reset_classifier(0)  # the base's own head would be dead weight
        self.base = base
        self.encoder = nn.Linear(in_features, 2 * self.bottleneck_dim)
        self.classifier = nn.Linear(self.bottleneck_dim, num_classes)

    def encode(self, pre_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the code, each ``N×K``."""
        statistics = self.encoder(pre_logits)
        mu, raw_std = statistics.split(self.bottleneck_dim, dim=1)
        return mu, F.softplus(raw_std - STD_OFFSET)

    def _code(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, std = self.encode(self.base.forward_head(features, pre_logits=True))
        code = mu + std * torch.randn_like(std) if self.training else mu
        return code, mu, std

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.forward_features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits; with ``pre_logits``, the code the classifier reads (sampled when training)."""
        code = self._code(features)[0]
        return code if pre_logits else self.classifier(code)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_regulariser(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits from a sampled code (in training mode) and ``β · KL``."""
        code, mu, std = self._code(self.forward_features(x))
        return self.classifier(code), self.beta * kl_to_standard_normal(mu, std)
