"""The authors' released checkpoints: imported exactly, and attacked untrained (published.yaml).

The checkpoints are written here as the authors' PPA code writes them: its ``Classifier`` keeps the
torchvision network as ``self.model`` (keys ``model.…``); ``train_model.py`` saves
``{'epoch', 'model_state_dict', 'optimizer_state_dict'}``; the release files are that state dict on
its own (third-party code loads them with ``Classifier.load_state_dict(torch.load(path))``);
``torch.compile`` adds ``_orig_mod.``; the Inception-v3 evaluation model has its auxiliary head.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
import yaml
from fake_raw import make_fake_facescrub
from torch import nn
from workflow_helpers import REPO, snakemake, write_config

from lsmia.models import import_checkpoint

CLASSES = 7


class PPAClassifier(nn.Module):
    """The shape of the authors' ``models/classifier.py`` wrapper: the network under ``model``."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.model = network

    def forward(self, x):
        return self.model(x)


def authors_resnet152():
    torch.manual_seed(0)
    return PPAClassifier(torchvision.models.resnet152(weights=None, num_classes=CLASSES)).eval()


def authors_inception(transform_input: bool):
    torch.manual_seed(1)
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                              transform_input=transform_input, num_classes=CLASSES)
    return PPAClassifier(network).eval()


def write_training_checkpoint(path, wrapper, compiled=False):
    """What the authors' ``Classifier.fit`` saves."""
    module = torch.compile(wrapper) if compiled else wrapper  # compiles lazily: nothing runs here
    optimizer = torch.optim.Adam(wrapper.parameters(), lr=1e-3)
    torch.save({"epoch": 100, "model_state_dict": module.state_dict(),
                "optimizer_state_dict": optimizer.state_dict()}, path)
    return path


def assert_same_logits(imported, wrapper, size):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        expected, actual = wrapper(x), imported(x)
    assert torch.equal(actual, expected), (actual - expected).abs().max()


@pytest.mark.parametrize("layout", ["training-checkpoint", "release-state-dict", "compiled"])
def test_authors_resnet152_imports_with_identical_logits(tmp_path, layout):
    wrapper = authors_resnet152()
    path = tmp_path / "resnet152_facescrub.pt"
    if layout == "release-state-dict":
        torch.save(wrapper.state_dict(), path)
    else:
        write_training_checkpoint(path, wrapper, compiled=layout == "compiled")
    keys = list(torch.load(path, weights_only=True).get("model_state_dict", {}) or
                torch.load(path, weights_only=True))
    assert keys[0].startswith("_orig_mod.model." if layout == "compiled" else "model.")
    imported = import_checkpoint(path, "tv:resnet152", CLASSES, input_size=64)
    assert_same_logits(imported, wrapper, 64)


def test_authors_inception_with_aux_head_imports_with_identical_logits(tmp_path):
    from lsmia.models import create_model

    # Whatever input transform lsmia's Inception-v3 applies, the authors' model must match it.
    lsmia_inception = create_model("tv:inception_v3", CLASSES)
    transform_input = bool(getattr(lsmia_inception, "transform_input", False))
    wrapper = authors_inception(transform_input)
    path = write_training_checkpoint(tmp_path / "inception_v3_facescrub.pt", wrapper)
    assert any(key.startswith("model.AuxLogits.") for key in
               torch.load(path, weights_only=True)["model_state_dict"])
    imported = import_checkpoint(path, "tv:inception_v3", CLASSES, input_size=96)
    assert_same_logits(imported, wrapper, 96)


def test_wrapper_prefix_is_kept_when_the_model_itself_uses_it(tmp_path):
    """Only a prefix that every key has and the receiving model lacks is a wrapper's."""
    from lsmia.models.state_dicts import strip_wrapper_prefix

    state = {"model.weight": torch.zeros(1), "model.bias": torch.zeros(1)}
    assert list(strip_wrapper_prefix(state, ["weight", "bias"])) == ["weight", "bias"]
    assert list(strip_wrapper_prefix(state, ["model.weight", "model.bias"])) == list(state)
    mixed = {**state, "head.weight": torch.zeros(1)}
    assert list(strip_wrapper_prefix(mixed, ["weight"])) == list(mixed)


# --- config/published.yaml -----------------------------------------------------------------------

def published_config(raw_dir) -> dict:
    config = yaml.safe_load((REPO / "config" / "published.yaml").read_text())
    config["datasets"]["facescrub"]["raw_dir"] = str(raw_dir)
    return config


def published_files(config) -> list[str]:
    files = [spec["init"] for spec in config["recipes"].values() if spec.get("init")]
    assert files, "published.yaml imports no checkpoint"
    return files


@pytest.mark.slow
def test_published_dry_run_plans_attacks_metrics_artefacts_and_no_training(tmp_path):
    make_fake_facescrub(tmp_path / "raw" / "facescrub")
    config = published_config(tmp_path / "raw" / "facescrub")
    for relative in published_files(config):  # placeholders for the files placed by hand
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"placeholder")
    configfile = write_config(config, tmp_path / "published.yaml")
    run = snakemake(tmp_path, configfile, "-n", "--cores", "4", "all")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    output = run.stdout + run.stderr
    from test_workflow import job_counts

    counts = job_counts(output)
    for rule in ("attack_sample", "attack_optimise", "attack_select", "attack_metrics",
                 "real_embeddings", "main_table", "claims"):
        assert counts.get(rule, 0) > 0, f"{rule} is not planned: {counts}"
    # Targets and the evaluation model come from the files: one import job each, zero epochs.
    targets = config["artefacts"]["main_table"]["recipes"]
    assert counts["train_target"] == len(targets) and counts["train_evaluation_model"] == 1
    for name in (*targets, config["datasets"]["facescrub"]["evaluation"]["recipe"]):
        recipe = config["recipes"][name]
        assert recipe["epochs"] == 0 and recipe["init"].startswith("resources/published/"), name
        assert recipe["init"] in output, f"{recipe['init']} is not an input of the plan"
    assert "pretrain_public" not in counts


@pytest.mark.slow
def test_import_job_with_zero_epochs_keeps_the_released_weights(tmp_path):
    """train_target on a recipe with `init` and `epochs: 0`, through Snakemake: the model file holds
    exactly the released weights, and its test accuracy is measured."""
    from workflow_helpers import mini_demo_config

    from lsmia.models import create_model, load_model

    config = mini_demo_config("imported")
    config["architectures"]["tiny_resnet"]["pretrained"] = "none"
    config["recipes"]["hard"].update(epochs=0, init="resources/published/tiny_resnet_synth.pt")
    torch.manual_seed(3)
    wrapper = PPAClassifier(create_model("tiny_resnet", config["datasets"]["synth"]["identities"]))
    (tmp_path / "resources/published").mkdir(parents=True)
    write_training_checkpoint(tmp_path / config["recipes"]["hard"]["init"], wrapper.eval())
    configfile = write_config(config, tmp_path / "imported.yaml")
    model_dir = tmp_path / "results/imported/models/synth/tiny_resnet/hard"
    run = snakemake(tmp_path, configfile, "--cores", "2",
                    "results/imported/models/synth/tiny_resnet/hard/metrics.json")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    model, meta = load_model(model_dir / "model.pt")
    released = {key.removeprefix("model."): value for key, value in wrapper.state_dict().items()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, released[key]), key
    assert meta["epoch"] == 0 and 0 <= meta["test_accuracy"] <= 1
    log = (tmp_path / "logs/imported/train_target/synth/tiny_resnet/hard.log").read_text()
    assert "0 epochs, no training" in log
