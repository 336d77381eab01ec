"""lsmia.defenses: MID, BiDO-HSIC and the HSIC estimators."""

import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from lsmia.defenses import BiDOModel, MIDModel, kl_to_standard_normal, parse_defence, wrap_defence
from lsmia.defenses.bido import stage_ends
from lsmia.defenses.hsic import centre, gaussian_kernel, hsic, linear_kernel, normalised_hsic

NUM_CLASSES = 5


class TinyNet(nn.Module):
    """A small classifier with timm's forward_features / forward_head / get_classifier."""

    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block2 = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU()
        )
        self.block3 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, num_classes)

    def forward_features(self, x):
        return self.block3(self.block2(self.block1(self.stem(x))))

    def forward_head(self, x, pre_logits=False):
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def tiny_base(seed=0):
    torch.manual_seed(seed)
    return TinyNet()


def resnet_base(seed=0):
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False, num_classes=NUM_CLASSES)


def batch(n=8, size=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=generator) * 2 - 1
    y = torch.arange(n) % NUM_CLASSES
    return x, y


MID_CFG = {"name": "mid", "beta": 0.01, "bottleneck_dim": 6}
BIDO_CFG = {"name": "bido", "lambda_x": 0.05, "lambda_y": 0.5}


# --- MID ---------------------------------------------------------------------------------------


def test_kl_closed_form():
    zeros, ones = torch.zeros(3, 4), torch.ones(3, 4)
    assert kl_to_standard_normal(zeros, ones).item() == pytest.approx(0.0, abs=1e-7)
    # one sample: μ = (1, 2), σ = 1 → ½(1 + 4); another: μ = 0, σ = (2, 1) → ½(4 − 1) − ln 2.
    mu = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    std = torch.tensor([[1.0, 1.0], [2.0, 1.0]])
    expected = (2.5 + (1.5 - math.log(2.0))) / 2
    assert kl_to_standard_normal(mu, std).item() == pytest.approx(expected, rel=1e-6)


def test_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 5, generator=generator)
    std = torch.rand(6, 5, generator=generator) + 0.1
    reference = (
        torch.distributions.kl_divergence(
            torch.distributions.Normal(mu, std), torch.distributions.Normal(0.0, 1.0)
        )
        .sum(dim=1)
        .mean()
    )
    assert kl_to_standard_normal(mu, std).item() == pytest.approx(reference.item(), rel=1e-5)
    with pytest.raises(ValueError, match="same N×K shape"):
        kl_to_standard_normal(mu, std[:, :3])


def test_mid_eval_uses_mean_code_and_training_samples():
    model = wrap_defence(tiny_base(), MID_CFG)
    assert isinstance(model, MIDModel) and model.bottleneck_dim == 6
    x, _ = batch()
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
        mu, _ = model.encode(model.base.forward_head(model.forward_features(x), pre_logits=True))
        code = model.forward_head(model.forward_features(x), pre_logits=True)
    assert torch.equal(first, second)
    assert torch.allclose(code, mu)
    assert torch.allclose(first, model.classifier(mu))
    model.train()
    with torch.no_grad():
        sampled_a, sampled_b = model(x), model(x)
    assert not torch.allclose(sampled_a, sampled_b)


def test_mid_regulariser_is_beta_times_kl():
    model = wrap_defence(tiny_base(), MID_CFG)
    x, y = batch()
    logits, extra = model.forward_with_regulariser(x, y)
    assert logits.shape == (8, NUM_CLASSES)
    with torch.no_grad():
        mu, std = model.encode(model.base.forward_head(model.forward_features(x), pre_logits=True))
    assert extra.item() == pytest.approx(0.01 * kl_to_standard_normal(mu, std).item(), rel=1e-5)
    assert extra.item() > 0


def test_mid_default_bottleneck_and_head_removal():
    model = wrap_defence(resnet_base(), {"name": "mid", "beta": 0.1})
    assert model.bottleneck_dim == 512 // 2  # half the penultimate width, as in the reference code
    assert isinstance(
        model.base.get_classifier(), nn.Identity
    )  # timm head removed, no dead weights
    assert not any(key.startswith("base.fc.") for key in model.state_dict())
    assert model.get_classifier().out_features == NUM_CLASSES


# --- HSIC --------------------------------------------------------------------------------------


