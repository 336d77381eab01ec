"""Gradient stability figure."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.paper import gradient_artefact

with logged(snakemake):
    gradient_artefact(snakemake.input.models, snakemake.input.logs,
                      Path(snakemake.output.figure).with_suffix(""))
