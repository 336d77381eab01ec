# The paper's tables and figures: one rule per artefact, named after what it shows, each writing
# its data (CSV) next to its table (Markdown, LaTeX) or figure (PNG, PDF) in results/<exp>/paper/.
ART = config["artefacts"]
PAPER = f"{RES}/paper"
TABLE = ("csv", "md", "tex")
FIGURE = ("png", "pdf", "csv")


def _files(stem, extensions):
    return [f"{PAPER}/{stem}.{ext}" for ext in extensions]


def artefact_seeds(name):
    """The replicate seeds an artefact shows: the first `artefacts.<name>.seeds` of `seeds` (all
    by default; the pictures of single models, embeddings and sample_grid, show the first)."""
    count = 1 if name in ("embeddings", "sample_grid") else ART[name].get("seeds", len(config["seeds"]))
    return config["seeds"][:count]


def _triples(name):
    """(dataset, architecture, run) of every plain attack an artefact shows, for each of its seeds
    (runs of later seeds are named `<recipe>-s<seed>`)."""
    return [(d, a, replicate_name(config, r, s)) for s in artefact_seeds(name) for d, a, r in _recipe_triples(name)]


def _recipe_triples(name):
    """(dataset, architecture, recipe) of every plain attack an artefact shows."""
    spec = ART[name]
    if name == "main_table":
        return [(d, spec["architecture"], r) for d in spec["datasets"] for r in spec["recipes"]]
    if name == "architectures":
        return [(spec["dataset"], a, r) for a in spec["architectures"] for r in spec["recipes"]]
    if name == "training_size":
        names = [f"{r}-n{s}" for r in spec["recipes"] for s in spec["sizes"]] + spec["recipes"]
        return [(spec["dataset"], spec["architecture"], r) for r in names]
    if name == "stage_ablation":
        recipes = [spec["baseline"], *spec["others"]]
        return [(spec["dataset"], spec["architecture"], r) for r in recipes]
    return [(spec["dataset"], spec["architecture"], r) for r in spec["recipes"]]


def _stage_combinations():
    """Stage runs (sample, optimise, select) of the stage ablation: each stage swapped alone, per
    seed."""
    spec = ART["stage_ablation"]
    combos = []
    for seed in artefact_seeds("stage_ablation"):
        base = replicate_name(config, spec["baseline"], seed)
        combos.append((base, base, base))
        for other in (replicate_name(config, o, seed) for o in spec["others"]):
            combos += [(other, base, base), (base, other, base), (base, base, other), (other,) * 3]
    return list(dict.fromkeys(combos))


def metrics_inputs(name, with_knowledge=False):
    triples = _triples(name)
    inputs = {
        "models": [target_metrics(*t) for t in triples],
        "attacks": [attack_metrics_file(*t) for t in triples],
        "knowledge": [knowledge_file(*t) for t in triples] if with_knowledge else [],
    }
    if name == "stage_ablation":
        spec = ART[name]
        inputs["attacks"] = [
            attack_metrics_file(spec["dataset"], spec["architecture"], *c) for c in _stage_combinations()
        ]
    return inputs


ARTEFACT_OUTPUTS = {
    "toy_example": _files("toy_example", FIGURE),
    "main_table": _files("main_table", TABLE),
    "stage_ablation": _files("stage_ablation", TABLE),
    "training_size": _files("training_size", FIGURE) + _files("training_size_table", TABLE),
    "alpha_sweep": _files("alpha_sweep", FIGURE) + _files("alpha_sweep_table", TABLE),
    "embeddings": _files("embeddings", FIGURE),
    "gradient_similarity": _files("gradient_similarity", FIGURE),
    "defence_comparison": _files("defence_comparison", TABLE) + _files("defence_comparison_plot", FIGURE),
    "architectures": _files("architectures", TABLE),
    "sample_grid": _files("sample_grid", FIGURE),
}


def paper_artefacts():
    """Every artefact the config asks for, and the claims check."""
    files = [f for name in ART for f in ARTEFACT_OUTPUTS[name]]
    return files + _files("claims", ("md", "csv"))


def _report(stem, extension, category, artefact=None):
    """An output shown in the report, captioned by workflow/report/<artefact>.rst."""
    return report(
        f"{PAPER}/{stem}.{extension}",
        category=category,
        caption=f"../report/{artefact or stem}.rst",
    )


rule toy_example:
    """2-D toy: label smoothing and an input-space attack (exactly the paper's code)."""
    output:
        figure=_report("toy_example", "png", "Toy example"),
        pdf=f"{PAPER}/toy_example.pdf",
        csv=f"{PAPER}/toy_example.csv",
    log:
        f"{LOGS}/paper/toy_example.log",
    benchmark:
        f"{BENCH}/paper/toy_example.tsv"
    threads: 1
    script:
        "../scripts/paper_toy_example.py"


