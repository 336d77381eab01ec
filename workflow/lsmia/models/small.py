"""Small demo architectures for 32×32 inputs, fast enough to train on a laptop CPU.

Each mirrors one of the paper's families at toy scale: ``tiny_resnet`` (CIFAR-style ResNet),
``tiny_resnext`` (grouped-convolution bottlenecks), ``tiny_densenet`` (dense blocks) and
``tiny_inception`` (multi-branch modules; the demo's evaluation model). All share timm's interface:
``forward_features`` (a feature map), ``forward_head(x, pre_logits=False)``, ``get_classifier()``
and ``reset_classifier(num_classes)``. Stages live in ``self.stages``, where BiDO hooks them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .registry import register_architecture

__all__ = ["TinyNet", "TinyResNet", "TinyResNeXt", "TinyDenseNet", "TinyInception"]


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyNet(nn.Module):
    """Stem → stages → global average pool → dropout → linear classifier."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, num_features: int, num_classes: int,
                 drop_rate: float = 0.0):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.num_features = num_features
        self.num_classes = num_classes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` (0: none, ``forward`` returns pre-logits)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


def _initialise(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class ResidualBlock(nn.Module):
    """``relu(body(x) + shortcut(x))``; the shortcut projects when shape changes."""

    def __init__(self, body: nn.Sequential, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = body
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def basic_block(in_channels: int, out_channels: int, stride: int) -> ResidualBlock:
    body = nn.Sequential(
        conv_bn_relu(in_channels, out_channels, stride=stride),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )
    return ResidualBlock(body, in_channels, out_channels, stride)


def residual_stages(block: Callable[[int, int, int], nn.Module], stem_width: int,
                    widths: Sequence[int], blocks: Sequence[int]) -> nn.Sequential:
    """Stages of ``blocks[i]`` blocks of width ``widths[i]``; every stage after the first halves
    the resolution in its first block."""
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"widths {list(widths)} and blocks {list(blocks)} must be non-empty lists "
                         "of the same length")
    stages, channels = [], stem_width
    for index, (width, count) in enumerate(zip(widths, blocks)):
        layers = []
        for position in range(count):
            stride = 2 if index > 0 and position == 0 else 1
            layers.append(block(channels, width, stride))
            channels = width
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(*stages)


class TinyResNet(TinyNet):
    """A CIFAR-style ResNet: stride-2 3×3 stem, basic blocks, widths 16/32/64 at 16/8/4 px."""

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64),
                 blocks: Sequence[int] = (1, 1, 1), drop_rate: float = 0.0):
        stem = conv_bn_relu(3, widths[0], stride=2)
        stages = residual_stages(basic_block, widths[0], widths, blocks)
        super().__init__(stem, stages, widths[-1], num_classes, drop_rate)
        _initialise(self)


class TinyResNeXt(TinyNet):
    """Bottleneck blocks whose 3×3 convolution is grouped (``cardinality`` groups)."""

    def __init__(self, num_classes: int, widths: Sequence[int] = (32, 64, 128),
                 blocks: Sequence[int] = (1, 1, 1), cardinality: int = 8, drop_rate: float = 0.0):
        def bottleneck(in_channels: int, out_channels: int, stride: int) -> ResidualBlock:
            inner = out_channels // 2
            if inner % cardinality:
                raise ValueError(f"tiny_resnext: half of width {out_channels} is not divisible by "
                                 f"cardinality {cardinality}")
            body = nn.Sequential(
                conv_bn_relu(in_channels, inner, kernel_size=1),
                conv_bn_relu(inner, inner, stride=stride, groups=cardinality),
                nn.Conv2d(inner, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
            return ResidualBlock(body, in_channels, out_channels, stride)

        stem_width = widths[0] // 2
        stem = conv_bn_relu(3, stem_width, stride=2)
        stages = residual_stages(bottleneck, stem_width, widths, blocks)
        super().__init__(stem, stages, widths[-1], num_classes, drop_rate)
        _initialise(self)


class DenseLayer(nn.Module):
    """BN-ReLU-1×1 conv (4·growth) → BN-ReLU-3×3 conv (growth), concatenated to the input."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class TinyDenseNet(TinyNet):
    """Dense blocks of ``layers[i]`` layers; transitions halve channels and resolution."""

    def __init__(self, num_classes: int, growth: int = 12, layers: Sequence[int] = (3, 3, 3),
                 stem_width: int = 24, drop_rate: float = 0.0):
        stem = nn.Conv2d(3, stem_width, 3, 2, 1, bias=False)
        stages, channels = [], stem_width
        for index, count in enumerate(layers):
            block = []
            if index > 0:
                block += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                          nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2)]
                channels //= 2
            for _ in range(count):
                block.append(DenseLayer(channels, growth))
                channels += growth
            if index == len(layers) - 1:
                block += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            stages.append(nn.Sequential(*block))
        super().__init__(stem, nn.Sequential(*stages), channels, num_classes, drop_rate)
        _initialise(self)


class InceptionModule(nn.Module):
    """Four parallel branches (1×1; 1×1→3×3; 1×1→3×3→3×3; 3×3 max-pool→1×1), concatenated."""

    def __init__(self, in_channels: int, widths: Sequence[int]):
        super().__init__()
        one, three, double, pooled = widths
        self.branch1 = conv_bn_relu(in_channels, one, kernel_size=1)
        self.branch3 = nn.Sequential(conv_bn_relu(in_channels, three // 2, kernel_size=1),
                                     conv_bn_relu(three // 2, three))
        self.branch5 = nn.Sequential(conv_bn_relu(in_channels, double // 2, kernel_size=1),
                                     conv_bn_relu(double // 2, double),
                                     conv_bn_relu(double, double))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1),
                                         conv_bn_relu(in_channels, pooled, kernel_size=1))
        self.out_channels = sum(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class TinyInception(TinyNet):
    """An Inception-style network: one module per resolution (16, 8, 4 px), max-pool between."""

    def __init__(self, num_classes: int,
                 modules: Sequence[Sequence[int]] = ((8, 16, 8, 8), (16, 32, 8, 8),
                                                     (32, 48, 16, 16)),
                 stem_width: int = 24, drop_rate: float = 0.0):
        stem = conv_bn_relu(3, stem_width, stride=2)
        stages, channels = [], stem_width
        for index, widths in enumerate(modules):
            if len(widths) != 4:
                raise ValueError(f"tiny_inception: each module needs 4 branch widths, got {widths}")
            module = InceptionModule(channels, widths)
            stages.append(nn.Sequential(nn.MaxPool2d(2), module) if index > 0 else
                          nn.Sequential(module))
            channels = module.out_channels
        super().__init__(stem, nn.Sequential(*stages), channels, num_classes, drop_rate)
        _initialise(self)


register_architecture("tiny_resnet")(TinyResNet)
register_architecture("tiny_resnext")(TinyResNeXt)
register_architecture("tiny_densenet")(TinyDenseNet)
register_architecture("tiny_inception")(TinyInception)
