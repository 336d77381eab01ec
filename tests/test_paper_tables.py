"""lsmia.paper.tables and the figures built from them, on the fixture metrics."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paper_fixtures import FIXTURES, SPEC, artefact_rows

from lsmia.paper import figures, tables
from lsmia.paper.collect import collect_rows


@pytest.fixture(scope="module")
def rows():
    """The collected rows of each artefact of artefacts.json (the plan's rows on the fixtures)."""
    return {name: collect_rows(artefact_rows(name)) for name in SPEC if name != "gradient_similarity"}


def written(stem: Path, *exts):
    for ext in exts:
        path = stem.with_name(f"{stem.name}.{ext}")
        assert path.is_file() and path.stat().st_size > 0, path
    return {ext: stem.with_name(f"{stem.name}.{ext}") for ext in exts}


def test_main_table_files_headers_and_notes(rows, tmp_path):
    table = tables.main_table(rows["main_table"], SPEC["main_table"])
    paths = table.write(tmp_path / "main")
    written(tmp_path / "main", "csv", "md", "tex", "html")
    csv = pd.read_csv(paths["csv"])
    assert list(csv["Recipe"]) == ["hard", "ls0.1", "nls0.05"]
    assert (
        "Acc@1 (%) ↑" in csv.columns and "δ_face ↓" in csv.columns and "ξ_test (%) ↑" in csv.columns
    )
    assert csv.loc[csv.Recipe == "ls0.1", "Acc@1 (%) ↑"].item() == pytest.approx(80.0)
    md = paths["md"].read_text()
    assert "| synthfaces | nls0.05 | -0.050 | 86.00 | 20.00 |" in md
    assert "Target model: resnet152" in md and "10 classes × 5 images" in md
    assert "synthetic" in md and "synthetic-face-cnn" in md and "random-inception" in md
    html = paths["html"].read_text()  # what the report shows inline
    assert '<td>nls0.05</td><td class="num">-0.050</td><td class="num">86.00</td>' in html
    assert '<th class="num">Acc@1 (%) ↑</th>' in html and "10 classes × 5 images" in html
    tex = paths["tex"].read_text()
    for token in (
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
        r"Acc@1 (\%) $\uparrow$",
        r"$\delta_\mathrm{face}$ $\downarrow$",
        r"10 classes $\times$ 5 images",
    ):
        assert token in tex
    assert tex.count(r" \\") == 1 + 3  # header and three rows


def _three_seeds(rows):
    """The fixture's rows and two more seeds whose Acc@1 is 0.1 lower and higher."""
    lower, higher = rows.copy(), rows.copy()
    lower["seed"], higher["seed"] = 43, 44
    lower["acc1"] -= 0.1
    higher["acc1"] += 0.1
    return pd.concat([rows, lower, higher], ignore_index=True)


def test_tables_average_seeds_and_show_mean_and_std(rows, tmp_path):
    table = tables.main_table(_three_seeds(rows["main_table"]), SPEC["main_table"])
    paths = table.write(tmp_path / "main")
    csv = pd.read_csv(paths["csv"])
    ls = csv[csv.Recipe == "ls0.1"].iloc[0]
    assert ls["Acc@1 (%) ↑"] == pytest.approx(80.0) and ls["Acc@1 (%) ↑ std"] == pytest.approx(10)
    assert ls["Test acc. (%) ↑ std"] == pytest.approx(0) and ls["Seeds"] == 3
    md = paths["md"].read_text()
    assert "| 80.00 ± 10.00 |" in md and "| 3 |" in md
    assert "Mean ± standard deviation over the seeds in column Seeds (seeds 42, 43, 44;" in md
    assert r"80.00 $\pm$ 10.00" in paths["tex"].read_text()
    single = tables.main_table(rows["main_table"], SPEC["main_table"]).write(tmp_path / "one")
    assert " ± " not in single["md"].read_text().split("\n\n")[1]
    assert "Acc@1 (%) ↑ std" in pd.read_csv(single["csv"]).columns  # empty for one seed
    ablation = tables.stage_ablation(_three_seeds(rows["stage_ablation"]), SPEC["stage_ablation"])
    assert set(ablation.frame["n_seeds"]) == {3}


def test_partially_computed_xi_is_an_error(rows):
    partial = rows["main_table"].copy()
    partial.loc[(partial.architecture == "resnet152") & (partial.recipe == "hard"), "xi_train"] = (
        None
    )
    with pytest.raises(KeyError, match="xi_train is missing"):
        tables.main_table(partial, SPEC["main_table"])


def test_architectures_without_xi_says_so(rows, tmp_path):
    table = tables.architectures(rows["architectures"], SPEC["architectures"])
    assert "xi_train" not in [c.key for c in table.columns]
    md = table.write(tmp_path / "arch")["md"].read_text()
    assert "ξ (knowledge extraction) was not computed" in md
    assert "| densenet121 | ls0.1 |" in md


def test_stage_ablation_rows_and_deltas(rows, tmp_path):
    table = tables.stage_ablation(rows["stage_ablation"], SPEC["stage_ablation"])
    frame = table.frame
    combos = list(zip(frame.recipe_sample, frame.recipe_optimise, frame.recipe_select))
    assert combos[0] == ("hard", "hard", "hard") and len(combos) == 5
    delta = dict(zip(combos, frame.delta_acc1))
    assert delta[("hard", "nls0.05", "hard")] == pytest.approx(-0.35)
    csv = pd.read_csv(table.write(tmp_path / "stage")["csv"])
    assert list(csv.columns[:3]) == ["Sample model", "Optimise model", "Select model"]


def test_stage_ablation_requires_the_baseline_attack(rows):
    stage = rows["stage_ablation"]
    without = stage[~((stage.recipe_sample == "hard") & (stage.recipe_optimise == "hard")
                      & (stage.recipe_select == "hard"))]
    with pytest.raises(KeyError, match="no all-hard attack"):
        tables.stage_ablation(without, SPEC["stage_ablation"])


def test_training_size_table_and_figure(rows, tmp_path):
    table = tables.training_size(rows["training_size"], SPEC["training_size"])
    assert len(table.frame) == 6
    assert sorted(table.frame.num_train_images.unique()) == [100, 900]
    md = table.write(tmp_path / "ts")["md"].read_text()
    assert "| hard-n100 | 0.000 | 100 |" in md
    figures.training_size_figure(table.frame, tmp_path / "ts_fig")
    data = pd.read_csv(written(tmp_path / "ts_fig", "png", "pdf", "csv")["csv"])
    assert set(data.alpha) == {-0.05, 0.0, 0.1} and len(data) == 6
    seeded = tables.training_size(_three_seeds(rows["training_size"]), SPEC["training_size"])
    figures.training_size_figure(seeded.frame, tmp_path / "ts_seeds")
    data = pd.read_csv(tmp_path / "ts_seeds.csv")
    np.testing.assert_allclose(data.acc1_std, 0.1)  # drawn as error bars


def test_alpha_sweep_sorted_and_figure(rows, tmp_path):
    table = tables.alpha_sweep(rows["alpha_sweep"], SPEC["alpha_sweep"])
    assert list(table.frame.alpha) == sorted(table.frame.alpha)
    table.write(tmp_path / "sweep")
    written(tmp_path / "sweep", "csv", "md", "tex")
    figures.alpha_sweep_figure(table.frame, tmp_path / "sweep_fig")
    data = pd.read_csv(written(tmp_path / "sweep_fig", "png", "pdf", "csv")["csv"])
    assert list(data.recipe) == ["nls0.05", "nls0.01", "hard", "ls0.05", "ls0.1"]
    seeded = tables.alpha_sweep(_three_seeds(rows["alpha_sweep"]), SPEC["alpha_sweep"])
    figures.alpha_sweep_figure(seeded.frame, tmp_path / "sweep_seeds")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "sweep_seeds.csv").acc1_std, 0.1)


