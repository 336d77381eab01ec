"""Feature extractors loaded from weight files the tests write, and the real-embedding cache."""

import numpy as np
import pandas as pd
import pytest
import torch
from lsmia.data.augment import to_float
from lsmia.data.packed import PackedDataset, write_packed
from lsmia.metrics import extractors
from lsmia.metrics.embeddings import compute_embeddings, load_cached_embeddings, save_embeddings
from lsmia.models import create_model, penultimate, save_model

SIZE = 16


def _uint8_images(n, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)


def test_facenet_loads_published_layout_and_standardises_like_facenet_pytorch(tmp_path):
    from facenet_pytorch import InceptionResnetV1, fixed_image_standardization

    torch.manual_seed(0)
    # with a logits layer, as the VGGFace2 file has
    published = InceptionResnetV1(classify=True, num_classes=7).eval()
    path = tmp_path / "facenet.pt"
    torch.save(published.state_dict(), path)

    spec = {"kind": "facenet", "path": path, "name": "facenet"}
    extractor = extractors.load_extractor(spec, "cpu")
    images = _uint8_images(2, extractors.FACENET_SIZE)
    features = extractor(to_float(images))
    published.classify = False
    with torch.no_grad():
        reference = published(fixed_image_standardization(images.float()))
    assert features.shape == (2, 512)
    assert torch.allclose(features, reference, atol=1e-5)
    assert torch.allclose(features.norm(dim=1), torch.ones(2), atol=1e-5)
    assert extractor.input_size == 160 and extractor.name.startswith("facenet@")


def test_facenet_rejects_weights_of_another_network(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ValueError, match="other.pt"):
        extractors.facenet(path)


@pytest.mark.parametrize("kind", ["facenet", "inception"])
def test_missing_weights_name_the_fetch_rule(tmp_path, kind):
    with pytest.raises(FileNotFoundError, match="snakemake fetch_weights"):
        extractors.load_extractor({"kind": kind, "path": tmp_path / "absent.pt"}, "cpu")


def test_inception_fid_loads_weights_and_takes_uint8_at_any_size(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    # A randomly initialised network with the layout of torch-fidelity's published weights.
    with monkeypatch.context() as patch:
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict",
                      lambda self, state: None)
        torch.manual_seed(0)
        random_network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "inception.pth"
    torch.save(random_network.state_dict(), path)

    extractor = extractors.load_extractor({"kind": "inception", "path": path}, "cpu")
    images = _uint8_images(2, 24)
    features = extractor(to_float(images))
    assert features.shape == (2, 2048)
    assert torch.equal(features, random_network(images)[0])   # [−1, 1] → uint8 is exact
    assert extractor.input_size == 299 and extractor.name.startswith("inception@")

    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1)}, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="broken.pth"):
        extractors.inception_fid(tmp_path / "broken.pth")


def _tiny_model_file(tmp_path, seed=0):
    torch.manual_seed(seed)
    model = create_model("tiny_resnet", 4, widths=[8, 8, 16]).eval()
    path = tmp_path / f"model{seed}.pt"
    save_model(path, model, {"arch": "tiny_resnet", "arch_kwargs": {"widths": [8, 8, 16]},
                             "num_classes": 4, "input_size": SIZE})
    return model, path


def test_model_extractor_gives_penultimate_features_at_the_model_input_size(tmp_path):
    model, path = _tiny_model_file(tmp_path)
    extractor = extractors.load_extractor({"kind": "model", "path": path, "name": "eval"}, "cpu")
    images = to_float(_uint8_images(3, 24))
    with torch.no_grad():
        expected = penultimate(model, torch.nn.functional.interpolate(
            images, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True))
    assert torch.allclose(extractor(images), expected, atol=1e-6)
    assert extractor.name.startswith("eval@") and extractor.input_size == SIZE
    _, other = _tiny_model_file(tmp_path, seed=1)
    other_spec = {"kind": "model", "path": other, "name": "eval"}
    other_name = extractors.load_extractor(other_spec, "cpu").name
    assert other_name != extractor.name   # other weights, other cache key


