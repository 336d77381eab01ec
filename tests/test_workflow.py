"""The Snakefile as a user meets it: planning the paper, refusing bad input, running the demo DAG."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from fake_raw import make_fake_celeba, make_fake_facescrub
from workflow_helpers import REPO, mini_demo_config, snakemake, write_config

GPU_RULES = (
    "train_target", "train_evaluation_model", "attack_sample", "attack_optimise", "attack_select",
    "attack_metrics", "knowledge_extraction", "real_embeddings",
)


def paper_config(facescrub, celeba) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"]["facescrub"]["raw_dir"] = str(facescrub)
    config["datasets"]["celeba"]["raw_dir"] = str(celeba)
    return config


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
    return {rule: int(count) for rule, count in rows}


def planned_resources(output: str) -> dict[str, str]:
    """{rule: resources line} of every job a dry run prints (one line per rule suffices)."""
    found = {}
    for block in output.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0].strip()
        match = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        found.setdefault(rule, match.group(1) if match else "")
    return found


@pytest.fixture(scope="module")
def fake_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    make_fake_facescrub(root / "facescrub")
    make_fake_celeba(root / "celeba")
    return root


@pytest.mark.parametrize("profile", [None, "slurm"])
def test_paper_dry_run_plans_every_artefact_and_puts_attacks_on_gpus(tmp_path, fake_raw, profile):
    configfile = write_config(
        paper_config(fake_raw / "facescrub", fake_raw / "celeba"), tmp_path / "paper.yaml"
    )
    options = ["--profile", str(REPO / "profiles" / profile)] if profile else ["--cores", "16"]
    run = snakemake(tmp_path, configfile, "-n", *options, "all")
    assert run.returncode == 0, run.stderr[-4000:]
    output = run.stdout + run.stderr

    counts = job_counts(output)
    for rule in ("prepare_facescrub", "prepare_celeba", "fetch_weights", "fetch_stylegan2", *GPU_RULES):
        assert counts.get(rule, 0) > 0, f"{rule} is not planned: {counts}"
    for artefact in ("main_table", "stage_ablation", "training_size", "alpha_sweep", "embeddings",
                     "gradient_similarity", "defence_comparison", "architectures", "sample_grid",
                     "toy_example", "claims"):
        assert counts.get(artefact) == 1, f"artefact rule {artefact} planned {counts.get(artefact)} times"
    # Both datasets, every recipe of the main table: 2 datasets x 3 recipes of ResNet-152 at least.
    assert counts["train_target"] >= 6

    resources = planned_resources(output)
    for rule in GPU_RULES:
        assert "gpu=1" in resources[rule], f"{rule} does not ask for a GPU: {resources[rule]}"
    for rule in ("prepare_facescrub", "main_table", "fetch_weights"):
        assert "gpu=" not in resources[rule], f"{rule} should not hold a GPU: {resources[rule]}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["recipes"]["ls0.1"].update(alpha=1.5), "recipes.ls0.1.alpha"),
        (lambda c: c["training"].update(epoch=3), "'epoch'"),
        (lambda c: c["artefacts"]["main_table"].update(recipes=["hard", "ls9"]), "ls9"),
    ],
    ids=["alpha-above-one", "unknown-key", "unknown-recipe"],
)
def test_bad_config_stops_before_any_job_with_the_key_named(tmp_path, change, expected):
    config = mini_demo_config()
    change(config)
    run = snakemake(tmp_path, write_config(config, tmp_path / "bad.yaml"), "-n", "--cores", "1")
    assert run.returncode != 0
    message = run.stdout + run.stderr
    assert "invalid configuration" in message and expected in message, message[-3000:]
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def mini_demo(tmp_path_factory):
    """The whole demo DAG, shrunk (tests/workflow_helpers.py), run once for the tests below."""
    workdir = tmp_path_factory.mktemp("mini-demo")
    configfile = write_config(mini_demo_config(), workdir / "mini.yaml")
    run = snakemake(workdir, configfile, "--cores", "2", "all", timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    return workdir, configfile


@pytest.mark.slow
def test_mini_demo_builds_every_artefact_with_provenance(mini_demo):
    workdir, _ = mini_demo
    paper = workdir / "results" / "mini" / "paper"
    expected = {
        "main_table": ("md", "csv", "tex"), "stage_ablation": ("md", "csv", "tex"),
        "architectures": ("md", "csv", "tex"), "training_size": ("png", "pdf", "csv"),
        "training_size_table": ("md", "csv", "tex"), "alpha_sweep": ("png", "pdf", "csv"),
        "alpha_sweep_table": ("md", "csv", "tex"), "embeddings": ("png", "pdf", "csv"),
        "gradient_similarity": ("png", "pdf", "csv"), "defence_comparison": ("md", "csv", "tex", "html"),
        "defence_comparison_plot": ("png", "pdf", "csv"), "sample_grid": ("png", "pdf", "csv"),
        "claims": ("md", "csv", "html"),
    }
    for stem, extensions in expected.items():
        for extension in extensions:
            path = paper / f"{stem}.{extension}"
            assert path.stat().st_size > 0, f"{path} is empty"
    assert (paper / "main_table.md").read_text().count("\n") >= 5  # header, rule, three recipes

    metrics = json.loads((workdir / "results/mini/models/synth/tiny_resnet/ls0.1/metrics.json").read_text())
    record = metrics["provenance"]
    assert record["seed"] == 42
    assert record["versions"]["torch"] and re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", record["git_commit"])

    attacks = workdir / "results/mini/attacks/synth/tiny_resnet"
    optimised = torch.load(attacks / "ls0.1/ls0.1/optimise.pt", weights_only=True)
    settings = optimised["info"]["settings"]  # with the runtime keys the job ran with
    assert settings["optimise"]["compile_target"] is False
    assert settings["select"]["batch_size"] == mini_demo_config()["attack"]["select"]["batch_size"]


def report_script_json(html: str, script_id: str, variable: str):
    """The JSON value a Snakemake report assigns in ``<script id=...>var <variable> = ...;``."""
    script = html.split(f'<script id="{script_id}">', 1)[1].split("</script>", 1)[0]
    return json.loads(script.split(f"var {variable} = ", 1)[1].strip().rstrip(";"))


@pytest.mark.slow
def test_mini_demo_report_shows_tables_inline_and_claims_on_the_front_page(mini_demo):
    workdir, configfile = mini_demo
    run = snakemake(workdir, configfile, "--cores", "1", "--report", str(workdir / "report.html"))
    assert run.returncode == 0, run.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    results = {Path(path).name: entry for path, entry in report_script_json(html, "results", "results").items()}
    tables = ("main_table", "stage_ablation", "architectures", "training_size_table",
              "alpha_sweep_table", "defence_comparison")
    for name in (*tables, "claims"):
        entry = results[f"{name}.html"]
        assert entry["mime_type"] == "text/html", f"{name} would be a download, not shown inline"
        page = base64.b64decode(entry["data_uri"].split("base64,", 1)[1]).decode()
        assert "<table>" in page and "</tr>" in page, name
    assert not [name for name in results if name.endswith((".md", ".csv", ".tex"))]
    assert "alpha_sweep.png" in results

    front_page = report_script_json(html, "workflow-desc", "workflow_desc")
    claims = (workdir / "results/mini/paper/claims.md").read_text().splitlines()[2]
    assert claims.split(";")[0] in front_page and "evaluated claims," in claims
    assert front_page.count("<tr>") >= 2, "the claims table itself is on the front page"
    assert "search_space_size" in front_page, "the report must show the config it was made with"


@pytest.mark.slow
def test_mini_demo_speed_settings_rerun_nothing(mini_demo):
    """Batch sizes, the device and compiling the target are not params: changing them (e.g. after
    an out-of-memory error) reruns no finished job; a setting that changes results does."""
    workdir, configfile = mini_demo
    config = yaml.safe_load(configfile.read_text())
    config["device"] = "cpu"
    config["metrics"]["batch_size"] = 3
    config["training"]["eval_batch_size"] = 7
    for stage in ("sample", "select"):
        config["attack"][stage]["batch_size"] = 5
    config["attack"]["optimise"]["compile_target"] = True
    smaller = snakemake(workdir, write_config(config, workdir / "smaller.yaml"), "-n", "--cores", "2", "all")
    assert smaller.returncode == 0, smaller.stderr[-3000:]
    assert "Nothing to be done" in smaller.stdout + smaller.stderr, (smaller.stdout + smaller.stderr)[-3000:]

    config["attack"]["select"]["transforms"] += 1
    changed = snakemake(workdir, write_config(config, workdir / "changed.yaml"), "-n", "--cores", "2", "all")
    counts = job_counts(changed.stdout + changed.stderr)
    assert counts.get("attack_select", 0) > 0 and "train_target" not in counts, counts


@pytest.mark.slow
def test_mini_demo_second_run_has_nothing_to_do_and_one_artefact_rebuilds_alone(mini_demo):
    workdir, configfile = mini_demo
    again = snakemake(workdir, configfile, "-n", "--cores", "2", "all")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr

    (workdir / "results/mini/paper/main_table.md").unlink()
    replan = snakemake(workdir, configfile, "-n", "--cores", "2", "all")
    assert job_counts(replan.stdout + replan.stderr) == {"main_table": 1, "all": 1, "total": 2}

    shutil.rmtree(workdir / "results/mini/paper")
    one = snakemake(workdir, configfile, "--cores", "1", "alpha_sweep")
    assert one.returncode == 0, one.stderr[-3000:]
    built = sorted(p.name for p in (workdir / "results/mini/paper").iterdir())
    assert built == sorted(f"alpha_sweep{s}" for s in (".png", ".pdf", ".csv", "_table.md", "_table.csv", "_table.tex",
                                                       "_table.html"))


@pytest.mark.slow
def test_mini_demo_seed_replicates_are_averaged_and_paired(mini_demo):
    workdir, configfile = mini_demo
    results = workdir / "results" / "mini"
    # Another test of this module deletes paper/; rebuilding the two artefacts read here is cheap.
    rebuilt = snakemake(workdir, configfile, "--cores", "2", "main_table", "claims")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    replicate = json.loads((results / "models/synth/tiny_resnet/ls0.1-s43/metrics.json").read_text())
    assert replicate["seed"] == 43 and replicate["resolved_recipe"]["seed"] == 43
    assert replicate["per_class"]["classes"] == list(range(6))
    attack = json.loads((results / "attacks/synth/tiny_resnet/ls0.1-s43/ls0.1-s43/ls0.1-s43/metrics.json").read_text())
    assert attack["seed"] == 43 and attack["provenance"]["seed"] == 43
    assert set(attack["metrics"]["per_class"]) >= {"classes", "acc1", "delta_face", "grad_cosine"}
    main = (results / "paper/main_table.md").read_text()
    assert " ± " in main and "seeds 42, 43" in main
    claims = pd.read_csv(results / "paper/claims.csv").set_index("id")
    acc1 = claims.loc["acc1_order:synth:tiny_resnet"]
    assert acc1.verdict in ("holds", "reversed", "inconclusive")
    assert (acc1.n_seeds, acc1.n_classes) == (2, 6) and acc1.ci_low <= acc1.effect <= acc1.ci_high
    assert claims.loc["stage_optimisation:synth:tiny_resnet:hard<-ls0.1"].n_seeds == 1
