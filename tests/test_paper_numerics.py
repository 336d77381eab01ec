"""The authors' numerics that change the paper's numbers (PAPER.md), each a config key whose paper
value is the default, checked against an independent computation."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lsmia.config import validate_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper() -> dict:
    return validate_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))


@pytest.fixture(scope="module")
def demo() -> dict:
    return validate_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))


# --- precision ------------------------------------------------------------------------------------

def test_fp32_is_the_default_precision_of_training_and_attack(paper, demo):
    for config in (paper, demo):
        assert config["training"]["precision"] == "fp32"
        assert config["attack"]["precision"] == "fp32"
    bare = validate_config({**paper, "attack": {k: v for k, v in paper["attack"].items()
                                                if k != "precision"}})
    assert bare["attack"]["precision"] == "fp32"


def test_fp32_means_no_autocast_even_on_cuda():
    from lsmia.runtime import autocast

    cuda = torch.device("cuda")
    assert isinstance(autocast(cuda, "fp32"), contextlib.nullcontext)
    assert isinstance(autocast(cuda), contextlib.nullcontext)
    assert isinstance(autocast(torch.device("cpu"), "bf16"), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on a CPU machine
        bf16 = autocast(cuda, "bf16")
    assert isinstance(bf16, torch.autocast) and bf16.fast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="'fp16' is not one of"):
        autocast(cuda, "fp16")


def test_training_and_attack_pass_their_precision_to_autocast(monkeypatch, tmp_path):
    """The trainer and the target's forward passes ask for the configured precision (fp32 when
    the recipe does not say), not for the device's default."""
    import lsmia.attacks.views as views
    import lsmia.training.trainer as trainer
    from lsmia.runtime import autocast

    asked = []

    def recording(device, precision="fp32"):
        asked.append(precision)
        return autocast(device, precision)

    monkeypatch.setattr(trainer, "autocast", recording)
    monkeypatch.setattr(views, "autocast", recording)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    views.target_logits(net, torch.zeros(2, 3, 4, 4))
    views.flip_averaged_softmax(net, torch.zeros(2, 3, 4, 4), "bf16")
    assert asked == ["fp32", "bf16"]

    asked.clear()
    augment = trainer.train_augment({"resize": 4, "crop_scale": [1, 1], "crop_ratio": [1, 1],
                                     "jitter": None, "flip": False}, 4)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer.training_step(net, optimizer, torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]), augment,
                          torch.Generator().manual_seed(0), 0.0)
    assert asked == ["fp32"]


# --- optimisation-stage crop ----------------------------------------------------------------------

class RampGenerator:
    """Every latent renders the same image, a ramp that differs at every pixel, so the target's
    input shows the crop box; w enters with weight 0 to keep the graph differentiable."""

    w_dim, num_ws, image_size = 2, 1, 16

    def synthesise(self, w):
        w = w.reshape(len(w), -1)
        ramp = torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
        return ramp + 0 * w.sum(dim=1)[:, None, None, None]


