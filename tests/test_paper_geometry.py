"""pareto_front and project_to_template_plane on hand-made cases."""

import numpy as np
import pytest

from lsmia.paper.figures import alpha_label, project_to_template_plane
from lsmia.paper.pareto import pareto_front


def test_pareto_front_hand_case():
    points = [
        (0.90, 0.60),  # 0: front (best utility)
        (0.86, 0.20),  # 1: front (least leakage)
        (0.84, 0.40),  # 2: dominated by 1
        (0.88, 0.50),  # 3: front
        (0.88, 0.55),  # 4: dominated by 3 (same utility, more leakage)
        (0.80, 0.20),  # 5: dominated by 1 (same leakage, less utility)
    ]
    assert pareto_front(points).tolist() == [1, 3, 0]


def test_pareto_front_keeps_equal_points_and_single_point():
    assert pareto_front([(0.5, 0.5), (0.5, 0.5)]).tolist() == [0, 1]
    assert pareto_front([(0.1, 0.9)]).tolist() == [0]


def test_pareto_front_rejects_bad_shapes():
    with pytest.raises(ValueError, match="N×2"):
        pareto_front([1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        pareto_front([(np.nan, 0.1)])


@pytest.fixture
def templates():
    rng = np.random.default_rng(1)
    return rng.normal(size=(4, 6))


def test_features_equal_to_a_template_map_to_its_coordinates(templates):
    classes = [0, 1, 3]
    features = templates[[3, 0, 1, 2]]
    labels = np.array([3, 0, 1, 2])
    projection = project_to_template_plane(features, labels, templates, classes)
    assert projection.labels.tolist() == [3, 0, 1]  # class 2 is not one of the three
    expected = {c: projection.templates[i] for i, c in enumerate(classes)}
    for point, label in zip(projection.points, projection.labels):
        np.testing.assert_allclose(point, expected[label], atol=1e-12)


def test_plane_geometry_is_preserved(templates):
    classes = [0, 1, 3]
    projection = project_to_template_plane(templates, np.arange(4), templates, classes)
    np.testing.assert_allclose(projection.basis @ projection.basis.T, np.eye(2), atol=1e-12)
    original = templates[classes]
    for i in range(3):
        for j in range(3):
            assert np.linalg.norm(
                projection.templates[i] - projection.templates[j]
            ) == pytest.approx(np.linalg.norm(original[i] - original[j]))
    np.testing.assert_allclose(projection.templates.mean(axis=0), 0.0, atol=1e-12)
    # a component orthogonal to the plane does not move the projection
    normal = np.random.default_rng(2).normal(size=6)
    normal -= projection.basis.T @ (projection.basis @ normal)
    shifted = project_to_template_plane(templates[[1]] + 5 * normal, [1], templates, classes)
    np.testing.assert_allclose(shifted.points[0], projection.templates[1], atol=1e-10)


def test_projection_rejects_bad_inputs(templates):
    collinear = np.stack([np.zeros(6), np.ones(6), 2 * np.ones(6)])
    with pytest.raises(ValueError, match="collinear"):
        project_to_template_plane(collinear, [0, 1, 2], collinear, [0, 1, 2])
    with pytest.raises(ValueError, match="three distinct classes"):
        project_to_template_plane(templates, np.arange(4), templates, [0, 0, 1])
    with pytest.raises(ValueError, match="share D"):
        project_to_template_plane(templates[:, :5], np.arange(4), templates, [0, 1, 2])
    with pytest.raises(ValueError, match="out of range"):
        project_to_template_plane(templates, np.arange(4), templates, [0, 1, 7])


def test_alpha_label():
    assert alpha_label(-0.05) == "α = −0.05"
    assert alpha_label(0.1) == "α = +0.1"
    assert alpha_label(0.0) == "α = 0"
