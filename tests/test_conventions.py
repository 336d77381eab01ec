"""Snakemake conventions a user meets first: which config is read, planning without data."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from workflow_helpers import REPO, SNAKEFILE, demo_config, paper_threads, write_config

RAW_DATASETS = ("facescrub", "celeba")


def dry_run(workdir, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` of the repository's workflow in ``workdir`` (no --configfile unless given)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
               "--directory", str(workdir), "-n", "--cores", "4", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def planned_outputs(output: str) -> set[str]:
    """Every output file a dry run lists."""
    lines = re.findall(r"^\s+output: (.*)$", output, flags=re.MULTILINE)
    return {path for line in lines for path in line.split(", ")}


def experiments(output: str) -> set[str]:
    """The experiments (results/<experiment>/) whose files a dry run plans."""
    return {path.split("/")[1] for path in planned_outputs(output) if path.startswith("results/")}


def planned(output: str, rule: str) -> bool:
    """Whether the dry run's job stats count jobs of ``rule``."""
    return re.search(rf"^{rule}\s+\d+$", output, flags=re.MULTILINE) is not None


def planned_datasets(output: str) -> set[str]:
    return {m for m in re.findall(r"results/[^/]+/data/([^/]+)/", output)}


# --- which config is read -------------------------------------------------------------------------

