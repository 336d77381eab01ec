"""Snakemake conventions a user meets first: which config is read, planning without data."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml
from workflow_helpers import REPO, SNAKEFILE, write_config

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
