"""The trainer: metrics, schedules in the log, regularisers, NaN guard, kill/SIGTERM resume."""

import copy
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from lsmia.data.packed import PackedDataset, write_packed
from lsmia.models import load_model, save_model
from lsmia.training import Preempted, build_model, evaluate, train
import lsmia.training.trainer as trainer
from lsmia.training.trainer import CHECKPOINT_FILE

SIZE, CLASSES = 16, 4
RECIPE = {
    "alpha": -0.1, "alpha_schedule": "paper", "epochs": 4, "batch_size": 16, "eval_batch_size": 32,
    "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.0},
    "lr_schedule": {"name": "multistep", "milestones": [3], "gamma": 0.1},
    "augment": {"resize": SIZE, "crop_scale": [0.85, 1.0], "crop_ratio": [1.0, 1.0],
                "jitter": [0.2, 0.2, 0.1, 0.1], "flip": True},
    "training_set_size": None, "seed": 42, "defence": None,
}
ARCH_KWARGS = {"widths": [8, 16, 16]}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """64 training and 32 test images of 16 px; each class has its own mean colour."""
    rng = np.random.default_rng(0)
    labels = np.arange(96) % CLASSES
    colours = rng.integers(40, 216, size=(CLASSES, 1, 1, 3))
    images = np.clip(colours[labels] + rng.normal(0, 30, (96, SIZE, SIZE, 3)), 0, 255)
    index = pd.DataFrame({"label": labels, "identity": [f"id{label}" for label in labels],
                          "split": ["train"] * 64 + ["test"] * 32, "source": "synthetic"})
    return write_packed(tmp_path_factory.mktemp("data") / "packed", images.astype(np.uint8),
                        index, {"seed": 0})


def _run(packed, workdir, recipe=RECIPE, model=None):
    model = model if model is not None else build_model("tiny_resnet", CLASSES, recipe,
                                                        arch_kwargs=ARCH_KWARGS)
    metrics = train(model, recipe, PackedDataset(packed, "train"), PackedDataset(packed, "test"),
                    device="cpu", workdir=workdir, log_csv=workdir / "epochs.csv",
                    input_size=SIZE, progress=False)
    return model, metrics


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _assert_same_weights(a, b):
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)


def test_metrics_log_and_schedules(packed, tmp_path):
    recipe = {**RECIPE, "training_set_size": 48}
    model, metrics = _run(packed, tmp_path, recipe)
    assert metrics["train_images"] == 48 and metrics["test_images"] == 32
    logits, labels = evaluate(model, PackedDataset(packed, "test"), device="cpu", input_size=SIZE,
                              batch_size=7)
    accuracy = float((logits.argmax(1) == labels).float().mean())
    assert metrics["test_accuracy"] == pytest.approx(accuracy)
    per_class = metrics["test_per_class"]
    assert per_class["classes"] == sorted(set(labels.tolist()))
    for label, value in zip(per_class["classes"], per_class["test_accuracy"]):
        mine = labels == label
        assert value == pytest.approx(float((logits[mine].argmax(1) == label).float().mean()))
    assert 0.0 <= metrics["test_ece"] <= 1.0
    rows = _rows(tmp_path / "epochs.csv")
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    # paper schedule for 4 epochs with the LR drop at 3: start 2, ramp α·1/2 at 2, α from 3
    assert [float(row["alpha_t"]) for row in rows] == pytest.approx([0, 0, -0.05, -0.1])
    assert [float(row["lr"]) for row in rows] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4])
    assert float(rows[-1]["test_acc"]) == pytest.approx(metrics["test_accuracy"])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_regulariser_is_added_to_the_loss(packed, tmp_path):
    class Regularised(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base, self.calls = base, 0

        def forward(self, x):
            return self.base(x)

        def forward_with_regulariser(self, x, y):
            self.calls += 1
            return self.base(x), torch.tensor(3.0)

    recipe = {**RECIPE, "epochs": 2}
    _, plain = _run(packed, tmp_path / "plain", recipe)
    base = build_model("tiny_resnet", CLASSES, recipe, arch_kwargs=ARCH_KWARGS)
    model, regularised = _run(packed, tmp_path / "reg", recipe, Regularised(base))
    assert model.calls == 2 * 4  # every training batch, never in evaluation
    # a constant extra term leaves the gradients, hence the trajectory, unchanged
    assert regularised["train_loss"] == pytest.approx(plain["train_loss"] + 3.0, abs=1e-5)
    assert regularised["test_accuracy"] == plain["test_accuracy"]


def test_non_finite_loss_stops_training_and_no_model_is_written(packed, tmp_path):
    recipe = {**RECIPE, "epochs": 3}
    model = build_model("tiny_resnet", CLASSES, recipe, arch_kwargs=ARCH_KWARGS)
    calls = []

    def poison(module, inputs, output):
        if module.training:
            calls.append(1)
            if len(calls) > 5:  # epoch 1, batch 1
                return output * float("nan")
        return output

    model.register_forward_hook(poison)
    final = tmp_path / "model.pt"
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        _run(packed, tmp_path, recipe, model)
        save_model(final, model,
                   {"arch": "tiny_resnet", "num_classes": CLASSES, "input_size": SIZE})
    assert not final.exists()
    assert len(_rows(tmp_path / "epochs.csv")) == 1


def test_sigterm_mid_epoch_then_resume_matches_uninterrupted(packed, tmp_path):
    reference, _ = _run(packed, tmp_path / "reference")
    model = build_model("tiny_resnet", CLASSES, RECIPE, arch_kwargs=ARCH_KWARGS)
    calls = []

    def send_sigterm(module, inputs):
        if module.training:
            calls.append(1)
            if len(calls) == 6:  # epoch 1, batch 1
                os.kill(os.getpid(), signal.SIGTERM)

    handle = model.register_forward_pre_hook(send_sigterm)
    workdir = tmp_path / "interrupted"
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted, match="epoch 1 before batch 2"):
        _run(packed, workdir, RECIPE, model)
    handle.remove()
    assert signal.getsignal(signal.SIGTERM) == handler_before
    assert len(torch.load(workdir / CHECKPOINT_FILE, weights_only=True)["rows"]) == 1
    resumed, _ = _run(packed, workdir)
    _assert_same_weights(resumed, reference)
    assert [row["epoch"] for row in _rows(workdir / "epochs.csv")] == ["0", "1", "2", "3"]


