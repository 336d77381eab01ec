# What the paper's artefacts show and read: the (dataset, architecture, recipe) rows of each,
# their output files and input functions (the rules are in paper.smk).
ART = config["artefacts"]
PAPER = f"{RES}/paper"
TABLE = ("csv", "md", "tex", "html")
FIGURE = ("png", "pdf", "csv")


def _files(stem, extensions):
    return [f"{PAPER}/{stem}.{ext}" for ext in extensions]


def artefact_seeds(name):
    """The replicate seeds an artefact shows: the first `artefacts.<name>.seeds` of `seeds` (all
    by default; the pictures of single models, embeddings and sample_grid, show the first)."""
    count = (
        1 if name in ("embeddings", "sample_grid") else ART[name].get("seeds", len(config["seeds"]))
    )
    return config["seeds"][:count]


def _triples(name):
    """(dataset, architecture, run) of every plain attack an artefact shows, for each of its seeds
    (runs of later seeds are named `<recipe>-s<seed>`)."""
    return [
        (d, a, replicate_name(config, r, s))
        for s in artefact_seeds(name)
        for d, a, r in _recipe_triples(name)
    ]


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
            attack_metrics_file(spec["dataset"], spec["architecture"], *c)
            for c in _stage_combinations()
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
    "defence_comparison": _files("defence_comparison", TABLE)
    + _files("defence_comparison_plot", FIGURE),
    "architectures": _files("architectures", TABLE),
    "sample_grid": _files("sample_grid", FIGURE),
}


def paper_artefacts():
    """Every artefact the config asks for, and the claims check."""
    files = [f for name in ART for f in ARTEFACT_OUTPUTS[name]]
    return files + _files("claims", ("md", "csv", "html"))


def _report(stem, extension, category, artefact=None):
    """An output shown in the report, captioned by workflow/report/<artefact>.rst."""
    return report(
        f"{PAPER}/{stem}.{extension}",
        category=category,
        caption=f"../report/{artefact or stem}.rst",
    )


def _claims_inputs(wildcards):
    inputs = {"models": [], "attacks": [], "knowledge": []}
    for name in ART:
        if name in ("toy_example", "embeddings", "sample_grid"):
            continue
        for key, files in metrics_inputs(name, with_knowledge=name == "main_table").items():
            inputs[key] += files
    return {key: list(dict.fromkeys(files)) for key, files in inputs.items()}
