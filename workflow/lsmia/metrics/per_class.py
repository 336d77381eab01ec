"""Per-class means of per-sample values: what the claims check pairs across recipes and seeds."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def per_class_means(values: Mapping[str, torch.Tensor], labels: torch.Tensor) -> dict:
    """``{"classes": sorted labels, name: [mean of values[name] over the samples of each class]}``.

    ``values`` maps names to 1-D tensors with one entry per sample (``labels``); NaN entries are
    left out of their class's mean (a class whose entries are all NaN raises)."""
    labels = torch.as_tensor(labels).reshape(-1).long().cpu()
    classes = torch.unique(labels)
    out: dict = {"classes": classes.tolist()}
    for name, value in values.items():
        value = torch.as_tensor(value).reshape(-1).double().cpu()
        if len(value) != len(labels):
            raise ValueError(f"per_class_means: {name!r} has {len(value)} values for "
                             f"{len(labels)} labels")
        means = []
        for label in classes:
            member = value[(labels == label) & ~torch.isnan(value)]
            if len(member) == 0:
                raise ValueError(f"per_class_means: {name!r} has no finite value for class "
                                 f"{int(label)}")
            means.append(float(member.mean()))
        out[name] = means
    return out
