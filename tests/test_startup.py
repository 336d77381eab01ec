"""Jobs and planning import only what they use (start-up is most of a small job's time).

Table, claims and gradient-figure jobs never load torch; planning the paper's DAG loads neither
torch nor timm. Each check runs in a fresh interpreter and looks at its ``sys.modules``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torchvision
from fake_raw import make_fake_celeba, make_fake_facescrub
from workflow_helpers import REPO, SNAKEFILE, write_config

from lsmia.model_names import LSMIA_ARCHITECTURES, TORCHVISION_MODELS
from lsmia.models import known_architectures
from lsmia.models.torchvision_adapter import is_supported

HEAVY = ("torch", "timm", "torchvision")
FIXTURES = REPO / "tests" / "fixtures" / "paper"
PREAMBLE = f"""import atexit, json, sys
atexit.register(lambda: print("LOADED=" + json.dumps([m for m in {HEAVY!r} if m in sys.modules])))
"""


def loaded_after(code: str, cwd=None) -> list[str]:
    """Which of HEAVY a fresh interpreter has imported when ``code`` ends (also through sys.exit)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", PREAMBLE + code], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("LOADED=")]
    assert lines, f"no report (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("LOADED="))


def test_table_claims_and_gradient_jobs_run_without_torch(tmp_path):
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO / "tests")!r})
from paper_fixtures import fixture_config, install_fixtures
from lsmia.jobkit import logged, use_threads
from lsmia.jobs.paper import claims_artefact, gradient_artefact, table_artefact
fixtures, out = Path({str(FIXTURES)!r}), Path({str(tmp_path)!r})
install_fixtures(out)
config = fixture_config()
recipes = ["hard", "ls0.1", "nls0.05"]
use_threads(1)
table_artefact("main_table", config, out / "main_table")
table_artefact("alpha_sweep", config, out / "alpha", out / "alpha_fig")
claims_artefact(config, out / "claims.md", out / "claims.csv")
models = [fixtures / f"model_resnet152_{{r}}.json" for r in recipes]
gradient_artefact(models, [fixtures / f"gradients_{{r}}.csv" for r in recipes], out / "gradients")
"""
    assert loaded_after(code, cwd=tmp_path) == []
    for name in ("main_table.csv", "alpha_fig.png", "claims.md", "gradients.png"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_torch_jobs_do_not_load_torchvision_or_timm_at_start():
    """torchvision and timm are imported where a model from them is built, not by the job module."""
    code = "import lsmia.jobkit, lsmia.jobs.attack, lsmia.jobs.evaluate, lsmia.jobs.training"
    assert loaded_after(code) == ["torch"]


@pytest.mark.slow
def test_paper_dry_run_imports_neither_torch_nor_timm(tmp_path):
    config = json.loads(json.dumps(__import__("yaml").safe_load(
        (REPO / "config" / "config.yaml").read_text())))
    for name, make in (("facescrub", make_fake_facescrub), ("celeba", make_fake_celeba)):
        config["datasets"][name]["raw_dir"] = str(make(tmp_path / "raw" / name))
    configfile = write_config(config, tmp_path / "paper.yaml")
    argv = ["snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
            "--configfile", str(configfile), "-n", "--cores", "16", "--quiet", "rules", "all"]
    code = f"import sys\nsys.argv = {argv!r}\nfrom snakemake.cli import main\nmain()"
    assert loaded_after(code, cwd=tmp_path) == []


def test_planning_names_match_the_model_libraries():
    """lsmia.model_names answers without torch; it must agree with the registries it stands for."""
    assert tuple(known_architectures()) == LSMIA_ARCHITECTURES
    supported = {name for name in torchvision.models.list_models() if is_supported(name)}
    assert supported == TORCHVISION_MODELS
