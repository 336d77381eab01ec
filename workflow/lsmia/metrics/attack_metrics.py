"""All metrics of one attack, computed in memory and written only when every value is defined."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn
from tqdm import tqdm

from lsmia.data import augment
from lsmia.io import save_json
from lsmia.metrics.accuracy import topk_accuracy, topk_hits
from lsmia.metrics.distances import nearest_same_class_sq_l2
from lsmia.metrics.extractors import FeatureExtractor
from lsmia.metrics.fid import frechet_distance
from lsmia.metrics.per_class import per_class_means
from lsmia.metrics.prdc import prdc_per_class
from lsmia.models.factory import penultimate
from lsmia.provenance import provenance

#: Extractor roles: the evaluation model's penultimate layer (δ_eval), the face network (δ_face),
#: and the FID network (FID and PRDC).
ROLES = ("eval", "face", "fid")
NUMBERS = ("acc1", "acc5", "acc1_unselected", "acc5_unselected", "delta_face", "delta_eval", "fid",
           "precision", "recall", "density", "coverage", "target_confidence", "eval_confidence")


def compute_attack_metrics(
    selected: Mapping,
    unselected: Iterable[tuple[torch.Tensor, torch.Tensor]],
    evaluation_model: nn.Module,
    evaluation_input_size: int,
    extractors: Mapping[str, FeatureExtractor],
    real_embeddings: Mapping[str, dict],
    *,
    prdc_k: int = 3,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> dict:
    """Metrics of the final images of one attack.

    ``selected``: the select stage's output: ``images`` uint8 ``C×n×H×W×3``, ``classes`` (``C``
    labels), ``confidence`` ``C×n`` (the target's score of each image). ``unselected``: batches
    ``(images, labels)`` of every optimised candidate, images float ``B×3×H×W`` in [−1, 1] (see
    ``candidate_batches``). ``extractors`` and ``real_embeddings`` (caches of the real training
    images, ``load_cached_embeddings``) are keyed by role (``eval``, ``face``, ``fid``); each cache
    must come from the extractor of its role.

    Returns ``acc1``, ``acc5`` (evaluation model on the final images), ``acc1_unselected``,
    ``acc5_unselected`` (on all candidates), ``delta_face``, ``delta_eval`` (mean squared L2 to the
    nearest real training image of the same class), ``fid`` (against the real training images of the
    attacked classes), ``precision``, ``recall``, ``density``, ``coverage`` (FID features, k-NN with
    ``prdc_k``, per class, averaged), ``target_confidence`` (mean of ``selected["confidence"]``),
    ``eval_confidence`` (mean softmax of the evaluation model for the target class),
    ``per_class`` (``classes`` and, per class, acc1, acc5, delta_face, delta_eval,
    target_confidence, eval_confidence: what the claims check pairs), ``num_classes``,
    ``images_per_class``, ``prdc_k``, ``extractors`` (role → name). Raises on any value that
    cannot be computed (never a partial result).
    """
    device = torch.device(device)
    images, labels, classes = _final_images(selected)
    _check_roles(extractors, real_embeddings)
    evaluation_model = evaluation_model.to(device).eval()
    logits, features = _final_logits_and_features(images, evaluation_model, evaluation_input_size,
                                                  extractors, batch_size, device)
    unselected_logits, unselected_labels = _unselected_logits(unselected, evaluation_model,
                                                              evaluation_input_size, device)
    real_fid = _restricted(real_embeddings["fid"], classes, "fid")
    per_image = _per_image(selected, logits, features, labels, real_embeddings)
    metrics = {
        **topk_accuracy(logits, labels),
        **{f"{key}_unselected": value for key, value in
           topk_accuracy(unselected_logits, unselected_labels).items()},
        **{key: float(per_image[key].double().mean())
           for key in ("delta_face", "delta_eval", "target_confidence", "eval_confidence")},
        "fid": frechet_distance(features["fid"], real_fid["features"]),
        **prdc_per_class(real_fid["features"], real_fid["labels"], features["fid"], labels, prdc_k),
        "per_class": per_class_means(per_image, labels),
        "num_classes": len(classes),
        "images_per_class": len(images) // len(classes),
        "prdc_k": prdc_k,
        "extractors": {role: extractors[role].name for role in ROLES},
    }
    check_complete(metrics)
    return metrics


def _per_image(selected: Mapping, logits: torch.Tensor, features: Mapping, labels: torch.Tensor,
               real_embeddings: Mapping) -> dict:
    """Per final image: top-k hits, δ_face, δ_eval, the target's and the evaluation model's
    confidence."""
    return {
        **topk_hits(logits, labels),
        "delta_face": _nearest(features["face"], labels, real_embeddings["face"]),
        "delta_eval": _nearest(features["eval"], labels, real_embeddings["eval"]),
        "target_confidence": torch.as_tensor(selected["confidence"]).reshape(-1),
        "eval_confidence": logits.softmax(dim=1).gather(1, labels[:, None]).reshape(-1),
    }


def _check_roles(extractors: Mapping[str, FeatureExtractor], real_embeddings: Mapping) -> None:
    missing = [role for role in ROLES if role not in extractors or role not in real_embeddings]
    if missing:
        raise KeyError(f"extractors/real_embeddings: missing role(s) {missing}; need {list(ROLES)}")
    for role in ROLES:
        if real_embeddings[role]["extractor"] != extractors[role].name:
            raise ValueError(f"real_embeddings[{role!r}] were made by "
                             f"{real_embeddings[role]['extractor']!r}, not by the {role} extractor "
                             f"{extractors[role].name!r}")


def _final_logits_and_features(images: torch.Tensor, evaluation_model: nn.Module, input_size: int,
                               extractors: Mapping[str, FeatureExtractor], batch_size: int,
                               device: torch.device) -> tuple[torch.Tensor, dict]:
    """The evaluation model's logits and every role's features of the final images (uint8
    ``N×H×W×3``), batch by batch."""
    # δ_eval's extractor is usually the evaluation model itself: then one pass gives both.
    shared = _is_penultimate_of(extractors["eval"], evaluation_model, input_size)
    own_extractors = [role for role in ROLES if not (shared and role == "eval")]
    logits, features = [], {role: [] for role in ROLES}
    for start in tqdm(range(0, len(images), batch_size), desc="final images", file=sys.stderr,
                      mininterval=10):
        batch = augment.to_float(images[start:start + batch_size].permute(0, 3, 1, 2)).to(device)
        if shared:
            eval_features, batch_logits = _features_and_logits(evaluation_model, batch, input_size)
            features["eval"].append(eval_features)
            logits.append(batch_logits)
        else:
            logits.append(_logits(evaluation_model, batch, input_size))
        for role in own_extractors:
            features[role].append(extractors[role](batch).cpu())
    return torch.cat(logits), {role: torch.cat(parts) for role, parts in features.items()}


def _unselected_logits(unselected: Iterable[tuple[torch.Tensor, torch.Tensor]],
                       evaluation_model: nn.Module, input_size: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    logits, labels = [], []
    for batch, batch_labels in tqdm(unselected, desc="all candidates", file=sys.stderr,
                                    mininterval=10):
        logits.append(_logits(evaluation_model, batch.to(device), input_size))
        labels.append(torch.as_tensor(batch_labels).reshape(-1).cpu())
    if not logits:
        raise ValueError("unselected: no candidate images")
    return torch.cat(logits), torch.cat(labels)


def candidate_batches(generator, optimise_out: Mapping, *, crop_fraction: float, image_size: int,
                      batch_size: int, device: torch.device | str
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Render every optimised latent (``optimise_out["w"]`` ``C×k×…``) as the select stage renders
    its final images (centre crop ``crop_fraction``, resize ``image_size``, quantised to uint8), and
    yield ``([−1, 1] images, labels)`` batches: the unselected set, judged as the final one is."""
    from lsmia.attacks.views import target_view, to_uint8

    w = optimise_out["w"].float()
    classes = torch.as_tensor(optimise_out["classes"], dtype=torch.int64)
    flat_w = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
    labels = classes.repeat_interleave(w.shape[1])
    with torch.no_grad():
        for start in range(0, len(flat_w), batch_size):
            rendered = generator.synthesise(flat_w[start:start + batch_size].to(device))
            quantised = to_uint8(target_view(rendered, crop_fraction, image_size))
            yield augment.to_float(quantised.permute(0, 3, 1, 2)), labels[start:start + batch_size]


def check_complete(metrics: Mapping) -> None:
    """Raise naming every number of ``NUMBERS`` that is missing or not finite."""
    bad = {key: metrics.get(key) for key in NUMBERS
           if not isinstance(metrics.get(key), (int, float)) or not math.isfinite(metrics[key])}
    if bad:
        raise ValueError(f"metrics: missing or non-finite values {bad}")


def write_metrics(metrics: Mapping, path: str | os.PathLike, seed: int | None = None,
                  **extra) -> None:
    """Write ``metrics.json`` atomically after ``check_complete`` (no partial file, ever)."""
    check_complete(metrics)
    save_json({**metrics, **extra, "provenance": provenance(seed=seed)}, path)


def _final_images(selected: Mapping) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    images = torch.as_tensor(selected["images"])
    if images.dtype != torch.uint8 or images.dim() != 5 or images.shape[-1] != 3:
        raise ValueError(f"selected['images']: expected uint8 C×n×H×W×3, got {images.dtype} "
                         f"{tuple(images.shape)}")
    classes = torch.as_tensor(selected["classes"], dtype=torch.int64).reshape(-1)
    if len(classes) != images.shape[0] or images.shape[1] == 0:
        raise ValueError(f"selected: {len(classes)} classes for images of shape "
                         f"{tuple(images.shape)}")
    labels = classes.repeat_interleave(images.shape[1])
    return images.reshape(-1, *images.shape[2:]), labels, classes.tolist()


@torch.no_grad()
def _logits(model: nn.Module, images: torch.Tensor, input_size: int) -> torch.Tensor:
    logits = model(augment.resize(images.float(), input_size)).float().cpu()
    if not torch.isfinite(logits).all():
        raise FloatingPointError("evaluation model: NaN or infinite logits")
    return logits


def _is_penultimate_of(extractor, model: nn.Module, input_size: int) -> bool:
    """Whether ``extractor`` gives ``model``'s pre-logit features (the classifier's input) at
    ``input_size``; a defence wrapper's pre-logits need not be its classifier's input."""
    return (getattr(extractor, "network", None) is model and extractor.input_size == input_size
            and not hasattr(model, "forward_with_regulariser"))


@torch.no_grad()
def _features_and_logits(model: nn.Module, images: torch.Tensor,
                         input_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-logit features and logits of one pass (the same numbers as two separate passes)."""
    features = penultimate(model, augment.resize(images.float(), input_size)).float()
    logits = model.get_classifier()(features).float()
    if not torch.isfinite(features).all() or not torch.isfinite(logits).all():
        raise FloatingPointError("evaluation model: NaN or infinite features or logits")
    return features.flatten(1).cpu(), logits.cpu()


def _restricted(cache: Mapping, classes: list[int], role: str) -> dict:
    keep = torch.isin(cache["labels"], torch.tensor(classes))
    absent = sorted(set(classes) - set(cache["labels"][keep].tolist()))
    if absent:
        raise ValueError(f"real_embeddings[{role!r}]: no real images of attacked class(es) "
                         f"{absent[:10]}")
    return {"features": cache["features"][keep], "labels": cache["labels"][keep]}


def _nearest(features: torch.Tensor, labels: torch.Tensor, cache: Mapping) -> torch.Tensor:
    return nearest_same_class_sq_l2(features, labels, cache["features"], cache["labels"])
