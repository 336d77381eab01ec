"""The toy example: its outputs, its stopping rule and that two runs give identical numbers."""

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

from lsmia.paper import toy
from lsmia.training.losses import label_smoothing_loss


def _example_in_fresh_process(out):
    threads = torch.get_num_threads()
    results = toy.run_toy_example(out / "toy.csv", out / "toy.png", out / "toy.pdf")
    assert torch.get_num_threads() == threads  # restored after the single-threaded run
    return results


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The full example and a second, independent set of runs, in two fresh processes at once
    (each is single-threaded, so they take the time of one)."""
    out = tmp_path_factory.mktemp("toy")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        example = pool.submit(_example_in_fresh_process, out)
        runs = pool.submit(toy.run_toy_runs)
        return out, example.result(), runs.result()


@pytest.fixture(scope="module")
def first_run(two_runs):
    return two_runs[:2]


@pytest.mark.slow  # two full runs: about 45 s of CPU each
def test_outputs_and_csv_format(first_run):
    out, results = first_run
    for name in ("toy.png", "toy.pdf"):
        assert (out / name).stat().st_size > 0
    text = (out / "toy.csv").read_text().splitlines()
    assert text[0] == "alpha,steps,closest_distance,final_loss,attack_final_loss"
    for line in text[1:]:
        distance = line.split(",")[2]
        assert len(distance.split(".")[1]) >= 4
    csv = pd.read_csv(out / "toy.csv")
    assert csv.alpha.tolist() == [0.0, 0.05, -0.05]
    assert csv.steps.tolist() == results.steps.tolist()
    np.testing.assert_allclose(csv.closest_distance, results.closest_distance, atol=1e-6)
    np.testing.assert_allclose(csv.final_loss, results.final_loss, atol=1e-6)


@pytest.mark.slow  # two full runs: about 45 s of CPU each
def test_final_loss_is_the_training_loss_and_the_attack_loss_has_its_own_column(first_run):
    """``final_loss`` is each model's label-smoothing training loss: with α < 0 it can be (and here
    is) negative. The attack's cross-entropy is never negative and, once the attack stopped at
    confidence > 0.95, below −ln 0.95 for every α."""
    _, results = first_run
    negative = results[results.alpha < 0]
    assert (negative.final_loss < 0).all()
    assert (results[results.alpha >= 0].final_loss > 0).all()
    assert (results.attack_final_loss >= 0).all()
    assert (results.attack_final_loss < -math.log(toy.CONFIDENCE_STOP)).all()
    assert not np.allclose(results.final_loss, results.attack_final_loss)


def test_training_loss_is_the_label_smoothing_loss_of_the_last_iteration(monkeypatch):
    """Three iterations instead of 5,000: the returned loss is the one the last update used."""
    points, labels = toy.toy_data()
    for alpha in toy.ALPHAS:
        monkeypatch.setattr(toy, "TRAIN_ITERATIONS", 3)
        _, loss = toy.train_toy_model(points, labels, alpha)
        monkeypatch.setattr(toy, "TRAIN_ITERATIONS", 2)  # same seed: the weights the last step saw
        before_last, _ = toy.train_toy_model(points, labels, alpha)
        with torch.no_grad():
            expected = label_smoothing_loss(before_last.train()(points), labels, alpha).item()
        assert loss == pytest.approx(expected, rel=1e-6)


def test_data_is_the_specified_blobs():
    points, labels = toy.toy_data()
    assert points.dtype == torch.float32 and labels.dtype == torch.long
    assert points.shape == (500, 2) and torch.bincount(labels).tolist() == [167, 167, 166]
    centres = torch.stack([points[labels == c].mean(0) for c in range(3)])
    torch.testing.assert_close(
        centres, torch.tensor([[0.0, -10.0], [-10.0, 10.0], [10.0, 10.0]]), atol=0.4, rtol=0
    )


@pytest.mark.slow  # two full runs: about 45 s of CPU each
def test_two_runs_are_identical_and_follow_the_stopping_rule(two_runs):
    _, results, runs = two_runs
    assert [r.steps for r in runs] == results.steps.tolist()
    assert [r.closest_distance for r in runs] == results.closest_distance.tolist()
    assert [r.final_loss for r in runs] == results.final_loss.tolist()
    assert [r.attack_final_loss for r in runs] == results.attack_final_loss.tolist()
    points, labels = toy.toy_data()
    class_two = points[labels == toy.TARGET_CLASS].numpy()
    for run in runs:
        assert run.path.shape == (run.steps + 2, 2)  # start, then one point per step
        np.testing.assert_array_equal(run.path[0], toy.START)
        nearest = np.linalg.norm(class_two - run.path[-1], axis=1).min()
        assert run.closest_distance == pytest.approx(nearest, abs=1e-5)
        with torch.no_grad():
            inputs = torch.tensor(run.path[:-1])  # the point each step's output was computed at
            confidence = torch.softmax(run.model.eval()(inputs), 1)[:, toy.TARGET_CLASS]
        assert (confidence[:-1] <= toy.CONFIDENCE_STOP).all()
        stopped_early = run.steps < toy.MAX_ATTACK_STEPS - 1
        if stopped_early:
            assert confidence[-1] > toy.CONFIDENCE_STOP
            assert run.attack_final_loss < -math.log(toy.CONFIDENCE_STOP)