def test_linear_hsic_is_squared_covariance():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20, 1, generator=generator)
    b = 0.5 * a + torch.randn(20, 1, generator=generator)
    covariance = ((a - a.mean()) * (b - b.mean())).sum() / (20 - 1)
    assert hsic(linear_kernel(a), linear_kernel(b)).item() == pytest.approx(
        covariance.item() ** 2, rel=1e-5
    )


def test_gaussian_kernel_known_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # ‖x₁ − x₂‖² = 2, D = 2, σ = 1 → exp(−2 / (2·1·2)).
    assert torch.allclose(
        gaussian_kernel(x, 1.0), torch.tensor([[1.0, math.exp(-0.5)], [math.exp(-0.5), 1.0]])
    )
    # median heuristic with two points: squared width = 2 → exp(−2 / (2·2)).
    assert gaussian_kernel(x, None)[0, 1].item() == pytest.approx(math.exp(-0.5))
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_kernel(x, -1.0)


@pytest.mark.parametrize("estimator", [hsic, normalised_hsic])
def test_hsic_independent_vs_identical(estimator):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(64, 3, generator=generator)
    independent = torch.randn(64, 3, generator=generator)
    k = gaussian_kernel(a, 5.0)  # the BiDO width; the normalised estimator needs a smooth kernel
    same = estimator(k, k).item()
    unrelated = estimator(k, gaussian_kernel(independent, 5.0)).item()
    related = estimator(k, gaussian_kernel(a + 0.1 * independent, 5.0)).item()
    assert same > 0 and unrelated < 0.2 * same and related > 3 * unrelated


@pytest.mark.parametrize("estimator", [hsic, normalised_hsic])
def test_hsic_invariant_to_joint_permutation(estimator):
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(16, 4, generator=generator)
    b = a[:, :2] ** 2 + torch.randn(16, 2, generator=generator)
    order = torch.randperm(16, generator=generator)
    original = estimator(gaussian_kernel(a, 5.0), gaussian_kernel(b, 5.0))
    permuted = estimator(gaussian_kernel(a[order], 5.0), gaussian_kernel(b[order], 5.0))
    assert permuted.item() == pytest.approx(original.item(), rel=1e-4)


def test_normalised_hsic_equals_one_sided_centring_of_reference():
    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(12, 5, generator=generator), torch.randn(12, 3, generator=generator)
    b[:, 0] += a[:, 0]
    n, epsilon = 12, 1e-5
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l = gaussian_kernel(a, 5.0).double() @ h, linear_kernel(b).double() @ h
    ridge = epsilon * n * torch.eye(n, dtype=torch.float64)
    rk, rl = k @ torch.inverse(k + ridge), l @ torch.inverse(l + ridge)
    reference = (rk * rl.T).sum()
    value = normalised_hsic(gaussian_kernel(a, 5.0), linear_kernel(b))
    assert value.item() == pytest.approx(reference.item(), rel=1e-4)
    assert torch.allclose(centre(torch.ones(4, 4)), torch.zeros(4, 4))


def test_hsic_rejects_mismatched_kernels():
    with pytest.raises(ValueError, match="n×n kernel"):
        hsic(torch.eye(3), torch.eye(4))


# --- BiDO --------------------------------------------------------------------------------------


def test_bido_discovers_stage_ends():
    tiny = wrap_defence(tiny_base(), BIDO_CFG)
    assert isinstance(tiny, BiDOModel) and tiny.layers is None
    tiny.forward_with_regulariser(*batch())
    assert tiny.layers == ["block1", "block3"]  # block1 ends the 16-px stage, block3 the 8-px one
    resnet = wrap_defence(resnet_base(), BIDO_CFG)
    resnet.forward_with_regulariser(*batch(size=32))
    assert resnet.layers == ["layer1", "layer2", "layer3", "layer4"]


def test_stage_ends_rules():
    def out(size):
        return torch.zeros(2, 1, size, size)

    outputs = [
        ("stem", out(32)),  # hidden: stages.0 also ends at 32 px and runs later
        ("stages.0", out(32)),
        ("stages.1", out(16)),
        ("stages", out(16)),  # a Sequential of stages gives way to its children
        ("mixed.branch_a", out(16)),  # a non-Sequential module hides its children
        ("mixed.branch_b", out(8)),
        ("mixed", out(8)),
        ("pool", torch.zeros(2, 4)),  # not 4-D
    ]
    assert stage_ends(outputs, {"stages", "stem"}) == ["stages.0", "stages.1", "mixed"]
    assert stage_ends(outputs, set()) == ["stem", "stages", "mixed"]


