"""Paper tables: each builder shapes the rows of its artefact (``collect_rows`` of the plan's rows,
in the plan's order; its config entry as ``spec``) and ``write_table`` writes them as
CSV, Markdown, LaTeX (booktabs) and HTML (for the report), with the metric and its direction in every header and a notes
block saying what the numbers are about."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lsmia.io import atomic_path
from lsmia.paper.collect import KEY_COLUMNS
from lsmia.paper.html import table_html
from lsmia.paper.pareto import pareto_front
from lsmia.plan.names import STAGES

UP, DOWN = "↑", "↓"
STD = "_std"  # suffix of a metric's standard deviation over seeds
ARROW_NOTE = (
    "Arrows give the direction of a stronger attack (more leakage); for test accuracy, of better "
    "utility."
)
FID_SCALING_NOTES = {
    "ppa": "FID (and PRDC) with input scaling ppa, as the authors compute it: images already in "
           "[−1, 1] mapped once more to [−3, 1] before the Inception network; comparable with the "
           "paper's FID, not with standard FID.",
    "standard": "FID (and PRDC) with standard input scaling (Inception on uint8 images); not "
                "comparable with the paper's FID, which used the authors' scaling (ppa).",
}


@dataclass(frozen=True)
class Column:
    """One table column: ``key`` in the frame, its headers (plain, LaTeX), direction, format."""

    key: str
    label: str
    latex: str
    direction: str | None = None
    scale: float = 1.0
    decimals: int | None = 2

    @property
    def numeric(self) -> bool:
        return self.decimals is not None

    def header(self) -> str:
        return f"{self.label} {self.direction}" if self.direction else self.label

    def latex_header(self) -> str:
        arrow = {UP: r" $\uparrow$", DOWN: r" $\downarrow$"}.get(self.direction, "")
        return self.latex + arrow

    def value(self, raw):
        if self.decimals is None or _missing(raw):
            return raw
        return float(raw) * self.scale

    def text(self, raw) -> str:
        if _missing(raw):
            return "–"
        if self.decimals is None:
            return str(raw)
        return f"{self.value(raw):.{self.decimals}f}"

    def cell(self, record: dict) -> str:
        """The value of ``record``, as ``mean ± std`` when it is a mean over several seeds."""
        std = record.get(f"{self.key}{STD}")
        if not self.numeric or _missing(std) or _missing(record[self.key]):
            return self.text(record[self.key])
        return f"{self.text(record[self.key])} ± {self.value(std):.{self.decimals}f}"


def _missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _pct(key: str, label: str, latex: str, direction: str) -> Column:
    return Column(key, f"{label} (%)", latex + r" (\%)", direction, scale=100.0, decimals=2)


METRICS: dict[str, Column] = {
    column.key: column
    for column in (
        _pct("test_accuracy", "Test acc.", "Test acc.", UP),
        Column("ece", "ECE", "ECE", None, decimals=4),
        _pct("acc1", "Acc@1", "Acc@1", UP),
        _pct("acc5", "Acc@5", "Acc@5", UP),
        _pct("acc1_unselected", "Acc@1 unsel.", "Acc@1 unsel.", UP),
        _pct("acc5_unselected", "Acc@5 unsel.", "Acc@5 unsel.", UP),
        Column("delta_face", "δ_face", r"$\delta_\mathrm{face}$", DOWN),
        Column("delta_eval", "δ_eval", r"$\delta_\mathrm{eval}$", DOWN),
        Column("fid", "FID", "FID", DOWN),
        Column("precision", "Precision", "Precision", UP, decimals=3),
        Column("recall", "Recall", "Recall", UP, decimals=3),
        Column("density", "Density", "Density", UP, decimals=3),
        Column("coverage", "Coverage", "Coverage", UP, decimals=3),
        _pct("target_confidence", "Target conf.", "Target conf.", UP),
        _pct("xi_train", "ξ_train", r"$\xi_\mathrm{train}$", UP),
        _pct("xi_test", "ξ_test", r"$\xi_\mathrm{test}$", UP),
        Column("code_distance", "Code dist.", "Code dist.", DOWN, decimals=3),
        _pct("nearest_identity_accuracy", "Nearest-id. acc.", "Nearest-id. acc.", UP),
    )
}
TEXT: dict[str, Column] = {
    column.key: column
    for column in (
        Column("dataset", "Dataset", "Dataset", decimals=None),
        Column("architecture", "Architecture", "Architecture", decimals=None),
        Column("recipe", "Recipe", "Recipe", decimals=None),
        Column("alpha", "α", r"$\alpha$", decimals=3),
        Column("defence", "Defence", "Defence", decimals=None),
        Column("defence_params", "Defence parameters", "Defence parameters", decimals=None),
        Column("num_train_images", "Training images", "Training images", decimals=None),
        Column("n_seeds", "Seeds", "Seeds", decimals=0),
        Column("on_pareto_front", "Pareto front", "Pareto front", decimals=None),
        *(
            Column(
                f"recipe_{s}", f"{s.capitalize()} model", f"{s.capitalize()} model", decimals=None
            )
            for s in STAGES
        ),
        _pct("delta_acc1", "ΔAcc@1 vs baseline", r"$\Delta$Acc@1 vs baseline", None),
    )
}
ATTACK_COLUMNS = ("acc1", "acc5", "delta_face", "delta_eval", "fid")
KNOWLEDGE_COLUMNS = ("xi_train", "xi_test")
LEAKAGE_COLUMNS = ("code_distance", "nearest_identity_accuracy")


@dataclass
class Table:
    """A built table, ready for ``write_table``; ``frame`` holds raw values under column keys."""

    frame: pd.DataFrame
    columns: list[Column]
    caption: str
    notes: list[str] = field(default_factory=list)

    def write(self, out_stem: str | os.PathLike) -> dict[str, Path]:
        return write_table(self.frame, self.columns, out_stem, self.caption, self.notes)


def write_table(
    df: pd.DataFrame,
    columns: Sequence[Column | str],
    out_stem: str | os.PathLike,
    caption: str,
    notes: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``<out_stem>.csv``, ``.md``, ``.tex`` and ``.html``; columns are ``Column``s or metric
    keys.

    The CSV holds the values in the displayed units at full precision (means over seeds, with a
    ``<header> std`` column beside each metric that has a standard deviation); Markdown, LaTeX and
    HTML round them, show ``mean ± std`` and end with the notes.
    """
    columns = [resolve_column(c) for c in columns]
    missing = [c.key for c in columns if c.key not in df.columns]
    if missing:
        raise KeyError(f"table {Path(out_stem).name!r}: columns {missing} are not in the data")
    stem = Path(out_stem)
    paths = {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("csv", "md", "tex", "html")}
    records = df[[c.key for c in columns]].to_dict("records")

    records = [{**r, **_stds(df, i, columns)} for i, r in enumerate(records)]
    csv = {}
    for c in columns:
        csv[c.header()] = [c.value(r[c.key]) for r in records]
        if c.numeric and f"{c.key}{STD}" in df.columns:
            csv[f"{c.header()} std"] = [c.value(r[f"{c.key}{STD}"]) for r in records]
    csv = pd.DataFrame(csv)
    with atomic_path(paths["csv"]) as tmp:
        csv.to_csv(tmp, index=False)
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(_markdown(records, columns, caption, notes), encoding="utf-8")
    with atomic_path(paths["tex"]) as tmp:
        tmp.write_text(_latex(records, columns, caption, notes), encoding="utf-8")
    html = table_html([c.header() for c in columns], ([c.cell(r) for c in columns] for r in records),
                      [c.numeric for c in columns], caption, notes=notes)
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return paths


