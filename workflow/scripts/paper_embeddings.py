"""Embedding geometry figure."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.paper import embeddings_artefact

with logged(snakemake):
    embeddings_artefact(snakemake.params.spec, snakemake.input.models,
                        Path(snakemake.input.data[0]).parent,
                        Path(snakemake.output.figure).with_suffix(""), snakemake.config["device"])