def test_checkpoint_of_another_recipe_is_not_resumed(packed, tmp_path, caplog):
    recipe = {**RECIPE, "epochs": 1}
    _run(packed, tmp_path, recipe)
    changed = {**recipe, "alpha": 0.1, "alpha_schedule": "none"}
    with caplog.at_level(logging.WARNING, logger="lsmia.training"):
        _run(packed, tmp_path, changed)
    assert "starting over" in caplog.text
    assert float(_rows(tmp_path / "epochs.csv")[0]["alpha_t"]) == 0.1


def test_checkpoint_from_other_starting_weights_is_not_resumed(packed, tmp_path, caplog,
                                                              monkeypatch):
    """A killed run, then the pretrained file it started from is retrained: start over."""
    save = trainer._save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise RuntimeError("killed after the first epoch")

    monkeypatch.setattr(trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        _run(packed, tmp_path / "run")
    monkeypatch.setattr(trainer, "_save_checkpoint", save)
    other_start = build_model("tiny_resnet", CLASSES, RECIPE, arch_kwargs=ARCH_KWARGS)
    with torch.no_grad():
        next(other_start.parameters()).mul_(1.5)  # same shapes, other values
    reference = copy.deepcopy(other_start)
    with caplog.at_level(logging.INFO, logger="lsmia.training"):
        resumed, _ = _run(packed, tmp_path / "run", model=other_start)
    assert "starting over" in caplog.text and "resuming" not in caplog.text
    _assert_same_weights(resumed, _run(packed, tmp_path / "reference", model=reference)[0])


SCRIPT = textwrap.dedent("""
    import json, logging, os, sys, time
    import torch
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    import lsmia.training.trainer as trainer
    from lsmia.data.packed import PackedDataset
    from lsmia.models import save_model
    from lsmia.training import build_model

    data, workdir, out, recipe, arch_kwargs = sys.argv[1], sys.argv[2], sys.argv[3], \\
        json.loads(sys.argv[4]), json.loads(sys.argv[5])
    pause = float(os.environ.get("PAUSE_AFTER_CHECKPOINT", "0"))
    save_checkpoint = trainer._save_checkpoint

    def save_then_pause(*args, **kwargs):  # gives the test a moment to kill us mid-training
        save_checkpoint(*args, **kwargs)
        time.sleep(pause)

    trainer._save_checkpoint = save_then_pause
    model = build_model("tiny_resnet", 4, recipe, arch_kwargs=arch_kwargs)
    try:
        trainer.train(model, recipe, PackedDataset(data, "train"), PackedDataset(data, "test"),
                      device="cpu", workdir=workdir, log_csv=os.path.join(workdir, "epochs.csv"),
                      input_size=16, progress=False)
    except trainer.Preempted:
        sys.exit(trainer.Preempted.exit_code)
    save_model(out, model, {"arch": "tiny_resnet", "arch_kwargs": arch_kwargs, "num_classes": 4,
                            "input_size": 16})
""")


def _start(script, packed, workdir, out, pause):
    env = {**os.environ, "PAUSE_AFTER_CHECKPOINT": str(pause), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(packed), str(workdir), str(out),
                             json.dumps(RECIPE), json.dumps(ARCH_KWARGS)], env=env,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_sigkill_then_rerun_matches_uninterrupted_run(packed, tmp_path):
    reference, _ = _run(packed, tmp_path / "reference")  # same thread count as the subprocesses
    script = tmp_path / "train_once.py"
    script.write_text(SCRIPT)

    workdir, out = tmp_path / "killed", tmp_path / "killed.pt"
    victim = _start(script, packed, workdir, out, pause=60)
    _wait_for(workdir / CHECKPOINT_FILE, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert not out.exists()
    assert len(torch.load(workdir / CHECKPOINT_FILE, weights_only=True)["rows"]) == 1

    rerun = _start(script, packed, workdir, out, 0)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "resuming from" in stderr and "after epoch 0" in stderr
    _assert_same_weights(load_model(out)[0], reference.eval())