class RecordingTarget(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.inputs = []

    def forward(self, images):
        self.inputs.append(images.detach().clone())
        return self.linear(images.mean(dim=(2, 3)))


@pytest.mark.parametrize("crop_per", ["batch", "image"])
def test_optimisation_crop_is_drawn_per_batch_or_per_image(tmp_path, crop_per):
    from lsmia.attacks import optimise_stage

    target = RecordingTarget()
    sample_out = {"w": torch.zeros(2, 3, 2), "classes": torch.tensor([0, 1])}
    optimise_stage(RampGenerator(), target, sample_out, iterations=2, lr=0.1, betas=(0.1, 0.1),
                   crop_scale=(0.3, 0.6), crop_fraction=1.0, input_size=16, batch_size=6, seed=0,
                   device=torch.device("cpu"), state_path=tmp_path / "s.pt",
                   log_csv=tmp_path / "log.csv", crop_per=crop_per)
    for step in target.inputs[:2]:  # the two optimisation steps (then the final scoring)
        assert step.shape == (6, 3, 16, 16)
        same = [torch.equal(step[0], image) for image in step[1:]]
        assert all(same) if crop_per == "batch" else not any(same)
    assert not torch.equal(target.inputs[0][0], target.inputs[1][0])  # a new box every step


def test_paper_optimises_batches_of_25_with_one_crop_each(paper):
    assert paper["attack"]["optimise"]["crop_per"] == "batch"
    assert paper["attack"]["optimise"]["batch_size"] == 25


# --- initial selection ----------------------------------------------------------------------------

class OvershootGenerator:
    """Flat images of colour 3·w: far outside [−1, 1] (StyleGAN2 overshoots too)."""

    w_dim, num_ws, image_size = 3, 1, 8

    def sample_w(self, n, seed, psi, cutoff, draw="numpy"):
        return torch.randn(n, 1, 3, generator=torch.Generator().manual_seed(seed))

    def synthesise(self, w):
        colour = 3 * w.reshape(len(w), 3)
        return colour[:, :, None, None].expand(-1, -1, self.image_size, self.image_size)


@pytest.mark.parametrize("clamp", [True, False])
def test_initial_selection_scores_clamped_images(clamp):
    from lsmia.attacks import sample_stage

    matrix = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    target = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(3, 4, bias=False))
    target[2].weight.data.copy_(matrix)
    generator = OvershootGenerator()
    out = sample_stage(generator, target, [0, 1, 2, 3], search_space_size=30,
                       candidates_per_class=5, psi=1.0, cutoff=None, crop_fraction=1.0,
                       input_size=8, batch_size=7, seed=3, device=torch.device("cpu"), clamp=clamp)
    colours = 3 * generator.sample_w(30, 3, 1.0, None).reshape(30, 3).double()
    if clamp:
        colours = colours.clamp(-1, 1)
    expected = (colours @ matrix.double().T).softmax(dim=1).T  # constant images: crop/flip change nothing
    expected_best, _ = expected.sort(dim=1, descending=True)
    torch.testing.assert_close(out["confidence"].double(), expected_best[:, :5], rtol=1e-5,
                               atol=1e-6)


# --- search space draw ----------------------------------------------------------------------------

class RecordingMapping(torch.nn.Module):
    """A StyleGAN2 ``G`` whose mapping hands z back as w (w_dim = z_dim), broadcast to num_ws."""

    z_dim = w_dim = 6
    num_ws, img_resolution, c_dim = 3, 8, 0

    def mapping(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        return z.float()[:, None].repeat(1, self.num_ws, 1)


def test_stylegan2_search_space_is_the_authors_numpy_draw(monkeypatch, tmp_path):
    import lsmia.attacks.stylegan2 as stylegan2

    monkeypatch.setattr(stylegan2, "_load_g_ema", lambda checkout, pickle: RecordingMapping())
    prior = stylegan2.StyleGAN2Prior(tmp_path, tmp_path / "ffhq.pkl", torch.device("cpu"))
    expected = np.random.RandomState(42).randn(2000, 6)
    for chunk in (1024, 7):
        w = prior.sample_w(2000, seed=42, psi=1.0, cutoff=None, chunk=chunk)
        assert np.array_equal(w[:, 0].numpy(), expected.astype(np.float32))


def test_torch_latent_draw_is_a_seeded_torch_generator_and_unknown_draws_fail():
    from lsmia.attacks.latents import draw_z

    expected = torch.randn(40, 6, generator=torch.Generator().manual_seed(11))
    assert torch.equal(draw_z(40, 6, 11, "torch"), expected)
    assert not torch.equal(draw_z(40, 6, 11, "numpy"), expected)
    with pytest.raises(ValueError, match="'jax'"):
        draw_z(4, 6, 11, "jax")


@pytest.mark.parametrize("draw", ["numpy", "torch"])
def test_sample_stage_scores_the_configured_draw(draw):
    from lsmia.attacks import ProceduralFacePrior, sample_stage
    from lsmia.attacks.latents import draw_z

    prior = ProceduralFacePrior(16, torch.device("cpu"))
    target = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(3, 2))
    out = sample_stage(prior, target, [0, 1], search_space_size=12, candidates_per_class=3,
                       psi=1.0, cutoff=None, crop_fraction=1.0, input_size=16, batch_size=5,
                       seed=5, device=torch.device("cpu"), latent_draw=draw)
    z = draw_z(12, prior.w_dim, 5, draw)
    assert torch.equal(out["w"][:, :, 0], z[out["indices"]])


