"""BiDO-HSIC: bilateral dependency optimisation.

Peng et al., "Bilateral dependency optimization: defending against model-inversion attacks",
KDD 2022. For hidden representations Z_l the training loss adds
``Σ_l λx · nHSIC(X, Z_l) − λy · nHSIC(Y, Z_l)``: it weakens the dependence of each layer on the
input X and strengthens it on the one-hot label Y. As in the reference code, nHSIC is the
normalised estimator, X and Z_l use a Gaussian kernel with per-dimension width σ = 5, and Y uses a
linear kernel (``label_kernel: gaussian`` uses the Gaussian one with the same σ).

The layers are module names of the base model (hooked for the regularised forward only). By
default they are found on the first training batch: the modules at depth 1 and 2 that have
children of their own and produce 4-D outputs, where a top-level ``nn.Sequential`` of stages
(children at several resolutions) gives way to its children, keeping for each spatial
resolution the module that finishes last — the end of every stage (timm ResNets/ResNeXts:
``layer1``…``layer4``; timm Inception-v3: ``Conv2d_1a_3x3``…``Mixed_5d``, ``Mixed_6e``,
``Mixed_7c``; lsmia's tiny models: ``stages.0``, ``stages.1``, …). ``.layers`` records the choice.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .hsic import gaussian_kernel, linear_kernel, normalised_hsic
from .mid import linear_classifier
from .registry import check_number, register_defence

LABEL_KERNELS = ("linear", "gaussian")


def candidate_layers(model: nn.Module) -> list[str]:
    """Modules at depth 1 or 2 that contain other modules (stages and blocks, not single ops)."""
    return [
        name
        for name, module in model.named_modules()
        if name and name.count(".") <= 1 and next(module.children(), None) is not None
    ]


def stage_ends(outputs: list[tuple[str, torch.Tensor]], sequential: set[str]) -> list[str]:
    """From ``(name, output)`` in production order, the end of every stage.

    Only 4-D outputs count. A top-level ``nn.Sequential`` (names in ``sequential``) whose children
    work at several resolutions is a container of stages (``stages``, ``features``) and gives way
    to its children; any other top-level module hides its children. Of the rest, the last output
    at each spatial resolution is kept.
    """
    resolutions: dict[str, tuple[int, int]] = {
        name: tuple(output.shape[-2:])
        for name, output in outputs
        if isinstance(output, torch.Tensor) and output.dim() == 4
    }
    child_resolutions: dict[str, set] = {}
    for name, resolution in resolutions.items():
        if "." in name:
            child_resolutions.setdefault(name.split(".")[0], set()).add(resolution)

    def kept(name: str) -> bool:
        parent = name.split(".")[0]
        is_container = parent in sequential and len(child_resolutions.get(parent, ())) > 1
        return is_container if "." in name else not is_container

    last_per_resolution: dict[tuple[int, int], str] = {}
    for name, _ in outputs:
        if name in resolutions and kept(name):
            last_per_resolution.pop(resolutions[name], None)  # re-insert: keep production order
            last_per_resolution[resolutions[name]] = name
    return list(last_per_resolution.values())


def bido_settings(cfg: Mapping) -> dict:
    """``lambda_x``, ``lambda_y`` ≥ 0, ``sigma`` > 0 (5), ``layers`` (a non-empty list of module
    names, or ``None``: found on the first batch) and ``label_kernel`` (``linear``)."""
    layers = cfg.get("layers")
    if layers is not None and (
        isinstance(layers, str)
        or not all(isinstance(layer, str) and layer for layer in layers)
        or not layers
    ):
        raise ValueError(
            f"defence 'bido': key 'layers' must be a non-empty list of module names, got {layers!r}"
        )
    return {
        "lambda_x": check_number("bido", "lambda_x", cfg["lambda_x"]),
        "lambda_y": check_number("bido", "lambda_y", cfg["lambda_y"]),
        "sigma": check_number("bido", "sigma", cfg.get("sigma", 5.0), minimum=1e-12),
        "layers": list(layers) if layers is not None else None,
        "label_kernel": cfg.get("label_kernel", "linear"),
    }


@register_defence(
    "bido",
    required={"lambda_x", "lambda_y"},
    optional={"sigma", "layers", "label_kernel"},
    settings=bido_settings,
)
class BiDOModel(nn.Module):
    """A base model trained with the BiDO-HSIC regulariser; its forward is the base model's."""

    def __init__(
        self,
        base: nn.Module,
        lambda_x: float,
        lambda_y: float,
        sigma: float = 5.0,
        layers: list[str] | None = None,
        label_kernel: str = "linear",
    ):
        super().__init__()
        if label_kernel not in LABEL_KERNELS:
            raise ValueError(
                f"defence key 'label_kernel' must be one of {LABEL_KERNELS}, got {label_kernel!r}"
            )
        self.base = base
        self.num_classes = linear_classifier(base).out_features
        self.lambda_x, self.lambda_y = float(lambda_x), float(lambda_y)
        self.sigma = float(sigma)
        self.label_kernel = label_kernel
        self.layers = list(layers) if layers else None
        for name in self.layers or []:
            self._module(name)

    def _module(self, name: str) -> nn.Module:
        try:
            return self.base.get_submodule(name)
        except AttributeError as error:
            raise ValueError(
                f"defence key 'layers': {type(self.base).__name__} has no module {name!r}; "
                f"stage-like modules are {candidate_layers(self.base)}"
            ) from error

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.forward_features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.base.forward_head(features, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.base.get_classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x)

    def _forward_capturing(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
        names = self.layers or candidate_layers(self.base)
        outputs: list[tuple[str, torch.Tensor]] = []

        def recorder(name: str):
            return lambda module, inputs, output: outputs.append((name, output))

        handles = [self._module(name).register_forward_hook(recorder(name)) for name in names]
        try:
            logits = self.base(x)
        finally:
            for handle in handles:
                handle.remove()
        if self.layers is None:
            sequential = {n for n, m in self.base.named_children() if isinstance(m, nn.Sequential)}
            self.layers = stage_ends(outputs, sequential)
            if not self.layers:
                raise ValueError(
                    f"BiDO found no 4-D hidden representations in {type(self.base).__name__}; "
                    f"set the defence key 'layers' (module names)"
                )
        chosen = [(name, output) for name, output in outputs if name in self.layers]
        produced = [name for name, _ in chosen]
        if sorted(produced) != sorted(self.layers):
            raise RuntimeError(
                f"BiDO expected each of the layers {self.layers} to run once, got {produced}"
            )
        return logits, chosen

    def hsic_terms(
        self, x: torch.Tensor, y: torch.Tensor, hiddens: list[torch.Tensor]
    ) -> torch.Tensor:
        """``(len(hiddens), 2)`` tensor of nHSIC(X, Z_l) and nHSIC(Y, Z_l)."""
        with torch.autocast(x.device.type, enabled=False):
            input_kernel = gaussian_kernel(x, self.sigma)
            one_hot = F.one_hot(y, self.num_classes).float()
            if self.label_kernel == "linear":
                label_kernel = linear_kernel(one_hot)
            else:
                label_kernel = gaussian_kernel(one_hot, self.sigma)
            terms = []
            for hidden in hiddens:
                hidden_kernel = gaussian_kernel(hidden, self.sigma)
                terms.append(
                    torch.stack(
                        [
                            normalised_hsic(input_kernel, hidden_kernel),
                            normalised_hsic(label_kernel, hidden_kernel),
                        ]
                    )
                )
        return torch.stack(terms)

    def forward_with_regulariser(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and ``Σ_l λx·nHSIC(X, Z_l) − λy·nHSIC(Y, Z_l)``."""
        logits, captured = self._forward_capturing(x)
        terms = self.hsic_terms(x, y, [output for _, output in captured])
        return logits, (self.lambda_x * terms[:, 0] - self.lambda_y * terms[:, 1]).sum()