def test_load_extractor_rejects_unknown_kind(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="kind"):
        extractors.load_extractor({"kind": "clip", "path": tmp_path / "w.pt"}, "cpu")
    with pytest.raises(ValueError, match="'kind' and 'path'"):
        extractors.load_extractor({"path": tmp_path / "w.pt"}, "cpu")


def test_extractor_rejects_non_finite_features():
    broken = extractors.NetworkExtractor("broken", 8, torch.nn.Identity(),
                                         lambda net, x: x.mean(dim=(2, 3)) / 0.0 * 0.0)
    with pytest.raises(FloatingPointError, match="broken"):
        broken(torch.zeros(2, 3, 8, 8))


@pytest.fixture
def packed(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 6)
    split = np.tile(["train"] * 5 + ["test"], 3)
    images = rng.integers(0, 256, size=(len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels], "split": split,
                          "source": "synthetic"})
    return write_packed(tmp_path / "packed", images, index, {"seed": 0}), images, labels, split


def test_embeddings_cover_the_split_and_classes_and_round_trip(tmp_path, packed):
    path, images, labels, split = packed
    mean_colour = extractors.NetworkExtractor("mean-colour@0", SIZE, torch.nn.Conv2d(1, 1, 1),
                                              lambda net, x: x.mean(dim=(2, 3)))
    embeddings = compute_embeddings(mean_colour, PackedDataset(path), "train", [0, 2],
                                    batch_size=4, device="cpu")
    rows = np.flatnonzero((split == "train") & np.isin(labels, [0, 2]))
    assert embeddings["rows"].tolist() == rows.tolist()
    assert embeddings["labels"].tolist() == labels[rows].tolist()
    expected = torch.from_numpy(images[rows]).float().div(127.5).sub(1).mean(dim=(1, 2))
    assert torch.allclose(embeddings["features"], expected, atol=1e-6)

    cache = tmp_path / "cache" / "mean.pt"
    save_embeddings(embeddings, cache)
    loaded = load_cached_embeddings(cache, "mean-colour@0", PackedDataset(path))
    assert torch.equal(loaded["features"], embeddings["features"])
    assert "provenance" in loaded
    with pytest.raises(ValueError, match="mean-colour@0"):
        load_cached_embeddings(cache, "facenet@123")


def test_cache_from_other_images_is_refused(tmp_path, packed):
    path, images, labels, split = packed
    identity = extractors.NetworkExtractor("id@0", SIZE, torch.nn.Conv2d(1, 1, 1),
                                           lambda net, x: x.flatten(1))
    cache = tmp_path / "cache.pt"
    embeddings = compute_embeddings(identity, PackedDataset(path), "train", None, 8, "cpu")
    save_embeddings(embeddings, cache)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels], "split": split,
                          "source": "synthetic"})
    other = write_packed(tmp_path / "other", 255 - images, index, {"seed": 0})
    with pytest.raises(ValueError, match="other images"):
        load_cached_embeddings(cache, "id@0", PackedDataset(other))
    with pytest.raises(ValueError, match="no images"):
        compute_embeddings(identity, PackedDataset(path), "test", [7], 8, "cpu")


def test_model_extractor_reuses_a_model_the_caller_has_loaded(tmp_path, monkeypatch):
    model, path = _tiny_model_file(tmp_path)
    spec = {"kind": "model", "path": path, "name": "eval"}
    from_file = extractors.load_extractor(spec, "cpu")
    import lsmia.models

    def no_second_load(*args, **kwargs):
        raise AssertionError("the model file was loaded again")

    monkeypatch.setattr(lsmia.models, "load_model", no_second_load)
    reused = extractors.load_extractor(spec, "cpu", loaded={path: (model, {"input_size": SIZE})})
    assert reused.network is model and reused.name == from_file.name
    assert reused.input_size == SIZE
    _, other = _tiny_model_file(tmp_path, seed=1)
    with pytest.raises(AssertionError, match="loaded again"):   # another path is not taken from it
        extractors.load_extractor({"kind": "model", "path": other}, "cpu",
                                  loaded={path: (model, {"input_size": SIZE})})