def test_procedural_prior_draws_z_the_same_way():
    from lsmia.attacks import ProceduralFacePrior

    prior = ProceduralFacePrior(16, torch.device("cpu"))
    z = prior.sample_w(50, seed=7, psi=1.0, cutoff=None)
    expected = np.random.RandomState(7).randn(50, prior.w_dim).astype(np.float32)
    assert np.array_equal(z[:, 0].numpy(), expected)
    torch.testing.assert_close(prior.sample_w(50, seed=7, psi=0.5, cutoff=None), 0.5 * z)


# --- δ_face input ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def facenet_file(tmp_path_factory):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    network = InceptionResnetV1(classify=False).eval()
    path = tmp_path_factory.mktemp("facenet") / "facenet.pt"
    torch.save(network.state_dict(), path)
    return network, path


def test_facenet_gets_the_images_as_they_are_under_the_paper_scaling(facenet_file, paper):
    from facenet_pytorch import fixed_image_standardization

    from lsmia.metrics.extractors import load_extractor

    network, path = facenet_file
    assert paper["metrics"]["face"]["input_scaling"] == "ppa"
    pixels = torch.randint(0, 256, (2, 3, 160, 160), generator=torch.Generator().manual_seed(1))
    images = pixels / 127.5 - 1
    as_is = load_extractor({"kind": "facenet", "path": path, "input_scaling": "ppa"}, "cpu")
    standard = load_extractor({"kind": "facenet", "path": path, "input_scaling": "standard"}, "cpu")
    with torch.no_grad():
        torch.testing.assert_close(as_is(images), network(images), rtol=0, atol=1e-6)
        torch.testing.assert_close(standard(images),
                                   network(fixed_image_standardization(pixels.float())),
                                   rtol=0, atol=1e-5)
    # the two differ by an input factor of 127.5/128: small, but far above the tolerance above
    assert (as_is(images) - standard(images)).abs().max() > 1e-5
    assert as_is.name.startswith("facenet+ppa@") and standard.name.startswith("facenet@")


def test_input_scaling_is_refused_for_public_model_extractors(demo):
    from lsmia.config import ConfigError

    broken = {**demo, "metrics": {**demo["metrics"], "face": {**demo["metrics"]["face"],
                                                              "input_scaling": "ppa"}}}
    with pytest.raises(ConfigError, match="metrics.face.input_scaling': applies to kinds"):
        validate_config(broken)


# --- FID inputs -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fid_network(tmp_path_factory):
    """torch-fidelity's FID Inception with random weights, saved as the weights file."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    mp = pytest.MonkeyPatch()
    mp.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
    mp.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
    torch.manual_seed(0)
    network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).eval()
    mp.undo()
    path = tmp_path_factory.mktemp("fid") / "inception.pth"
    torch.save(network.state_dict(), path)
    return network, path


def _pool_features(network, first_input):
    """The 2048-d pool features of torch-fidelity's network from the input of its first
    convolution, written out layer by layer (independent of the extractor's hook)."""
    x = first_input
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
                 "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                 "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                 "Mixed_7c", "AvgPool"):
        x = getattr(network, name)(x)
    return x.flatten(1)


