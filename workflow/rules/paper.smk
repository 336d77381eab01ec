# The paper's tables and figures: one rule per artefact, named after what it shows, each writing
# its data (CSV) next to its table (Markdown, LaTeX) or figure (PNG, PDF) in results/<exp>/paper/.
# Tables, figures and the claims check take seconds on one core and no GPU: `localrule: True` runs
# them where Snakemake runs (on a cluster: the login node) instead of queueing them; `embeddings`
# evaluates the target models and stays a job. Inputs and outputs: paper_inputs.smk.


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
    localrule: True
    conda:
        "../../envs/lsmia.yaml"
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
            table=_report(_name, "html", "Tables"),
            md=f"{PAPER}/{_name}.md",
            csv=f"{PAPER}/{_name}.csv",
            tex=f"{PAPER}/{_name}.tex",
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
            table=_report(_table, "html", "Tables", _name),
            md=f"{PAPER}/{_table}.md",
            csv=f"{PAPER}/{_table}.csv",
            tex=f"{PAPER}/{_table}.tex",
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
            models=[target_model(*t) for t in _triples("embeddings")],
            data=packed(ART["embeddings"]["dataset"]),
        output:
            figure=_report("embeddings", "png", "Figures"),
            pdf=f"{PAPER}/embeddings.pdf",
            csv=f"{PAPER}/embeddings.csv",
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
        localrule: True
        conda:
            "../../envs/lsmia.yaml"
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
        html=_report("claims", "html", "Claims"),
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
