"""Sample grid figure."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.paper import sample_grid_artefact

with logged(snakemake):
    sample_grid_artefact(snakemake.params.spec, snakemake.input.models, snakemake.input.selected,
                         Path(snakemake.input.data[0]).parent,
                         Path(snakemake.output.figure).with_suffix(""))
