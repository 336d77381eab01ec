"""Reliability through the rules: raw-data preparation with the paper's threads, faults a cluster
meets (changed files, killed jobs, shared folders). docs/reliability.md lists what each test shows."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lsmia.data.packed as packed_module
import lsmia.jobs.attack as attack_jobs
from fake_raw import make_fake_celeba, make_fake_facescrub
from lsmia.config import attack_settings, validate_config
from lsmia.data.packed import PackedDataset, write_packed
from lsmia.io import sha256_of
from lsmia.models import create_model, load_model, save_model
from workflow_helpers import (
    SNAKEFILE,
    demo_config,
    mini_demo_config,
    paper_threads,
    snakemake,
    write_config,
)

EVALUATION = {"architecture": "tiny_inception", "recipe": "eval"}


def raw_config(tmp_path: Path, experiment: str = "raw") -> Path:
    """The mini demo plus a fake FaceScrub and a fake CelebA, as the paper config declares them."""
    make_fake_facescrub(tmp_path / "raw" / "facescrub", actors=3, actresses=2, images=6)
    make_fake_celeba(tmp_path / "raw" / "celeba", identities=4)
    config = mini_demo_config(experiment)
    config["threads"] = paper_threads()
    assert config["threads"]["prepare_raw"] > 2
    config["datasets"]["fs"] = {"source": "facescrub", "raw_dir": "raw/facescrub", "image_size": 16,
                                "evaluation": EVALUATION}
    config["datasets"]["cb"] = {"source": "celeba", "raw_dir": "raw/celeba", "identities": 3,
                                "image_size": 16, "evaluation": EVALUATION}
    return write_config(config, tmp_path / "config.yaml")


def test_raw_preparation_through_the_rule_with_two_cores_finishes(tmp_path):
    """The paper gives preparation 8 threads; with 2 cores each job decodes with 2 workers. A pool
    that re-imports the Snakemake script hung here forever; the timeout turns a hang into a failure."""
    config = raw_config(tmp_path)
    targets = [f"results/raw/data/{name}/private/images.npy" for name in ("fs", "cb")]
    result = snakemake(tmp_path, config, "--cores", "2", *targets, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs/raw/prepare_facescrub/fs.log").read_text()
    assert "NameError" not in log
    facescrub = PackedDataset(tmp_path / "results/raw/data/fs/private")
    assert len(facescrub) == 30 and facescrub.num_classes == 5
    celeba = PackedDataset(tmp_path / "results/raw/data/cb/private")
    assert celeba.num_classes == 3 and len(celeba) == 4 + 3 + 2
    assert np.asarray(facescrub._images).std() > 0  # decoded pixels, not an empty memmap
    manifest = json.loads((tmp_path / "results/raw/data/fs/private/manifest.json").read_text())
    assert manifest["settings"]["image_size"] == 16
    assert not list((tmp_path / "results/raw/data/fs").glob(".private.staging.*"))



def _flip_byte_keeping_mtime(file: Path, offset: int = -1) -> None:
    info = file.stat()
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_changed_byte_in_a_packed_file_stops_the_next_job_naming_it(tmp_path):
    """Snakemake sees no change (mtime put back); the job that reads the file must."""
    config = write_config(mini_demo_config("sums"), tmp_path / "config.yaml")
    public = tmp_path / "results/sums/data/synth/public"
    result = snakemake(tmp_path, config, "--cores", "1", "results/sums/data/synth/public/images.npy")
    assert result.returncode == 0, result.stderr[-3000:]
    time.sleep(0.05)  # past the file system's timestamp tick
    _flip_byte_keeping_mtime(public / "images.npy")
    model = "results/sums/models/synth/public/tiny_resnet/model.pt"
    result = snakemake(tmp_path, config, "--cores", "1", model)
    assert result.returncode != 0
    log = (tmp_path / "logs/sums/pretrain_public/synth/tiny_resnet.log").read_text()
    assert "results/sums/data/synth/public/images.npy: SHA-256" in log
    assert not (tmp_path / model).exists()


def test_identity_counts_of_facescrub_are_checked_by_preparation_then_before_any_job(tmp_path):
    """FaceScrub's identities are known only from its folders: the preparation job checks the keys
    that count identities before decoding; once prepared, every later run checks them up front."""
    config = raw_config(tmp_path, "ids")
    too_many = ["--config", "datasets={fs: {attack: {classes: 9}}}"]
    target = "results/ids/data/fs/private/images.npy"
    result = snakemake(tmp_path, config, "--cores", "1", target, *too_many)
    assert result.returncode != 0
    log = (tmp_path / "logs/ids/prepare_facescrub/fs.log").read_text()
    assert "has 5 identities; config keys ask for more: 'attack.classes' needs 9" in log
    assert "decode" not in log and not (tmp_path / target).exists()
    assert snakemake(tmp_path, config, "--cores", "1", target).returncode == 0
    result = snakemake(tmp_path, config, "-n", *too_many)
    assert result.returncode != 0
    assert "'attack.classes' (dataset fs): needs 9 identities, the dataset has 5" in result.stdout + result.stderr


def test_nested_command_line_values_and_paths_out_of_results(tmp_path):
    config = write_config(mini_demo_config("cli"), tmp_path / "config.yaml")
    nested = snakemake(tmp_path, config, "-n", "--config", "attack={optimise: {iterations: 2}}")
    assert nested.returncode == 0, nested.stderr[-2000:]
    escaping = snakemake(tmp_path, config, "-n", "--config", "experiment=..")
    assert escaping.returncode != 0 and "'experiment': '..' is not allowed here" in escaping.stdout + escaping.stderr


def test_yaml_syntax_error_in_the_default_config_names_file_and_line(tmp_path):
    """The default config is the one beside the Snakefile: a copy of the workflow with a broken
    config/config.yaml."""
    checkout = tmp_path / "checkout"
    shutil.copytree(SNAKEFILE.parent / "workflow", checkout / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SNAKEFILE, checkout / "Snakefile")
    (checkout / "config").mkdir()
    (checkout / "config/config.yaml").write_text("experiment: x\ndatasets:\n  a: 1\n   b: 2\nrecipes: {}\n")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(checkout / "Snakefile"), "-n",
               "--directory", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config/config.yaml:4:5: YAML syntax error: mapping values are not allowed" in output


def _packed(path: Path, classes: int) -> Path:
    labels = np.arange(4 * classes) % classes
    index = pd.DataFrame({"label": labels, "identity": [f"id{label}" for label in labels],
                          "split": "train", "source": "synthetic"})
    return write_packed(path, np.zeros((len(labels), 8, 8, 3), np.uint8), index, {"seed": 0})


def test_target_with_another_number_of_classes_stops_before_sampling(tmp_path, monkeypatch):
    data = _packed(tmp_path / "data", classes=4)
    model = tmp_path / "model.pt"
    save_model(model, create_model("tiny_resnet", 3), {"arch": "tiny_resnet", "num_classes": 3,
                                                       "input_size": 32})
    monkeypatch.setattr(attack_jobs, "sample_stage", lambda *a, **k: pytest.fail("sampled"))
    attack = attack_settings(validate_config(demo_config()), "synth")
    with pytest.raises(ValueError, match=rf"{model}: the model has 3 classes but .*data has 4"):
        attack_jobs.sample_job(target=model, attack=attack, out=tmp_path / "s.pt", device="cpu",
                               data_dir=data)


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"), (b"<html>not found</html>", "not a torch.save file"),
    ("truncated", "a damaged torch.save archive"),
])
def test_damaged_model_files_are_named(tmp_path, content, message):
    model = tmp_path / "model.pt"
    save_model(model, create_model("tiny_resnet", 3), {"arch": "tiny_resnet", "num_classes": 3,
                                                       "input_size": 32})
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(ValueError, match=rf"{model}: {message}"):
        load_model(model)


def test_truncated_images_file_is_named(tmp_path):
    data = _packed(tmp_path / "data", classes=2)
    images = data / "images.npy"
    images.write_bytes(images.read_bytes()[:200])
    with pytest.raises(ValueError, match=rf"{images}: "):
        PackedDataset(data)
    (data / ".verified.json").unlink()
    packed_module._CHECKED.clear()
    manifest = json.loads((data / "manifest.json").read_text())  # a manifest that agrees with it
    manifest["sha256"]["images.npy"] = sha256_of(images)
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"{images}: cannot be memory-mapped"):
        PackedDataset(data)