def test_config_alone_overrides_the_default_config(tmp_path):
    run = dry_run(tmp_path, "--config", "experiment=override", "device=cpu", "--", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    assert experiments(run.stdout) == {"override"}
    assert planned_datasets(run.stdout) == set(RAW_DATASETS), "the paper config's datasets"


def test_configfile_replaces_the_default_config(tmp_path):
    run = dry_run(tmp_path, "--configfile", str(REPO / "config/demo.yaml"), "--", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    assert experiments(run.stdout) == {"demo"}
    assert planned_datasets(run.stdout) == {"synth"}, "nothing of the paper config may be merged in"


def test_config_overrides_keys_of_a_configfile(tmp_path):
    run = dry_run(tmp_path, "--configfile", str(REPO / "config/demo.yaml"),
                  "--config", "experiment=demo2", "--", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    assert experiments(run.stdout) == {"demo2"}
    assert planned_datasets(run.stdout) == {"synth"}


# --- planning without data ------------------------------------------------------------------------

def paper_config(tmp_path, **raw_dirs) -> dict:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for name in RAW_DATASETS:
        config["datasets"][name]["raw_dir"] = str(raw_dirs.get(name, tmp_path / f"absent-{name}"))
    return config


def missing_report(output: str) -> str:
    """The one warning about missing raw data, from its header to the last data set's hint."""
    start = output.index("raw data missing for")
    end = output.rindex("or point datasets.<name>.raw_dir at it.") + len("or point datasets.<name>.raw_dir at it.")
    return output[start:end]


def test_dry_run_plans_every_job_without_data_and_warns_once_about_all_of_it(tmp_path):
    configfile = write_config(paper_config(tmp_path), tmp_path / "paper.yaml")
    run = dry_run(tmp_path, "--configfile", str(configfile), "--", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert output.count("raw data missing for 2 data set(s)") == 1
    report = missing_report(output)
    for name in RAW_DATASETS:
        assert f"data set '{name}': raw {name} data is incomplete under {tmp_path / f'absent-{name}'}" in report
    assert "actors/faces" in report and "identity_CelebA.txt" in report
    for rule in ("prepare_facescrub", "prepare_celeba", "train_target", "attack_optimise", "claims"):
        assert planned(output, rule), f"{rule} not planned"


def test_preparation_job_fails_with_the_complete_list(tmp_path):
    configfile = write_config(paper_config(tmp_path), tmp_path / "paper.yaml")
    planned = dry_run(tmp_path, "--configfile", str(configfile), "--", "all")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
               "--directory", str(tmp_path), "--configfile", str(configfile), "--cores", "1", "--",
               "results/paper/data/celeba/private/manifest.json"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    log = (tmp_path / "logs/paper/prepare_celeba/celeba.log").read_text()
    assert missing_report(planned.stdout + planned.stderr) in log
    assert not (tmp_path / "results/paper/data/celeba/private/manifest.json").exists()


def test_packed_datasets_need_no_raw_release(tmp_path):
    for name in RAW_DATASETS:
        folder = tmp_path / f"results/paper/data/{name}/private"
        folder.mkdir(parents=True)
        for file in ("images.npy", "index.csv"):
            (folder / file).write_bytes(b"")
        (folder / "manifest.json").write_text(json.dumps({"packed": True}))
    configfile = write_config(paper_config(tmp_path), tmp_path / "paper.yaml")
    run = dry_run(tmp_path, "--configfile", str(configfile), "--", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert "raw data missing" not in output
    assert not planned(output, "prepare_facescrub") and not planned(output, "prepare_celeba")
    assert planned(output, "train_target")


def test_only_unpacked_datasets_are_reported(tmp_path):
    folder = tmp_path / "results/paper/data/facescrub/private"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    configfile = write_config(paper_config(tmp_path), tmp_path / "paper.yaml")
    run = dry_run(tmp_path, "--configfile", str(configfile), "--", "all")
    output = run.stdout + run.stderr
    assert "raw data missing for 1 data set(s)" in output
    assert "data set 'celeba'" in output and "data set 'facescrub'" not in output


# --- cluster conventions --------------------------------------------------------------------------

PROFILE = REPO / "profiles" / "slurm"
TRIVIAL_RULES = ("toy_example", "main_table", "stage_ablation", "architectures", "training_size",
                 "alpha_sweep", "defence_comparison", "gradient_similarity", "sample_grid", "claims")


@pytest.fixture(scope="module")
def paper_workflow(tmp_path_factory):
    """The paper's rules as Snakemake parsed them (no DAG, no data)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    workdir = tmp_path_factory.mktemp("parsed")
    with SnakemakeApi(OutputSettings()) as api:
        parsed = api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(),
                              snakefile=SNAKEFILE, workdir=workdir)
        yield parsed._workflow


def test_trivial_jobs_run_where_snakemake_runs(paper_workflow):
    # Workflow.is_local() says True for every rule without a cluster executor; the directive's
    # record is the set of local rules. A rule in a group would be submitted with its group.
    for name in TRIVIAL_RULES:
        rule = paper_workflow.get_rule(name)
        assert name in paper_workflow._localrules or rule.group is not None, name
    for name in ("embeddings", "train_target", "attack_optimise", "prepare_facescrub"):
        assert name not in paper_workflow._localrules, f"{name} must be a cluster job"


def profile(**environ) -> dict:
    """profiles/slurm/config.yaml as Snakemake reads it, with the given environment variables."""
    script = "import json, sys, yte; print(json.dumps(yte.process_yaml(sys.stdin, require_use_yte=True)))"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LSMIA_")}
    run = subprocess.run([sys.executable, "-c", script], input=(PROFILE / "config.yaml").read_text(),
                         capture_output=True, text=True, env={**env, **environ}, check=True)
    return json.loads(run.stdout)


def test_gres_route_covers_every_gpu_rule_and_nothing_else(paper_workflow):
    gpu_rules = {rule.name for rule in paper_workflow.rules if rule.resources.get("gpu") == 1}
    assert "attack_optimise" in gpu_rules and "pretrain_public" in gpu_rules
    assert "set-resources" not in profile(), "by default the rules' own resources apply unchanged"
    routed = profile(LSMIA_SLURM_GPU_GRES="gpu:a100:1")["set-resources"]
    assert set(routed) == gpu_rules
    for resources in routed.values():
        assert resources == {"gpu": 0, "gres": "'gpu:a100:1'"}, "the plugin refuses gpu with gres"
    partitioned = profile(LSMIA_SLURM_GPU_PARTITION="gpu")["set-resources"]
    assert set(partitioned) == gpu_rules
    assert all(resources == {"slurm_partition": "'gpu'"} for resources in partitioned.values())


def test_profile_loads_where_lsmia_is_not_installed():
    """A conda env made from envs/lsmia.yaml does not install the repository: the profile finds
    lsmia in workflow/ itself (run from the repository root, as snakemake is)."""
    script = ("import json, sys, yte; sys.path = [p for p in sys.path if not p.endswith('workflow')]; "
              "print(json.dumps(yte.process_yaml(sys.stdin, require_use_yte=True)))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LSMIA_")}
    run = subprocess.run([sys.executable, "-c", script], input=(PROFILE / "config.yaml").read_text(),
                         capture_output=True, text=True, cwd=REPO,
                         env={**env, "LSMIA_SLURM_GPU_PARTITION": "gpu"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "attack_optimise" in json.loads(run.stdout)["set-resources"]


def test_workflow_imports_its_own_lsmia_before_any_other(tmp_path):
    """The Snakefile puts workflow/ first on sys.path before its first lsmia import, so another
    lsmia on the path (an older checkout's editable install, say) is never used, also with the
    default config (no --configfile), which the Snakefile reads before it includes the rules."""
    decoy = tmp_path / "decoy" / "lsmia"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy lsmia was imported')\n")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory",
               str(tmp_path / "run"), "-n", "--cores", "1", "all"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(decoy.parent)})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "decoy" not in run.stdout + run.stderr and "train_target" in run.stdout


THREAD_KINDS = {
    "prepare_synthetic": "prepare_synthetic", "prepare_facescrub": "prepare_raw",
    "prepare_celeba": "prepare_raw", "pretrain_public": "train", "train_target": "train",
    "train_evaluation_model": "train", "attack_sample": "attack", "attack_optimise": "attack",
    "attack_select": "attack", "real_embeddings": "metrics", "attack_metrics": "metrics",
    "knowledge_extraction": "knowledge_extraction",
}


def test_rules_take_their_threads_from_the_config_not_the_profile(paper_workflow):
    paper, demo = paper_threads(), demo_config()["threads"]
    assert set(paper) == set(demo) == set(THREAD_KINDS.values())
    assert set(demo.values()) == {1}, "the demo runs two one-core jobs at a time on two cores"
    for rule, kind in THREAD_KINDS.items():
        assert paper_workflow.get_rule(rule).resources["_cores"] == paper[kind], rule
    assert paper["train"] == 8 and paper["attack"] == 4  # the paper's cluster setting
    assert "set-threads" not in profile() and "set-threads" not in profile(
        LSMIA_SLURM_GPU_GRES="gpu:1", LSMIA_SLURM_GPU_PARTITION="gpu")


def test_slurm_dry_run_caps_wall_time_and_requests_gpus_by_gres(tmp_path):
    env = {**os.environ, "LSMIA_MAX_RUNTIME": "600", "LSMIA_SLURM_GPU_GRES": "gpu:1"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory",
               str(tmp_path), "-n", "--profile", str(PROFILE), "--", "all"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    resources = {}
    for block in run.stdout.split("\nrule ")[1:]:
        match = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        resources.setdefault(block.split(":", 1)[0], dict(
            item.split("=", 1) for item in match.group(1).split(", ")) if match else {})
    assert resources["attack_optimise"]["runtime"] == "600"  # declared 1440, capped
    assert resources["train_target"]["runtime"] == "480"
    for rule in ("train_target", "attack_optimise", "attack_metrics"):
        assert (resources[rule]["gpu"], resources[rule]["gres"]) == ("0", "gpu:1"), rule
    assert "gres" not in resources["prepare_facescrub"]


# --- one software environment, lint and format ----------------------------------------------------

def pins(lines) -> dict[str, str]:
    """{package: version} of ``name==version`` lines (comments and blanks skipped)."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[name.lower()] = version
    return found


def test_conda_env_pins_what_requirements_txt_pins():
    env = yaml.safe_load((REPO / "envs/lsmia.yaml").read_text())
    (pip,) = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    assert not [line for line in pip if line.startswith("-")], "no -r/-e: Snakemake copies the file"
    assert pins(pip) == pins((REPO / "requirements.txt").read_text().splitlines())
    assert "python=3.11" in env["dependencies"]
    post_deploy = (REPO / "envs/lsmia.post-deploy.sh").read_text()
    extra = pins((REPO / "requirements-extra.txt").read_text().splitlines())
    assert extra, "requirements-extra.txt lists the --no-deps packages"
    for name, version in extra.items():
        assert f"pip install --no-deps {name}=={version}" in post_deploy


def test_every_rule_that_runs_code_uses_the_one_conda_env(paper_workflow):
    env = (REPO / "envs/lsmia.yaml").resolve()
    for rule in paper_workflow.rules:
        if rule.norun:
            continue
        declared = rule.conda_env and (REPO / "workflow/rules" / rule.conda_env).resolve()
        assert declared == env, f"rule {rule.name}: conda {rule.conda_env!r}"


@pytest.mark.parametrize("configfile", [None, "config/demo.yaml"], ids=["paper", "demo"])
def test_snakemake_lint_reports_nothing(tmp_path, configfile):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory",
               str(tmp_path), "--lint"]
    if configfile:
        command += ["--configfile", str(REPO / configfile)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert "Lints for" not in output, output[-4000:]
    assert "your workflow is in a good condition" in output, output[-4000:]


def test_rule_files_are_formatted_by_snakefmt():
    run = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"run snakefmt Snakefile workflow/rules:\n{run.stderr[-3000:]}"


# --- report command, licence and citation ---------------------------------------------------------

def test_make_report_builds_the_report_of_any_config(tmp_path):
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["experiment"] = "elsewhere"
    configfile = write_config(config, tmp_path / "elsewhere.yaml")
    run = subprocess.run(["make", "-n", "report", f"CONFIG={configfile}"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"--configfile {configfile} --cores 1 --report results/elsewhere/report.html" in run.stdout


def test_licence_and_citation():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert cff["version"] == version.group(1)
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]] == ["Struppek", "Hintersdorf", "Kersting"]
    assert paper["year"] == 2024 and "ICLR" in paper["conference"]["name"]
    assert paper["url"] == "https://arxiv.org/abs/2310.06549"


def test_no_library_function_is_over_60_lines():
    """Short functions in the library (workflow/lsmia), docstrings included."""
    long = []
    for path in sorted((REPO / "workflow" / "lsmia").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
