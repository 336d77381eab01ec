"""Procedural, differentiable faces: the demo's private data set and its stand-in generator prior.

A face is drawn from two unconstrained codes, both nominally N(0, I):
- the *identity* code (face shape, skin, hair, eyes, brows, nose, mouth, ears, beard, glasses) and
- the *nuisance* code (pose, scale, rotation, head turn, lighting, expression, background, clothes).
``FaceModel.render`` squashes each code entry smoothly (a sigmoid) into a parameter range, then
evaluates soft signed-distance shapes on a pixel grid and paints them back to front (background,
head, features: each over what is already drawn, weighted by its soft mask). Every
step is smooth, so images are differentiable in both codes, and the same face renders at any size.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from lsmia.data.packed import write_packed
from lsmia.io import atomic_path

# Identity code entries (index -> meaning); ranges are in FaceModel.render.
IDENTITY_FIELDS = (
    "face_width",
    "face_top",
    "face_bottom",
    "jaw_taper",
    "skin_tone",
    "skin_redness",
    "hair_lightness",
    "hair_redness",
    "hair_grey",
    "hairline",
    "hair_length",
    "hair_volume",
    "fringe_depth",
    "fringe_side",
    "eye_blue",
    "eye_green",
    "eye_spacing",
    "eye_size",
    "eye_height",
    "eye_aspect",
    "brow_thickness",
    "brow_tilt",
    "brow_gap",
    "brow_darkness",
    "nose_length",
    "nose_width",
    "mouth_width",
    "lip_thickness",
    "lip_colour",
    "mouth_gap",
    "ear_size",
    "beard",
    "glasses",
)
NUISANCE_FIELDS = (
    "shift_x",
    "shift_y",
    "scale",
    "rotation",
    "yaw",
    "brightness",
    "light_x",
    "light_y",
    "contrast",
    "smile",
    "eye_openness",
    "background_r",
    "background_g",
    "background_b",
    "background_gradient",
    "clothes_hue",
)

_BLACK = (0.04, 0.035, 0.035)


class FaceModel:
    """Renders faces from identity and nuisance codes; stateless, device follows the codes."""

    identity_dim = len(IDENTITY_FIELDS)
    nuisance_dim = len(NUISANCE_FIELDS)

    def render(
        self, identity: torch.Tensor, nuisance: torch.Tensor, image_size: int
    ) -> torch.Tensor:
        """Images ``N×3×S×S`` in [−1, 1] for codes ``N×identity_dim`` and ``N×nuisance_dim``."""
        _check_codes(identity, self.identity_dim, "identity")
        _check_codes(nuisance, self.nuisance_dim, "nuisance")
        if identity.shape[0] != nuisance.shape[0]:
            raise ValueError(
                f"identity and nuisance codes need the same batch size, got {identity.shape[0]} "
                f"and {nuisance.shape[0]}"
            )
        if int(image_size) < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
        face = _Params(identity, IDENTITY_FIELDS)
        scene = _Params(nuisance, NUISANCE_FIELDS)
        canvas = _Canvas(identity, int(image_size), scene)
        _draw_background(canvas, scene)
        _draw_head(canvas, face, scene)
        return canvas.finish(scene)


def sample_identity_codes(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` identity codes from N(0, I), ``n×identity_dim``."""
    return torch.randn(n, FaceModel.identity_dim, generator=generator)