def test_ppa_fid_feeds_the_authors_doubly_mapped_input(fid_network, paper):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from lsmia.metrics.extractors import load_extractor

    network, path = fid_network
    assert paper["metrics"]["fid"]["input_scaling"] == "ppa"
    pixels = torch.randint(0, 256, (2, 3, 40, 40), generator=torch.Generator().manual_seed(2))
    images = pixels / 127.5 - 1                                   # what the attack stores, in [−1, 1]
    resized = interpolate_bilinear_2d_like_tensorflow1x(pixels.float() / 127.5 - 1, (299, 299),
                                                        align_corners=False)
    # pytorch-fid's InceptionV3(normalize_input=True): x ↦ 2x − 1, on images already in [−1, 1]
    doubly_mapped = 2 * resized - 1
    assert doubly_mapped.min() >= -3 - 1e-6 and doubly_mapped.max() <= 1 + 1e-6
    ppa = load_extractor({"kind": "inception", "path": path, "input_scaling": "ppa"}, "cpu")
    standard = load_extractor({"kind": "inception", "path": path}, "cpu")
    with torch.no_grad():
        features = {"ppa": ppa(images), "standard": standard(images),
                    "doubly mapped": _pool_features(network, doubly_mapped),
                    "once": _pool_features(network, resized * 127.5 / 128 - 1 / 256)}
        assert torch.equal(features["standard"], network(pixels.to(torch.uint8))[0])
    # random weights give features near 1e-7: compare relative to their size
    scale = features["standard"].abs().max()
    relative = {key: (features[key] / scale) for key in features}
    torch.testing.assert_close(relative["ppa"], relative["doubly mapped"], rtol=0, atol=1e-4)
    torch.testing.assert_close(relative["standard"], relative["once"], rtol=0, atol=1e-4)
    assert (relative["ppa"] - relative["standard"]).abs().max() > 0.1
    assert ppa.name.startswith("inception+ppa@") and standard.name.startswith("inception@")


def test_tables_say_which_fid_scaling_a_column_used():
    import pandas as pd

    from lsmia.paper.tables import FID_SCALING_NOTES, describe_rows

    rows = pd.DataFrame({
        "dataset": ["facescrub", "celeba"], "architecture": "resnet152",
        "recipe_sample": "hard", "recipe_optimise": "hard", "recipe_select": "hard",
        "num_classes": 530, "images_per_class": 50, "synthetic": False,
        "extractor_eval": "evaluation-model@1", "extractor_face": "facenet-vggface2+ppa@2",
        "extractor_fid": ["inception-fid+ppa@3", "inception-fid@3"],
    })
    notes = describe_rows(rows)
    assert FID_SCALING_NOTES["ppa"] in notes and FID_SCALING_NOTES["standard"] in notes
    assert FID_SCALING_NOTES["standard"] not in describe_rows(rows.iloc[:1])


# --- evaluation model Inception-v3 ----------------------------------------------------------------

INCEPTION_KWARGS = {"aux_logits": True, "transform_input": True}


