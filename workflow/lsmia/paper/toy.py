"""The toy example: three 2-D Gaussian blobs, a small MLP trained with α = 0, +0.05 and −0.05, and
an input-space attack that walks from a fixed start point into class 2.

The protocol is fixed (its numbers are a check); see ``run_toy_example``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.datasets import make_blobs
from torch import nn

from lsmia.io import atomic_path
from lsmia.paper.figures import alpha_label
from lsmia.training.losses import label_smoothing_loss

ALPHAS = (0.0, 0.05, -0.05)
TARGET_CLASS = 2
START = (-3.0, -10.0)
TRAIN_ITERATIONS = 5_000
MAX_ATTACK_STEPS = 10_000
CONFIDENCE_STOP = 0.95
GRID_LIMIT = 15.0
GRID_POINTS = 100


@dataclass
class ToyRun:
    """One α: the trained model, its final training loss, the attack path (start, then the point
    after every step) and the attack's outcome."""

    alpha: float
    model: nn.Sequential
    final_loss: float
    path: np.ndarray
    steps: int
    closest_distance: float
    attack_final_loss: float


def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    """500 points in three blobs centred at (0, −10), (−10, 10), (10, 10)."""
    points, labels = make_blobs(
        n_samples=500,
        centers=[[0, -10], [-10, 10], [10, 10]],
        cluster_std=1.6,
        center_box=(-10, 10),
        random_state=17,
    )
    return torch.tensor(points, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)


def toy_model() -> nn.Sequential:
    torch.manual_seed(42)
    return nn.Sequential(
        nn.Linear(2, 20),
        nn.BatchNorm1d(20),
        nn.ReLU(),
        nn.Linear(20, 20),
        nn.BatchNorm1d(20),
        nn.ReLU(),
        nn.Linear(20, 3, bias=False),
    )


def train_toy_model(
    points: torch.Tensor, labels: torch.Tensor, alpha: float
) -> tuple[nn.Sequential, float]:
    """Full-batch SGD (lr 1e-3, momentum 0.9), 5,000 iterations of the label-smoothing loss.

    Returns the model and the training loss of the last iteration (the label-smoothing loss with
    this α, before that iteration's update; negative α can make it negative)."""
    model = toy_model()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    for _ in range(TRAIN_ITERATIONS):
        loss = label_smoothing_loss(model(points), labels, alpha)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, loss.item()


def attack_toy_model(
    model: nn.Sequential, class_points: torch.Tensor
) -> tuple[np.ndarray, int, float, float]:
    """Gradient descent on the input towards ``TARGET_CLASS`` (SGD lr 0.1), stopping once the
    target's softmax in a step's output (before that step's update) exceeds 0.95.

    Returns the path, the 0-based index of the last step, the distance from the final point to the
    nearest of ``class_points`` and the attack's cross-entropy at the last step (never negative)."""
    model.eval()
    point = torch.tensor([START], dtype=torch.float32, requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=0.1)
    target = torch.tensor([TARGET_CLASS])
    path = [point.detach().clone()]
    for step in range(MAX_ATTACK_STEPS):
        output = model(point)
        loss = F.cross_entropy(output, target)
        optimizer.zero_grad()
        model.zero_grad()
        loss.backward()
        optimizer.step()
        path.append(point.detach().clone())
        if torch.softmax(output.detach(), dim=1)[0, TARGET_CLASS] > CONFIDENCE_STOP:
            break
    distance = torch.cdist(point.detach(), class_points).min().item()
    return torch.cat(path).numpy(), step, distance, loss.item()


def run_toy_runs() -> list[ToyRun]:
    """Train and attack one model per α (single-threaded, so the numbers are reproducible)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        points, labels = toy_data()
        runs = []
        for alpha in ALPHAS:
            model, train_loss = train_toy_model(points, labels, alpha)
            path, steps, distance, attack_loss = attack_toy_model(
                model, points[labels == TARGET_CLASS]
            )
            runs.append(ToyRun(alpha, model, train_loss, path, steps, distance, attack_loss))
        return runs
    finally:
        torch.set_num_threads(threads)


def _confidence_grid(model: nn.Sequential) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = np.linspace(-GRID_LIMIT, GRID_LIMIT, GRID_POINTS, dtype=np.float32)
    xs, ys = np.meshgrid(axis, axis)
    grid = torch.from_numpy(np.stack([xs.ravel(), ys.ravel()], axis=1))
    model.eval()
    with torch.no_grad():
        confidence = torch.softmax(model(grid), dim=1).max(dim=1).values
    return xs, ys, confidence.numpy().reshape(xs.shape)


def run_toy_example(
    out_csv: str | os.PathLike, out_png: str | os.PathLike, out_pdf: str | os.PathLike
) -> pd.DataFrame:
    """Run the toy example; write its numbers as CSV and the three-panel figure as PNG and PDF.

    Columns: ``alpha``, ``steps``, ``closest_distance``, ``final_loss`` (the final training loss of
    the α's model) and ``attack_final_loss`` (the attack's cross-entropy at its stopping step).
    Returns the numbers."""
    runs = run_toy_runs()
    points, labels = toy_data()
    fig = Figure(figsize=(13, 4.4))
    axes = fig.subplots(1, len(runs))
    colours = ("tab:blue", "tab:orange", "tab:green")
    for ax, run in zip(axes, runs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            xs, ys, confidence = _confidence_grid(run.model)
        finally:
            torch.set_num_threads(threads)
        image = ax.contourf(xs, ys, confidence, levels=20, cmap="Greys", vmin=1 / 3, vmax=1.0)
        for cls, colour in enumerate(colours):
            members = points[labels == cls].numpy()
            ax.scatter(members[:, 0], members[:, 1], s=6, color=colour, label=f"class {cls}")
        ax.plot(run.path[:, 0], run.path[:, 1], color="red", lw=1.5, label="attack path")
        ax.scatter(*run.path[0], marker="o", color="red", s=30, zorder=3)
        ax.scatter(*run.path[-1], marker="x", color="red", s=50, zorder=3)
        ax.set_title(
            f"{alpha_label(run.alpha)}\n{run.steps} steps, "
            f"closest distance {run.closest_distance:.2f}"
        )
        ax.set_xlim(-GRID_LIMIT, GRID_LIMIT)
        ax.set_ylim(-GRID_LIMIT, GRID_LIMIT)
        ax.set_aspect("equal")
    axes[0].legend(loc="lower left", fontsize="small")
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="max softmax confidence")

    results = pd.DataFrame(
        {
            "alpha": [r.alpha for r in runs],
            "steps": [r.steps for r in runs],
            "closest_distance": [r.closest_distance for r in runs],
            "final_loss": [r.final_loss for r in runs],
            "attack_final_loss": [r.attack_final_loss for r in runs],
        }
    )
    with atomic_path(out_csv) as tmp:
        results.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with atomic_path(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    return results
