# The paper's tables and figures: one rule per artefact, named after what it shows, each writing
# its data (CSV) next to its table (Markdown, LaTeX) or figure (PNG, PDF) in results/<exp>/paper/.
# Tables, figures and the claims check take seconds on one core and no GPU: `localrule: True` runs
# them where Snakemake runs (on a cluster: the login node) instead of queueing them; `embeddings`
# evaluates the target models and stays a job. Inputs and outputs: paper_inputs.smk.


rule toy_example:
    """2-D toy: label smoothing and an input-space attack (exactly the paper's code)."""
    output:
        **artefact_outputs("toy_example", "Toy example"),
    log:
        f"{LOGS}/paper/toy_example.log",
    benchmark:
        f"{BENCH}/paper/toy_example.tsv"
    localrule: True
    conda:
        "../../envs/lsmia.yaml"
    threads: 1
    script:
        "../scripts/paper_toy_example.py"


for _name, _artefact in PLAN.artefacts.items():
    if _artefact.kind.script != "paper_table.py":
        continue

    rule:
        name:
            _name
        input:
            **metrics_inputs(_name),
        output:
            **artefact_outputs(_name, None),
        log:
            f"{LOGS}/paper/{_name}.log",
        benchmark:
            f"{BENCH}/paper/{_name}.tsv"
        localrule: True
        conda:
            "../../envs/lsmia.yaml"
        params:
            artefact=_name,
            spec=ART[_name],
        script:
            "../scripts/paper_table.py"


if "embeddings" in ART:

    rule embeddings:
        """Penultimate activations of three classes on the plane of their weight templates."""
        input:
            models=[target_model(*t) for t in target_runs("embeddings")],
            data=packed(ART["embeddings"]["dataset"]),
        output:
            **artefact_outputs("embeddings", None),
        log:
            f"{LOGS}/paper/embeddings.log",
        benchmark:
            f"{BENCH}/paper/embeddings.tsv"
        conda:
            "../../envs/lsmia.yaml"
        threads: 1
        params:
            spec=ART["embeddings"],
        script:
            "../scripts/paper_embeddings.py"


if "gradient_similarity" in ART:

    rule gradient_similarity:
        """Cosine similarity of consecutive attack gradients during PPA optimisation."""
        input:
            models=[target_metrics(*t) for t in target_runs("gradient_similarity")],
            logs=[PLAN.layout.gradient_log(*t) for t in target_runs("gradient_similarity")],
        output:
            **artefact_outputs("gradient_similarity", None),
        log:
            f"{LOGS}/paper/gradient_similarity.log",
        benchmark:
            f"{BENCH}/paper/gradient_similarity.tsv"
        localrule: True
        conda:
            "../../envs/lsmia.yaml"
        script:
            "../scripts/paper_gradient_similarity.py"


if "sample_grid" in ART:

    rule sample_grid:
        """Attack images per α for a few identities next to real training images."""
        input:
            models=[target_metrics(*t) for t in target_runs("sample_grid")],
            selected=[PLAN.layout.selected(*t) for t in target_runs("sample_grid")],
            data=packed(ART["sample_grid"]["dataset"]),
        output:
            **artefact_outputs("sample_grid", None),
        log:
            f"{LOGS}/paper/sample_grid.log",
        benchmark:
            f"{BENCH}/paper/sample_grid.tsv"
        localrule: True
        conda:
            "../../envs/lsmia.yaml"
        params:
            spec=ART["sample_grid"],
        script:
            "../scripts/paper_sample_grid.py"


rule claims:
    """The paper's headline claims as inequalities on this run's numbers."""
    input:
        unpack(_claims_inputs),
    output:
        md=f"{PAPER}/claims.md",
        html=report(f"{PAPER}/claims.html", category="Claims", caption="../report/claims.rst"),
        csv=f"{PAPER}/claims.csv",
    log:
        f"{LOGS}/paper/claims.log",
    benchmark:
        f"{BENCH}/paper/claims.tsv"
    localrule: True
    conda:
        "../../envs/lsmia.yaml"
    params:
        spec=ART,
    script:
        "../scripts/paper_claims.py"