def sample_nuisance(n: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """``n`` nuisance codes from N(0, scale²·I), ``n×nuisance_dim``."""
    if scale < 0:
        raise ValueError(f"nuisance scale must be non-negative, got {scale}")
    return scale * torch.randn(n, FaceModel.nuisance_dim, generator=generator)


# --------------------------------------------------------------------------------------------------
# Parameters and smooth primitives


def _check_codes(codes: torch.Tensor, dim: int, name: str) -> None:
    if codes.ndim != 2 or codes.shape[1] != dim:
        raise ValueError(f"{name} codes must have shape N×{dim}, got {tuple(codes.shape)}")
    if not codes.is_floating_point():
        raise ValueError(f"{name} codes must be floating point, got {codes.dtype}")


class _Params:
    """Named code entries squashed into ranges, shaped ``N×1×1`` to broadcast on pixels."""

    def __init__(self, codes: torch.Tensor, fields: tuple[str, ...]):
        self._columns = {name: codes[:, i, None, None] for i, name in enumerate(fields)}
        self.ref = codes[:, :1, None]

    def colour(self, *rgb: float | torch.Tensor) -> torch.Tensor:
        return _colour(self.ref, *rgb)

    def raw(self, name: str) -> torch.Tensor:
        return self._columns[name]

    def range(self, name: str, low: float, high: float) -> torch.Tensor:
        """Smoothly into (low, high); a code of 0 gives the middle, ±2 about 90 % of the way out."""
        return low + (high - low) * torch.sigmoid(1.5 * self._columns[name])

    def gate(self, name: str, threshold: float) -> torch.Tensor:
        """A soft switch in (0, 1): off for most codes, on once the code passes ``threshold``."""
        return torch.sigmoid(6.0 * (self._columns[name] - threshold))


def _colour(ref: torch.Tensor, *rgb: float | torch.Tensor) -> torch.Tensor:
    """Three channels (floats or ``N×1×1`` tensors) as ``N×3×1×1``, batch and device of ``ref``."""
    channels = [torch.as_tensor(c, dtype=ref.dtype, device=ref.device).expand_as(ref) for c in rgb]
    return torch.stack(channels, dim=1)


def _lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def _ellipse_sdf(u, v, cu, cv, ru, rv):
    """Approximate signed distance to an axis-aligned ellipse (negative inside)."""
    radius = torch.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 + 1e-8)
    return (radius - 1.0) * (2.0 * ru * rv / (ru + rv))


