"""Paper figures (matplotlib, no display needed): each saves ``<stem>.png``, ``<stem>.pdf`` and the
plotted numbers as ``<stem>.csv``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lsmia.io import atomic_path
from lsmia.paper.pareto import pareto_front
from lsmia.paper.tables import METRICS

PathLike = str | os.PathLike
GRADIENT_LOG_COLUMNS = ("iteration", "loss", "confidence", "grad_cos_mean", "grad_cos_std")


def alpha_label(alpha: float) -> str:
    """``α = −0.05`` style label (true minus sign, no trailing zeros)."""
    text = f"{alpha:g}".replace("-", "−")
    return f"α = {'+' if alpha > 0 else ''}{text}"


def save_figure(fig: Figure, data: pd.DataFrame, out_stem: PathLike) -> dict[str, Path]:
    """Write the figure as PNG and PDF and its data as CSV, each atomically."""
    stem = Path(out_stem)
    paths = {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("png", "pdf", "csv")}
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with atomic_path(paths["pdf"]) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    with atomic_path(paths["csv"]) as tmp:
        data.to_csv(tmp, index=False)
    return paths


def _alpha_colours(alphas: Sequence[float]) -> dict[float, tuple]:
    """Blue for negative α, black for 0, red for positive; darker for larger |α|."""
    from matplotlib import colormaps

    scale = max([abs(a) for a in alphas] + [1e-12])
    colours = {}
    for alpha in alphas:
        if alpha == 0:
            colours[alpha] = (0.0, 0.0, 0.0, 1.0)
        else:
            cmap = colormaps["Reds" if alpha > 0 else "Blues"]
            colours[alpha] = cmap(0.45 + 0.5 * abs(alpha) / scale)
    return colours


def _spread(frame: pd.DataFrame, key: str) -> np.ndarray | None:
    """The standard deviation over seeds of ``key`` (``<key>_std``, from ``tables.over_seeds``),
    or None when no row has one (a single seed)."""
    column = frame.get(f"{key}_std")
    if column is None or column.isna().all():
        return None
    return column.fillna(0.0).to_numpy(dtype=float)


def _with_spread(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """``keys`` and the ``<key>_std`` columns ``frame`` has for them (the figure's data)."""
    return [c for k in keys for c in (k, f"{k}_std") if c in frame.columns]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: missing columns {missing}; got {list(frame.columns)}")


def training_size_figure(frame: pd.DataFrame, out_stem: PathLike) -> dict[str, Path]:
    """Acc@1 and test accuracy against the number of training images, one line per α, with
    error bars (± standard deviation over seeds) when there are several seeds.

    ``frame`` is ``tables.training_size(...).frame`` (columns alpha, num_train_images, acc1,
    test_accuracy)."""
    _require(
        frame, ("recipe", "alpha", "num_train_images", "acc1", "test_accuracy"), "training_size"
    )
    columns = ["recipe", "alpha", "num_train_images",
               *_with_spread(frame, ("acc1", "test_accuracy"))]
    data = frame[columns].sort_values(["alpha", "num_train_images"], kind="stable")
    colours = _alpha_colours(sorted(data["alpha"].unique()))
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for alpha, group in data.groupby("alpha", sort=True):
        for ax, key in zip(axes, ("acc1", "test_accuracy")):
            spread = _spread(group, key)
            ax.errorbar(
                group["num_train_images"],
                100 * group[key],
                yerr=None if spread is None else 100 * spread,
                marker="o",
                capsize=3,
                color=colours[alpha],
                label=alpha_label(alpha),
            )
    for ax, title in zip(axes, ("Attack Acc@1 (%) ↑", "Target test accuracy (%) ↑")):
        ax.set_xlabel("Training images")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, data, out_stem)


