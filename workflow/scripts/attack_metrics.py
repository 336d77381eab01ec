"""Metrics of one attack."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.evaluate import metrics_job

with logged(snakemake):
    inputs, params = snakemake.input, snakemake.params
    metrics_job(
        selected=inputs.selected, optimised=inputs.optimised, data_dir=Path(inputs.data[0]).parent,
        evaluation_model=inputs.evaluation_model, extractors=params.extractors,
        embeddings={role: inputs[f"embeddings_{role}"] for role in params.extractors},
        attack=params.attack, wildcards=snakemake.wildcards, prdc_k=params.prdc_k,
        batch_size=snakemake.config["metrics"]["batch_size"], synthetic=params.synthetic,
        device=snakemake.config["device"],
        out=snakemake.output[0], private_codes=inputs.get("private_codes"),
    )