def test_defence_comparison_marks_pareto_front_and_plots(rows, tmp_path):
    table = tables.defence_comparison(rows["defence_comparison"], SPEC["defence_comparison"])
    front = dict(zip(table.frame.recipe, table.frame.on_pareto_front))
    assert front == {
        "hard": "yes",
        "mid0.01": "no",
        "bido-0.1-1": "no",
        "ls0.1": "yes",
        "nls0.05": "yes",
    }
    csv = pd.read_csv(table.write(tmp_path / "def")["csv"])
    assert list(csv["Defence"].fillna("")) == ["", "mid", "bido", "", ""]
    figures.defence_figure(table.frame, tmp_path / "def_fig")
    data = pd.read_csv(written(tmp_path / "def_fig", "png", "pdf", "csv")["csv"])
    assert data.on_pareto_front.sum() == 3
    seeded = tables.defence_comparison(_three_seeds(rows["defence_comparison"]), SPEC["defence_comparison"])
    figures.defence_figure(seeded.frame, tmp_path / "def_seeds")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "def_seeds.csv").acc1_std, 0.1)


def test_gradient_similarity_figure(tmp_path):
    logs = {
        a: figures.read_gradient_log(FIXTURES / f"gradients_{r}.csv")
        for a, r in ((0.0, "hard"), (0.1, "ls0.1"), (-0.05, "nls0.05"))
    }
    figures.gradient_similarity_figure(logs, tmp_path / "grad")
    data = pd.read_csv(written(tmp_path / "grad", "png", "pdf", "csv")["csv"])
    assert len(data) == 24 and list(data.columns) == [
        "alpha",
        "iteration",
        "grad_cos_mean",
        "grad_cos_std",
        "n_seeds",
    ]
    hard = logs[0.0]
    shifted = hard.assign(grad_cos_mean=hard.grad_cos_mean + 0.2)
    figures.gradient_similarity_figure({0.0: [hard, shifted]}, tmp_path / "seeds")
    band = pd.read_csv(tmp_path / "seeds.csv")
    assert set(band.n_seeds) == {2}
    expected = hard.dropna(subset=["grad_cos_mean"]).grad_cos_mean.to_numpy() + 0.1
    np.testing.assert_allclose(band.grad_cos_mean, expected)
    np.testing.assert_allclose(band.grad_cos_std, 0.2 / np.sqrt(2))
    bad = tmp_path / "bad.csv"
    bad.write_text("iteration,loss\n0,1.0\n")
    with pytest.raises(KeyError, match="bad.csv: gradient log lacks columns"):
        figures.read_gradient_log(bad)


