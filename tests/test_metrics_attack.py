"""One attack's metrics: values against direct computation, and no output when anything fails."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from lsmia.data.augment import to_float
from lsmia.data.packed import PackedDataset, write_packed
from lsmia.metrics.accuracy import topk_accuracy
from lsmia.metrics.attack_metrics import (
    NUMBERS,
    candidate_batches,
    compute_attack_metrics,
    write_metrics,
)
from lsmia.metrics.embeddings import compute_embeddings
from lsmia.metrics.extractors import NetworkExtractor, model_penultimate
from lsmia.metrics.fid import frechet_distance
from lsmia.metrics.prdc import prdc_per_class
from lsmia.models import create_model
from torch import nn

SIZE, CLASSES, TRAIN_PER_CLASS, FINAL_PER_CLASS = 8, 6, 10, 5


def _projection(name, seed, width=6):
    """A fixed random linear map of the flattened image: a stand-in feature network."""
    generator = torch.Generator().manual_seed(seed)
    network = nn.Linear(3 * SIZE * SIZE, width)
    with torch.no_grad():
        network.weight.copy_(torch.randn(network.weight.shape, generator=generator) / SIZE)
    return NetworkExtractor(name, SIZE, network, lambda net, x: net(x.flatten(1)))


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(CLASSES), TRAIN_PER_CLASS)
    images = rng.integers(0, 256, size=(len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels],
                          "split": "train", "source": "synthetic"})
    path = write_packed(tmp_path_factory.mktemp("real") / "packed", images, index, {"seed": 0})
    extractors = {"eval": _projection("eval@0", 1), "face": _projection("face@0", 2),
                  "fid": _projection("fid@0", 3)}
    real = {role: compute_embeddings(extractor, PackedDataset(path), "train", None, 16, "cpu")
            for role, extractor in extractors.items()}
    torch.manual_seed(0)
    evaluation_model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, CLASSES))
    classes = torch.tensor([1, 3, 4, 5])
    shape = (len(classes), FINAL_PER_CLASS, SIZE, SIZE, 3)
    final = torch.from_numpy(rng.integers(0, 256, size=shape, dtype=np.uint8))
    selected = {"images": final, "classes": classes,
                "confidence": torch.full((len(classes), FINAL_PER_CLASS), 0.25)}
    candidates = to_float(torch.from_numpy(
        rng.integers(0, 256, size=(12, 3, SIZE, SIZE), dtype=np.uint8)))
    unselected = [(candidates[:7], classes.repeat_interleave(3)[:7]),
                  (candidates[7:], classes.repeat_interleave(3)[7:])]
    return {"path": path, "images": images, "labels": labels, "extractors": extractors,
            "real": real, "model": evaluation_model, "selected": selected, "unselected": unselected}


def _metrics(setting, **changes):
    arguments = {"selected": setting["selected"], "unselected": setting["unselected"],
                 "evaluation_model": setting["model"], "evaluation_input_size": SIZE,
                 "extractors": setting["extractors"], "real_embeddings": setting["real"],
                 "prdc_k": 3, "batch_size": 7, "device": "cpu"}
    arguments.update(changes)
    return compute_attack_metrics(**arguments)


def test_metrics_equal_the_primitives_on_the_same_features(setting):
    metrics = _metrics(setting)
    final = to_float(setting["selected"]["images"].reshape(-1, SIZE, SIZE, 3).permute(0, 3, 1, 2))
    labels = setting["selected"]["classes"].repeat_interleave(FINAL_PER_CLASS)
    with torch.no_grad():
        logits = setting["model"](final)
        unselected_logits = torch.cat([setting["model"](x) for x, _ in setting["unselected"]])
    unselected_labels = torch.cat([y for _, y in setting["unselected"]])
    assert metrics["acc1"] == topk_accuracy(logits, labels)["acc1"]
    assert metrics["acc5_unselected"] == topk_accuracy(unselected_logits, unselected_labels)["acc5"]
    fid_real = setting["real"]["fid"]
    attacked = torch.isin(fid_real["labels"], setting["selected"]["classes"])
    fake_fid = setting["extractors"]["fid"](final)
    expected_fid = frechet_distance(fake_fid, fid_real["features"][attacked])
    assert metrics["fid"] == pytest.approx(expected_fid)
    expected_prdc = prdc_per_class(fid_real["features"][attacked], fid_real["labels"][attacked],
                                   fake_fid, labels, k=3)
    assert {key: metrics[key] for key in expected_prdc} == pytest.approx(expected_prdc)
    assert metrics["target_confidence"] == pytest.approx(0.25)
    assert metrics["eval_confidence"] == pytest.approx(
        float(logits.softmax(1).gather(1, labels[:, None]).mean()), rel=1e-6)
    assert metrics["num_classes"] == 4 and metrics["images_per_class"] == FINAL_PER_CLASS
    per_class = metrics["per_class"]
    assert per_class["classes"] == [1, 3, 4, 5]
    for key in ("acc1", "acc5", "delta_face", "delta_eval", "target_confidence",
                "eval_confidence"):  # equal class sizes: the mean of the class means
        assert np.mean(per_class[key]) == pytest.approx(metrics[key], rel=1e-6)
    hits = (logits.argmax(1) == labels).reshape(4, FINAL_PER_CLASS).double().mean(1)
    assert per_class["acc1"] == pytest.approx(hits.tolist())
    assert metrics["extractors"] == {"eval": "eval@0", "face": "face@0", "fid": "fid@0"}
    assert all(math.isfinite(metrics[key]) for key in NUMBERS)


def test_evaluation_model_as_its_own_extractor_sees_each_image_once(setting):
    torch.manual_seed(0)
    model = create_model("tiny_resnet", CLASSES).eval()
    twin = model_penultimate(copy.deepcopy(model), SIZE, "eval@twin")
    real = {**setting["real"],
            "eval": compute_embeddings(twin, PackedDataset(setting["path"]), "train", None, 16, "cpu")}
    apart = _metrics(setting, evaluation_model=model, real_embeddings=real,
                     extractors={**setting["extractors"], "eval": twin})
    seen = []
    features = model.forward_features
    model.forward_features = lambda x: (seen.append(len(x)), features(x))[1]
    shared = _metrics(setting, evaluation_model=model, real_embeddings=real,
                      extractors={**setting["extractors"],
                                  "eval": model_penultimate(model, SIZE, "eval@twin")})
    assert shared == apart  # the same numbers, bit for bit
    finals = setting["selected"]["images"].shape[0] * FINAL_PER_CLASS
    assert sum(seen) == finals + sum(len(x) for x, _ in setting["unselected"])


def test_copies_of_training_images_have_zero_distances(setting):
    classes = setting["selected"]["classes"]
    rows = [np.flatnonzero(setting["labels"] == c)[:FINAL_PER_CLASS] for c in classes.tolist()]
    copies = torch.from_numpy(setting["images"][np.stack(rows)])
    metrics = _metrics(setting, selected={**setting["selected"], "images": copies})
    assert metrics["delta_face"] == pytest.approx(0, abs=1e-10)
    assert metrics["delta_eval"] == pytest.approx(0, abs=1e-10)
    assert metrics["precision"] == 1.0


class _Failing:
    name, input_size = "fid@0", SIZE

    def __call__(self, images):
        raise RuntimeError("CUDA out of memory (simulated)")


def test_raising_extractor_makes_the_metrics_fail(setting):
    with pytest.raises(RuntimeError, match="simulated"):
        _metrics(setting, extractors={**setting["extractors"], "fid": _Failing()})


def test_nan_features_make_the_metrics_fail(setting):
    nan = NetworkExtractor("face@0", SIZE, nn.Identity(),
                           lambda net, x: x.flatten(1) * float("nan"))
    with pytest.raises(FloatingPointError, match="face@0"):
        _metrics(setting, extractors={**setting["extractors"], "face": nan})


def test_cache_of_another_extractor_is_refused(setting):
    with pytest.raises(ValueError, match="real_embeddings\\['face'\\]"):
        _metrics(setting, real_embeddings={**setting["real"], "face": setting["real"]["eval"]})


def test_attacked_class_without_real_images_is_refused(setting):
    selected = {**setting["selected"], "classes": torch.tensor([1, 3, 4, 9])}
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 10))
    with pytest.raises(ValueError, match="9"):
        _metrics(setting, selected=selected, evaluation_model=model)


def test_write_metrics_refuses_incomplete_results(setting, tmp_path):
    metrics = _metrics(setting)
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="fid"):
        write_metrics({**metrics, "fid": float("nan")}, path)
    with pytest.raises(ValueError, match="coverage"):
        write_metrics({key: value for key, value in metrics.items() if key != "coverage"}, path)
    assert not path.exists() and not list(tmp_path.iterdir())
    write_metrics(metrics, path, seed=42)
    written = json.loads(path.read_text())
    assert written["acc1"] == metrics["acc1"] and written["provenance"]["seed"] == 42


class _Prior:
    """A generator stand-in: the latent's first entry is the grey level of the whole image."""

    def synthesise(self, w):
        return w[:, :1, None, None].expand(len(w), 3, 2 * SIZE, 2 * SIZE).clamp(-1, 1)


