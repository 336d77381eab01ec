"""Train a model: rules train_target, train_evaluation_model and pretrain_public."""
from pathlib import Path

from lsmia.config import recipe_with_runtime_settings
from lsmia.jobkit import logged
from lsmia.jobs.training import train_job

with logged(snakemake):
    inputs = snakemake.input
    train_job(
        data_dir=Path(inputs.data[0]).parent,
        out_model=snakemake.output.model,
        out_metrics=snakemake.output.metrics,
        dataset=snakemake.wildcards.dataset,
        architecture=snakemake.params.names["architecture"],
        arch_spec=snakemake.params.arch,
        recipe_name=snakemake.params.names["recipe"],
        recipe=recipe_with_runtime_settings(
            snakemake.params.recipe, snakemake.config, snakemake.params.names["recipe"]
        ),
        pretrained=inputs.get("init") or inputs.get("pretrained") or None,
        device=snakemake.config["device"],
        workdir=snakemake.params.workdir,
        log_csv=snakemake.log.epochs,
    )