for _name in ("main_table", "stage_ablation", "architectures"):
    if _name not in ART:
        continue

    rule:
        name:
            _name
        input:
            **metrics_inputs(_name, with_knowledge=_name == "main_table"),
        output:
            table=_report(_name, "md", "Tables"),
            csv=f"{PAPER}/{_name}.csv",
            tex=f"{PAPER}/{_name}.tex",
        params:
            artefact=_name,
            spec=ART[_name],
        log:
            f"{LOGS}/paper/{_name}.log",
        benchmark:
            f"{BENCH}/paper/{_name}.tsv"
        script:
            "../scripts/paper_table.py"


for _name in ("training_size", "alpha_sweep", "defence_comparison"):
    if _name not in ART:
        continue
    _figure = "defence_comparison_plot" if _name == "defence_comparison" else _name
    _table = "defence_comparison" if _name == "defence_comparison" else f"{_name}_table"

    rule:
        name:
            _name
        input:
            **metrics_inputs(_name),
        output:
            figure=_report(_figure, "png", "Figures", _name),
            pdf=f"{PAPER}/{_figure}.pdf",
            figure_csv=f"{PAPER}/{_figure}.csv",
            table=_report(_table, "md", "Tables", _name),
            csv=f"{PAPER}/{_table}.csv",
            tex=f"{PAPER}/{_table}.tex",
        params:
            artefact=_name,
            spec=ART[_name],
        log:
            f"{LOGS}/paper/{_name}.log",
        benchmark:
            f"{BENCH}/paper/{_name}.tsv"
        script:
            "../scripts/paper_table.py"


if "embeddings" in ART:

    rule embeddings:
        """Penultimate activations of three classes on the plane of their weight templates."""
        input:
            models=[target_model(*t) for t in _triples("embeddings")],
            data=packed(ART["embeddings"]["dataset"]),
        output:
            figure=_report("embeddings", "png", "Figures"),
            pdf=f"{PAPER}/embeddings.pdf",
            csv=f"{PAPER}/embeddings.csv",
        params:
            spec=ART["embeddings"],
            device=config["device"],
        log:
            f"{LOGS}/paper/embeddings.log",
        benchmark:
            f"{BENCH}/paper/embeddings.tsv"
        threads: 1
        script:
            "../scripts/paper_embeddings.py"


if "gradient_similarity" in ART:

    rule gradient_similarity:
        """Cosine similarity of consecutive attack gradients during PPA optimisation."""
        input:
            models=[target_metrics(*t) for t in _triples("gradient_similarity")],
            logs=[gradient_log(*t) for t in _triples("gradient_similarity")],
        output:
            figure=_report("gradient_similarity", "png", "Figures"),
            pdf=f"{PAPER}/gradient_similarity.pdf",
            csv=f"{PAPER}/gradient_similarity.csv",
        log:
            f"{LOGS}/paper/gradient_similarity.log",
        benchmark:
            f"{BENCH}/paper/gradient_similarity.tsv"
        script:
            "../scripts/paper_gradient_similarity.py"


if "sample_grid" in ART:

    rule sample_grid:
        """Attack images per α for a few identities next to real training images."""
        input:
            models=[target_metrics(*t) for t in _triples("sample_grid")],
            selected=[f"{attack_dir(*t, t[2], t[2])}/select.pt" for t in _triples("sample_grid")],
            data=packed(ART["sample_grid"]["dataset"]),
        output:
            figure=_report("sample_grid", "png", "Figures"),
            pdf=f"{PAPER}/sample_grid.pdf",
            csv=f"{PAPER}/sample_grid.csv",
        params:
            spec=ART["sample_grid"],
        log:
            f"{LOGS}/paper/sample_grid.log",
        benchmark:
            f"{BENCH}/paper/sample_grid.tsv"
        script:
            "../scripts/paper_sample_grid.py"


def _claims_inputs(wildcards):
    inputs = {"models": [], "attacks": [], "knowledge": []}
    for name in ART:
        if name in ("toy_example", "embeddings", "sample_grid"):
            continue
        for key, files in metrics_inputs(name, with_knowledge=name == "main_table").items():
            inputs[key] += files
    return {key: list(dict.fromkeys(files)) for key, files in inputs.items()}


rule claims:
    """The paper's headline claims as inequalities on this run's numbers."""
    input:
        unpack(_claims_inputs),
    output:
        md=_report("claims", "md", "Claims"),
        csv=f"{PAPER}/claims.csv",
    params:
        spec=ART,
    log:
        f"{LOGS}/paper/claims.log",
    benchmark:
        f"{BENCH}/paper/claims.tsv"
    script:
        "../scripts/paper_claims.py"
