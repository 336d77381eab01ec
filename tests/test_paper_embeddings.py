"""lsmia.paper.embeddings: features of chosen classes and the classifier templates of a model."""

import numpy as np
import pandas as pd
import pytest
import torch

from lsmia.data.packed import PackedDataset, write_packed
from lsmia.models import create_model, penultimate
from lsmia.paper.embeddings import class_features, classifier_weights
from lsmia.paper.figures import project_to_template_plane


@pytest.fixture
def packed(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    images = rng.integers(0, 255, (len(labels), 16, 16, 3), dtype=np.uint8)
    index = pd.DataFrame(
        {
            "label": labels,
            "identity": [f"id{label}" for label in labels],
            "split": "train",
            "source": [f"s{i}" for i in range(len(labels))],
        }
    )
    return PackedDataset(write_packed(tmp_path / "set", images, index, {"seed": 0}), split="train")


def test_class_features_match_the_model(packed):
    torch.manual_seed(0)
    model = create_model("tiny_resnet", num_classes=4).eval()
    features, labels, weights = class_features(
        model, packed, [0, 2, 3], 16, torch.device("cpu"), batch_size=4
    )
    assert sorted(set(labels.tolist())) == [0, 2, 3] and len(labels) == 15
    assert weights.shape == (4, features.shape[1])
    images, _ = packed.batch(np.flatnonzero(packed.labels == 2))
    with torch.no_grad():
        expected = penultimate(model, images.float() / 127.5 - 1.0).numpy()
    np.testing.assert_allclose(features[labels == 2], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(weights, model.get_classifier().weight.detach().numpy())
    projection = project_to_template_plane(features, labels, weights, [0, 2, 3])
    assert projection.points.shape == (15, 2)


def test_class_without_images_is_an_error(packed):
    model = create_model("tiny_resnet", num_classes=6).eval()
    with pytest.raises(ValueError, match=r"no images of classes \[5\]"):
        class_features(model, packed, [0, 1, 5], 16, torch.device("cpu"))


def test_classifier_must_be_linear():
    class NoLinear(torch.nn.Module):
        def get_classifier(self):
            return torch.nn.Identity()

    with pytest.raises(TypeError, match="not a linear layer"):
        classifier_weights(NoLinear())
