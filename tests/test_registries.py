"""Registries of defences, generator priors and attack stages: they agree with the config schema
and the rules, refuse duplicates, name unknown values, and take new entries without other edits."""

import inspect
import re
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn
from workflow_helpers import REPO

from lsmia.attacks import PRIORS, ProceduralFacePrior, load_generator, register_prior
from lsmia.defenses import DEFENCES, MIDModel, parse_defence, register_defence, wrap_defence
from lsmia.jobs.attack import ATTACK_STAGES, register_stage, run_stage
from lsmia.registry import Registry

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
COMMON = {"target", "attack", "device"}  # what run_stage's caller passes to every stage


def tagged_forms(branches: list[dict], field: str) -> dict[str, dict]:
    """The schema's ``oneOf`` object forms by their constant ``field``."""
    return {b["properties"][field]["const"]: b for b in branches if b.get("type") == "object"}


@pytest.fixture
def scratch(monkeypatch):
    """Registrations made by a test are forgotten after it."""
    for registry in (DEFENCES, PRIORS, ATTACK_STAGES):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))


def test_registry_refuses_a_second_entry_under_a_taken_name():
    registry = Registry("widget")
    registry.add("a", 1)
    assert registry.add("a", 1) == 1  # the same entry again (a re-import) is fine
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.add("a", 2)
    with pytest.raises(ValueError, match="non-empty string name"):
        registry.add("", 3)
    assert registry.names() == ["a"] and registry.entries() == [1] and "a" in registry


def test_registry_names_where_field_value_and_known_names():
    registry = Registry("widget")
    registry.register("b")(object)
    registry.register("a")(int)
    with pytest.raises(ValueError) as error:
        registry.get("c", "config key 'w'", field="kind", also=" or null")
    assert str(error.value) == (
        "config key 'w': unknown widget kind 'c'; kind must be one of ['a', 'b'] or null"
    )


def test_schema_defences_are_the_registered_ones_with_the_same_keys():
    forms = tagged_forms(SCHEMA["$defs"]["defence"]["oneOf"], "name")
    assert sorted(forms) == DEFENCES.names() and {"bido", "mid"} <= set(forms)
    for name, form in forms.items():
        defence = DEFENCES.get(name, "test")
        assert set(form["required"]) - {"name"} == defence.required, name
        assert set(form["properties"]) - {"name"} == defence.required | defence.optional, name


def test_schema_generator_kinds_are_the_registered_priors_with_the_same_keys():
    generator = SCHEMA["$defs"]["attack"]["properties"]["generator"]
    forms = tagged_forms(generator["oneOf"], "kind")
    assert sorted(forms) == PRIORS.names() and {"procedural", "stylegan2"} <= set(forms)
    for kind, form in forms.items():
        assert set(form["required"]) - {"kind"} == set(PRIORS.get(kind, "test").required), kind


def test_attack_stages_are_the_rules_that_run_the_stage_script():
    rules = (REPO / "workflow" / "rules" / "attack.smk").read_text()
    blocks = re.split(r"^rule ", rules, flags=re.M)[1:]
    stage_rules = [b.split(":")[0] for b in blocks if "scripts/attack_stage.py" in b]
    assert sorted(rule.removeprefix("attack_") for rule in stage_rules) == ATTACK_STAGES.names()
    for name in ATTACK_STAGES.names():
        stage = ATTACK_STAGES.get(name, "test")
        parameters = inspect.signature(stage.job).parameters
        required = {key for key, p in parameters.items() if p.default is p.empty}
        files = set(stage.files(fake_rule()))
        assert files <= set(parameters) and required <= files | COMMON, name


class Files(SimpleNamespace):
    """Snakemake's named files, also indexable (``output[0]``)."""

    def __getitem__(self, index):
        return list(vars(self).values())[index]


def fake_rule(name="attack_optimise"):
    """What a Snakemake script sees as ``snakemake``, with every file any stage reads."""
    files = Files(
        result="r.pt", sample="s.pt", optimised="o.pt", data="data/manifest.json",
        gradients="g.csv", grid="g.png", state="state.pt", iterations="it.csv",
    )
    return SimpleNamespace(rule=name, input=files, output=files, params=files, log=files)


def test_run_stage_passes_the_rule_files_and_names_an_unknown_stage(scratch):
    calls = []
    register_stage("probe", lambda rule: {"out": rule.output.result})(
        lambda **kwargs: calls.append(kwargs)
    )
    run_stage(fake_rule("attack_probe"), target="t.pt", attack={}, device="cpu")
    assert calls == [{"out": "r.pt", "target": "t.pt", "attack": {}, "device": "cpu"}]
    with pytest.raises(ValueError, match=r"rule 'attack_nope'.*'nope'.*\['optimise', 'probe'"):
        run_stage(fake_rule("attack_nope"))


def test_unknown_defence_and_prior_name_the_value_and_the_known_ones():
    with pytest.raises(ValueError) as error:
        parse_defence({"name": "dp"})
    assert "unknown defence name 'dp'; name must be one of" in str(error.value)
    assert f"{DEFENCES.names()} or 'none'" in str(error.value)
    with pytest.raises(ValueError) as error:
        load_generator({"kind": "gan"}, torch.device("cpu"))
    assert f"unknown generator kind 'gan'; kind must be one of {PRIORS.names()}" in str(error.value)


def test_a_registered_defence_is_parsed_and_wrapped_without_other_edits(scratch):
    def settings(cfg):
        return {"scale": float(cfg.get("scale", 2.0))}

    @register_defence("scaled", required=(), optional=("scale",), settings=settings)
    class Scaled(nn.Module):
        def __init__(self, base, scale):
            super().__init__()
            self.base, self.scale = base, scale

    assert parse_defence({"name": "scaled"}) == {"name": "scaled", "scale": 2.0}
    base = nn.Linear(3, 2)
    wrapped = wrap_defence(base, {"name": "scaled", "scale": 3})
    assert isinstance(wrapped, Scaled) and wrapped.base is base and wrapped.scale == 3.0
    with pytest.raises(TypeError, match="already wrapped by Scaled"):
        wrap_defence(wrapped, {"name": "scaled"})
    with pytest.raises(ValueError, match=r"unknown keys \['beta'\]"):
        parse_defence({"name": "scaled", "beta": 1})
    with pytest.raises(ValueError, match="defence 'mid' is already registered"):
        register_defence("mid", required=(), settings=settings)(Scaled)
    assert DEFENCES.get("mid", "test").wrapper is MIDModel


def test_a_registered_prior_is_loaded_without_other_edits(scratch):
    @register_prior("small_procedural", required=("side",))
    def build(spec, device):
        return ProceduralFacePrior(spec["side"], device)

    prior = load_generator({"kind": "small_procedural", "side": 9}, torch.device("cpu"))
    assert isinstance(prior, ProceduralFacePrior) and prior.image_size == 9
    with pytest.raises(ValueError, match=r"missing \['side'\]"):
        load_generator({"kind": "small_procedural"}, torch.device("cpu"))
    with pytest.raises(ValueError, match="generator 'procedural' is already registered"):
        register_prior("procedural")(build)