def alpha_sweep_figure(
    frame: pd.DataFrame,
    out_stem: PathLike,
    metrics: Sequence[str] = ("acc1", "acc5", "delta_face", "delta_eval", "fid"),
) -> dict[str, Path]:
    """Test accuracy and attack metrics against α (``tables.alpha_sweep(...).frame``), with error
    bars (± standard deviation over seeds) when there are several seeds."""
    keys = ["test_accuracy", *metrics]
    _require(frame, ["alpha", *keys], "alpha_sweep")
    data = frame[["recipe", "alpha", *_with_spread(frame, keys)]].sort_values("alpha",
                                                                               kind="stable")
    fig = Figure(figsize=(3.2 * len(keys), 3.2))
    for ax, key in zip(fig.subplots(1, len(keys)), keys):
        column = METRICS[key]
        spread = _spread(data, key)
        ax.errorbar(data["alpha"], data[key] * column.scale, marker="o", color="black", capsize=3,
                    yerr=None if spread is None else spread * column.scale)
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("α")
        ax.set_ylabel(column.header())
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, data, out_stem)


def read_gradient_log(path: PathLike) -> pd.DataFrame:
    """A gradient log CSV (one row per optimisation iteration), checked for its columns."""
    frame = pd.read_csv(path)
    missing = [c for c in GRADIENT_LOG_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"{path}: gradient log lacks columns {missing}")
    if frame.empty:
        raise ValueError(f"{path}: gradient log has no rows")
    return frame


def gradient_similarity_figure(
    logs: Mapping[float, pd.DataFrame | Sequence[pd.DataFrame]], out_stem: PathLike
) -> dict[str, Path]:
    """Cosine similarity of consecutive attack gradients per iteration, one line per α (``logs``
    maps α to a gradient log, or to one log per seed). One seed: its mean ± std over samples as a
    band; several: the mean over seeds ± the standard deviation of the seeds' means."""
    colours = _alpha_colours(sorted(logs))
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    parts = []
    for alpha in sorted(logs):
        log = _seed_band(logs[alpha])
        mean, std = log["grad_cos_mean"].to_numpy(), log["grad_cos_std"].to_numpy()
        ax.plot(log["iteration"], mean, color=colours[alpha], label=alpha_label(alpha))
        ax.fill_between(log["iteration"], mean - std, mean + std, color=colours[alpha], alpha=0.2)
        parts.append(log[["iteration", "grad_cos_mean", "grad_cos_std", "n_seeds"]]
                     .assign(alpha=alpha))
    ax.set_xlabel("Optimisation iteration")
    ax.set_ylabel("cos(∇ₜ, ∇ₜ₋₁)")
    ax.grid(alpha=0.3)
    ax.legend()
    data = pd.concat(parts, ignore_index=True)[
        ["alpha", "iteration", "grad_cos_mean", "grad_cos_std", "n_seeds"]
    ]
    return save_figure(fig, data, out_stem)


