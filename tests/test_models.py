"""Model factory, adapters, pre-trained initialisation, model files and checkpoint import."""

import logging
import re

import pytest
import torch
import torchvision

from lsmia.models import (create_model, import_checkpoint, known_architectures, load_model,
                          penultimate, save_model)

TINY = ["tiny_resnet", "tiny_resnext", "tiny_densenet", "tiny_inception"]


def _images(n=3, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _same_weights(a, b, skip=()):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[key], sb[key]) for key in sa if not key.startswith(skip))


@pytest.mark.parametrize("arch", TINY)
def test_tiny_architectures_share_timms_interface(arch):
    assert arch in known_architectures()
    model = create_model(arch, 5).eval()
    x = _images()
    logits = model(x)
    assert logits.shape == (3, 5)
    features = penultimate(model, x)
    assert features.shape == (3, model.get_classifier().in_features)
    assert torch.allclose(model.get_classifier()(features), logits, atol=1e-6)
    model.reset_classifier(0)
    assert torch.allclose(model(x), features, atol=1e-6)


def test_torchvision_adapter_keeps_keys_and_outputs():
    reference = torchvision.models.resnet18(num_classes=4).eval()
    model = create_model("tv:resnet18", 4).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict())
    x = _images()
    assert torch.allclose(model(x), reference(x), atol=1e-5)
    assert penultimate(model, x).shape == (3, 512)
    with pytest.raises(ValueError, match="families"):
        create_model("tv:mobilenet_v3_small", 4)


def test_torchvision_inception_loads_imagenet_style_file_without_aux_head(tmp_path, caplog):
    imagenet = torchvision.models.inception_v3(num_classes=1000, aux_logits=True,
                                               init_weights=False)
    file = tmp_path / "inception.pth"
    torch.save(imagenet.state_dict(), file)
    with caplog.at_level(logging.INFO, logger="lsmia.models"):
        model = create_model("tv:inception_v3", 6, pretrained=file).eval()
    assert "AuxLogits" in caplog.text and "fc.weight" in caplog.text
    assert _same_weights(model, imagenet, skip=("fc.",))
    assert model(_images(2, 80)).shape == (2, 6)
    with pytest.raises(ValueError, match="transform_input"):
        create_model("tv:inception_v3", 6, transform_input="yes")


def test_torchvision_densenet_reads_legacy_key_names(tmp_path):
    source = torchvision.models.densenet121(num_classes=1000)
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key): value
              for key, value in source.state_dict().items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    torch.save(legacy, tmp_path / "densenet121.pth")
    model = create_model("tv:densenet121", 5, pretrained=tmp_path / "densenet121.pth")
    assert _same_weights(model, source, skip=("classifier.",))


def test_timm_and_unknown_names():
    model = create_model("resnet18", 3).eval()
    assert model(_images(1)).shape == (1, 3)
    with pytest.raises(ValueError, match="unknown architecture 'no_such_net'.*tiny_resnet"):
        create_model("no_such_net", 3)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("tiny_resnet", 0)


def test_pretrained_drops_only_a_classifier_of_another_shape(tmp_path, caplog):
    source = create_model("tiny_resnet", 10)
    file = tmp_path / "weights.pth"
    torch.save(source.state_dict(), file)
    with caplog.at_level(logging.INFO, logger="lsmia.models"):
        model = create_model("tiny_resnet", 4, pretrained=file)
    assert "fc.weight" in caplog.text and "fc.bias" in caplog.text
    assert _same_weights(model, source, skip=("fc.",))
    same_head = create_model("tiny_resnet", 10, pretrained=file)
    assert _same_weights(same_head, source)


def test_pretrained_from_an_old_torchvision_file_without_batchnorm_counters(tmp_path):
    source = torchvision.models.resnet18(num_classes=1000)
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    file = tmp_path / "resnet18.pth"
    torch.save(state, file)
    model = create_model("tv:resnet18", 7, pretrained=file)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if "fc." not in k)


