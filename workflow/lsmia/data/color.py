"""Per-sample colour jitter with torchvision's ``ColorJitter`` semantics, batched on the device.

Each sample gets its own random order of the four adjustments and its own factors:
brightness, contrast and saturation factors uniform in ``[max(0, 1 − s), 1 + s]``, hue shift
uniform in ``[−h, h]`` (fraction of the hue circle, applied in HSV as torchvision does). The
adjustments work on [0, 1] intensities with clamping, like torchvision before normalisation.
"""

from __future__ import annotations

import torch

_GRAY = (0.2989, 0.587, 0.114)


def grayscale(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, ``N×1×H×W``."""
    red, green, blue = rgb.unbind(1)
    return (_GRAY[0] * red + _GRAY[1] * green + _GRAY[2] * blue).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * other).clamp(0, 1)


def adjust_brightness(images, factor):
    return _blend(images, torch.zeros_like(images), factor)


def adjust_contrast(images, factor):
    return _blend(images, grayscale(images).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(images, factor):
    return _blend(images, grayscale(images), factor)


def adjust_hue(images, shift):
    hue, saturation, value = rgb_to_hsv(images).unbind(1)
    hue = torch.remainder(hue + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([hue, saturation, value], dim=1))


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    red, green, blue = rgb.unbind(1)
    value, _ = rgb.max(dim=1)
    chroma = value - rgb.min(dim=1).values
    grey = chroma == 0
    saturation = chroma / torch.where(grey, torch.ones_like(value), value)
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    red_dist, green_dist, blue_dist = ((value - c) / safe_chroma for c in (red, green, blue))
    is_red = value == red
    is_green = (value == green) & ~is_red
    is_blue = ~is_red & ~is_green
    hue = (is_red * (blue_dist - green_dist) + is_green * (2.0 + red_dist - blue_dist)
           + is_blue * (4.0 + green_dist - red_dist))
    hue = torch.remainder(hue / 6.0 + 1.0, 1.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Closed form of the six-sector conversion: channel ``c`` with offset ``n`` (5 for red,
    3 green, 1 blue) is ``v − v·s·clamp(min(k, 4 − k), 0, 1)`` where ``k = (n + 6h) mod 6``."""
    hue, saturation, value = hsv[:, :1], hsv[:, 1:2], hsv[:, 2:]
    offsets = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = torch.remainder(offsets + hue * 6.0, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return value - value * saturation * ramp


_ADJUSTMENTS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(images: torch.Tensor, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Jitter a [−1, 1] batch; an adjustment with strength 0 is skipped, as in torchvision."""
    if not 0 <= hue <= 0.5:
        raise ValueError(f"color_jitter: hue must be in [0, 0.5], got {hue}")
    strengths = (brightness, contrast, saturation, hue)
    if any(value < 0 for value in strengths):
        raise ValueError(f"color_jitter: strengths must be >= 0, got {strengths}")
    n = len(images)
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.argsort(torch.rand(n, 4, generator=generator, device=device), dim=1)
    uniform = torch.rand(n, 4, generator=generator, device=device)
    low = torch.tensor([max(0.0, 1 - s) for s in strengths[:3]] + [-hue], device=device)
    high = torch.tensor([1 + s for s in strengths[:3]] + [hue], device=device)
    factors = (low + (high - low) * uniform).to(images.device, images.dtype)
    order = order.to(images.device)
    out = (images + 1) / 2
    for step in range(4):
        for which, adjust in enumerate(_ADJUSTMENTS):
            if strengths[which] == 0:
                continue
            chosen = torch.nonzero(order[:, step] == which).flatten()
            if len(chosen):
                out = out.index_copy(0, chosen, adjust(out[chosen], factors[chosen, which]))
    return out * 2 - 1
