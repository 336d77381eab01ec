"""Knowledge extraction score: a student trained on attack images only, judged on real images."""

import numpy as np
import pandas as pd
import pytest
from lsmia.data.packed import PackedDataset, write_packed
from lsmia.metrics.knowledge import knowledge_extraction_score

SIZE, CLASSES = 16, 12
ATTACKED = [0, 2, 3, 5, 6, 8, 9, 11]
PER_CLASS = 6
RECIPE = {
    "alpha": 0.0, "epochs": 15, "batch_size": 8, "eval_batch_size": 64,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
    "lr_schedule": {"name": "cosine", "min_lr": 1e-4},
    "augment": {"resize": SIZE, "crop_scale": [0.8, 1.0], "crop_ratio": [1.0, 1.0], "jitter": None,
                "flip": True},
    "seed": 42,
}
ARCH = {"model": "tiny_resnet", "input_size": SIZE, "arch_kwargs": {"widths": [8, 16, 16]}}
COLOURS = np.array([[r, g, b] for r in (30, 130, 230) for g in (30, 230) for b in (30, 230)])


def _coloured(labels, rng):
    """Each class a solid colour plus noise: trivially separable."""
    noise = rng.normal(0, 20, size=(len(labels), SIZE, SIZE, 3))
    return np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(CLASSES), 12)
    split = np.tile(["train"] * 9 + ["test"] * 3, CLASSES)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels], "split": split,
                          "source": "synthetic"})
    path = write_packed(tmp_path_factory.mktemp("real") / "packed", _coloured(labels, rng), index,
                        {"seed": 0})
    return PackedDataset(path, "train"), PackedDataset(path, "test")


def _attack(labels_for_training, real, workdir):
    rng = np.random.default_rng(1)
    true_labels = np.repeat(ATTACKED, PER_CLASS)
    images = _coloured(true_labels, rng).reshape(len(ATTACKED), PER_CLASS, SIZE, SIZE, 3)
    return knowledge_extraction_score(images, labels_for_training(true_labels, rng), *real,
                                      ATTACKED, RECIPE, arch=ARCH, device="cpu", workdir=workdir)


def test_separable_attack_images_transfer_their_knowledge(real, tmp_path):
    score = _attack(lambda labels, rng: labels, real, tmp_path)
    assert score["xi_train"] == 1.0 and score["xi_test"] == 1.0
    assert score["per_class"] == {"classes": sorted(ATTACKED), "xi_train": [1.0] * len(ATTACKED),
                                  "xi_test": [1.0] * len(ATTACKED)}
    assert score["real_train_images"] == 9 * len(ATTACKED)
    assert score["real_test_images"] == 3 * len(ATTACKED)
    assert score["attack_images"] == PER_CLASS * len(ATTACKED)
    assert PackedDataset(tmp_path / "attack_images").num_classes == len(ATTACKED)
    assert (tmp_path / "log.csv").is_file() and not (tmp_path / "checkpoint.pt").exists()


def test_shuffled_labels_give_chance_level(real, tmp_path):
    score = _attack(lambda labels, rng: rng.permutation(labels), real, tmp_path)
    assert score["xi_train"] < 0.5 and score["xi_test"] < 0.5   # chance: 1/8


def test_images_of_the_wrong_identity_give_zero(real, tmp_path):
    shifted = dict(zip(ATTACKED, ATTACKED[1:] + ATTACKED[:1], strict=True))
    score = _attack(lambda labels, rng: np.array([shifted[label] for label in labels]), real,
                    tmp_path)
    assert score["xi_train"] == 0.0 and score["xi_test"] == 0.0
    assert set(score["per_class"]["xi_test"]) == {0.0}


def test_labels_outside_the_attacked_classes_are_refused(real, tmp_path):
    images = np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="not among the attacked classes"):
        knowledge_extraction_score(images, [0, 0, 1, 1], *real, [0, 2], RECIPE, arch=ARCH,
                                   device="cpu", workdir=tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        knowledge_extraction_score(images.astype(np.float32), [0, 0, 2, 2], *real, [0, 2], RECIPE,
                                   arch=ARCH, device="cpu", workdir=tmp_path)
