"""Knowledge extraction score ξ of one attack."""
from pathlib import Path

from lsmia.config import recipe_with_runtime_settings
from lsmia.jobkit import logged
from lsmia.jobs.evaluate import knowledge_job

with logged(snakemake):
    knowledge_job(
        selected=snakemake.input.selected, data_dir=Path(snakemake.input.data[0]).parent,
        arch=snakemake.params.arch,
        recipe=recipe_with_runtime_settings(
            snakemake.params.recipe, snakemake.config, snakemake.config["metrics"]["knowledge"]["recipe"]
        ),
        pretrained=snakemake.input.get("pretrained") or None, wildcards=snakemake.wildcards,
        device=snakemake.config["device"], workdir=snakemake.params.workdir,
        log_csv=snakemake.log.epochs, out=snakemake.output[0],
    )
