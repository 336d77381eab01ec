"""PPA optimisation stage: progress, logs, determinism, resume after SIGKILL, SIGTERM handling,
a compiled target."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from lsmia.attacks import Preempted, ProceduralFacePrior, optimise_stage
from lsmia.attacks.views import PAPER_CROP_FRACTION, target_view

CPU = torch.device("cpu")
CLASSES, PER_CLASS, BATCH = (0, 3), 4, 2  # 8 samples: 4 batches
KILL_ITERATIONS = 10  # about a second per batch: the kill lands between batches


def tiny_target(num_classes=4):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )


def run_optimise(state_path, log_csv, iterations=8, lr=0.05, checkpoint_seconds=0,
                 batch_size=BATCH, compile_target=False):
    """The same small attack every time (also run in a subprocess by the kill tests); the state is
    saved after every batch unless ``checkpoint_seconds`` says otherwise."""
    torch.set_num_threads(1)
    prior = ProceduralFacePrior(32, CPU)
    w = prior.sample_w(len(CLASSES) * PER_CLASS, seed=0, psi=0.5, cutoff=8)
    sample_out = {"w": w.reshape(len(CLASSES), PER_CLASS, 1, prior.w_dim),
                  "classes": torch.tensor(CLASSES)}
    return optimise_stage(
        prior, tiny_target(), sample_out, iterations=iterations, lr=lr, betas=(0.1, 0.1),
        crop_scale=(0.9, 1.0), crop_fraction=PAPER_CROP_FRACTION, input_size=24,
        batch_size=batch_size, seed=7, device=CPU, state_path=state_path, log_csv=log_csv,
        checkpoint_seconds=checkpoint_seconds, compile_target=compile_target,
    )


def assert_same(first, second):
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, equal_nan=True)


def start_subprocess(tmp_path):
    """Run ``run_optimise`` in a fresh interpreter; returns the process once batch 1 is saved."""
    state = tmp_path / "state.pt"
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from test_attack_optimise import run_optimise; "
        f"run_optimise({str(state)!r}, {str(tmp_path / 'killed.csv')!r}, "
        f"iterations={KILL_ITERATIONS})"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"optimisation subprocess never saved a batch: {process.stderr.read()}")
        time.sleep(0.005)
    return process, state


def sigterm_in_batch(monkeypatch, number):
    """SIGTERM to this process as ``run_optimise``'s batch ``number`` starts."""
    from lsmia.attacks import optimise

    run_batch = optimise._optimise_batch

    def terminate_then_run(*args, **kwargs):
        if kwargs["batch_seed"] == 7 * 1_000_003 + number:
            os.kill(os.getpid(), signal.SIGTERM)
        return run_batch(*args, **kwargs)

    monkeypatch.setattr(optimise, "_optimise_batch", terminate_then_run)


def saved_batches(state):
    return len(torch.load(state, weights_only=True)["batches"])


def test_optimisation_raises_confidence_and_logs_every_step(tmp_path):
    out = run_optimise(tmp_path / "state.pt", tmp_path / "log.csv")
    assert out["w"].shape == (2, PER_CLASS, ProceduralFacePrior(8, CPU).w_dim)
    assert out["confidence"].shape == (2, PER_CLASS) and out["classes"].tolist() == list(CLASSES)
    assert out["loss_trace"].shape == (2, PER_CLASS, 8)
    assert out["loss_trace"][..., -1].mean() < out["loss_trace"][..., 0].mean()
    assert out["confidence_trace"][..., -1].mean() > out["confidence_trace"][..., 0].mean()
    cosine = out["grad_cosine_trace"]
    assert cosine[..., 0].isnan().all() and cosine[..., 1:].abs().max() <= 1 + 1e-6

    log = pd.read_csv(tmp_path / "log.csv")
    assert sorted(log["scope"].unique()) == ["all", "batch0", "batch1", "batch2", "batch3"]
    overall = log[log["scope"] == "all"].set_index("iteration")
    assert len(overall) == 8 and (overall["samples"] == 8).all()
    torch.testing.assert_close(
        torch.tensor(overall["loss_mean"].values), out["loss_trace"].reshape(8, 8).mean(0).double())
    flat_cosine = cosine.reshape(8, 8)[:, 1:]
    torch.testing.assert_close(torch.tensor(overall["grad_cosine_mean"].values[1:]),
                               flat_cosine.mean(0).double())
    torch.testing.assert_close(torch.tensor(overall["grad_cosine_std"].values[1:]),
                               flat_cosine.std(0, correction=0).double())
    assert overall["grad_cosine_mean"].isna()[0]