def _segment_distance(u, v, u0, v0, u1, v1):
    """Distance to the segment from (u0, v0) to (u1, v1)."""
    du, dv = u1 - u0, v1 - v0
    t = (((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv + 1e-8)).clamp(0.0, 1.0)
    return torch.sqrt((u - u0 - t * du) ** 2 + (v - v0 - t * dv) ** 2 + 1e-8)


def _smooth_max(a, b, k=0.02):
    """Soft intersection of two signed distances."""
    return k * torch.logaddexp(a / k, b / k)


class _Canvas:
    """Pixel grid in face coordinates plus the colour ``rgb`` painted so far (background first)."""

    def __init__(self, like: torch.Tensor, size: int, scene: _Params):
        dtype, device = like.dtype, like.device
        centres = (torch.arange(size, dtype=dtype, device=device) + 0.5) * (2.0 / size) - 1.0
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        self.x, self.y = x[None], y[None]  # image coordinates, 1×S×S, y points down
        scale = scene.range("scale", 0.88, 1.2)
        angle = scene.range("rotation", -0.35, 0.35)
        shift_x = scene.range("shift_x", -0.2, 0.2)
        shift_y = scene.range("shift_y", -0.16, 0.16)
        px, py = self.x - shift_x, self.y - shift_y
        cos, sin = torch.cos(angle), torch.sin(angle)
        self.u = (cos * px + sin * py) / scale  # face coordinates: the face is centred at 0
        self.v = (-sin * px + cos * py) / scale
        self.edge = 0.4 * (2.0 / size) / scale  # anti-aliasing softness (0.4 pixel), in face units

    def alpha(self, sdf: torch.Tensor) -> torch.Tensor:
        """Soft coverage of a shape from its signed distance."""
        return torch.sigmoid(-sdf / self.edge)

    def stroke(self, distance: torch.Tensor, half_width) -> torch.Tensor:
        """Soft coverage of ``distance < half_width``; true area even when thinner than a pixel."""
        return torch.sigmoid((half_width - distance) / self.edge) - torch.sigmoid(
            (-half_width - distance) / self.edge
        )

    def paint(self, alpha: torch.Tensor, colour: torch.Tensor | tuple[float, float, float]) -> None:
        """Blend ``colour`` (RGB floats, ``N×3×1×1`` or ``N×3×S×S``) on with coverage ``N×S×S``."""
        if isinstance(colour, tuple):
            colour = torch.tensor(colour, dtype=self.rgb.dtype, device=self.rgb.device).reshape(
                1, 3, 1, 1
            )
        a = alpha.unsqueeze(1)
        self.rgb = self.rgb * (1.0 - a) + colour * a

    def finish(self, scene: _Params) -> torch.Tensor:
        """Global lighting and contrast, then a smooth squash into [−1, 1]."""
        brightness = scene.range("brightness", 0.7, 1.3)
        light = (
            1.0
            + scene.range("light_x", -0.35, 0.35) * self.x
            + scene.range("light_y", -0.3, 0.3) * self.y
        )
        contrast = scene.range("contrast", 0.85, 1.35)
        lit = (self.rgb * (brightness * light).unsqueeze(1) - 0.5) * contrast.unsqueeze(1)
        signed = 2.0 * lit
        return signed / (1.0 + signed**6).pow(1.0 / 6.0)


# --------------------------------------------------------------------------------------------------
# Drawing, back to front


def _draw_background(canvas: _Canvas, scene: _Params) -> None:
    vivid = scene.colour(*(scene.range(f"background_{c}", 0.05, 0.95) for c in "rgb"))
    base = _lerp(vivid.mean(dim=1, keepdim=True), vivid, 0.5)  # muted, like a photo's backdrop
    tilt = scene.range("background_gradient", -0.4, 0.4)
    canvas.rgb = base * (1.0 + tilt * (canvas.x + 0.5 * canvas.y)).unsqueeze(1)


def _skin(face: _Params) -> torch.Tensor:
    tone = face.range("skin_tone", 0.0, 1.0).unsqueeze(1)
    redness = face.range("skin_redness", -0.06, 0.06)
    shift = face.colour(redness, -0.3 * redness, -0.5 * redness)
    return _lerp(face.colour(0.96, 0.80, 0.68), face.colour(0.36, 0.22, 0.14), tone) + shift


def _hair(face: _Params) -> torch.Tensor:
    lightness = face.range("hair_lightness", 0.0, 1.0).unsqueeze(1) ** 2
    base = _lerp(face.colour(0.07, 0.05, 0.04), face.colour(0.86, 0.70, 0.42), lightness)
    base = _lerp(
        base, face.colour(0.62, 0.24, 0.10), 0.8 * face.gate("hair_redness", 1.0).unsqueeze(1)
    )
    return _lerp(base, face.colour(0.72, 0.72, 0.74), face.gate("hair_grey", 1.3).unsqueeze(1))


def _iris(face: _Params) -> torch.Tensor:
    blue, green = face.raw("eye_blue"), face.raw("eye_green")
    weights = torch.softmax(
        torch.cat([torch.zeros_like(blue), blue - 0.5, green - 1.0], dim=-1), dim=-1
    )
    brown, blue_c, green_c = (
        face.colour(0.33, 0.20, 0.10),
        face.colour(0.25, 0.45, 0.70),
        face.colour(0.30, 0.50, 0.28),
    )
    w = weights.unsqueeze(1)  # N×1×1×3
    return brown * w[..., 0:1] + blue_c * w[..., 1:2] + green_c * w[..., 2:3]


def _clothes(scene: _Params) -> torch.Tensor:
    hue = scene.range("clothes_hue", 0.0, 2.0 * math.pi)
    return scene.colour(*(0.45 + 0.3 * torch.cos(hue + offset) for offset in (0.0, -2.1, 2.1)))


def _draw_head(canvas: _Canvas, face: _Params, scene: _Params) -> None:
    u, v, alpha = canvas.u, canvas.v, canvas.alpha
    skin, hair = _skin(face), _hair(face)
    half_width = face.range("face_width", 0.40, 0.54)
    top = face.range("face_top", 0.56, 0.70)
    bottom = face.range("face_bottom", 0.58, 0.76)
    taper = face.range("jaw_taper", 0.05, 0.35)
    volume = face.range("hair_volume", 0.02, 0.16)
    hairline = face.range("hairline", -0.72, -0.25)
    eye_height = face.range("eye_height", -0.14, 0.0)
    yaw = scene.range("yaw", -0.12, 0.12)
    light_side = scene.range("light_x", -1.0, 1.0)

    # Shoulders and neck.
    canvas.paint(
        alpha(_ellipse_sdf(u, v, 0.0, bottom + 0.75, half_width + 0.55, 0.55)), _clothes(scene)
    )
    neck = _segment_distance(u, v, 0.0, 0.3, 0.0, bottom + 0.4)
    canvas.paint(canvas.stroke(neck, 0.5 * half_width * (1.0 - 0.5 * taper)), skin * 0.78)

    # Long hair behind the head, cut at its length; bald heads (hairline above the top) have none.
    length = face.range("hair_length", -0.2, 1.0)
    back = _ellipse_sdf(u, v, 0.0, -0.08, half_width + volume + 0.04, top + 0.5 * volume + 0.1)
    has_hair = torch.sigmoid(40.0 * (hairline + top - 0.04))
    canvas.paint(alpha(_smooth_max(back, v - length)) * has_hair, hair * 0.8)

    # Ears, then the face: an ellipse with separate upper and lower heights and a tapered jaw.
    ear_size = face.range("ear_size", 0.8, 1.25)
    for side in (-1.0, 1.0):
        ear = _ellipse_sdf(
            u,
            v,
            side * half_width + 0.5 * yaw,
            eye_height + 0.12,
            0.075 * ear_size,
            0.14 * ear_size,
        )
        canvas.paint(alpha(ear), skin * 0.88)
    lower = torch.sigmoid(v / 0.05)
    height = _lerp(top, bottom, lower)
    width = half_width * (1.0 - taper * lower * (v.clamp(min=0.0) / bottom) ** 2)
    radius = torch.sqrt((u / width) ** 2 + (v / height) ** 2 + 1e-8)
    face_alpha = alpha((radius - 1.0) * half_width)
    shading = 1.0 + 0.18 * light_side * (u / half_width) - 0.22 * radius**4
    canvas.paint(face_alpha, skin * shading.unsqueeze(1))
    cheeks = alpha(_ellipse_sdf(u.abs(), v, 0.55 * half_width, 0.15, 0.1, 0.07))
    canvas.paint(0.12 * cheeks * face_alpha, (0.85, 0.45, 0.4))

    # Features move sideways with the head turn, the nose most.
    feature_u = u - yaw
    _draw_eyes(canvas, face, scene, feature_u, v, eye_height)
    nose_tip = _draw_nose(canvas, face, skin, feature_u - 0.6 * yaw, v, eye_height, light_side)
    _draw_mouth_and_beard(canvas, face, scene, skin, hair, feature_u, v, nose_tip, face_alpha)
    _draw_hair_cap(canvas, face, hair, u, v, half_width, top, volume, hairline, eye_height)
    _draw_glasses(canvas, face, feature_u, v, eye_height)


def _eye_geometry(face: _Params):
    return face.range("eye_spacing", 0.16, 0.25), face.range("eye_size", 0.075, 0.11)


def _draw_eyes(canvas: _Canvas, face: _Params, scene: _Params, u, v, eye_height) -> None:
    alpha = canvas.alpha
    spacing, size = _eye_geometry(face)
    half_height = (
        size * face.range("eye_aspect", 0.42, 0.62) * scene.range("eye_openness", 0.25, 1.15)
    )
    iris_colour = _iris(face)
    brow_colour = face.range("brow_darkness", 0.25, 0.9).unsqueeze(1) * _hair(face)
    thickness = face.range("brow_thickness", 0.012, 0.04)
    tilt = face.range("brow_tilt", -0.06, 0.06)
    brow_v = eye_height - face.range("brow_gap", 0.09, 0.16)
    for side in (-1.0, 1.0):
        cu = side * spacing
        canvas.paint(
            0.35 * alpha(_ellipse_sdf(u, v, cu, eye_height - 0.01, size * 1.25, size * 0.85)),
            (0.35, 0.25, 0.22),
        )
        white = alpha(_ellipse_sdf(u, v, cu, eye_height, size, half_height))
        canvas.paint(white, (0.93, 0.92, 0.9))
        iris_r = 0.5 * size
        canvas.paint(white * alpha(_ellipse_sdf(u, v, cu, eye_height, iris_r, iris_r)), iris_colour)
        canvas.paint(
            white * alpha(_ellipse_sdf(u, v, cu, eye_height, 0.45 * iris_r, 0.45 * iris_r)), _BLACK
        )
        lid = _segment_distance(
            u, v, cu - size, eye_height, cu + size, eye_height - 0.9 * half_height
        )
        canvas.paint(0.6 * canvas.stroke(lid, 0.008) * white, _BLACK)
        brow = _segment_distance(
            u,
            v,
            cu - side * 0.65 * size,
            brow_v + tilt,
            cu + side * 1.2 * size,
            brow_v - 0.3 * tilt,
        )
        canvas.paint(canvas.stroke(brow, thickness), brow_colour)


def _draw_nose(canvas: _Canvas, face: _Params, skin, u, v, eye_height, light_side) -> torch.Tensor:
    alpha = canvas.alpha
    width = face.range("nose_width", 0.045, 0.09)
    tip = eye_height + face.range("nose_length", 0.2, 0.34)
    ridge = _segment_distance(
        u, v, -0.35 * width * light_side, eye_height + 0.05, -0.5 * width * light_side, tip - 0.02
    )
    canvas.paint(0.35 * canvas.stroke(ridge, 0.012), skin * 0.6)
    canvas.paint(0.45 * alpha(_ellipse_sdf(u, v, 0.0, tip, width, 0.045)), skin * 0.8)
    for side in (-1.0, 1.0):
        nostril = _ellipse_sdf(u, v, side * 0.5 * width, tip + 0.015, 0.3 * width, 0.015)
        canvas.paint(0.75 * alpha(nostril), skin * 0.35)
    return tip


def _draw_mouth_and_beard(
    canvas: _Canvas, face: _Params, scene: _Params, skin, hair, u, v, nose_tip, face_alpha
) -> None:
    alpha, edge = canvas.alpha, canvas.edge
    half = face.range("mouth_width", 0.12, 0.23)
    thickness = face.range("lip_thickness", 0.02, 0.05)
    smile = scene.range("smile", -0.05, 0.09)
    across = (u / half) ** 2
    line = nose_tip + face.range("mouth_gap", 0.1, 0.17) - smile * across  # corners up when smiling
    bulge = (1.0 - across).clamp(min=0.0)
    upper, lower = line - thickness * bulge, line + 1.25 * thickness * bulge
    lips = (
        torch.sigmoid((v - upper) / edge)
        * torch.sigmoid((lower - v) / edge)
        * alpha(u.abs() - half)
    )
    red = _lerp(
        face.colour(0.80, 0.42, 0.42),
        face.colour(0.55, 0.20, 0.22),
        face.range("lip_colour", 0.0, 1.0).unsqueeze(1),
    )

    below_nose = torch.sigmoid((v - nose_tip - 0.04) / 0.02)
    canvas.paint(
        0.9 * face.gate("beard", 1.2) * below_nose * face_alpha * (1.0 - lips), hair * 0.85
    )
    canvas.paint(lips, _lerp(red, skin * 0.75, 0.3))
    seam = canvas.stroke((v - line).abs(), 0.006 + 0.01 * smile.clamp(min=0.0)) * alpha(
        u.abs() - half
    )
    canvas.paint(0.8 * seam, (0.25, 0.08, 0.08))


def _draw_hair_cap(
    canvas: _Canvas, face: _Params, hair, u, v, half_width, top, volume, hairline, eye_height
) -> None:
    cap = _ellipse_sdf(u, v, 0.0, 0.0, half_width + 0.5 * volume + 0.02, top + volume + 0.02)
    temples = ((eye_height - 0.05 - hairline) * (u / half_width).abs() ** 3).clamp(min=0.0)
    side = face.range("fringe_side", -0.3, 0.3)
    fringe = face.range("fringe_depth", -0.1, 0.22).clamp(min=0.0) * torch.exp(
        -(((u - side) / 0.22) ** 2)
    )
    region = _smooth_max(cap, v - (hairline + temples + fringe))
    sheen = 1.0 + 0.15 * torch.exp(-(((v - hairline + 0.15) / 0.1) ** 2) - (u / 0.3) ** 2)
    canvas.paint(canvas.alpha(region), hair * sheen.unsqueeze(1))


def _draw_glasses(canvas: _Canvas, face: _Params, u, v, eye_height) -> None:
    strength = face.gate("glasses", 1.3)
    spacing, size = _eye_geometry(face)
    radius = 1.45 * size
    for side in (-1.0, 1.0):
        ring = _ellipse_sdf(u, v, side * spacing, eye_height + 0.01, radius, 0.8 * radius).abs()
        canvas.paint(strength * canvas.stroke(ring, 0.012), (0.1, 0.08, 0.08))
    bridge = _segment_distance(u, v, -spacing + radius, eye_height, spacing - radius, eye_height)
    canvas.paint(strength * canvas.stroke(bridge, 0.01), (0.1, 0.08, 0.08))


# --------------------------------------------------------------------------------------------------
# Packed data sets


CODES_FILE = "identity_codes.npy"
_SETS = ("private", "public")
_PURPOSES = ("identity", "nuisance", "split")


def prepare_synthetic(
    private_dir: str | Path,
    public_dir: str | Path,
    grid_png: str | Path,
    *,
    identities: int,
    public_identities: int,
    images_per_identity: int,
    image_size: int,
    test_fraction: float,
    seed: int,
    nuisance_scale: float = 1.0,
    grid_size: int = 96,
    batch_size: int = 256,
) -> None:
    """Render the private and the disjoint public face sets as packed datasets, plus a PNG grid.

    Each set draws its identity codes, nuisance codes and split from its own seeded stream, so the
    private set does not change when the number of public identities does. Each packed directory
    also gets ``identity_codes.npy`` (float32 ``C×identity_dim``, by label).
    """
    tests = _checked_test_count(test_fraction, identities=identities,
                                public_identities=public_identities,
                                images_per_identity=images_per_identity, grid_size=grid_size,
                                batch_size=batch_size)
    model = FaceModel()
    shown = {}
    for name, count, out_dir in (
        ("private", identities, private_dir),
        ("public", public_identities, public_dir),
    ):
        codes = sample_identity_codes(count, _stream(seed, name, "identity"))
        nuisance = sample_nuisance(
            count * images_per_identity, _stream(seed, name, "nuisance"), nuisance_scale
        )
        per_image = codes.repeat_interleave(images_per_identity, dim=0)
        images = _render_uint8(
            model, per_image, nuisance, image_size, batch_size, desc=f"{name} faces"
        )
        index = _index(name, count, images_per_identity, tests, seed)
        settings = {
            "source": "synthetic",
            "set": name,
            "identities": count,
            "images_per_identity": images_per_identity,
            "image_size": image_size,
            "test_fraction": test_fraction,
            "seed": seed,
            "nuisance_scale": nuisance_scale,
            "face_model": f"{__name__}.FaceModel",
            "identity_fields": list(IDENTITY_FIELDS),
            "nuisance_fields": list(NUISANCE_FIELDS),
        }
        write_packed(out_dir, images, index, settings)
        with atomic_path(Path(out_dir) / CODES_FILE) as tmp, open(tmp, "wb") as handle:
            np.save(handle, codes.numpy().astype(np.float32), allow_pickle=False)
        rows = 10 if name == "private" else 3
        shown[name] = (codes[:rows], nuisance.reshape(count, images_per_identity, -1)[:rows, :8])
    _write_grid(model, shown, grid_size, grid_png)


def _checked_test_count(test_fraction: float, **counts: int) -> int:
    """Test images per identity, after checking that every count is a positive integer and that
    ``test_fraction`` leaves training images."""
    images_per_identity = counts["images_per_identity"]
    for key, value in counts.items():
        if int(value) != value or value < 1:
            raise ValueError(f"prepare_synthetic: {key} must be a positive integer, got {value!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(
            f"prepare_synthetic: test_fraction must be in [0, 1), got {test_fraction!r}"
        )
    tests = _test_count(images_per_identity, test_fraction)
    if tests >= images_per_identity:
        raise ValueError(
            f"prepare_synthetic: test_fraction {test_fraction} leaves no training image of "
            f"{images_per_identity} per identity"
        )
    return tests


def _stream(seed: int, name: str, purpose: str) -> torch.Generator:
    """An independent torch generator per (set, purpose), derived from ``seed``."""
    entropy = np.random.SeedSequence([int(seed), _SETS.index(name), _PURPOSES.index(purpose)])
    return torch.Generator().manual_seed(int(entropy.generate_state(1, dtype=np.uint64)[0]))


def _test_count(images_per_identity: int, test_fraction: float) -> int:
    """Test images per identity: the rounded fraction, at least one if the fraction is positive."""
    return max(1, round(test_fraction * images_per_identity)) if test_fraction > 0 else 0


def _render_uint8(
    model: FaceModel, identity, nuisance, size: int, batch_size: int, desc: str
) -> np.ndarray:
    """Render in batches to bounded memory; ``uint8 N×S×S×3``."""
    out = np.empty((len(identity), size, size, 3), dtype=np.uint8)
    starts = range(0, len(identity), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=desc, file=sys.stderr, mininterval=10):
            stop = start + batch_size
            images = model.render(identity[start:stop], nuisance[start:stop], size)
            out[start:stop] = _to_uint8(images)
    return out


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``N×3×H×W`` in [−1, 1] → ``uint8 N×H×W×3``."""
    scaled = ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def _index(name: str, count: int, per_identity: int, tests: int, seed: int) -> pd.DataFrame:
    """Identity-major rows; a seeded choice of ``tests`` test images within each identity."""
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), _SETS.index(name), _PURPOSES.index("split")])
    )
    split = np.full((count, per_identity), "train", dtype=object)
    for label in range(count):
        split[label, rng.permutation(per_identity)[:tests]] = "test"
    labels = np.repeat(np.arange(count), per_identity)
    samples = np.tile(np.arange(per_identity), count)
    width = max(3, len(str(count - 1)))
    return pd.DataFrame(
        {
            "label": labels,
            "identity": [f"synth-{name}-{label:0{width}d}" for label in labels],
            "split": split.reshape(-1),
            "source": [
                f"seed={seed};set={name};identity={k};sample={j}" for k, j in zip(labels, samples)
            ],
        }
    )


def _write_grid(model: FaceModel, shown: dict, size: int, path: str | Path) -> None:
    """One labelled row per identity (private, then public): its first samples at ``size`` px."""
    from PIL import Image, ImageDraw, ImageFont

    rows = [
        (f"{name} {k}", codes[k], nuisance[k])
        for name, (codes, nuisance) in shown.items()
        for k in range(len(codes))
    ]
    columns = max(len(nuisance) for _, _, nuisance in rows)
    label_width, gap = 110, 4
    sheet = Image.new(
        "RGB", (label_width + columns * (size + gap), len(rows) * (size + gap)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    with torch.no_grad():
        for row, (label, identity, nuisance) in enumerate(rows):
            faces = _to_uint8(model.render(identity.expand(len(nuisance), -1), nuisance, size))
            top = row * (size + gap)
            draw.text((6, top + size // 2 - 8), label, fill="black", font=font)
            for column, face in enumerate(faces):
                sheet.paste(Image.fromarray(face), (label_width + column * (size + gap), top))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
