"""Ground-truth leakage for the synthetic demo: how close the attack's identity codes come to the
private identity codes that rendered the training images (beyond the paper, which has no ground
truth)."""

from __future__ import annotations

import torch


def identity_leakage(final_w_identity_codes: torch.Tensor, classes, private_codes) -> dict:
    """``final_w_identity_codes``: ``C×n×d`` identity parts of the final latents (the first ``d``
    entries of the procedural prior's w), row ``i`` attacking ``classes[i]``; ``private_codes``:
    ``K×d`` private identity codes by label.

    Returns ``code_distance`` (mean L2 from each code to its target's code),
    ``nearest_identity_accuracy`` (fraction whose nearest private code is the target's) and
    ``mean_rank`` (mean rank of the target among all K codes by distance; 1 is best, ties count
    against the target)."""
    codes = torch.as_tensor(final_w_identity_codes, dtype=torch.float64)
    private = torch.as_tensor(private_codes, dtype=torch.float64)
    classes = torch.as_tensor(classes, dtype=torch.int64).reshape(-1)
    if codes.dim() != 3 or private.dim() != 2 or codes.shape[-1] != private.shape[-1]:
        raise ValueError(f"identity codes: expected C×n×d and K×d, got {tuple(codes.shape)} and "
                         f"{tuple(private.shape)}")
    if len(classes) != codes.shape[0]:
        raise ValueError(f"classes: {len(classes)} for {codes.shape[0]} rows of codes")
    if classes.min() < 0 or classes.max() >= len(private):
        raise ValueError(f"classes: expected labels in [0, {len(private)}), got {classes.tolist()}")
    flat = codes.reshape(-1, codes.shape[-1])
    targets = classes.repeat_interleave(codes.shape[1])
    distances = torch.cdist(flat, private)
    own = distances.gather(1, targets[:, None])
    rank = (distances <= own).sum(dim=1)
    return {
        "code_distance": float(own.mean()),
        "nearest_identity_accuracy": float((rank == 1).double().mean()),
        "mean_rank": float(rank.double().mean()),
    }