def _stds(df: pd.DataFrame, position: int, columns: Sequence[Column]) -> dict:
    keys = [f"{c.key}{STD}" for c in columns if f"{c.key}{STD}" in df.columns]
    return {key: df[key].iloc[position] for key in keys}


def over_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per attack of ``rows`` (its seed replicates averaged): every metric's mean over
    seeds, its standard deviation (``<key>_std``, missing for a single seed) and ``n_seeds``."""
    keys = [k for k in KEY_COLUMNS if k != "seed"]
    # each attack's replicates together, by seed (float sums then do not depend on the row order)
    group = rows.groupby(keys, sort=False).ngroup()
    rows = rows.assign(_group=group).sort_values(["_group", "seed"], kind="stable")
    rows = rows.drop(columns="_group")
    metrics = [k for k in METRICS if k in rows.columns]
    numbers = rows[metrics].apply(pd.to_numeric, errors="coerce")
    groups = numbers.groupby([rows[k] for k in keys], sort=False)
    first = rows.groupby(keys, sort=False).first()
    out = first.assign(**groups.mean()).join(groups.std(ddof=1).add_suffix(STD))
    out["n_seeds"] = rows.groupby(keys, sort=False).size()
    out["seeds"] = rows.groupby(keys, sort=False)["seed"].agg(
        lambda s: ", ".join(str(v) for v in sorted(s.dropna()))
    )
    return out.reset_index()


def resolve_column(column: Column | str) -> Column:
    if isinstance(column, Column):
        return column
    if column in METRICS:
        return METRICS[column]
    if column in TEXT:
        return TEXT[column]
    raise KeyError(f"unknown table column {column!r}; known: {sorted(METRICS) + sorted(TEXT)}")


def _markdown(records, columns, caption, notes) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |"

    align = ["---:" if c.numeric else ":---" for c in columns]
    lines = [f"**{caption}**", "", line(c.header() for c in columns), line(align)]
    lines += [line(c.cell(r) for c in columns) for r in records]
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "α": r"$\alpha$",
    "δ": r"$\delta$",
    "ξ": r"$\xi$",
    "−": "-",
    "–": "--",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def _latex(records, columns, caption, notes) -> str:
    spec = "".join("r" if c.numeric else "l" for c in columns)
    body = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(c.latex_header() for c in columns) + r" \\",
        r"\midrule",
        *(" & ".join(latex_escape(c.cell(r)) for c in columns) + r" \\" for r in records),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if notes:
        body += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
        body += [latex_escape(note) + r"\par" for note in notes]
        body += [r"\end{minipage}"]
    body.append(r"\end{table}")
    return "\n".join(body) + "\n"


def describe_rows(rows: pd.DataFrame) -> list[str]:
    """Notes naming the datasets, target models, recipes and attacked classes of ``rows``, the input
    scaling of the FID network (real data), and, for synthetic data, that it is synthetic and which
    stand-in networks measured it."""

    def listed(column):
        return ", ".join(str(v) for v in pd.unique(rows[column].dropna()))

    recipes = pd.unique(pd.concat([rows[f"recipe_{s}"] for s in STAGES]))
    classes = ", ".join(
        f"{n} classes × {k} images"
        for n, k in rows[["num_classes", "images_per_class"]]
        .drop_duplicates()
        .itertuples(index=False)
    )
    notes = [
        f"Dataset: {listed('dataset')}. Target model: {listed('architecture')}. "
        f"Recipes: {', '.join(map(str, recipes))}.",
        f"Attacked: {classes} per attack (final selection).",
        ARROW_NOTE,
    ]
    real = rows[~rows["synthetic"].astype(bool)]
    scalings = sorted({"ppa" if "+ppa@" in name else "standard" for name in real["extractor_fid"]})
    notes += [FID_SCALING_NOTES[scaling] for scaling in scalings]
    if "n_seeds" in rows and (rows["n_seeds"] > 1).any():
        notes.append(
            "Mean ± standard deviation over the seeds in column Seeds (seeds "
            f"{'; '.join(pd.unique(rows['seeds']))}; each a replicate of training and attack)."
        )
    synthetic = rows[rows["synthetic"].astype(bool)]
    if len(synthetic):
        networks = "; ".join(
            f"evaluation = {e}, face features = {f}, FID features = {d}"
            for e, f, d in synthetic[["extractor_eval", "extractor_face", "extractor_fid"]]
            .drop_duplicates()
            .itertuples(index=False)
        )
        which = "All data are" if len(synthetic) == len(rows) else "Some rows use data that are"
        notes.append(
            f"{which} synthetic (procedural faces, not the paper's datasets); stand-in networks: "
            f"{networks}. The numbers check the pipeline, not the paper's values."
        )
    return notes


def _uniform(rows: pd.DataFrame) -> pd.DataFrame:
    """The plain attacks of ``rows`` (in the plan's order), their seed replicates averaged."""
    return over_seeds(rows[~rows["stage_ablation"].astype(bool)])


def _optional_columns(rows: pd.DataFrame, keys: Sequence[str], artefact: str) -> list[str]:
    """The optional metric columns given for every row; an error when only some rows have one."""
    present = []
    for key in keys:
        have = rows[key].notna()
        if have.all():
            present.append(key)
        elif have.any():
            absent = rows.loc[~have, ["dataset", "architecture", "recipe"]].to_dict("records")
            raise KeyError(f"{artefact}: {key} is missing for {absent} but given for other rows")
    return present


def _attack_table(rows: pd.DataFrame, leading: Sequence[str], artefact: str, caption: str,
                  sort_by: str | None = None) -> Table:
    """The plain attacks of ``rows`` (sorted stably by ``sort_by``, if given): test accuracy, the
    attack metrics and the optional ξ and leakage columns."""
    rows = _uniform(rows)
    if sort_by:
        rows = rows.sort_values(sort_by, kind="stable").reset_index(drop=True)
    knowledge = _optional_columns(rows, KNOWLEDGE_COLUMNS, artefact)
    leakage = _optional_columns(rows, LEAKAGE_COLUMNS, artefact)
    columns = [*leading, "test_accuracy", *ATTACK_COLUMNS, *knowledge, *leakage, "n_seeds"]
    table = _described(rows, columns, caption)
    if not knowledge:
        table.notes.append("ξ (knowledge extraction) was not computed in this configuration.")
    return table


def main_table(rows: pd.DataFrame, spec: Mapping) -> Table:
    """Test accuracy and attack metrics for each dataset × recipe (the paper's main table)."""
    caption = (f"Attack results against {spec['architecture']} trained with and without label "
               "smoothing.")
    return _attack_table(rows, ["dataset", "recipe", "alpha"], "main_table", caption)


def architectures(rows: pd.DataFrame, spec: Mapping) -> Table:
    """The main comparison repeated on other target architectures."""
    caption = f"Attack results on {spec['dataset']} for other target architectures."
    return _attack_table(rows, ["architecture", "recipe", "alpha"], "architectures", caption)


def alpha_sweep(rows: pd.DataFrame, spec: Mapping) -> Table:
    """Test accuracy and attack metrics for a grid of α, sorted by α."""
    caption = (f"Label-smoothing factor α against attack success ({spec['dataset']}, "
               f"{spec['architecture']}).")
    return _attack_table(rows, ["recipe", "alpha"], "alpha_sweep", caption, sort_by="alpha")


def _described(rows: pd.DataFrame, columns: Sequence[str], caption: str) -> Table:
    """A table of ``columns`` with the notes that describe ``rows``."""
    return Table(rows, [resolve_column(c) for c in columns], caption, describe_rows(rows))


def training_size(rows: pd.DataFrame, spec: Mapping) -> Table:
    """Acc@1 and test accuracy per recipe and training-set size (the full set included)."""
    selected = _uniform(rows).sort_values(["alpha", "num_train_images"], kind="stable")
    selected = selected.reset_index(drop=True)
    columns = ["recipe", "alpha", "num_train_images", "test_accuracy", "acc1", "acc5", "n_seeds"]
    return _described(selected, columns, f"Training-set size against attack success "
                      f"({spec['dataset']}, {spec['architecture']}).")


def stage_ablation(rows: pd.DataFrame, spec: Mapping) -> Table:
    """Attacks whose stages use different target models (the plan's single-stage swaps from the
    baseline and the other recipes' own attacks), with the change of Acc@1 against the
    all-baseline attack."""
    baseline = spec["baseline"]
    selected = over_seeds(rows)
    stage_columns = [f"recipe_{s}" for s in STAGES]
    is_base = (selected[stage_columns] == baseline).all(axis=1)
    if not is_base.any():
        raise KeyError(f"stage_ablation: no all-{baseline} attack among the rows")
    selected["delta_acc1"] = selected["acc1"] - selected.loc[is_base, "acc1"].iloc[0]
    order = {r: i for i, r in enumerate([baseline, *spec["others"]])}
    selected = selected.sort_values(
        stage_columns, key=lambda s: s.map(order), kind="stable"
    ).reset_index(drop=True)
    columns = [*stage_columns, "acc1", "delta_acc1", "acc5", "delta_face", "delta_eval", "fid",
               "n_seeds"]
    return _described(selected, columns, f"Which attack stage carries the effect: target model "
                      f"per stage ({spec['dataset']}, {spec['architecture']}; baseline {baseline}).")


def defence_comparison(rows: pd.DataFrame, spec: Mapping) -> Table:
    """Test accuracy and attack metrics of defended and smoothed models, marking the models on the
    utility–privacy Pareto front (test accuracy ↑, Acc@1 ↓)."""
    selected = _uniform(rows)
    front = set(pareto_front(selected[["test_accuracy", "acc1"]].to_numpy()).tolist())
    selected["on_pareto_front"] = ["yes" if i in front else "no" for i in range(len(selected))]
    columns = [
        "recipe",
        "defence",
        "defence_params",
        "alpha",
        "test_accuracy",
        *ATTACK_COLUMNS,
        "on_pareto_front",
        "n_seeds",
    ]
    return _described(selected, columns, f"Label smoothing against the defences MID and BiDO "
                      f"({spec['dataset']}, {spec['architecture']}).")
