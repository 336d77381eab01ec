"""Embeddings of the real training images under one extractor (cached per dataset)."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.evaluate import embeddings_job

with logged(snakemake):
    embeddings_job(data_dir=Path(snakemake.input.data[0]).parent,
                   extractor=snakemake.params.extractor, out=snakemake.output[0],
                   batch_size=snakemake.config["metrics"]["batch_size"],
                   device=snakemake.config["device"])
