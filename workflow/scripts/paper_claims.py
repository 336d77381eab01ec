"""The claims check."""
from lsmia.jobkit import logged
from lsmia.jobs.paper import claims_artefact

with logged(snakemake):
    print(claims_artefact(snakemake.config, snakemake.output.md, snakemake.output.csv).to_string())
