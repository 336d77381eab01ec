"""Build a table artefact (and its figure, where it has one)."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.paper import table_artefact

with logged(snakemake):
    output = snakemake.output
    figure = Path(output.figure).with_suffix("") if "figure" in output.keys() else None
    table_artefact(snakemake.params.artefact, snakemake.params.spec, snakemake.input,
                   Path(output.table).with_suffix(""), figure)