def test_optimisation_is_deterministic_and_reuses_finished_state(tmp_path):
    first = run_optimise(tmp_path / "a.pt", tmp_path / "a.csv", iterations=3)
    second = run_optimise(tmp_path / "b.pt", tmp_path / "b.csv", iterations=3)
    assert_same(first, second)
    # A complete state is reused as is; a state from other settings is ignored.
    assert_same(run_optimise(tmp_path / "a.pt", tmp_path / "a.csv", iterations=3), first)
    changed = run_optimise(tmp_path / "a.pt", tmp_path / "a.csv", iterations=3, lr=0.01)
    assert not torch.equal(changed["w"], first["w"])


def test_final_confidence_is_of_the_final_w_not_the_last_iteration(tmp_path):
    """The stored confidence is the mirror-averaged softmax of the final w, uncropped: the last
    iteration's forward pass saw w before the last Adam step through a random crop, so it cannot
    stand in for it (the stage's one extra no-grad pass)."""
    out = run_optimise(tmp_path / "state.pt", tmp_path / "log.csv", iterations=3)
    prior, target = ProceduralFacePrior(32, CPU), tiny_target().eval()
    w, targets = out["w"].reshape(-1, prior.w_dim), torch.tensor(CLASSES).repeat_interleave(PER_CLASS)
    with torch.no_grad():
        view = target_view(prior.synthesise(w), PAPER_CROP_FRACTION, 24)
        mirrored = torch.cat([view, view.flip(-1)])
        both = target(mirrored).softmax(dim=1)
        expected = 0.5 * (both[: len(w)] + both[len(w) :])
    expected = expected.gather(1, targets[:, None])[:, 0].reshape(len(CLASSES), PER_CLASS)
    torch.testing.assert_close(out["confidence"], expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out["confidence"], out["confidence_trace"][..., -1], atol=1e-4)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    process, state = start_subprocess(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 1 <= saved_batches(state) < len(CLASSES) * PER_CLASS // BATCH
    resumed = run_optimise(state, tmp_path / "resumed.csv", iterations=KILL_ITERATIONS)
    uninterrupted = run_optimise(tmp_path / "fresh.pt", tmp_path / "fresh.csv",
                                 iterations=KILL_ITERATIONS)
    assert_same(resumed, uninterrupted)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "resumed.csv"),
                                  pd.read_csv(tmp_path / "fresh.csv"))


def test_sigterm_keeps_finished_batches_and_exits_with_preempted(tmp_path):
    process, state = start_subprocess(tmp_path)
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Preempted" in stderr and "rerun to resume" in stderr
    assert 1 <= saved_batches(state) < len(CLASSES) * PER_CLASS // BATCH