def test_candidate_batches_render_every_latent_with_its_class():
    w = torch.linspace(-1, 1, 2 * 3 * 4).reshape(2, 3, 4)
    optimised = {"w": w, "classes": torch.tensor([7, 2])}
    batches = list(candidate_batches(_Prior(), optimised, crop_fraction=0.5, image_size=SIZE,
                                     batch_size=4, device="cpu"))
    images = torch.cat([x for x, _ in batches])
    assert images.shape == (6, 3, SIZE, SIZE) and [len(x) for x, _ in batches] == [4, 2]
    assert torch.cat([y for _, y in batches]).tolist() == [7, 7, 7, 2, 2, 2]
    grey = torch.round((w.reshape(6, 4)[:, 0] + 1) * 127.5) / 127.5 - 1   # quantised like uint8
    assert torch.allclose(images[:, 0, 0, 0], grey, atol=1e-6)


def test_class_gradient_cosine_averages_candidates_and_iterations_without_step_zero():
    from lsmia.jobs.evaluate import class_gradient_cosine

    trace = torch.tensor([[[float("nan"), 0.2, 0.4], [float("nan"), 0.0, 0.2]],
                          [[float("nan"), -1.0, -1.0], [float("nan"), 1.0, 1.0]]])
    optimised = {"grad_cosine_trace": trace, "classes": torch.tensor([7, 3])}
    assert class_gradient_cosine(optimised, [3, 7]) == pytest.approx([0.0, 0.2])