def test_bido_regulariser_combines_terms_with_signs():
    x, y = batch()
    model = wrap_defence(tiny_base(), {**BIDO_CFG, "layers": ["block2", "block3"]})
    _, extra = model.forward_with_regulariser(x, y)
    with torch.no_grad():
        hiddens = [model.base.block2(model.base.block1(model.base.stem(x)))]
        hiddens.append(model.base.block3(hiddens[0]))
        terms = model.hsic_terms(x, y, hiddens)
    assert terms.shape == (2, 2) and bool((terms > 0).all())
    assert extra.item() == pytest.approx(
        (0.05 * terms[:, 0] - 0.5 * terms[:, 1]).sum().item(), rel=1e-4
    )
    x_only = wrap_defence(
        tiny_base(), {"name": "bido", "lambda_x": 1.0, "lambda_y": 0.0, "layers": ["block3"]}
    )
    assert x_only.forward_with_regulariser(x, y)[1].item() == pytest.approx(
        terms[1, 0].item(), rel=1e-4
    )


def test_bido_eval_forward_is_the_base_forward():
    base = tiny_base().eval()
    x, _ = batch()
    with torch.no_grad():
        expected = base(x)
    model = wrap_defence(base, BIDO_CFG).eval()
    with torch.no_grad():
        assert torch.equal(model(x), expected)


def test_bido_unknown_layer_is_named():
    with pytest.raises(ValueError, match="no module 'layer9'"):
        wrap_defence(tiny_base(), {**BIDO_CFG, "layers": ["layer9"]})


# --- training, gradients and state-dict round trips ----------------------------------------------


def train_steps(model, x, y, steps=3):
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(steps):
        logits, extra = model.forward_with_regulariser(x, y)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1) + extra
        optimiser.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        first_conv = next(
            p for n, p in model.named_parameters() if n.startswith("base.") and p.dim() == 4
        )
        assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
        optimiser.step()


@pytest.mark.parametrize(
    "make_base,size", [(tiny_base, 16), (resnet_base, 32)], ids=["tiny", "resnet18"]
)
@pytest.mark.parametrize("cfg", [MID_CFG, BIDO_CFG], ids=["mid", "bido"])
def test_train_save_reload_round_trip(make_base, size, cfg):
    x, y = batch(size=size)
    model = wrap_defence(make_base(seed=0), cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_steps(model, x, y)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    rebuilt = wrap_defence(make_base(seed=1), cfg)
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


# --- configuration --------------------------------------------------------------------------------


def test_no_defence_returns_the_model():
    base = tiny_base()
    assert wrap_defence(base, None) is base
    assert wrap_defence(base, {"name": "none"}) is base


def test_parse_defence_defaults():
    assert parse_defence(BIDO_CFG) == {
        "name": "bido",
        "lambda_x": 0.05,
        "lambda_y": 0.5,
        "sigma": 5.0,
        "layers": None,
        "label_kernel": "linear",
    }
    assert parse_defence({"name": "mid", "beta": 0}) == {
        "name": "mid",
        "beta": 0.0,
        "bottleneck_dim": None,
    }


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"name": "dp"}, "unknown defence name 'dp'"),
        ({"beta": 1}, "'name' key"),
        ({"name": "mid"}, r"missing keys \['beta'\]"),
        ({"name": "mid", "beta": 0.1, "sigma": 5}, r"unknown keys \['sigma'\]"),
        ({"name": "mid", "beta": -0.1}, "'beta' must be a number"),
        (
            {"name": "mid", "beta": 0.1, "bottleneck_dim": 0},
            "'bottleneck_dim' must be a positive integer",
        ),
        ({**BIDO_CFG, "layers": "layer1"}, "'layers' must be a non-empty list"),
        ({**BIDO_CFG, "sigma": 0}, "'sigma' must be a number"),
        ({**BIDO_CFG, "label_kernel": "cosine"}, "'label_kernel' must be one of"),
        ({"name": "none", "beta": 1}, "takes no other keys"),
    ],
)
def test_bad_configs_are_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        wrap_defence(tiny_base(), cfg)


def test_double_wrap_and_non_linear_head_are_refused():
    with pytest.raises(TypeError, match="already wrapped"):
        wrap_defence(wrap_defence(tiny_base(), BIDO_CFG), MID_CFG)
    base = tiny_base()
    base.fc = nn.Identity()
    with pytest.raises(TypeError, match="nn.Linear"):
        wrap_defence(base, MID_CFG)
