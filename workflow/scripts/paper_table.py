"""Build a table artefact (and its figure, where it has one) from the plan's rows."""
from pathlib import Path

from lsmia.jobkit import logged
from lsmia.jobs.paper import table_artefact

with logged(snakemake):
    output = snakemake.output
    figure = Path(output.figure).with_suffix("") if "figure" in output.keys() else None
    table_artefact(snakemake.params.artefact, snakemake.config,
                   Path(output.table).with_suffix(""), figure)