def _seed_band(logs: pd.DataFrame | Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per iteration: ``grad_cos_mean`` and the band ``grad_cos_std`` of one log, or of several
    (the mean of their means and the standard deviation across them), and ``n_seeds``."""
    logs = [logs] if isinstance(logs, pd.DataFrame) else list(logs)
    if len(logs) == 1:
        return logs[0].dropna(subset=["grad_cos_mean"]).assign(n_seeds=1)
    means = pd.concat(
        [log.dropna(subset=["grad_cos_mean"]).set_index("iteration")["grad_cos_mean"]
         for log in logs], axis=1, join="inner",
    )
    return pd.DataFrame({"iteration": means.index, "grad_cos_mean": means.mean(axis=1).to_numpy(),
                         "grad_cos_std": means.std(axis=1, ddof=1).to_numpy(),
                         "n_seeds": len(logs)})


@dataclass(frozen=True)
class PlaneProjection:
    """2-D coordinates in the plane through three class templates."""

    points: np.ndarray  # M×2, the features of the three classes
    labels: np.ndarray  # M, their class labels
    templates: np.ndarray  # 3×2, the templates w_a, w_b, w_c
    basis: np.ndarray  # 2×D, orthonormal basis of the plane
    origin: np.ndarray  # D, the templates' centroid (coordinates (0, 0))


def project_to_template_plane(features, labels, weights, classes: Sequence[int]) -> PlaneProjection:
    """Project penultimate features of three classes onto the plane through their last-layer
    weight templates (Müller et al., 2019).

    The plane passes through ``w_a, w_b, w_c`` (rows of ``weights``, C×D); its orthonormal basis is
    Gram–Schmidt of ``w_b − w_a`` and ``w_c − w_a``; coordinates are taken relative to the
    templates' centroid. Only features whose label is one of ``classes`` are returned.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    if len(classes) != 3 or len(set(classes)) != 3:
        raise ValueError(f"need three distinct classes, got {list(classes)}")
    if features.ndim != 2 or weights.ndim != 2 or features.shape[1] != weights.shape[1]:
        raise ValueError(
            f"features N×D and weights C×D must share D; got {features.shape}, {weights.shape}"
        )
    if len(labels) != len(features):
        raise ValueError(f"{len(labels)} labels for {len(features)} features")
    if max(classes) >= len(weights) or min(classes) < 0:
        raise ValueError(f"classes {list(classes)} out of range for {len(weights)} templates")
    templates = weights[list(classes)]
    first = templates[1] - templates[0]
    second = templates[2] - templates[0]
    e1 = first / np.linalg.norm(first)
    residual = second - (second @ e1) * e1
    norm = np.linalg.norm(residual)
    if not np.isfinite(norm) or norm < 1e-12 * max(np.linalg.norm(second), 1e-300):
        raise ValueError(f"templates of classes {list(classes)} are collinear: no unique plane")
    basis = np.stack([e1, residual / norm])
    origin = templates.mean(axis=0)
    keep = np.isin(labels, classes)
    return PlaneProjection(
        points=(features[keep] - origin) @ basis.T,
        labels=labels[keep],
        templates=(templates - origin) @ basis.T,
        basis=basis,
        origin=origin,
    )


def embeddings_figure(
    panels: Mapping[float, tuple],
    classes: Sequence[int],
    out_stem: PathLike,
    class_names: Sequence[str] | None = None,
) -> dict[str, Path]:
    """One column per α: the features of three classes in their template plane.

    ``panels`` maps α to ``(features N×D, labels N, last-layer weights C×D)``."""
    names = list(class_names) if class_names is not None else [f"class {c}" for c in classes]
    alphas = sorted(panels)
    fig = Figure(figsize=(3.4 * len(alphas), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(alphas)))
    colours = ["tab:blue", "tab:orange", "tab:green"]
    parts = []
    for ax, alpha in zip(axes, alphas):
        projection = project_to_template_plane(*panels[alpha], classes)
        for cls, name, colour, template in zip(classes, names, colours, projection.templates):
            points = projection.points[projection.labels == cls]
            ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, color=colour, label=name)
            ax.scatter(*template, marker="*", s=160, color=colour, edgecolor="black")
        ax.set_title(alpha_label(alpha))
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        parts.append(
            pd.DataFrame(
                {
                    "alpha": alpha,
                    "kind": "feature",
                    "label": projection.labels,
                    "x": projection.points[:, 0],
                    "y": projection.points[:, 1],
                }
            )
        )
        parts.append(
            pd.DataFrame(
                {
                    "alpha": alpha,
                    "kind": "template",
                    "label": list(classes),
                    "x": projection.templates[:, 0],
                    "y": projection.templates[:, 1],
                }
            )
        )
    axes[0].legend(markerscale=3, fontsize="small")
    return save_figure(fig, pd.concat(parts, ignore_index=True), out_stem)