def test_pretrained_errors_name_keys_and_missing_files(tmp_path):
    state = create_model("tiny_resnet", 4).state_dict()
    extra = tmp_path / "extra.pth"
    torch.save({**state, "surprise.weight": torch.zeros(1)}, extra)
    with pytest.raises(ValueError, match="unexpected keys.*surprise.weight"):
        create_model("tiny_resnet", 4, pretrained=extra)
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "stem.0.weight"}, missing)
    with pytest.raises(ValueError, match="missing keys.*stem.0.weight"):
        create_model("tiny_resnet", 4, pretrained=missing)
    wrong = tmp_path / "wrong.pth"
    torch.save(create_model("tiny_resnet", 4, widths=(8, 32, 64)).state_dict(), wrong)
    with pytest.raises(ValueError, match="wrong shape.*stem.0.weight"):
        create_model("tiny_resnet", 4, pretrained=wrong)
    absent = tmp_path / "resources/weights/tv_resnet152.pth"
    with pytest.raises(FileNotFoundError, match="snakemake fetch_weights"):
        create_model("tiny_resnet", 4, pretrained=absent)


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny_resnext", 6, widths=(16, 32, 64), cardinality=4)
    model.train()
    model(_images(8))  # move BatchNorm statistics away from their initial values
    meta = {"arch": "tiny_resnext", "arch_kwargs": {"widths": [16, 32, 64], "cardinality": 4},
            "num_classes": 6, "input_size": 32, "recipe": "hard", "epoch": 3,
            "test_accuracy": 0.5}
    save_model(tmp_path / "model.pt", model, meta)
    loaded, loaded_meta = load_model(tmp_path / "model.pt")
    assert not loaded.training
    x = _images()
    assert torch.equal(loaded(x), model.eval()(x))
    assert loaded_meta["epoch"] == 3 and loaded_meta["defence"] is None
    assert "git_commit" in loaded_meta["provenance"]


def test_defended_model_round_trip(tmp_path):
    from lsmia.defenses import wrap_defence

    defence = {"name": "mid", "beta": 0.01, "bottleneck_dim": 8}
    model = wrap_defence(create_model("tiny_resnet", 5), defence).eval()
    save_model(tmp_path / "mid.pt", model,
               {"arch": "tiny_resnet", "num_classes": 5, "input_size": 32, "defence": defence})
    loaded, _ = load_model(tmp_path / "mid.pt")
    assert type(loaded) is type(model)
    x = _images()
    assert torch.equal(loaded(x), model(x))


def test_model_file_errors(tmp_path):
    model = create_model("tiny_resnet", 2)
    with pytest.raises(ValueError, match=r"lacks \['input_size'\]"):
        save_model(tmp_path / "m.pt", model, {"arch": "tiny_resnet", "num_classes": 2})
    with pytest.raises(TypeError, match="meta.dataset: PosixPath"):
        save_model(tmp_path / "m.pt", model, {"arch": "tiny_resnet", "num_classes": 2,
                                              "input_size": 32, "dataset": tmp_path})
    assert not (tmp_path / "m.pt").exists()
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="import_checkpoint"):
        load_model(tmp_path / "plain.pth")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_model(tmp_path / "absent.pt")


@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod.", "_orig_mod.module."])
@pytest.mark.parametrize("wrapper", [None, "state_dict", "model_state_dict", "model"])
def test_import_checkpoint_unwraps_and_strips_prefixes(tmp_path, prefix, wrapper):
    source = create_model("tiny_densenet", 3).eval()
    state = {prefix + key: value for key, value in source.state_dict().items()}
    stored = state if wrapper is None else {wrapper: state, "epoch": 7}
    torch.save(stored, tmp_path / "external.pth")
    model = import_checkpoint(tmp_path / "external.pth", "tiny_densenet", 3, input_size=32)
    x = _images()
    assert torch.equal(model(x), source(x))


def test_import_checkpoint_with_a_nesting_prefix_and_mismatches(tmp_path):
    source = torchvision.models.resnet18(num_classes=5).eval()
    torch.save({"model_state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}},
               tmp_path / "ppa.pth")
    x = _images()
    for prefixes in ({}, {"strip_prefixes": ("model.",)}):  # the PPA wrapper's prefix is found alone
        model = import_checkpoint(tmp_path / "ppa.pth", "tv:resnet18", 5, input_size=32, **prefixes)
        assert torch.allclose(model(x), source(x), atol=1e-5)
    incomplete = {f"model.{k}": v for k, v in source.state_dict().items() if k != "fc.bias"}
    torch.save(incomplete, tmp_path / "incomplete.pth")
    with pytest.raises(ValueError, match=r"missing keys \['fc.bias'\]"):
        import_checkpoint(tmp_path / "incomplete.pth", "tv:resnet18", 5, input_size=32)
    with pytest.raises(ValueError, match=r"wrong shape.*fc.weight"):
        import_checkpoint(tmp_path / "ppa.pth", "tv:resnet18", 9, input_size=32,
                          strip_prefixes=("model.",))