def test_embeddings_figure(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 8))
    labels = np.repeat(np.arange(5), 20)
    features = weights[labels] * 3 + rng.normal(scale=0.1, size=(100, 8))
    panels = {alpha: (features, labels, weights) for alpha in (-0.05, 0.0, 0.1)}
    figures.embeddings_figure(panels, [0, 2, 4], tmp_path / "emb")
    data = pd.read_csv(written(tmp_path / "emb", "png", "pdf", "csv")["csv"])
    assert (data.kind == "feature").sum() == 3 * 60 and (data.kind == "template").sum() == 9
    assert set(data.label) == {0, 2, 4}


def test_sample_grid_accepts_uint8_and_float_images(tmp_path):
    rng = np.random.default_rng(0)
    real = {
        "ann": rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8),
        "bob": rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8),
    }
    attack = {k: rng.uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32) for k in real}
    figures.sample_grid_figure(real, {0.0: attack, -0.05: attack}, tmp_path / "grid")
    data = pd.read_csv(written(tmp_path / "grid", "png", "pdf", "csv")["csv"])
    assert len(data) == 2 * 3 * 3 and set(data.group) == {"real", "0.0", "-0.05"}
    with pytest.raises(ValueError, match="fewer than 3 images for identity 'bob'"):
        figures.sample_grid_figure(
            real, {0.0: {"ann": attack["ann"], "bob": attack["bob"][:2]}}, tmp_path / "grid2"
        )


def test_unknown_column_and_absent_column(tmp_path, rows):
    with pytest.raises(KeyError, match="unknown table column 'accuracy'"):
        tables.write_table(rows["main_table"], ["accuracy"], tmp_path / "x", "caption")
    with pytest.raises(KeyError, match=r"columns \['base_recipe'\] are not in the data"):
        tables.write_table(
            rows["main_table"],
            [tables.Column("base_recipe", "Base", "Base", decimals=None)],
            tmp_path / "x",
            "caption",
        )