def _display_image(image) -> np.ndarray:
    """H×W×3 float in [0, 1] from a uint8 H×W×3 image or a float 3×H×W image in [−1, 1]."""
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if array.ndim != 3:
        raise ValueError(f"expected one image with 3 dimensions, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.shape[0] == 3:
        array = array.transpose(1, 2, 0)
    return np.clip((array.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)


def sample_grid_figure(
    real: Mapping[str, Sequence],
    attacks: Mapping[float, Mapping[str, Sequence]],
    out_stem: PathLike,
    images_per_group: int = 3,
) -> dict[str, Path]:
    """Rows: identities; columns: real training images, then the attack's images for each α.

    ``real`` maps identity → images; ``attacks`` maps α → identity → images (uint8 H×W×3 or
    float 3×H×W in [−1, 1]). Every identity needs ``images_per_group`` images in every group."""
    identities = list(real)
    groups = [("real", "Training data", real)]
    groups += [(alpha, alpha_label(alpha), attacks[alpha]) for alpha in sorted(attacks)]
    for key, _, images in groups:
        for identity in identities:
            if len(images.get(identity, ())) < images_per_group:
                raise ValueError(
                    f"sample_grid: group {key!r} has fewer than {images_per_group} "
                    f"images for identity {identity!r}"
                )
    ncols = len(groups) * images_per_group
    fig = Figure(figsize=(1.1 * ncols, 1.15 * len(identities) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(identities), ncols, squeeze=False))
    records = []
    for row, identity in enumerate(identities):
        for g, (key, title, images) in enumerate(groups):
            for slot in range(images_per_group):
                ax = axes[row, g * images_per_group + slot]
                ax.imshow(_display_image(images[identity][slot]))
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0 and slot == 0:
                    ax.set_title(title, loc="left", fontsize="small")
                if g == 0 and slot == 0:
                    ax.set_ylabel(str(identity), fontsize="small")
                records.append({"identity": identity, "group": key, "slot": slot})
    fig.subplots_adjust(wspace=0.03, hspace=0.05)
    return save_figure(fig, pd.DataFrame(records), out_stem)


def defence_figure(frame: pd.DataFrame, out_stem: PathLike) -> dict[str, Path]:
    """Utility against privacy: test accuracy over Acc@1, one labelled marker per model, the Pareto
    front drawn (``tables.defence_comparison(...).frame``)."""
    _require(frame, ("recipe", "defence", "alpha", "test_accuracy", "acc1"), "defence_comparison")
    columns = ["recipe", "defence", "alpha", *_with_spread(frame, ("test_accuracy", "acc1"))]
    data = frame[columns].reset_index(drop=True)
    front = pareto_front(data[["test_accuracy", "acc1"]].to_numpy())
    data["on_pareto_front"] = data.index.isin(front)
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    styles = {"mid": ("s", "tab:purple"), "bido": ("^", "tab:olive")}
    for row in data.itertuples():
        if isinstance(row.defence, str):
            marker, colour = styles.get(row.defence.lower(), ("D", "tab:grey"))
        else:
            marker = "o"
            colour = "tab:red" if row.alpha > 0 else "tab:blue" if row.alpha < 0 else "black"
        ax.scatter(
            100 * row.acc1, 100 * row.test_accuracy, marker=marker, color=colour, s=40, zorder=3
        )
        spread = {k: getattr(row, f"{k}_std", None) for k in ("acc1", "test_accuracy")}
        if any(v is not None and not pd.isna(v) for v in spread.values()):
            ax.errorbar(100 * row.acc1, 100 * row.test_accuracy, color=colour, lw=0.8, capsize=2,
                        xerr=100 * np.nan_to_num(spread["acc1"] or 0.0),
                        yerr=100 * np.nan_to_num(spread["test_accuracy"] or 0.0), zorder=2)
        ax.annotate(
            row.recipe,
            (100 * row.acc1, 100 * row.test_accuracy),
            fontsize="x-small",
            xytext=(4, 3),
            textcoords="offset points",
        )
    on_front = data.loc[front]
    ax.step(
        100 * on_front["acc1"],
        100 * on_front["test_accuracy"],
        where="post",
        color="grey",
        ls="--",
        lw=1,
        label="Pareto front",
        zorder=2,
    )
    ax.set_xlabel("Attack Acc@1 (%) ↓ (privacy)")
    ax.set_ylabel("Test accuracy (%) ↑ (utility)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, data, out_stem)