def test_sigterm_in_process_raises_preempted(tmp_path, monkeypatch):
    from lsmia.attacks import optimise

    def terminate_then_run(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    original = optimise._optimise_batch
    monkeypatch.setattr(optimise, "_optimise_batch", terminate_then_run)
    with pytest.raises(Preempted, match="0 of 4 batches saved"):
        run_optimise(tmp_path / "state.pt", tmp_path / "log.csv", iterations=2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_optimise_rejects_mismatched_inputs(tmp_path):
    prior = ProceduralFacePrior(32, CPU)
    settings = dict(iterations=2, lr=0.005, betas=(0.1, 0.1), crop_scale=(0.9, 1.0),
                    crop_fraction=PAPER_CROP_FRACTION, input_size=24, batch_size=2, seed=0,
                    device=CPU, state_path=tmp_path / "s.pt", log_csv=tmp_path / "l.csv")
    with pytest.raises(ValueError, match="w_dim"):
        optimise_stage(prior, tiny_target(), {"w": torch.zeros(1, 2, 5), "classes": [0]},
                       **settings)
    with pytest.raises(ValueError, match="class 9 is beyond the target's 4 outputs"):
        optimise_stage(prior, tiny_target(),
                       {"w": torch.zeros(1, 2, prior.w_dim), "classes": [9]}, **settings)


class NaNFromCall(nn.Module):
    """``tiny_target`` whose logits turn NaN for batch rows ``rows`` from forward call ``call``."""

    def __init__(self, call, rows):
        super().__init__()
        self.base, self.call, self.rows, self.calls = tiny_target(), call, rows, 0

    def forward(self, x):
        logits = self.base(x)
        self.calls += 1
        if self.calls >= self.call:
            logits = logits.clone()
            logits[self.rows] = float("nan")
        return logits


def test_non_finite_loss_stops_the_stage_naming_class_and_iteration(tmp_path):
    prior = ProceduralFacePrior(32, CPU)
    w = prior.sample_w(8, seed=0, psi=0.5, cutoff=8).reshape(2, 4, 1, prior.w_dim)
    with pytest.raises(FloatingPointError, match="class 3 is nan at iteration 2"):
        optimise_stage(prior, NaNFromCall(call=3, rows=slice(5, 8)),
                       {"w": w, "classes": torch.tensor([0, 3])}, iterations=4, lr=0.05,
                       betas=(0.1, 0.1), crop_scale=(0.9, 1.0), crop_fraction=PAPER_CROP_FRACTION,
                       input_size=24, batch_size=8, seed=0, device=CPU,
                       state_path=tmp_path / "s.pt", log_csv=tmp_path / "l.csv")
    assert not (tmp_path / "s.pt").exists()


def test_state_writes_are_amortised_but_sigterm_still_saves(tmp_path, monkeypatch):
    from lsmia import resumable

    writes = []
    real_save = resumable.torch_save
    monkeypatch.setattr(resumable, "torch_save",
                        lambda obj, path: (writes.append(len(obj["batches"])), real_save(obj, path)))
    every = run_optimise(tmp_path / "every.pt", tmp_path / "every.csv", iterations=2)
    assert writes == [1, 2, 3, 4]
    writes.clear()
    amortised = run_optimise(tmp_path / "once.pt", tmp_path / "once.csv", iterations=2,
                             checkpoint_seconds=3600)
    assert writes == [4]  # only the complete state, at the end
    assert_same(every, amortised)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "every.csv"),
                                  pd.read_csv(tmp_path / "once.csv"))

    writes.clear()
    sigterm_in_batch(monkeypatch, 2)
    with pytest.raises(Preempted, match="2 of 4 batches saved"):
        run_optimise(tmp_path / "term.pt", tmp_path / "term.csv", iterations=2,
                     checkpoint_seconds=3600)
    assert writes == [2] and saved_batches(tmp_path / "term.pt") == 2


def test_compiled_target_matches_eager_and_shares_its_resume_state(tmp_path, monkeypatch):
    """``compile_target`` changes speed, not results: the outputs equal the eager target's up to
    float rounding, the state's fingerprint is the same, and a run preempted with the eager
    target resumes with the compiled one (its saved batch kept, the rest as a compiled run's)."""
    from lsmia.attacks import optimise

    run = dict(iterations=3, batch_size=3)  # batches of 3, 3 and 2: every shape the target sees
    eager = run_optimise(tmp_path / "eager.pt", tmp_path / "eager.csv", **run)
    compiled = run_optimise(tmp_path / "compiled.pt", tmp_path / "compiled.csv",
                            compile_target=True, **run)
    assert compiled.keys() == eager.keys()
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-4, atol=1e-5,
                                   equal_nan=True)
    assert not torch.equal(compiled["w"], eager["w"]), "the target was not compiled"
    fingerprints = [torch.load(tmp_path / name, weights_only=True)["fingerprint"]
                    for name in ("eager.pt", "compiled.pt")]
    assert fingerprints[0] == fingerprints[1]

    sigterm_in_batch(monkeypatch, 1)
    with pytest.raises(Preempted, match="1 of 3 batches saved"):
        run_optimise(tmp_path / "resumed.pt", tmp_path / "resumed.csv", **run)
    monkeypatch.undo()
    resumed = run_optimise(tmp_path / "resumed.pt", tmp_path / "resumed.csv",
                           compile_target=True, **run)
    for key in ("w", "confidence", *optimise.TRACES):
        rows = [out[key].flatten(0, 1) for out in (resumed, eager, compiled)]
        torch.testing.assert_close(rows[0][:3], rows[1][:3], rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(rows[0][3:], rows[2][3:], rtol=0, atol=0, equal_nan=True)