@pytest.fixture(scope="module")
def torchvision_inception():
    """torchvision's own Inception-v3 as the authors build it (aux head, transform_input)."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.inception_v3(num_classes=5, init_weights=True, **INCEPTION_KWARGS)


def test_paper_evaluation_model_is_built_like_the_authors(paper):
    spec = paper["architectures"][paper["datasets"]["facescrub"]["evaluation"]["architecture"]]
    assert spec["model"] == "tv:inception_v3" and spec["arch_kwargs"] == INCEPTION_KWARGS
    assert paper["training"]["aux_loss_weight"] == 1.0


def test_inception_matches_torchvision_in_eval_and_training_mode(torchvision_inception, tmp_path):
    """Published checkpoints (aux head included) import; eval gives the main logits and training
    mode both heads, exactly as torchvision's model with transform_input computes them."""
    from lsmia.models import import_checkpoint

    reference = torchvision_inception
    path = tmp_path / "inception.pth"
    torch.save({"model_state_dict": reference.state_dict()}, path)
    model = import_checkpoint(path, "tv:inception_v3", 5, 299, arch_kwargs=INCEPTION_KWARGS)
    assert any(key.startswith("AuxLogits.") for key in model.state_dict())
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference.eval()
    with torch.no_grad():
        eval_logits = model(x)
        assert isinstance(eval_logits, torch.Tensor)
        torch.testing.assert_close(eval_logits, reference(x), rtol=1e-4, atol=1e-5)
        # transform_input on: torchvision's own _transform_input, not the identity
        torch.testing.assert_close(reference._transform_input(x)[:, 0],
                                   x[:, 0] * 0.229 / 0.5 + (0.485 - 0.5) / 0.5)
    model.train()
    reference.train()
    with torch.no_grad():
        torch.manual_seed(1)
        outputs = model(x)
        torch.manual_seed(1)
        expected = reference(x)
    assert type(outputs).__name__ == "InceptionOutputs"
    torch.testing.assert_close(outputs.logits, expected.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outputs.aux_logits, expected.aux_logits, rtol=1e-4, atol=1e-5)


def test_training_adds_the_auxiliary_loss_at_its_weight(torchvision_inception):
    import copy

    from lsmia.models import create_model
    from lsmia.training.losses import label_smoothing_loss
    from lsmia.training.trainer import training_step

    model = create_model("tv:inception_v3", 5, **INCEPTION_KWARGS)
    model.load_state_dict(torchvision_inception.state_dict())
    images = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(3)) * 2 - 1
    labels = torch.tensor([1, 4])
    unchanged = lambda batch, generator: batch  # noqa: E731
    for weight in (1.0, 0.0):
        reference = copy.deepcopy(torchvision_inception).train()
        torch.manual_seed(5)
        out = reference(images)
        expected = (label_smoothing_loss(out.logits, labels, 0.1)
                    + weight * label_smoothing_loss(out.aux_logits, labels, 0.1))
        trained = copy.deepcopy(model).train()
        optimizer = torch.optim.SGD(trained.parameters(), lr=0.0)
        torch.manual_seed(5)
        value, _ = training_step(trained, optimizer, images, labels, unchanged, None, 0.1,
                                 aux_loss_weight=weight)
        assert value == pytest.approx(expected.item(), rel=1e-5)
    assert label_smoothing_loss(out.aux_logits, labels, 0.1).item() > 0.1  # the weight mattered


def test_inception_initialised_from_another_dataset_drops_both_heads(tmp_path):
    """CelebA's evaluation model starts from FaceScrub's: fc and AuxLogits.fc of another size."""
    from lsmia.models import create_model, load_model, save_model

    source = create_model("tv:inception_v3", 5, **INCEPTION_KWARGS)
    save_model(tmp_path / "facescrub.pt", source,
               {"arch": "tv:inception_v3", "arch_kwargs": INCEPTION_KWARGS, "num_classes": 5,
                "input_size": 299})
    reloaded, meta = load_model(tmp_path / "facescrub.pt")
    assert meta["arch_kwargs"] == INCEPTION_KWARGS and reloaded.aux_head is not None
    model = create_model("tv:inception_v3", 7, pretrained=tmp_path / "facescrub.pt",
                         **INCEPTION_KWARGS)
    own, other = model.state_dict(), source.state_dict()
    assert own["AuxLogits.fc.weight"].shape == (7, 768) and own["fc.weight"].shape == (7, 2048)
    assert torch.equal(own["AuxLogits.conv1.conv.weight"], other["AuxLogits.conv1.conv.weight"])
    assert torch.equal(own["Mixed_7c.branch_pool.conv.weight"],
                       other["Mixed_7c.branch_pool.conv.weight"])
